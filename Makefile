# medcore — the two commands a new user needs are `make run` and `make test`.
BUILD     ?= build
ASAN      ?= build-asan
DB        ?= sqlite:medcore.db
LISTEN    ?= 127.0.0.1:8080
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_GEN  = cmake -S . -B

.PHONY: all deps build run test asan-test bench bench-pg clean

all: build

deps:
	@sh scripts/deps.sh

build: deps
	@$(CMAKE_GEN) $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Serve on the embedded default with demo data (loaded once; kept between runs).
run: build
	@$(BUILD)/medcore migrate --db $(DB)
	@$(BUILD)/medcore demo --db $(DB) --if-empty
	@$(BUILD)/medcore serve --db $(DB) --listen $(LISTEN)

# Every test, on SQLite and on PostgreSQL: a private PostgreSQL cluster (scripts/pg-test-cluster.sh,
# 127.0.0.1:55432) is started first and left running for the next run (`sh scripts/pg-test-cluster.sh stop`).
test: build
	@PG=$$(sh scripts/pg-test-cluster.sh start) && $(CMAKE_GEN) $(BUILD) -DMEDCORE_TEST_PG=$$PG >/dev/null
	@cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 900

# The same suite under AddressSanitizer + UBSan (CI runs it too).
asan-test: deps
	@PG=$$(sh scripts/pg-test-cluster.sh start) && \
	  $(CMAKE_GEN) $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DMEDCORE_SANITIZE=ON -DMEDCORE_TEST_PG=$$PG >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)
	@cd $(ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j 2 --timeout 1800

bench: build
	@sh bench/run.sh $(BUILD)/medcore

# The same scenarios on PostgreSQL (the private test cluster of `make test`).
bench-pg: build
	@BENCH_PG=$$(sh scripts/pg-test-cluster.sh start) sh bench/run.sh $(BUILD)/medcore

clean:
	rm -rf $(BUILD) $(ASAN)
