# Front door: `make demo` and `make test` do all the set-up (scripts/deps.sh
# installs missing Debian packages), then drive CMake in build/.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_ARGS ?=
DEMO_DIR ?= demo-out

.PHONY: all deps build test demo bench clean

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

clean:
	rm -rf $(BUILD) $(DEMO_DIR)
