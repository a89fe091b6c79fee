# Front door: `make demo` and `make test` do all the set-up (scripts/deps.sh
# installs missing Debian packages), then drive CMake in build/.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_ARGS ?=
DEMO_DIR ?= demo-out

.PHONY: all deps build test demo bench fuzz clean

all: build

deps:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	scripts/demo.sh $(BUILD)/shelf $(DEMO_DIR)

bench: build
	@scripts/deps.sh --check --bench 2>/dev/null || scripts/deps.sh --bench
	cmake --build $(BUILD) -j $(JOBS) --target bench_import
	bench/import.sh $(BUILD)
	bench/eval_classic.sh $(BUILD)
	bench/ratings.sh $(BUILD)
	bench/train_transformer.sh $(BUILD)

# libFuzzer targets (tests/fuzz/) under ASan + UBSan, built with clang in
# $(FUZZ_BUILD), each run FUZZ_SECONDS from its corpus; FUZZ_TARGETS picks some
# (import http json bundle tokenizer scenario); any crash fails it
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?=
fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DSHELF_FUZZ=ON -DSHELF_OPENMP=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_all
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

clean:
	rm -rf $(BUILD) $(DEMO_DIR)
