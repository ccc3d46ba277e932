# The two commands a newcomer runs (as root on Debian 12):
#   make demo    set up, start the AGE server, run the showcase (`agec demo`)
#   make check   set up, build, start both test servers, run every test:
#                clang-format's check of every C file,
#                the whole suite under ASan+UBSan, the concurrency and fault
#                tests under ThreadSanitizer, each libFuzzer target for a
#                bounded time, and `agec demo` under valgrind memcheck
# Both do their own set-up through scripts/bootstrap.
#
# The native Apache AGE tier (every AGE test also on native AGE 1.6 on
# PostgreSQL 15, and what only native AGE shows) runs when AGE_SRC names an
# AGE source tarball or tree (built once into build/age-native/, never into
# the system) or when AGE is installed for PostgreSQL 15:
#   AGE_SRC=/path/to/apache-age-1.6.0-pg15.tar.gz make check
# Without it, make check says in its last line that the tier did not run.

BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=
FUZZ_SECONDS ?= 15

.PHONY: all bootstrap build demo check check-asan check-tsan check-fuzz check-valgrind fuzz bench format format-check clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/release/CMakeCache.txt:
	cmake -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: bootstrap $(BUILD)/release/CMakeCache.txt
	cmake --build $(BUILD)/release -j$(JOBS)

demo: build
	@scripts/with-test-servers --age-only sh -c '$(BUILD)/release/tools/agec/agec --dsn "$$AGEC_TEST_AGE" demo'

$(BUILD)/asan/CMakeCache.txt:
	cmake -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DAGEC_SANITIZE=ON -DAGEC_BUILD_BENCH=OFF

check-asan: bootstrap $(BUILD)/asan/CMakeCache.txt
	cmake --build $(BUILD)/asan -j$(JOBS)
	scripts/with-test-servers scripts/ctest-tiers --test-dir $(BUILD)/asan --output-on-failure -j$(JOBS) $(CTEST_ARGS)

$(BUILD)/tsan/CMakeCache.txt:
	cmake -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=Debug -DAGEC_TSAN=ON -DAGEC_BUILD_BENCH=OFF

check-tsan: bootstrap $(BUILD)/tsan/CMakeCache.txt
	cmake --build $(BUILD)/tsan -j$(JOBS)
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  scripts/with-test-servers scripts/ctest-tiers --test-dir $(BUILD)/tsan --output-on-failure -L concurrency

$(BUILD)/fuzz/CMakeCache.txt:
	CC=clang cmake -S . -B $(BUILD)/fuzz -DAGEC_BUILD_FUZZ=ON -DAGEC_BUILD_TESTS=OFF -DAGEC_BUILD_BENCH=OFF

check-fuzz: bootstrap $(BUILD)/fuzz/CMakeCache.txt
	cmake -DAGEC_FUZZ_SECONDS=$(FUZZ_SECONDS) $(BUILD)/fuzz >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS) --target fuzz_run

# Fuzz longer: make fuzz FUZZ_SECONDS=3600
fuzz: FUZZ_SECONDS = 600
fuzz: check-fuzz

bench: bootstrap
	bench/run

# valgrind memcheck of the real demo: zero errors, zero leaks (definite,
# indirect, possible) or the target fails.
check-valgrind: build
	scripts/with-test-servers --age-only sh -c 'valgrind -q --leak-check=full \
	  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible \
	  --error-exitcode=99 $(BUILD)/release/tools/agec/agec --dsn "$$AGEC_TEST_AGE" -q demo --size 300 >/dev/null'
	@echo "valgrind: agec demo ran with zero errors and zero leaks"

# Style first (a second), then TSan, fuzzing and valgrind; the ASan suite
# last, so CTest's summary ends the output.
check: bootstrap format-check check-tsan check-fuzz check-valgrind check-asan

# The C files come from scripts/c-files (git ls-files, or find without git),
# which fails when it finds none.
format:
	files=$$(scripts/c-files) && clang-format -i $$files

# Fails when a C file is not as .clang-format wants it.
format-check: bootstrap
	@files=$$(scripts/c-files) && clang-format --dry-run -Werror $$files && \
	  echo "format-check: $$(echo "$$files" | wc -l) C files as .clang-format wants them"

clean:
	rm -rf $(BUILD)
