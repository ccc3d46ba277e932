# The two commands a newcomer runs (as root on Debian 12):
#   make demo    set up, start the AGE server, run the showcase
#   make check   set up, build under ASan+UBSan, start both test servers, run every test
# Both do their own set-up through scripts/bootstrap.

BUILD ?= build
JOBS ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all bootstrap build demo check check-asan check-tsan format clean

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
	scripts/with-test-servers ctest --test-dir $(BUILD)/asan --output-on-failure -j$(JOBS) $(CTEST_ARGS)

check: check-asan

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
