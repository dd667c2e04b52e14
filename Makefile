# Build, test and demo entry points. GNU make + pkg-config; everything comes from Debian 12.
#
#   make            build build/bin/{municipal-node,provincial-hub,federal-api}
#   make test       deps + unit tests (plain, ASan+UBSan, TSan for threaded code) + short fuzz
#                   + system tests
#   make demo       deps + build + whole topology on loopback (make demo-stop stops it)
#   make fuzz       longer libFuzzer runs (FUZZ_SECONDS each)
#   make bench      C benchmarks built, then every driver at its headline size (each with its
#                   baseline), JSON in build/bench/, tables of docs/BENCHMARKS.md regenerated;
#                   BENCH_QUICK=1 for a short run (JSON and tables in build/bench/quick/)
#   make soak       the fault soak for SOAK_SECONDS (make test runs it for 60 s)
#   make format-check   clang-format --dry-run --Werror over every tracked .c and .h
#
# Variables: BUILD=release|asan|tsan|fuzz picks the variant (output in build/, build/asan,
# build/tsan, build/fuzz); V=1 prints every command instead of one short line per step;
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's own, added after the project's flags
# (make CFLAGS=-O0).

SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
FUZZ_SECONDS ?= 300
SHORT_FUZZ_SECONDS ?= 20

# BUILD=release (default), BUILD=asan (ASan+UBSan), BUILD=tsan (clang, ThreadSanitizer),
# BUILD=fuzz (clang, libFuzzer instrumentation).
BUILD ?= release
# V used to name the variant; V is now verbosity (V=1), the usual make convention. An old
# command line still builds what it asked for, with a warning, rather than the release build
# under the variant's paths.
ifneq ($(filter $(V),release asan tsan fuzz),)
$(warning V=$(V) selects nothing now: use BUILD=$(V) (V=1 shows the commands))
BUILD := $(V)
override V :=
endif
ifeq ($(BUILD),asan)
OUT := build/asan
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT := -O1 -g
else ifeq ($(BUILD),tsan)
OUT := build/tsan
CC := clang
SAN := -fsanitize=thread -fno-omit-frame-pointer
OPT := -O1 -g
else ifeq ($(BUILD),fuzz)
OUT := build/fuzz
CC := clang
SAN := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
OPT := -O1 -g -DFUZZING
else ifeq ($(BUILD),release)
OUT := build
SAN :=
OPT := -O2 -g
else
$(error BUILD=$(BUILD): the variants are release, asan, tsan and fuzz)
endif

# Quiet by default: one line per step ("CC file", "AR lib", "LD bin"); V=1 prints the
# commands themselves. $(call say,CC,file) goes first on a recipe line, which then runs
# silently; with V=1 it is empty and make echoes the line as usual.
ifeq ($(V),1)
Q :=
say =
else
Q := @
say = @printf '  %-4s %s\n' '$(1)' '$(2)';
endif

