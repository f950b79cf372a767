/*
 * ts_response.h
 *		Parser of ThreatStream intelligence responses.
 *
 * This module owns the reading of an answer body: the "meta" envelope and
 * the few fields of each indicator object that a verdict needs.  It is plain
 * C with no PostgreSQL dependency and no allocation beyond the arrays the
 * caller passes in, so hostile bodies (deep nesting, wrong types, huge
 * strings) can be fuzzed against it directly.  It never raises: every
 * problem is a return code.
 */
#ifndef ANOMALI_TS_RESPONSE_H
#define ANOMALI_TS_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#define TS_VALUE_MAX 512
#define TS_SHORT_MAX 48
#define TS_NEXT_MAX 65536		/* repeats q=: batch_size (<= 200) long values */
#define TS_MAX_DEPTH 32

/* One indicator object, reduced to what a verdict reads */
typedef struct TsIndicator
{
	char		value[TS_VALUE_MAX];
	char		type[TS_SHORT_MAX];
	char		status[TS_SHORT_MAX];
	char		itype[TS_SHORT_MAX];
	char		severity[TS_SHORT_MAX];
	int			confidence;		/* -1 when absent or not an integer 0..100 */
	bool		value_ok;		/* false when value was absent or too long */
} TsIndicator;

typedef enum TsParseResult
{
	TS_PARSE_OK = 0,
	TS_PARSE_NOT_JSON,			/* syntax error, or not an object at the top */
	TS_PARSE_TOO_DEEP,			/* nesting beyond TS_MAX_DEPTH */
	TS_PARSE_NO_OBJECTS,		/* "objects" missing, null or not an array */
	TS_PARSE_TOO_MANY			/* more objects than the caller's array holds */
} TsParseResult;

typedef struct TsPage
{
	TsIndicator *indicators;	/* caller's array */
	int			capacity;
	int			count;
	long long	total_count;	/* -1 when absent */
	char		next[TS_NEXT_MAX];	/* "" when null or absent */
	bool		next_unusable;	/* a meta.next too long, not text, or not a
								 * string: an incomplete answer */
	int			malformed;		/* objects skipped: not an object, or no value */
} TsPage;

extern TsParseResult ts_parse_page(const char *body, size_t len, TsPage *page);
extern const char *ts_parse_result_message(TsParseResult r);

#endif							/* ANOMALI_TS_RESPONSE_H */
