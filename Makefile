# OMS observability lab - native build, run and test.
#
#   make run     build, start PostgreSQL/Redis/RabbitMQ, the services and the
#                h2o gateway on 127.0.0.1 (data in .run/), print the URLs
#   make stop    stop exactly what `make run` started
#   make test    lint (include cycles, cppcheck), unit tests and a short fuzz
#                run under ASan/UBSan, then integration tests against real
#                servers started on their own ports (data in .test-run/)
#   make bench   wrk benchmarks against the running system (make run first)
#   make fuzz    libFuzzer targets (clang), FUZZ_SECONDS each (default 60)

SHELL := /bin/bash
CC ?= gcc
VERSION ?= $(shell cat VERSION 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

SERVICES := inventory user payment order notification
COMMON_SRC := $(wildcard services/common/*.c)
COMMON_TESTS := $(patsubst services/common/tests/%.c,%,$(wildcard services/common/tests/test_*.c))
BENCH_PROGRAMS := $(patsubst services/common/bench/%.c,%,$(wildcard services/common/bench/*.c))

CFLAGS_BASE := -std=gnu17 -Wall -Wextra -Werror -Wshadow -DH2O_USE_LIBUV=0 \
	-Iservices/common -I/usr/include/postgresql \
	-DOMS_VERSION='"$(VERSION)"' -DOMS_REVISION='"$(REVISION)"'
LIBS := -lh2o-evloop -lpq -lhiredis -ljansson -lcurl -lrabbitmq -lssl -lcrypto -lz -lm -pthread
# Libraries only one service needs.
LIBS_user := -largon2

# Two flavours share the sources: release (-O2) for running and benchmarks,
# asan (AddressSanitizer + UndefinedBehaviorSanitizer) for every test.
RELEASE_DIR := build/release
ASAN_DIR := build/asan
RELEASE_FLAGS := -O2 -g
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

.PHONY: all build build-asan bench-build deps run stop status test unit-test integration-test bench format lint clean

all: build

build: $(foreach s,$(SERVICES),$(RELEASE_DIR)/bin/$(s))
build-asan: $(foreach s,$(SERVICES),$(ASAN_DIR)/bin/$(s)) $(foreach t,$(COMMON_TESTS),$(ASAN_DIR)/tests/$(t)) \
	$(foreach b,$(BENCH_PROGRAMS),$(ASAN_DIR)/bench/$(b))

# $(1): flavour dir, $(2): flavour flags
define flavour
$(1)/common/%.o: services/common/%.c $(wildcard services/common/*.h) | $(1)/common
	@echo "  CC      $$@"
	@$$(CC) $$(CFLAGS_BASE) $(2) -c $$< -o $$@

$(1)/common/libomscommon.a: $$(patsubst services/common/%.c,$(1)/common/%.o,$$(COMMON_SRC))
	@echo "  AR      $$@"
	@ar rcs $$@ $$^

$(1)/common $(1)/bin $(1)/tests:
	@mkdir -p $$@

$(1)/bench/%: services/common/bench/%.c $(1)/common/libomscommon.a
	@mkdir -p $$(dir $$@)
	@echo "  LD      $$@"
	@$$(CC) $$(CFLAGS_BASE) $(2) $$< -o $$@ $(1)/common/libomscommon.a $$(LIBS)

$(1)/tests/test_%: services/common/tests/test_%.c $(1)/common/libomscommon.a | $(1)/tests
	@echo "  LD      $$@"
	@$$(CC) $$(CFLAGS_BASE) $(2) $$< -o $$@ $(1)/common/libomscommon.a $$(LIBS) -lcmocka
endef

# $(1): flavour dir, $(2): flavour flags, $(3): service
define service_binary
$(1)/bin/$(3): $$(wildcard services/$(3)/*.c services/$(3)/*.h) $(1)/common/libomscommon.a | $(1)/bin
	@echo "  LD      $$@"
	@$$(CC) $$(CFLAGS_BASE) $(2) -Iservices/$(3) $$(wildcard services/$(3)/*.c) -o $$@ $(1)/common/libomscommon.a $$(LIBS_$(3)) $$(LIBS)
endef

# Benchmark programs (services/common/bench), run by scripts/bench.sh;
# build-asan builds them too, so that they keep compiling.
bench-build: $(foreach b,$(BENCH_PROGRAMS),$(RELEASE_DIR)/bench/$(b))

$(eval $(call flavour,$(RELEASE_DIR),$(RELEASE_FLAGS)))
$(eval $(call flavour,$(ASAN_DIR),$(ASAN_FLAGS)))
$(foreach s,$(SERVICES),$(eval $(call service_binary,$(RELEASE_DIR),$(RELEASE_FLAGS),$(s))))
$(foreach s,$(SERVICES),$(eval $(call service_binary,$(ASAN_DIR),$(ASAN_FLAGS),$(s))))

deps:
	@scripts/install-deps.sh build test run

run:
	@scripts/install-deps.sh build run
	@$(MAKE) --no-print-directory build
	@scripts/stack.sh start

stop:
	@scripts/stack.sh stop

status:
	@scripts/stack.sh status

test:
	@scripts/install-deps.sh build test
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory build-asan
	@scripts/run-tests.sh

unit-test: build-asan
	@scripts/run-tests.sh unit

integration-test: build-asan
	@scripts/run-tests.sh integration

bench:
	@scripts/install-deps.sh bench
	@scripts/bench.sh

format:
	clang-format -i services/*/*.c services/*/*.h services/*/tests/*.c

# First: no include cycle between the modules of services/common (each
# module only builds on those below it; `scripts/check-includes.py --order`
# prints the layers). Then cppcheck. ctuuninitvar: cppcheck takes snprintf()
# into a caller's uninitialised buffer for a read of it (json_fail fills
# json_field_error_t that way).
lint:
	python3 scripts/check-includes.py services/common
	cppcheck --quiet --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
		--suppress=ctuuninitvar \
		-DH2O_USE_LIBUV=0 -Iservices/common $(foreach s,common $(SERVICES),services/$(s))

clean:
	rm -rf build

# --- fuzzing: libFuzzer targets built with clang ----------------------------
#
#   make fuzz           build every target, then fuzz each for FUZZ_SECONDS
#                       (default 60) from its seed corpus and regressions
#   make fuzz-build     only build them (into build/fuzz/bin)
#
# Targets are services/common/fuzz/fuzz_*.c and services/<service>/fuzz/fuzz_*.c.
# The code under test is compiled with coverage hooks (fuzzer-no-link) and
# the sanitizers; only the target links libFuzzer's main. A service target
# #includes its service's main.c (for the route table) and links the
# service's other objects. Targets that dispatch whole requests link
# services/common/fuzz/exchange.c and replace the backends at link time.
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_SANITIZE := -fsanitize=fuzzer-no-link,address,undefined
FUZZ_COMMON_TARGETS := $(patsubst services/common/fuzz/%.c,%,$(wildcard services/common/fuzz/fuzz_*.c))
FUZZ_SERVICE_TARGETS := $(foreach s,$(SERVICES),$(patsubst services/$(s)/fuzz/%.c,%,$(wildcard services/$(s)/fuzz/fuzz_*.c)))
# Targets that run requests through services/common/fuzz/exchange.c.
FUZZ_EXCHANGE_TARGETS := fuzz_router $(FUZZ_SERVICE_TARGETS)
FUZZ_WRAPS := -Wl,--wrap=pg_query,--wrap=redis_command_argv,--wrap=redis_client_is_up

.PHONY: fuzz fuzz-build

fuzz:
	@scripts/install-deps.sh build test
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-tests.sh fuzz

fuzz-build: $(foreach t,$(FUZZ_COMMON_TARGETS) $(FUZZ_SERVICE_TARGETS),$(FUZZ_DIR)/bin/$(t))

$(FUZZ_DIR)/common $(FUZZ_DIR)/bin $(foreach s,$(SERVICES),$(FUZZ_DIR)/$(s)):
	@mkdir -p $@

$(FUZZ_DIR)/common/%.o: services/common/%.c $(wildcard services/common/*.h) | $(FUZZ_DIR)/common
	@echo "  CC      $@"
	@$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) $(FUZZ_SANITIZE) -c $< -o $@

$(FUZZ_DIR)/common/libomscommon.a: $(patsubst services/common/%.c,$(FUZZ_DIR)/common/%.o,$(COMMON_SRC))
	@echo "  AR      $@"
	@ar rcs $@ $^

$(FUZZ_DIR)/exchange.o: services/common/fuzz/exchange.c $(wildcard services/common/fuzz/*.h services/common/*.h) | $(FUZZ_DIR)/common
	@echo "  CC      $@"
	@$(FUZZ_CC) $(CFLAGS_BASE) $(FUZZ_FLAGS) $(FUZZ_SANITIZE) -c $< -o $@

# $(1): target name, $(2): its source, $(3): extra objects, $(4): extra flags and libraries
define fuzz_target
$(FUZZ_DIR)/bin/$(1): $(2) $(3) $(if $(filter $(1),$(FUZZ_EXCHANGE_TARGETS)),$(FUZZ_DIR)/exchange.o) \
		$(FUZZ_DIR)/common/libomscommon.a $(wildcard services/common/fuzz/*.h) | $(FUZZ_DIR)/bin
	@echo "  LD      $$@"
	@$$(FUZZ_CC) $$(CFLAGS_BASE) -Iservices/common/fuzz $$(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined $(2) -o $$@ \
		$(3) $(if $(filter $(1),$(FUZZ_EXCHANGE_TARGETS)),$(FUZZ_DIR)/exchange.o $(FUZZ_WRAPS)) \
		$(FUZZ_DIR)/common/libomscommon.a $(4) $$(LIBS)
endef

# $(1): service
define fuzz_service_objects
$(FUZZ_DIR)/$(1)/%.o: services/$(1)/%.c $$(wildcard services/$(1)/*.h services/common/*.h) | $(FUZZ_DIR)/$(1)
	@echo "  CC      $$@"
	@$$(FUZZ_CC) $$(CFLAGS_BASE) -Iservices/$(1) $$(FUZZ_FLAGS) $$(FUZZ_SANITIZE) -c $$< -o $$@
endef

$(foreach t,$(FUZZ_COMMON_TARGETS),$(eval $(call fuzz_target,$(t),services/common/fuzz/$(t).c,,)))
$(foreach s,$(SERVICES),$(eval $(call fuzz_service_objects,$(s))))
$(foreach s,$(SERVICES),$(foreach t,$(patsubst services/$(s)/fuzz/%.c,%,$(wildcard services/$(s)/fuzz/fuzz_*.c)),\
	$(eval $(call fuzz_target,$(t),services/$(s)/fuzz/$(t).c,$(patsubst services/$(s)/%.c,$(FUZZ_DIR)/$(s)/%.o,$(filter-out services/$(s)/main.c,$(wildcard services/$(s)/*.c))),-Iservices/$(s) $(LIBS_$(s))))))
