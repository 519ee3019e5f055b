# mpg: `make run` (the main job), `make test` (every test, three builds), `make build`, `make bench`.
# Each target first runs scripts/setup.sh, which installs missing Debian packages (a no-op when
# everything is present), then configures and builds with CMake into build/ (binaries in build/bin/).

JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
REPS ?= 5

.PHONY: soak stress all setup build build-asan build-tsan run test test-release test-migrate test-asan test-tsan bench bench-preempt bench-echo clean

all: build

setup:
	@bash scripts/setup.sh

build: setup
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j $(JOBS)

build-asan: setup
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPG_SANITIZE=address -DMPG_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-asan -j $(JOBS)

build-tsan: setup
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPG_SANITIZE=thread -DMPG_BUILD_BENCH=OFF >/dev/null
	@cmake --build build-tsan -j $(JOBS)

# run: until the showdown exists, the runtime's micro-benchmark table against Go, shortened.
# run: the showdown (bench/showdown.py): mpg's three servers against nginx, Go and the floor on
# this machine, then the runtime's micro-benchmarks; SHOWDOWN=--quick (a minute) or --full.
SHOWDOWN ?=
run: build
	@python3 bench/showdown.py --bin build/bin $(SHOWDOWN)

bench: build
	@cmake --build build -j $(JOBS) --target go_micro mpg_micro_bench mpg_fiber_bench
	@python3 tools/bench.py --bin build/bin --reps $(REPS) --out results/latest/bench.json --markdown docs/bench-table.md

# bench-preempt: preemption and blocking calls against Go (docs/preemption.md).
bench-preempt: build
	@cmake --build build -j $(JOBS) --target mpg_preempt_bench go_preempt
	@python3 tools/bench_preempt.py --bin build/bin --reps $(REPS)

# bench-echo: TCP echo, mpg's goroutine server and reactor against Go's goroutine-per-connection
# server (docs/net.md, docs/reactor.md).
bench-echo: build
	@cmake --build build -j $(JOBS) --target echo_goroutine echo_reactor echo_client go_echo
	@python3 bench/echo/echo_bench.py --bin build/bin --reps $(REPS)

# test: Release (and its goroutine tests again with every G moved to another thread at each
# switch), then ASan+UBSan, then TSan, then fuzz-ci; a sanitizer report fails the run.
test: test-release test-migrate test-asan test-tsan fuzz-ci
	@echo "make test: all three builds passed"

test-release: build
	@cd build && ctest --output-on-failure --timeout 300

# test-migrate: MPG_DEBUG=migrate=1 (docs/runtime.md): a goroutine never resumes on the thread it
# last ran on after a cooperative switch, so a thread_local address cached across a switch
# (in mpg or in a test) fails at once instead of once in a while.
test-migrate: build
	@cd build && MPG_DEBUG=migrate=1 ctest --output-on-failure --timeout 300 -L 'runtime|sync|net|http'

test-asan: build-asan
	@cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 MPG_TEST_SCALE=asan \
	  ctest --output-on-failure --timeout 600

test-tsan: build-tsan
	@cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 MPG_TEST_SCALE=tsan \
	  ctest --output-on-failure --timeout 600 -L 'runtime|sync|poll|reactor|net|http'

# soak: each mpg-httpd model under SOAK_CONNS connections for SOAK_SECONDS with random
# reconnects; checks responses, descriptors and RSS; writes results/soak-<time>/ with a chart.
SOAK_SECONDS ?= 600
SOAK_CONNS ?= 10000
soak: build
	@cmake --build build -j $(JOBS) --target mpg-httpd soak_client
	@python3 bench/http/soak.py --bin build/bin --seconds $(SOAK_SECONDS) --conns $(SOAK_CONNS)

# stress: the scheduler stress test for minutes (STRESS_SECONDS per procs value, 1..4).
STRESS_SECONDS ?= 60
stress: build
	@cmake --build build -j $(JOBS) --target runtime_stress_test
	@MPG_STRESS_SECONDS=$(STRESS_SECONDS) build/bin/runtime_stress_test

clean:
	rm -rf build build-asan build-tsan

# fuzz: the libFuzzer targets (docs/fuzzing.md), built with clang (ASan+UBSan) into build-fuzz/
# from fuzz/CMakeLists.txt, each run FUZZ_SECONDS (default an hour) after replaying its
# regression inputs; new corpus entries go to build-fuzz/corpus/, crashes to build-fuzz/artifacts/.
# fuzz-ci: the same for 60 s per target (make test runs it last).
FUZZ_SECONDS ?= 3600

.PHONY: build-fuzz fuzz fuzz-ci

build-fuzz: setup
	@CC=clang CXX=clang++ cmake -S fuzz -B build-fuzz >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

fuzz: build-fuzz
	@bash fuzz/run.sh $(FUZZ_SECONDS)

fuzz-ci: build-fuzz
	@bash fuzz/run.sh 60
