# pgstream -- one non-recursive Makefile, one build directory per mode.
#
#   make                 bin/pgstream (optimised, warnings are errors)
#   make test            install missing Debian packages (as root) and the
#                        PostgreSQL majors the tests start (cached once, see
#                        tests/support/install-pg-majors.sh), then build
#                        with ASan+UBSan and failpoints (engine/failpoint.h) and run unit tests, fuzz-seed replay
#                        and integration tests against real local clusters
#   make fuzz            libFuzzer targets (clang) in build/fuzz/
#   make bench           benchmarks (see bench/README.md)
#   make demo            install missing Debian packages (as root), build, then
#                        a live migration on two local clusters
#   make drill           failover drills (kill -9, restarts, partition, ...)
#   make lint            layering and banned-function checks
#   make mutate          named mutants the suites must catch (tests/mutate/run.py)

MODE     ?= release
BUILD    := build/$(MODE)
CC       ?= cc
ifeq ($(MODE),fuzz)
CC       := clang
endif

PG_INCLUDEDIR := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wvla -Wwrite-strings -Wimplicit-fallthrough -Wundef -Werror
MODE_debug   := -O0 -g3 -DPGSTREAM_FAILPOINTS
MODE_san     := -O1 -g3 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -DPGSTREAM_FAILPOINTS
MODE_release := -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong
# the drill's build: release flags (meaningful peak RSS) plus failpoints
MODE_drill   := $(MODE_release) -DPGSTREAM_FAILPOINTS
MODE_fuzz    := -O1 -g3 -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
CFLAGS   := -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARNINGS) $(MODE_$(MODE)) $(EXTRA_CFLAGS)
CPPFLAGS := -I. -I$(PG_INCLUDEDIR) -MMD -MP
LDFLAGS  := $(filter -fsanitize=%,$(MODE_$(MODE)))
LDLIBS   := -lpq -llz4 -lssl -lcrypto -lpthread -lm
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)

