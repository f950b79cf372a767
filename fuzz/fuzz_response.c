/*
 * fuzz_response.c
 *		libFuzzer target for the ThreatStream response parser.
 *
 * Each input is handed to ts_parse_page as a response body, with room for
 * FUZZ_CAPACITY indicators in an array allocated to exactly that size, so
 * that AddressSanitizer sees any write past the caller's array.  Before each
 * call the page is filled with a non-zero byte; afterwards every string the
 * caller may read must be NUL-terminated within its field, whatever the
 * result code.  A broken promise stops the run with __builtin_trap.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_response.h"

/* Small on purpose: bodies with more objects than this are common */
#define FUZZ_CAPACITY 4

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok);
static void check_string(const char *field, size_t size);
static void check_indicator(const TsIndicator *ind);

/* Stop the run when an invariant does not hold */
static void
check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* A string field holds a NUL within its own array */
static void
check_string(const char *field, size_t size)
{
	check(memchr(field, '\0', size) != NULL);
}

/* Every field of an accepted indicator is readable and in range */
static void
check_indicator(const TsIndicator *ind)
{
	check_string(ind->value, sizeof(ind->value));
	check_string(ind->type, sizeof(ind->type));
	check_string(ind->status, sizeof(ind->status));
	check_string(ind->itype, sizeof(ind->itype));
	check_string(ind->severity, sizeof(ind->severity));
	check(ind->confidence >= -1 && ind->confidence <= 100);

	/* Only indicators with a usable value are counted */
	check(ind->value_ok);
	check(ind->value[0] != '\0');
}

/* Parse one body and check every promise made about the page */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	TsIndicator *indicators;
	TsPage		page;
	TsParseResult result;

	indicators = malloc(sizeof(TsIndicator) * FUZZ_CAPACITY);
	if (indicators == NULL)
		return 0;

	/* Poison everything so that a missing terminator cannot go unnoticed */
	memset(indicators, 0xa5, sizeof(TsIndicator) * FUZZ_CAPACITY);
	memset(&page, 0xa5, sizeof(page));
	page.indicators = indicators;
	page.capacity = FUZZ_CAPACITY;

	result = ts_parse_page((const char *) data, size, &page);

	check(result >= TS_PARSE_OK && result <= TS_PARSE_TOO_MANY);
	check(ts_parse_result_message(result) != NULL);
	check(page.indicators == indicators);
	check(page.capacity == FUZZ_CAPACITY);
	check(page.count >= 0 && page.count <= page.capacity);
	check(page.malformed >= 0);
	if (result == TS_PARSE_TOO_MANY)
		check(page.count == page.capacity);
	check_string(page.next, sizeof(page.next));

	for (int i = 0; i < page.count; i++)
		check_indicator(&page.indicators[i]);

	free(indicators);
	return 0;
}
