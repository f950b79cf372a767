# fuzz.mk
#	libFuzzer targets for the three modules that are plain C: the
#	observable classifier (src/observable.c), the ThreatStream response
#	parser (src/ts_response.c) and the field-path walker (src/path_walk.c).
#	Run from the top of the tree, on its own or included from the Makefile:
#
#   make -f fuzz.mk fuzz-build     build fuzz/build/fuzz_observable,
#                                  fuzz_response and fuzz_field_path
#   make -f fuzz.mk fuzz           fuzz each target for FUZZ_SECONDS (60);
#                                  fails when a target crashes
#   make -f fuzz.mk fuzz-regress   run every input saved under
#                                  fuzz/regressions/<target>/ once
#   make -f fuzz.mk fuzz-clean     remove fuzz/build
#
# The working corpora grow in fuzz/build/corpus-<target>, seeded from
# fuzz/corpus/<target>; crash inputs and logs land in fuzz/build too.
# Every variable is prefixed with FUZZ_ so that nothing here changes the
# PGXS build when this file is included.

# Keep the includer's default goal: only "make -f fuzz.mk" defaults to a
# target of this file
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_CFLAGS ?= -g -O1 -Wall -Wextra
FUZZ_SANITIZE ?= -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_TARGETS = observable response field_path

FUZZ_DIR = fuzz
FUZZ_BUILD = $(FUZZ_DIR)/build

# libFuzzer options shared by every run; max_len is per target below
FUZZ_RUN_OPTS = -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
FUZZ_MAX_LEN_observable = 4096
FUZZ_MAX_LEN_response = 16384
FUZZ_MAX_LEN_field_path = 4096

# Lines of a libFuzzer log worth showing after a crash: the error, the
# stack frames in C sources, and the summary
FUZZ_ERROR_LINE = ==[0-9]+== ?ERROR|SUMMARY|.*runtime error
FUZZ_STACK_FRAME = \#[0-9]+ .*\.c:[0-9]+
FUZZ_REPORT_LINES = ^($(FUZZ_ERROR_LINE)|    $(FUZZ_STACK_FRAME))

# Each target links its harness with the one module it exercises
FUZZ_SRC_observable = src/observable.c
FUZZ_SRC_response = src/ts_response.c
FUZZ_SRC_field_path = src/path_walk.c

.PHONY: fuzz-build fuzz fuzz-regress fuzz-clean

# Build both targets, instrumented for libFuzzer, ASan and UBSan
fuzz-build: $(foreach t,$(FUZZ_TARGETS),$(FUZZ_BUILD)/fuzz_$(t))

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_DIR)/fuzz_%.c src/observable.h src/ts_response.h \
		src/observable.c src/ts_response.c src/path_walk.h src/path_walk.c
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SANITIZE) -Isrc -o $@ $< $(FUZZ_SRC_$*)

# Fuzz every target even when an earlier one crashed, then fail if any did
fuzz: fuzz-build
	@status=0; \
	for t in $(FUZZ_TARGETS); do \
		corpus=$(FUZZ_BUILD)/corpus-$$t; \
		artifacts=$(FUZZ_BUILD)/artifacts-$$t; \
		log=$(FUZZ_BUILD)/fuzz_$$t.log; \
		mkdir -p $$corpus $$artifacts; \
		cp $(FUZZ_DIR)/corpus/$$t/* $$corpus/; \
		case $$t in \
			observable) maxlen=$(FUZZ_MAX_LEN_observable) ;; \
			response) maxlen=$(FUZZ_MAX_LEN_response) ;; \
			field_path) maxlen=$(FUZZ_MAX_LEN_field_path) ;; \
		esac; \
		echo "fuzz_$$t: fuzzing for $(FUZZ_SECONDS) s (log: $$log)"; \
		if $(FUZZ_BUILD)/fuzz_$$t $(FUZZ_RUN_OPTS) \
				-max_total_time=$(FUZZ_SECONDS) -max_len=$$maxlen \
				-dict=$(FUZZ_DIR)/dict/$$t.dict \
				-artifact_prefix=$$artifacts/ \
				$$corpus >$$log 2>&1; then \
			result=ok; \
		else \
			result=FAILED; status=1; \
		fi; \
		execs=`sed -n 's/^stat::number_of_executed_units: *//p' $$log`; \
		echo "fuzz_$$t: $${execs:-unknown} executions, $$result"; \
		if [ $$result = FAILED ]; then \
			grep -E "$(FUZZ_REPORT_LINES)" $$log | \
				grep -v __libc_start | head -20; \
			for a in $$artifacts/*; do \
				[ -f "$$a" ] && echo "reproduce: $(FUZZ_BUILD)/fuzz_$$t $$a"; \
			done; \
		fi; \
	done; \
	exit $$status

# Each saved input must now run cleanly through its target; every input is
# run on its own so that one report names every input that still fails
fuzz-regress: fuzz-build
	@status=0; \
	for t in $(FUZZ_TARGETS); do \
		dir=$(FUZZ_DIR)/regressions/$$t; \
		log=$(FUZZ_BUILD)/regress_$$t.log; \
		: >$$log; \
		pass=0; fail=0; \
		for f in `find $$dir -type f ! -name '.*' 2>/dev/null | sort`; do \
			if $(FUZZ_BUILD)/fuzz_$$t $$f >>$$log 2>&1; then \
				pass=`expr $$pass + 1`; \
			else \
				fail=`expr $$fail + 1`; status=1; \
				echo "fuzz_$$t: FAILED $$f"; \
			fi; \
		done; \
		echo "fuzz_$$t: $$pass regression inputs pass, $$fail fail" \
			"(log: $$log)"; \
	done; \
	exit $$status

# Remove binaries, working corpora, crash inputs and logs
fuzz-clean:
	rm -rf $(FUZZ_BUILD)

# Restore the default goal saved at the top
ifeq ($(notdir $(firstword $(MAKEFILE_LIST))),fuzz.mk)
.DEFAULT_GOAL := fuzz-build
else
.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
endif