PROTOCOL_SRC := $(wildcard protocol/*.c)
STORAGE_SRC  := $(wildcard storage/*.c)
APPLY_SRC    := $(wildcard apply/*.c)
ENGINE_SRC   := $(filter-out engine/main.c,$(wildcard engine/*.c)) $(wildcard engine/*/*.c)
UNIT_SRC     := $(wildcard tests/unit/*.c) tests/support/wire_build.c tests/support/failpoint_ctl.c tests/support/proc.c
INTEG_SRC    := $(wildcard tests/integration/*.c) $(filter-out tests/support/wire_build.c,$(wildcard tests/support/*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(filter-out tests/fuzz/replay_main.c,$(wildcard tests/fuzz/fuzz_*.c)))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

PROTOCOL_OBJ := $(call obj,$(PROTOCOL_SRC))
STORAGE_OBJ  := $(call obj,$(STORAGE_SRC))
APPLY_OBJ    := $(call obj,$(APPLY_SRC)) $(STORAGE_OBJ)
ENGINE_OBJ   := $(call obj,$(ENGINE_SRC))

.PHONY: all test check-unit check-integration fuzz-replay fuzz bench demo lint clean deps matrix \
        deps-packages \
        drill lint-layers mutate

all: bin/pgstream

# fuzz and replay objects are intermediates of pattern rules: keep them
.SECONDARY:

bin/pgstream: $(BUILD)/pgstream
	@mkdir -p bin
	cp $< $@

$(BUILD)/pgstream: $(BUILD)/engine/main.o $(ENGINE_OBJ) $(APPLY_OBJ) $(PROTOCOL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/run_unit: $(call obj,$(UNIT_SRC)) $(APPLY_OBJ) $(PROTOCOL_OBJ) $(ENGINE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/run_integration: $(call obj,$(INTEG_SRC)) $(APPLY_OBJ) $(PROTOCOL_OBJ) $(ENGINE_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

DRILL_OBJ := $(call obj,tests/drill/run_drill.c tests/drill/drill_lib.c tests/support/cluster.c \
               tests/support/proc.c tests/support/failpoint_ctl.c)
$(BUILD)/run_drill: $(DRILL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ -lpq -lpthread -lm

# Every fuzz target also links with a replay main, so seeds run under gcc.
$(BUILD)/replay_%: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay_main.o $(PROTOCOL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/fuzz/fuzz_%: build/fuzz/tests/fuzz/fuzz_%.o $(patsubst %.c,build/fuzz/%.o,$(PROTOCOL_SRC))
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ -llz4 -lpthread

# fuzz_walspool also needs the spool itself, from storage/
$(BUILD)/replay_fuzz_walspool: $(BUILD)/storage/walspool.o
build/fuzz/fuzz_walspool: build/fuzz/storage/walspool.o

# Debian packages, then the PostgreSQL server majors the cross-version tests
# start (npm's @embedded-postgres, cached outside the repo).
deps:
	@tests/support/install-deps.sh

# Debian packages only: all the build and the demo need.
deps-packages:
	@tests/support/install-deps.sh --packages-only

test: deps
	$(MAKE) MODE=san check-unit fuzz-replay
	$(MAKE) MODE=san check-integration

check-unit: $(BUILD)/run_unit
	$(BUILD)/run_unit

fuzz-replay: $(patsubst %,$(BUILD)/replay_%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  echo "replaying tests/fuzz/seeds/$$t"; \
	  $(BUILD)/replay_$$t tests/fuzz/seeds/$$t || exit 1; \
	done

check-integration: $(BUILD)/run_integration $(BUILD)/pgstream
	PGSTREAM_BIN=$(abspath $(BUILD)/pgstream) $(BUILD)/run_integration

fuzz:
	$(MAKE) MODE=fuzz $(patsubst %,build/fuzz/%,$(FUZZ_TARGETS))
	@echo "run e.g.: mkdir -p build/fuzz/corpus/fuzz_pgoutput && build/fuzz/fuzz_pgoutput build/fuzz/corpus/fuzz_pgoutput tests/fuzz/seeds/fuzz_pgoutput"

$(BUILD)/decode_bench: $(BUILD)/bench/decode_bench.o $(BUILD)/tests/support/wire_build.o $(PROTOCOL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: bin/pgstream $(BUILD)/decode_bench
	bench/run.sh

# The packages first, then the build in a sub-make, so a fresh machine never
# compiles before lz4.h and libpq-fe.h are installed (even with -j).
demo: deps-packages
	$(MAKE) bin/pgstream
	tests/support/demo.sh

# failover drills on local clusters (kills, restarts, partitions); see
# tests/drill/README.md.  Needs root for the network-namespace drill.
drill:
	tests/drill/run.sh

# every source major 11-15 onto every newer target 15-17, offline and live
# through cutover, and a table of the results (tests/matrix.sh)
matrix:
	tests/matrix.sh

# each named mutant of tests/mutate/run.py must make a suite fail
mutate: deps
	tests/mutate/run.py

# protocol/ is pure: no libpq, no I/O, no upward includes.  storage/ is
# files only: no libpq, no apply/ or engine/.  apply/ never includes engine/.
# Banned functions everywhere.
lint-layers:
	@! grep -nE '#include [<"](libpq-fe\.h|apply/|engine/|storage/|unistd\.h)' protocol/*.[ch] || { echo "protocol/ must stay pure"; exit 1; }
	@! grep -nE '#include <stdio\.h>' $(filter-out protocol/error.c,$(wildcard protocol/*.[ch])) || { echo "protocol/ does no I/O (only error.c formats with vsnprintf)"; exit 1; }
	@! grep -nE '#include [<"](libpq-fe\.h|apply/|engine/)' storage/*.[ch] || { echo "storage/ holds files only: no libpq, apply/ or engine/"; exit 1; }
	@! grep -nE '#include "engine/' apply/*.[ch] || { echo "apply/ must not include engine/"; exit 1; }
	@! grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll|system|popen)\s*\(' protocol/*.c storage/*.c apply/*.c engine/*.c engine/*/*.c || { echo "banned function"; exit 1; }

lint: lint-layers

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
