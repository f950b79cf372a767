/*
 * sql_functions.c
 *		SQL entry points of the enrichment and the cache.
 *
 * Thin wrappers: argument checking and conversion only.  The work is in
 * enrich.c and cache.c.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "cache.h"
#include "config.h"
#include "enrich.h"
#include "http_client.h"
#include "observable.h"

PG_FUNCTION_INFO_V1(anomali_enrich);
PG_FUNCTION_INFO_V1(anomali_cache_stats);
PG_FUNCTION_INFO_V1(anomali_cache_clear);
PG_FUNCTION_INFO_V1(anomali_cache_contents);
PG_FUNCTION_INFO_V1(anomali_session_stats);

/* anomali_enrich(event jsonb, config jsonb) returns jsonb */
Datum
anomali_enrich(PG_FUNCTION_ARGS)
{
	Jsonb	   *event;
	const EnrichConfig *cfg;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("enrichment configuration may not be null")));
	cfg = config_parse_cached(PG_GETARG_JSONB_P(1));
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	event = PG_GETARG_JSONB_P(0);

	PG_RETURN_JSONB_P(enrich_event(event, cfg));
}

/* anomali_cache_stats(): one row of sizes and counters */
Datum
anomali_cache_stats(PG_FUNCTION_ARGS)
{
	CacheStats	s;
	TupleDesc	desc;
	Datum		values[7];
	bool		nulls[7] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	cache_stats(&s);
	values[0] = BoolGetDatum(s.shared);
	values[1] = Int64GetDatum(s.entries);
	values[2] = Int64GetDatum(s.capacity);
	values[3] = Int64GetDatum(s.hits);
	values[4] = Int64GetDatum(s.misses);
	values[5] = Int64GetDatum(s.stores);
	values[6] = Int64GetDatum(s.evictions);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

/* anomali_cache_clear(): returns the number of entries removed */
Datum
anomali_cache_clear(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(cache_clear());
}

typedef struct ContentsCtx
{
	ReturnSetInfo *rsinfo;
} ContentsCtx;

/* Add one cache entry as a row */
static void
contents_row(CacheScope scope, ObservableClass cls, const char *value,
			 int nindicators, double ttl_left_s, void *arg)
{
	ContentsCtx *ctx = arg;
	Datum		values[5];
	bool		nulls[5] = {false};

	values[0] = ObjectIdGetDatum((Oid) scope.database);
	values[1] = CStringGetTextDatum(observable_class_name(cls));
	values[2] = CStringGetTextDatum(value);
	values[3] = Int32GetDatum(nindicators);
	values[4] = Float8GetDatum(ttl_left_s);
	tuplestore_putvalues(ctx->rsinfo->setResult, ctx->rsinfo->setDesc, values, nulls);
}

/* anomali_cache_contents(): every live entry */
Datum
anomali_cache_contents(PG_FUNCTION_ARGS)
{
	ContentsCtx ctx;

	InitMaterializedSRF(fcinfo, 0);
	ctx.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	cache_scan(contents_row, &ctx);
	return (Datum) 0;
}

/* anomali_session_stats(): requests and connections of this backend */
Datum
anomali_session_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[2];
	bool		nulls[2] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	values[0] = Int64GetDatum(http_requests_sent());
	values[1] = Int64GetDatum(http_connections_opened());
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(anomali_classify);

/* anomali_classify(text): how a value would be read as an observable */
Datum
anomali_classify(PG_FUNCTION_ARGS)
{
	text	   *raw = PG_GETARG_TEXT_PP(0);
	char		canon[OBSERVABLE_MAX_LEN];
	ObservableClass cls;
	TupleDesc	desc;
	Datum		values[3];
	bool		nulls[3] = {false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	cls = observable_classify(VARDATA_ANY(raw), VARSIZE_ANY_EXHDR(raw), canon);
	values[0] = CStringGetTextDatum(observable_class_name(cls));
	if (cls == OBS_UNSUPPORTED)
	{
		nulls[1] = true;
		nulls[2] = true;
	}
	else
	{
		values[1] = CStringGetTextDatum(canon);
		values[2] = BoolGetDatum(observable_is_non_public(cls, canon));
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
