// simdjson DOM side of bench_agtype: parse each row with one reused parser.
// Rows sit in one buffer with at least SIMDJSON_PADDING readable bytes after
// each, so simdjson parses them in place without copying.
#include <cstddef>
#include <cstdint>

#include <simdjson.h>

extern "C" int agec_bench_simdjson(const char *buf, size_t buf_len, const size_t *offsets,
                                   const size_t *lens, size_t rows, size_t *checksum);

extern "C" int agec_bench_simdjson(const char *buf, size_t buf_len, const size_t *offsets,
                                   const size_t *lens, size_t rows, size_t *checksum)
{
    static simdjson::dom::parser parser;
    size_t sum = 0;
    for (size_t i = 0; i < rows; i++) {
        const uint8_t *row = reinterpret_cast<const uint8_t *>(buf + offsets[i]);
        if (buf_len - offsets[i] < lens[i] + simdjson::SIMDJSON_PADDING)
            return -1;
        simdjson::dom::element doc;
        if (parser.parse(row, lens[i], false).get(doc) != simdjson::SUCCESS)
            return -1;
        sum += static_cast<size_t>(doc.type());
    }
    *checksum = sum;
    return 0;
}