PKGS := libuv openssl libprotobuf-c sqlite3 jansson inih
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
PQ_CFLAGS := $(shell pkg-config --cflags libpq 2>/dev/null)
PQ_LIBS := $(shell pkg-config --libs libpq 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

LLHTTP_DIR := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp
GEN := $(OUT)/gen
OBJ := $(OUT)/obj
MAP_JSON := $(GEN)/map/nepal_map.json

# Bounded snprintf copies truncate on purpose; gcc's format-truncation would flag each one.
WARN := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Werror \
	$(if $(filter clang,$(CC)),,-Wno-format-truncation)
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -I$(GEN) -Icommon -I$(LLHTTP_INC) $(PKG_CFLAGS) $(PQ_CFLAGS)
CFLAGS_OURS := $(CFLAGS_COMMON) $(WARN)
# Generated and third-party code is compiled without our warning set.
CFLAGS_THEIRS := $(CFLAGS_COMMON) -w
LDFLAGS_ALL := $(SAN)
# The user's flags come last on every line, so that they win (make CFLAGS=-O0).
USER_CFLAGS = $(CPPFLAGS) $(CFLAGS)
USER_LDFLAGS = $(LDFLAGS)

PROTOS := $(wildcard proto/*.proto)
PB_C := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS))
PB_H := $(PB_C:.c=.h)
TABLES_C := $(GEN)/tables.c
# The OpenAPI documents, one object each so that a daemon links only its own.
OPENAPI_C := $(GEN)/openapi_node.c $(GEN)/openapi_hub.c $(GEN)/openapi_federal.c

# The Nepali names of the districts and local levels, by official code, for every tier's pages
# (tools/places_ne.py checks them against the table the daemons compile in).
PLACES_NE := $(GEN)/places/ne.json
ISO_3166 := /usr/share/iso-codes/json/iso_3166-1.json
ISO_3166_NE := /usr/share/locale/ne/LC_MESSAGES/iso_3166-1.mo

# The clerks' workspace (municipal-node/web.h): its pages, the shared page modules and the
# Devanagari font from Debian's fonts-lohit-deva, compiled into the node by a generated table.
WEB_FONT := /usr/share/fonts/truetype/lohit-devanagari/Lohit-Devanagari.ttf
WEB_DIRS := $(shell find municipal-node/web common/web -type d 2>/dev/null | sort)
WEB_NODE_FILES := $(shell find municipal-node/web -type f 2>/dev/null | sort)
WEB_COMMON_FILES := $(shell find common/web -type f 2>/dev/null | sort)
WEB_PAIRS := $(foreach f,$(WEB_NODE_FILES),$(patsubst municipal-node/web/%,/%,$(f))=$(f)) \
	$(foreach f,$(WEB_COMMON_FILES),$(patsubst common/web/%,/common/%,$(f))=$(f)) \
	/fonts/lohit-devanagari.ttf=$(WEB_FONT) /common/places/ne.json=$(PLACES_NE)
WEB_C := $(GEN)/webassets.c
# The provincial officers' dashboard (provincial-hub/hubweb.h): its pages, the same shared
# modules and font, Chart.js from Debian's libjs-chart.js and the map made by tools/topo2svg.py.
HUBWEB_CHART := /usr/share/javascript/chart.js/chart.min.js
HUBWEB_DIRS := $(shell find provincial-hub/web common/web -type d 2>/dev/null | sort)
HUBWEB_FILES := $(shell find provincial-hub/web -type f 2>/dev/null | sort)
HUBWEB_PAIRS := $(foreach f,$(HUBWEB_FILES),$(patsubst provincial-hub/web/%,/%,$(f))=$(f)) \
	$(foreach f,$(WEB_COMMON_FILES),$(patsubst common/web/%,/common/%,$(f))=$(f)) \
	/fonts/lohit-devanagari.ttf=$(WEB_FONT) /vendor/chart.min.js=$(HUBWEB_CHART) \
	/map.json=$(MAP_JSON) /common/places/ne.json=$(PLACES_NE)
HUBWEB_C := $(GEN)/hubwebassets.c
# The national dashboard and the open-data page (federal-api/fweb.h): their pages, the shared
# modules and font, Chart.js from Debian's libjs-chart.js and the map made by tools/topo2svg.py.
# The map keys districts by their local levels' 3-digit prefix, the API by the national
# district code: the pages get the one from the other.
MAP_DISTRICTS := $(GEN)/map/districts.json
FWEB_DIRS := $(shell find federal-api/web common/web -type d 2>/dev/null | sort)
FWEB_FED_FILES := $(shell find federal-api/web -type f 2>/dev/null | sort)
FWEB_PAIRS := $(foreach f,$(FWEB_FED_FILES),$(patsubst federal-api/web/%,/%,$(f))=$(f)) \
	$(foreach f,$(WEB_COMMON_FILES),$(patsubst common/web/%,/common/%,$(f))=$(f)) \
	/fonts/lohit-devanagari.ttf=$(WEB_FONT) /vendor/chart.min.js=$(HUBWEB_CHART) /map.json=$(MAP_JSON) \
	/districts.json=$(MAP_DISTRICTS) /common/places/ne.json=$(PLACES_NE)
FWEB_C := $(GEN)/fwebassets.c
# The federal schema's migrations, compiled into federal-api (tools/embed_migrations.sh).
FMIG_SQL := $(sort $(wildcard federal-api/migrations/*.sql))
FMIG_C := $(GEN)/fmigrations.c

COMMON_SRC := $(wildcard common/*.c)
NODE_SRC := $(filter-out municipal-node/main.c,$(wildcard municipal-node/*.c))
HUB_SRC := $(filter-out provincial-hub/main.c,$(wildcard provincial-hub/*.c))
FED_SRC := $(filter-out federal-api/main.c,$(wildcard federal-api/*.c))

COMMON_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(COMMON_SRC)) \
	$(patsubst $(GEN)/%.c,$(OBJ)/gen/%.o,$(PB_C) $(TABLES_C) $(OPENAPI_C)) \
	$(OBJ)/llhttp/llhttp.o $(OBJ)/llhttp/api.o $(OBJ)/llhttp/http.o
NODE_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(NODE_SRC)) $(OBJ)/gen/webassets.o
HUB_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(HUB_SRC)) $(OBJ)/gen/hubwebassets.o
FED_OBJ := $(patsubst %.c,$(OBJ)/%.o,$(FED_SRC)) $(OBJ)/gen/fwebassets.o \
	$(OBJ)/gen/fmigrations.o

LIBCOMMON := $(OUT)/lib/libcommon.a
LIBNODE := $(OUT)/lib/libnode.a
LIBHUB := $(OUT)/lib/libhub.a
LIBFED := $(OUT)/lib/libfed.a
ALL_LIBS := $(LIBNODE) $(LIBHUB) $(LIBFED) $(LIBCOMMON)

BINS := $(OUT)/bin/municipal-node $(OUT)/bin/provincial-hub $(OUT)/bin/federal-api

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,build/fuzz/bin/%,$(FUZZ_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BINS := $(patsubst bench/%.c,$(OUT)/bench/%,$(BENCH_SRC))

AXE := tests/system/web/node_modules/axe-core/axe.min.js

.PHONY: all deps deps-debian openapi-check test unit unit-asan unit-tsan system soak tls-audit fuzz fuzz-short fuzz-build \
	bench bench-build unit-build install demo demo-stop format format-check clean FORCE
.DEFAULT_GOAL := all
# Generated sources are kept (not deleted as intermediates); naming them, rather than
# declaring every target secondary, lets make rebuild a missing object or library.
.SECONDARY: $(PB_C) $(PB_H) $(OPENAPI_C)

all: $(BINS) $(OUT)/gen/python/reintegration_pb2.py $(MAP_JSON)

# --- dependencies ---------------------------------------------------------------------------
DEB_PKGS := build-essential pkg-config libuv1-dev libssl-dev openssl libprotobuf-c-dev \
	protobuf-c-compiler protobuf-compiler libpq-dev postgresql-15 libsqlite3-dev sqlite3 \
	libjansson-dev libinih-dev libcmocka-dev node-llhttp clang clang-format libclang-rt-14-dev \
	python3 python3-pytest python3-protobuf python3-jsonschema testssl.sh procps psmisc git \
	fonts-lohit-deva chromium chromium-driver python3-selenium libjs-chart.js iso-codes
# The OpenAPI validator from npm, exactly as tools/openapi/package-lock.json pins it, and
# axe-core for the page tests (tests/system/web); no package's install scripts run. Node and
# npm are the machine's (Debian 12's nodejs, or a newer one already installed: the validator
# needs Node 14 or later).
deps: deps-debian $(AXE)
	@command -v node >/dev/null && command -v npm >/dev/null || { \
		echo "deps: node and npm are needed (apt-get install nodejs npm)"; exit 1; }
	@cd tools/openapi && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

deps-debian:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing Debian packages: $$missing"; \
		echo "deps: run as root, or: sudo apt-get install $$missing"; exit 1; fi; \
	echo "deps: installing $$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing

# axe-core for the browser tests' accessibility check, pinned in tests/system/web's
# package-lock.json and installed into its node_modules (ignored by git) with the npm already
# on the machine (npm is not among the Debian packages above: installing Debian's npm over a
# Node.js from elsewhere breaks it); no package's install script runs.
$(AXE): tests/system/web/package.json tests/system/web/package-lock.json
	@command -v npm >/dev/null || { echo "deps: npm is needed to install axe-core for the" \
		"browser tests (Node.js's npm)"; exit 1; }
	cd tests/system/web && npm ci --ignore-scripts --no-audit --no-fund --silent
	@touch $@

# --- generated code -------------------------------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(call say,GEN,$<)protoc-c --proto_path=proto --c_out=$(GEN) $<

$(OUT)/gen/python/reintegration_pb2.py: $(PROTOS)
	@mkdir -p $(@D)
	$(call say,GEN,$@)protoc --proto_path=proto --python_out=$(@D) $(PROTOS)

$(TABLES_C): tools/embed_tables.sh data/bikram_sambat.csv data/nepal_local_levels.csv
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_tables.sh data/bikram_sambat.csv data/nepal_local_levels.csv \
		> $@.tmp && mv $@.tmp $@

# The dashboards' map: SVG path data of the 753 local levels, projected at build time.
$(MAP_JSON): tools/topo2svg.py data/nepal_local_levels.topo.json data/nepal_local_levels.csv
	@mkdir -p $(@D)
	$(call say,GEN,$@)/usr/bin/python3 tools/topo2svg.py data/nepal_local_levels.topo.json \
		data/nepal_local_levels.csv -o $@.tmp && mv $@.tmp $@

# The directories are dependencies too, so that a file added or removed regenerates the table;
# make's built-in rule that links a program from its .c (municipal-node/web from web.c) is
# cancelled, as the directory would otherwise look like such a program, out of date.
%: %.c
.SUFFIXES:

$(WEB_C): tools/embed_web.sh $(WEB_NODE_FILES) $(WEB_COMMON_FILES) $(WEB_DIRS) $(WEB_FONT) \
		$(PLACES_NE)
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_web.sh $(WEB_PAIRS) > $@.tmp && mv $@.tmp $@

$(HUBWEB_C): tools/embed_web.sh $(HUBWEB_FILES) $(WEB_COMMON_FILES) $(HUBWEB_DIRS) $(WEB_FONT) \
		$(HUBWEB_CHART) $(MAP_JSON) $(PLACES_NE)
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_web.sh --table hubweb hubweb.h $(HUBWEB_PAIRS) > $@.tmp && \
		mv $@.tmp $@
$(PLACES_NE): tools/places_ne.py data/nepal_local_levels.csv data/nepal_local_levels_extended.csv \
		$(wildcard $(ISO_3166) $(ISO_3166_NE))
	@mkdir -p $(@D)
	$(call say,GEN,$@)/usr/bin/python3 tools/places_ne.py data/nepal_local_levels.csv \
		data/nepal_local_levels_extended.csv --countries $(ISO_3166) \
		--translations $(ISO_3166_NE) -o $@.tmp && mv $@.tmp $@

$(MAP_DISTRICTS): data/nepal_local_levels.csv
	@mkdir -p $(@D)
	$(call say,GEN,$@)awk -F, 'NR > 1 && !seen[int($$5 / 100)]++ { printf "%s\"%d\":%d", \
		n++ ? "," : "{", int($$5 / 100), $$3 } END { print "}" }' $< > $@.tmp && mv $@.tmp $@

$(FWEB_C): tools/embed_web.sh $(FWEB_FED_FILES) $(WEB_COMMON_FILES) $(FWEB_DIRS) $(WEB_FONT) \
		$(HUBWEB_CHART) $(MAP_JSON) $(MAP_DISTRICTS) $(PLACES_NE)
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_web.sh --table fweb fweb.h $(FWEB_PAIRS) > $@.tmp && mv $@.tmp $@

$(FMIG_C): tools/embed_migrations.sh $(FMIG_SQL) federal-api/migrations
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_migrations.sh $(FMIG_SQL) > $@.tmp && mv $@.tmp $@

$(GEN)/openapi_%.c: docs/openapi/%.json tools/embed_file.sh
	@mkdir -p $(GEN)
	$(call say,GEN,$@)tools/embed_file.sh openapi_$* $< > $@.tmp && mv $@.tmp $@

# --- objects --------------------------------------------------------------------------------
$(OBJ)/gen/%.o: $(GEN)/%.c $(PB_H)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) $(USER_CFLAGS) -c $< -o $@

$(OBJ)/gen/webassets.o: $(WEB_C) municipal-node/web.h common/webassets.h
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) -Imunicipal-node $(USER_CFLAGS) -c $< -o $@

$(OBJ)/gen/hubwebassets.o: $(HUBWEB_C) provincial-hub/hubweb.h common/webassets.h
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) -Iprovincial-hub $(USER_CFLAGS) -c $< -o $@
$(OBJ)/gen/fmigrations.o: $(FMIG_C) federal-api/migrate.h
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) -Ifederal-api -Icommon $(USER_CFLAGS) -c $< -o $@
$(OBJ)/gen/fwebassets.o: $(FWEB_C) federal-api/fweb.h common/webassets.h
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) -Ifederal-api $(USER_CFLAGS) -c $< -o $@

$(OBJ)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_THEIRS) $(USER_CFLAGS) -c $< -o $@

$(OBJ)/%.o: %.c $(PB_H)
	@mkdir -p $(@D)
	$(call say,CC,$<)$(CC) $(CFLAGS_OURS) $(USER_CFLAGS) -MMD -MP -c $< -o $@

# Header dependencies of the objects, the unit tests, the fuzz targets and the benchmarks.
-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

$(LIBCOMMON): $(COMMON_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBNODE): $(NODE_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBHUB): $(HUB_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^
$(LIBFED): $(FED_OBJ)
	@mkdir -p $(@D)
	$(call say,AR,$@)rm -f $@ && ar rcs $@ $^

$(OUT)/bin/municipal-node: $(OBJ)/municipal-node/main.o $(LIBNODE) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDFLAGS_ALL) $(USER_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
$(OUT)/bin/provincial-hub: $(OBJ)/provincial-hub/main.o $(LIBHUB) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDFLAGS_ALL) $(USER_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)
$(OUT)/bin/federal-api: $(OBJ)/federal-api/main.o $(LIBFED) $(LIBCOMMON)
	@mkdir -p $(@D)
	$(call say,LD,$@)$(CC) $(LDFLAGS_ALL) $(USER_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(PQ_LIBS) $(LDLIBS)

# --- tests ----------------------------------------------------------------------------------
$(OUT)/tests/%: tests/unit/%.c $(ALL_LIBS)
	@mkdir -p $(@D) $(OBJ)/tests/unit
	$(call say,LD,$@)$(CC) $(CFLAGS_OURS) -Wno-conversion -Imunicipal-node -Iprovincial-hub \
		-Ifederal-api $(USER_CFLAGS) -MMD -MP -MF $(OBJ)/tests/unit/$*.d -MT $@ -o $@ $< \
		$(ALL_LIBS) $(LDFLAGS_ALL) $(USER_LDFLAGS) $(PKG_LIBS) $(PQ_LIBS) $(CMOCKA_LIBS) $(LDLIBS)

unit-build: $(UNIT_BINS)

unit: $(UNIT_BINS)
	@set -e; fail=0; for t in $(UNIT_BINS); do echo "== $$t"; \
		(cd tests/unit && ../../$$t) || fail=1; done; exit $$fail

unit-asan:
	$(MAKE) BUILD=asan unit

# The suites whose code runs threads (the CSV import's reader thread), under ThreadSanitizer.
TSAN_UNITS := test_intake test_walckpt
unit-tsan:
	$(MAKE) -j$(JOBS) BUILD=tsan $(addprefix build/tsan/tests/,$(TSAN_UNITS))
	@set -e; for t in $(TSAN_UNITS); do echo "== build/tsan/tests/$$t"; \
		(cd tests/unit && TSAN_OPTIONS=halt_on_error=1 ../../build/tsan/tests/$$t); done

# A fuzz target links the fuzz variant's libraries, which depend on the product's sources
# and headers: a change anywhere in the product rebuilds the targets. Built in the fuzz
# variant only; from any other variant, make hands the target to a BUILD=fuzz make.
ifeq ($(BUILD),fuzz)
build/fuzz/bin/%: tests/fuzz/%.c $(ALL_LIBS)
	@mkdir -p $(@D) $(OBJ)/tests/fuzz
	$(call say,LD,$@)$(CC) $(CFLAGS_OURS) -Wno-conversion -fsanitize=fuzzer -Imunicipal-node \
		-Iprovincial-hub -Ifederal-api $(USER_CFLAGS) -MMD -MP -MF $(OBJ)/tests/fuzz/$*.d \
		-MT $@ -o $@ $< $(LIBNODE) $(LIBHUB) $(LIBFED) $(LIBCOMMON) $(LDFLAGS_ALL) \
		-fsanitize=fuzzer $(USER_LDFLAGS) $(PKG_LIBS) $(PQ_LIBS) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)
else
build/fuzz/bin/%: FORCE
	$(Q)$(MAKE) --no-print-directory BUILD=fuzz $@

fuzz-build:
	$(Q)$(MAKE) --no-print-directory BUILD=fuzz fuzz-build
endif

# Each target runs from a scratch copy of its seed corpus so new inputs stay out of the tree.
# $(JOBS) run at once (a fuzzer uses one core: make test waited 3 minutes for them one by
# one), each one's lines printed together as it ends.
FUZZ_RUNS := $(addprefix fuzz-run/,$(notdir $(FUZZ_BINS)))
FUZZ_T ?= $(SHORT_FUZZ_SECONDS)
fuzz-run/%:
	@c=build/fuzz/corpus/$*; mkdir -p $$c; cp -n tests/fuzz/seeds/$*/* $$c/ 2>/dev/null || true; \
	t=$(FUZZ_T); [ $* = fuzz_envelope ] && t=$$(( $(FUZZ_T) * 3 )); \
	echo "== $* ($$t s)"; build/fuzz/bin/$* -max_total_time=$$t -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix=build/fuzz/ $$c 2>build/fuzz/$*.log || \
		{ tail -40 build/fuzz/$*.log; exit 1; }; tail -1 build/fuzz/$*.log

fuzz-short: fuzz-build
	@$(MAKE) --no-print-directory -O -j$(JOBS) FUZZ_T=$(SHORT_FUZZ_SECONDS) $(FUZZ_RUNS)

fuzz: fuzz-build
	@$(MAKE) --no-print-directory -O -j$(JOBS) FUZZ_T=$(FUZZ_SECONDS) $(FUZZ_RUNS)

system: all
	cd tests/system && /usr/bin/python3 -m pytest -q -x -p no:cacheprovider .

# testssl.sh over a demo's HTTPS and mutual-TLS ports (TLS_AUDIT_HUBS="1 2 ... 7" for all hubs).
tls-audit: all
	/usr/bin/python3 bench/tls_audit.py

# The fault soak for longer than make test's 60 seconds (SOAK_SECONDS, default 600).
SOAK_SECONDS ?= 600
soak: all
	cd tests/system && SOAK_SECONDS=$(SOAK_SECONDS) /usr/bin/python3 -m pytest -q -s \
		-p no:cacheprovider test_soak.py

# The OpenAPI documents checked by an implementation independent of ours (make deps installs it).
openapi-check:
	node tools/openapi/validate.mjs docs/openapi/*.json

# The builds use every core (JOBS), the tests run one after another.
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: deps
	$(MAKE) openapi-check
	$(MAKE) -j$(JOBS) all unit-build
	$(MAKE) unit
	$(MAKE) -j$(JOBS) BUILD=asan unit-build
	$(MAKE) unit-asan
	$(MAKE) unit-tsan
	$(MAKE) -j$(JOBS) fuzz-build
	$(MAKE) fuzz-short
	$(MAKE) -j$(JOBS) bench-build
	$(MAKE) system

# --- benchmarks -----------------------------------------------------------------------------
# The C benchmarks: rollup_bench runs the hub's rollup engine (libhub), sqlite_upsert is the
# raw SQLite baseline of bench/hub_ingest.py, with the hub's checkpoint thread (walckpt, from
# libcommon). Both at -O2 with the project's warnings, in $(OUT)/bench.
BENCH_CFLAGS = $(CFLAGS_OURS) -O2 -Iprovincial-hub -Imunicipal-node -Ifederal-api
$(OUT)/bench/rollup_bench: bench/rollup_bench.c $(LIBHUB) $(LIBCOMMON)
	@mkdir -p $(@D) $(OBJ)/bench
	$(call say,LD,$@)$(CC) $(BENCH_CFLAGS) $(USER_CFLAGS) -MMD -MP -MF $(OBJ)/bench/$(@F).d \
		-MT $@ -o $@ $< $(LIBHUB) $(LIBCOMMON) $(LDFLAGS_ALL) $(USER_LDFLAGS) $(PKG_LIBS) $(LDLIBS)
$(OUT)/bench/sqlite_upsert: bench/sqlite_upsert.c $(LIBCOMMON)
	@mkdir -p $(@D) $(OBJ)/bench
	$(call say,LD,$@)$(CC) $(BENCH_CFLAGS) $(USER_CFLAGS) -MMD -MP -MF $(OBJ)/bench/$(@F).d \
		-MT $@ -o $@ $< $(LIBCOMMON) $(LDFLAGS_ALL) $(USER_LDFLAGS) $(PKG_LIBS) $(LDLIBS)
$(OUT)/bench/%: bench/%.c
	@mkdir -p $(@D) $(OBJ)/bench
	$(call say,LD,$@)$(CC) $(BENCH_CFLAGS) $(USER_CFLAGS) -MMD -MP -MF $(OBJ)/bench/$(@F).d \
		-MT $@ -o $@ $< $(LDFLAGS_ALL) $(USER_LDFLAGS) $(PKG_LIBS) $(LDLIBS)

bench-build: $(BENCH_BINS)

# Each driver runs its baseline in the same invocation, in alternating order, writes
# build/bench/<bench>.json and exits non-zero when a work-done check fails; bench/report.py
# then regenerates the tables of docs/BENCHMARKS.md from the JSON. Before each driver it waits
# (at most 5 minutes) for the 1-minute load to fall below 0.5, so that a bench does not start
# in the previous one's wake (the load average lags by a minute). make bench runs every
# benchmark at the size of its headline figure; BENCH_QUICK=1 a short version (under 10 min),
# which waits (at most a minute) only for the load to fall below 0.9 (a run is marked loaded
# above 1) and writes its JSON and tables into build/bench/quick/ (BENCH_OUT), never over a
# full run's JSON or the headline figures of the doc. The national bench runs twice: every
# phase at 150,000 records in batches of 100 (the query p99 under ingest and the freshness samples; at this size freshness
# is reported, not judged), then at its headline size, 4,000,000 records, the resync and the
# memory per idle connection after the node's full batch of 2,000 records (national_4m, about
# an hour). One freshness run at 4,000,000 records takes about 20 minutes, five do not fit:
# docs/BENCHMARKS.md says what is known of it. The whole takes about two hours.
# The federal ingest a second time on snapshots as sparse as a resync's (about 11 cells each in
# the national bench), sent as a hub sends them (its default batch and window).
BENCH_SPARSE := --cells-per-snapshot 11 --batch 200 --window 8 --no-queries --name federal_sparse
ifeq ($(BENCH_QUICK),)
BENCH_QUIET ?= 0.5
BENCH_WAIT ?= 300
BENCH_DIR := build/bench
BENCH_DOC :=
BENCH_RUNS ?= \
	"bench/hub_ingest.py --federal" \
	"bench/import_bench.py" \
	"bench/federal_bench.py --months 120" \
	"bench/federal_bench.py --months 120 $(BENCH_SPARSE)" \
	"bench/rollup.py" \
	"bench/national.py --records 150000 --batch 100" \
	"bench/national.py --phases memory,resync --name national_4m"
else
BENCH_QUIET ?= 0.9
BENCH_WAIT ?= 60
BENCH_DIR := build/bench/quick
BENCH_DOC := --out $(BENCH_DIR)/BENCHMARKS.md
BENCH_RUNS ?= \
	"bench/hub_ingest.py --nodes 4 --records 40000 --federal" \
	"bench/import_bench.py --rows 100000" \
	"bench/federal_bench.py --months 1 --seconds 5" \
	"bench/federal_bench.py --months 1 $(BENCH_SPARSE)" \
	"bench/rollup.py --records 100000 --municipalities 20" \
	"bench/national.py --records 150000 --batch 100 --query-seconds 5"
endif
bench: all bench-build
	@set -e; mkdir -p $(BENCH_DIR); rm -f $(BENCH_DIR)/*.json; for b in $(BENCH_RUNS); do \
		echo "== $$b"; \
		/usr/bin/python3 bench/benchlib.py wait-quiet $(BENCH_QUIET) $(BENCH_WAIT); \
		BENCH_OUT=$(BENCH_DIR) BENCH_QUICK=$(BENCH_QUICK) /usr/bin/python3 $$b; done
	/usr/bin/python3 bench/report.py --dir $(BENCH_DIR) $(BENCH_DOC)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/reintegration
	install -m 0755 $(BINS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 data/*.csv $(DESTDIR)$(PREFIX)/share/reintegration/
	install -m 0755 deploy/pki.sh $(DESTDIR)$(PREFIX)/share/reintegration/

demo: deps all
	deploy/demo.sh start

demo-stop:
	deploy/demo.sh stop

# --- formatting -----------------------------------------------------------------------------
# Every tracked C file, formatted with the repo's .clang-format; format-check changes nothing
# and fails on any difference (CI runs it before the tests).
CLANG_FORMAT ?= clang-format
FORMAT_FILES = $$(git ls-files '*.c' '*.h')
format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	@files=$(FORMAT_FILES); [ -n "$$files" ] || { echo "format-check: no tracked C files"; exit 1; }; \
	$(CLANG_FORMAT) --style=file --dry-run --Werror $$files && \
		echo "format-check: $$(echo $$files | wc -w) files formatted"

FORCE:

clean:
	rm -rf build
