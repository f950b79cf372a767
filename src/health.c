/*
 * health.c
 *		anomali_health(): is each integration reachable and authorised?
 *
 * One row per integration (or for one, by title), with the rows its
 * asynchronous steps have queued and the age of the oldest.  A failing
 * remote is a row that says so, never an error: a monitoring query must keep working
 * when ThreatStream does not.  Only problems on our side (no such
 * integration, a lost master key) raise.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "integration.h"
#include "lookup.h"

PG_FUNCTION_INFO_V1(anomali_health);

typedef struct QueueArgs
{
	const char *title;
	int64		queued;
	double		oldest_s;
	bool		have_oldest;
} QueueArgs;

/* Rows queued by the asynchronous steps of one integration (as the owner) */
static void
read_queue(void *arg)
{
	QueueArgs  *a = arg;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;

	values[0] = CStringGetTextDatum(a->title);
	SPI_connect();
	if (SPI_execute_with_args("SELECT coalesce(sum(q.queued), 0)::bigint, "
							  "extract(epoch FROM max(q.oldest_age))::float8 "
							  "FROM anomali_ts.anomali_queue() q "
							  "JOIN anomali_ts.step s ON s.name = q.step_name "
							  "WHERE s.config ->> 'integration' = $1",
							  1, types, values, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the queue");
	a->queued = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											SPI_tuptable->tupdesc, 1, &isnull));
	a->oldest_s = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 2, &isnull));
	a->have_oldest = !isnull;
	SPI_finish();
}

/* Check one integration and add its row */
static void
health_row(ReturnSetInfo *rsinfo, const char *title)
{
	const TsEndpoint *ep = integration_endpoint(title, NULL);
	HealthProbe probe;
	QueueArgs	queue = {title, 0, 0, false};
	Datum		values[10];
	bool		nulls[10] = {false};

	lookup_probe(ep, &probe);
	integration_run_as_owner(read_queue, &queue);

	values[0] = CStringGetTextDatum(title);
	values[1] = CStringGetTextDatum(ep->base_url);
	values[2] = BoolGetDatum(probe.reachable);
	values[3] = BoolGetDatum(probe.credentials_accepted);
	if (probe.http_status > 0)
		values[4] = Int32GetDatum((int32) probe.http_status);
	else
		nulls[4] = true;
	values[5] = Float8GetDatum(probe.latency_ms);
	values[6] = CStringGetTextDatum(probe.message);
	values[7] = CStringGetTextDatum(lookup_breaker_state(ep->integration_id));
	values[8] = Int64GetDatum(queue.queued);
	if (queue.have_oldest)
		values[9] = Float8GetDatum(queue.oldest_s);
	else
		nulls[9] = true;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* anomali_health(title text default null) */
Datum
anomali_health(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);

	if (!PG_ARGISNULL(0))
		health_row(rsinfo, text_to_cstring(PG_GETARG_TEXT_PP(0)));
	else
	{
		ListCell   *lc;

		foreach(lc, integration_titles())
			health_row(rsinfo, lfirst(lc));
	}
	return (Datum) 0;
}
