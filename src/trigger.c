/*
 * trigger.c
 *		The trigger that enriches rows as they are written.
 *
 *	CREATE TRIGGER ... BEFORE INSERT [OR UPDATE] ON events FOR EACH ROW
 *		EXECUTE FUNCTION anomali_ts.anomali_enrich_trigger('step', 'column');
 *
 * anomali_attach_step() writes that statement for you.  The trigger reads
 * the step (cached), and for an enabled step replaces the jsonb column with
 * the enriched event, or, for an asynchronous step, with the event marked
 * pending for a background worker (worker.c).  A failing ThreatStream never
 * fails the row: the failure is recorded in the created fields, unless the
 * step is strict.  A disabled or dropped step, a NULL column or a value that
 * is not a JSON object leave the row as it is (with a WARNING for a dropped
 * step or a non-object, since those are mistakes someone should see).
 *
 * The trigger writes only the row it is given: nothing here writes to
 * another table, so it can run on the nodes of a distributed table.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/jsonb.h"
#include "utils/rel.h"

#include "created_fields.h"
#include "enrich.h"
#include "step.h"
#include "utils/timestamp.h"
#include "worker.h"

PG_FUNCTION_INFO_V1(anomali_enrich_trigger);

/* Check that the function is used as a row-level BEFORE trigger */
static void
check_trigger_protocol(FunctionCallInfo fcinfo)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("anomali_enrich_trigger() must be called as a trigger")));
	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("anomali_enrich_trigger() must be a BEFORE INSERT or UPDATE row trigger"),
				 errhint("Use anomali_attach_step() to create the trigger.")));
	if (td->tg_trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("anomali_enrich_trigger() takes two arguments: the step name and the jsonb column")));
}

/* The enrichment trigger */
Datum
anomali_enrich_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	TupleDesc	desc;
	const char *step_name;
	const char *column;
	const Step *step;
	int			attnum;
	bool		isnull;
	Datum		value;
	Jsonb	   *event;
	Jsonb	   *enriched;
	EnrichBatch *batch;
	Datum		newval[1];
	bool		newnull[1] = {false};
	int			cols[1];

	check_trigger_protocol(fcinfo);
	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	desc = RelationGetDescr(td->tg_relation);
	step_name = td->tg_trigger->tgargs[0];
	column = td->tg_trigger->tgargs[1];

	/* A worker's own update of a queued row is not enriched again here */
	if (worker_is_self())
		return PointerGetDatum(row);

	step = step_get(step_name);
	if (step == NULL)
	{
		ereport(WARNING,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("enrichment step \"%s\" does not exist; row stored without enrichment", step_name),
				 errhint("Create the step again, or drop trigger \"%s\".", td->tg_trigger->tgname)));
		return PointerGetDatum(row);
	}
	if (!step->enabled)
		return PointerGetDatum(row);

	attnum = SPI_fnumber(desc, column);
	if (attnum <= 0 || TupleDescAttr(desc, attnum - 1)->atttypid != JSONBOID)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("table \"%s\" has no jsonb column \"%s\"",
						RelationGetRelationName(td->tg_relation), column),
				 errhint("Attach the step again with anomali_attach_step() naming a jsonb column.")));

	value = heap_getattr(row, attnum, desc, &isnull);
	if (isnull)
		return PointerGetDatum(row);
	event = DatumGetJsonbP(value);

	/*
	 * An asynchronous step only marks the row queued (result pending); a
	 * background worker finishes it after commit.  Without preloaded
	 * workers the step runs synchronously, so no row waits forever.
	 */
	if (step->async && worker_available() && JB_ROOT_IS_OBJECT(event) &&
		!JB_ROOT_IS_SCALAR(event))
	{
		enriched = created_fields_mark_pending(event, step->config, step_name,
											   created_fields_time(GetCurrentTimestamp()));
		worker_note_queued();
		cols[0] = attnum;
		newval[0] = JsonbPGetDatum(enriched);
		return PointerGetDatum(heap_modify_tuple_by_cols(row, desc, 1, cols, newval, newnull));
	}

	batch = enrich_batch_begin(step->config);
	if (!enrich_batch_add(batch, event))
	{
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" does not hold a JSON object; row stored without enrichment", column)));
		return PointerGetDatum(row);
	}

	enrich_batch_lookup(batch);
	if (step->strict && enrich_batch_has_error(batch, 0))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("enrichment step \"%s\" could not complete its lookups", step_name),
				 errdetail("%s", enrich_batch_first_error(batch, 0)),
				 errhint("The step is strict; make it non-strict to store such rows with the error recorded.")));
	enriched = enrich_batch_result(batch, 0);

	cols[0] = attnum;
	newval[0] = JsonbPGetDatum(enriched);
	return PointerGetDatum(heap_modify_tuple_by_cols(row, desc, 1, cols, newval, newnull));
}
