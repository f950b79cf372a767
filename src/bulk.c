/*
 * bulk.c
 *		Enrichment of rows already stored, in batches.
 *
 * anomali_enrich_batch() takes the next batch_rows rows of a table after a
 * ctid position (a TID range scan, so each batch reads only its own pages),
 * skips rows this step has already enriched (their arcanna.ioc.global.steps
 * names its display name), looks up the unique observables of the whole
 * batch together, and updates each row by ctid and xmin, so a row changed
 * meanwhile is left for the next pass rather than overwritten.  The
 * anomali_enrich_table() procedure calls it in a loop, committing each
 * batch: interrupted, it can simply be called again, and finished rows are
 * skipped without any lookup.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"

#include "enrich.h"
#include "step.h"

PG_FUNCTION_INFO_V1(anomali_enrich_batch);

/* Has this step's display name already been written on the event? */
static bool
already_enriched(Jsonb *event, const char *display_name)
{
	JsonbValue	v;
	JsonbContainer *c = &event->root;
	static const char *const path[] = {"arcanna", "ioc", "global", "steps"};

	if (!JB_ROOT_IS_OBJECT(event) || JB_ROOT_IS_SCALAR(event))
		return false;
	for (int i = 0; i < lengthof(path); i++)
	{
		if (getKeyJsonValueFromContainer(c, path[i], strlen(path[i]), &v) == NULL ||
			v.type != jbvBinary)
			return false;
		c = v.val.binary.data;
	}
	if (!JsonContainerIsArray(c))
		return false;
	for (uint32 i = 0; i < JsonContainerSize(c); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(c, i);

		if (e->type == jbvString && e->val.string.len == (int) strlen(display_name) &&
			memcmp(e->val.string.val, display_name, e->val.string.len) == 0)
			return true;
	}
	return false;
}

/*
 * anomali_enrich_batch(tbl regclass, column_name name, step_name text,
 *		after tid, batch_rows int)
 *	returns (last_ctid tid, rows_seen int, rows_enriched int,
 *		observables int, requests int)
 */
Datum
anomali_enrich_batch(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *column = NameStr(*PG_GETARG_NAME(1));
	char	   *step_name = text_to_cstring(PG_GETARG_TEXT_PP(2));
	ItemPointer after = (ItemPointer) PG_GETARG_POINTER(3);
	int32		batch_rows = PG_GETARG_INT32(4);
	const Step *step = step_get(step_name);
	char	   *rel;
	char	   *select_sql;
	char	   *update_sql;
	Oid			select_types[2] = {TIDOID, INT4OID};
	Datum		select_values[2];
	Oid			update_types[3] = {JSONBOID, TIDOID, XIDOID};
	SPIPlanPtr	update_plan;
	SPITupleTable *rows;
	uint64		nrows;
	EnrichBatch *batch;
	int		   *batch_row;
	int			nbatch = 0;
	ItemPointerData last;
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false};

	if (step == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("enrichment step \"%s\" does not exist", step_name)));
	if (batch_rows < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_rows must be at least 1")));
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									 get_rel_name(relid));
	select_sql = psprintf("SELECT ctid, xmin, %s FROM %s WHERE ctid > $1 ORDER BY ctid LIMIT $2",
						  quote_identifier(column), rel);
	update_sql = psprintf("UPDATE %s SET %s = $1 WHERE ctid = $2 AND xmin = $3",
						  rel, quote_identifier(column));

	SPI_connect();
	select_values[0] = PointerGetDatum(after);
	select_values[1] = Int32GetDatum(batch_rows);
	if (SPI_execute_with_args(select_sql, 2, select_types, select_values, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read a batch of %s", rel);
	rows = SPI_tuptable;
	nrows = SPI_processed;
	ItemPointerCopy(after, &last);

	batch = enrich_batch_begin(step->config);
	batch_row = palloc(sizeof(int) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		Datum		ev = SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull);

		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull)),
						&last);
		if (isnull || !step->enabled)
			continue;
		if (already_enriched(DatumGetJsonbP(ev), step->config->display_name))
			continue;
		if (enrich_batch_add(batch, DatumGetJsonbP(ev)))
			batch_row[nbatch++] = (int) i;
	}

	if (nbatch > 0)
		enrich_batch_lookup(batch);

	update_plan = SPI_prepare(update_sql, 3, update_types);
	if (update_plan == NULL)
		elog(ERROR, "could not prepare the update of %s", rel);
	for (int k = 0; k < nbatch; k++)
	{
		HeapTuple	t = rows->vals[batch_row[k]];
		bool		isnull;
		Datum		args[3];

		args[0] = JsonbPGetDatum(enrich_batch_result(batch, k));
		args[1] = SPI_getbinval(t, rows->tupdesc, 1, &isnull);
		args[2] = SPI_getbinval(t, rows->tupdesc, 2, &isnull);
		if (SPI_execute_plan(update_plan, args, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update %s", rel);
	}

	values[0] = PointerGetDatum(&last);
	values[1] = Int32GetDatum((int32) nrows);
	values[2] = Int32GetDatum(nbatch);
	values[3] = Int32GetDatum(nbatch > 0 ? enrich_batch_observables(batch) : 0);
	values[4] = Int32GetDatum(nbatch > 0 ? enrich_batch_stats(batch)->requests : 0);
	SPI_finish();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
