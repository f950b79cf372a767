# PGXS build of the anomali_ts extension.
#
#   make                 build the module (warnings are errors)
#   make install         install into the PostgreSQL found by PG_CONFIG
#   make installcheck    run the pg_regress suite (use scripts/test.sh, which
#                        also starts a throwaway cluster and the simulator)
#   make check-valgrind  the whole suite with every backend under Valgrind
#   make fuzz            libFuzzer targets (see fuzz.mk)

EXTENSION = anomali_ts
MODULE_big = anomali_ts
DATA = $(wildcard sql/anomali_ts--*.sql)

SRCS = $(wildcard src/*.c)
OBJS = $(SRCS:.c=.o)

PG_CPPFLAGS = -Isrc $(shell curl-config --cflags)
PG_CFLAGS = -Werror -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Wno-clobbered
SHLIB_LINK = $(shell curl-config --libs) -lssl -lcrypto

REGRESS_OPTS = --inputdir=test --outputdir=test --load-extension=pgcrypto
REGRESS = $(basename $(notdir $(sort $(wildcard test/sql/*.sql))))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)
include fuzz.mk

.PHONY: check-valgrind
check-valgrind:
	ANOMALI_VALGRIND=1 bash scripts/test.sh
