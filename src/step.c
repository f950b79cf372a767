/*
 * step.c
 *		Saved enrichment steps: a named configuration and its switches.
 *
 * The trigger reads a step for every row, so steps are cached per backend
 * with their configuration already parsed.  A statement trigger on the step
 * table queues a relcache invalidation of the table (the same mechanism as
 * for integrations), and the relcache callback here drops the cache.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "integration.h"
#include "step.h"

static MemoryContext step_cxt = NULL;
static List *steps = NIL;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(anomali_validate_config);

typedef struct StepArgs
{
	const char *name;
	Step	   *step;
} StepArgs;

/* Relcache callback: the step table (or everything) changed */
static void
step_relcache_changed(Datum arg, Oid relid)
{
	if (steps == NIL)
		return;
	if (!OidIsValid(relid) || !IsTransactionState() ||
		relid == integration_schema_relid("step"))
	{
		steps = NIL;
		MemoryContextReset(step_cxt);
	}
}

/* Read one step row (runs as the owner) */
static void
load_step(void *arg)
{
	StepArgs   *a = arg;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(a->name);
	SPI_connect();
	if (SPI_execute_with_args("SELECT enabled, strict, config, mode = 'async' FROM anomali_ts.step WHERE name = $1",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read enrichment step");
	if (SPI_processed == 1)
	{
		TupleDesc	td = SPI_tuptable->tupdesc;
		HeapTuple	t = SPI_tuptable->vals[0];
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(step_cxt);
		Step	   *s = palloc0(sizeof(Step));

		s->name = pstrdup(a->name);
		s->enabled = DatumGetBool(SPI_getbinval(t, td, 1, &isnull));
		s->strict = DatumGetBool(SPI_getbinval(t, td, 2, &isnull));
		s->config = config_parse(DatumGetJsonbPCopy(SPI_getbinval(t, td, 3, &isnull)));
		s->async = DatumGetBool(SPI_getbinval(t, td, 4, &isnull));
		a->step = s;
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/* The step of that name, or NULL when there is none */
const Step *
step_get(const char *name)
{
	ListCell   *lc;
	StepArgs	a = {name, NULL};

	foreach(lc, steps)
	{
		Step	   *s = lfirst(lc);

		if (strcmp(s->name, name) == 0)
			return s;
	}

	if (step_cxt == NULL)
		step_cxt = AllocSetContextCreate(TopMemoryContext,
										 "anomali_ts enrichment steps",
										 ALLOCSET_SMALL_SIZES);
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(step_relcache_changed, (Datum) 0);
		callback_registered = true;
	}

	integration_run_as_owner(load_step, &a);
	if (a.step != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(step_cxt);

		steps = lappend(steps, a.step);
		MemoryContextSwitchTo(old);
	}
	return a.step;
}

/*
 * anomali_validate_config(config jsonb) returns jsonb: raise for a bad
 * configuration or an unknown integration; return it unchanged otherwise.
 */
Datum
anomali_validate_config(PG_FUNCTION_ARGS)
{
	Jsonb	   *config = PG_GETARG_JSONB_P(0);
	EnrichConfig *cfg = config_parse(config);

	(void) integration_endpoint(cfg->integration, "integration");
	PG_RETURN_JSONB_P(config);
}
