/*
 * health.c
 *		anomali_health(): is each integration reachable and authorised?
 *
 * One row per integration (or for one, by title).  A failing remote is a
 * row that says so, never an error: a monitoring query must keep working
 * when ThreatStream does not.  Only problems on our side (no such
 * integration, a lost master key) raise.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"

#include "integration.h"
#include "lookup.h"

PG_FUNCTION_INFO_V1(anomali_health);

/* Check one integration and add its row */
static void
health_row(ReturnSetInfo *rsinfo, const char *title)
{
	const TsEndpoint *ep = integration_endpoint(title, NULL);
	HealthProbe probe;
	Datum		values[8];
	bool		nulls[8] = {false};

	lookup_probe(ep, &probe);

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
