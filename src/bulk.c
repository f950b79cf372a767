/*
 * bulk.c
 *		Enrichment of rows already stored, in batches.
 *
 * anomali_enrich_batch() takes the next batch_rows rows of one plain table
 * after a ctid position and before a ctid limit, read from a window of
 * pages sized by the table's rows per page (read_window), skips rows this
 * step has already enriched, looks up the unique observables of the whole
 * batch together, and updates each row by ctid and xmin, so a row changed
 * meanwhile is left alone rather than overwritten.
 *
 * ctid identifies a row only within one relation, so partitioned tables
 * and inheritance parents are refused (each partition is enriched on its
 * own) and the scan reads ONLY the named table.  The anomali_enrich_table()
 * procedure fixes the limit at the table's size when it starts, so rows it
 * rewrites are not read twice when their new versions land past it (a new
 * version written into free space of the table's last pages is read once
 * more and skipped as finished), and commits each batch: interrupted, it
 * can be called again, and finished rows are skipped without any lookup.
 *
 * A row counts as finished when its created fields name this step's
 * display name in global.steps and hold every path the step configures.
 *
 * Requests carry anomali_ts.batch_size observables, and a batch's last one is
 * usually part full; left alone, every batch would add one request.  So a
 * batch that is not the range's last looks ahead: it reads up to as many
 * rows again after its last row and adds observables of unfinished ones as
 * look-ahead (enrich.h) until its last request is full.  They are looked up
 * and cached, never written; the next batch finds them in the cache.  A
 * failed look-ahead lookup is not cached either, so that batch just asks
 * again.
 */
#include "postgres.h"

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "storage/itemptr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "enrich.h"
#include "row_update.h"
#include "step.h"

/* Rows read by one query of the look-ahead */
#define LOOKAHEAD_GROUP 100

PG_FUNCTION_INFO_V1(anomali_enrich_batch);

/* Rows the table holds per page, or -1 when it was never analysed */
static double
rows_per_page(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	double		density = -1;

	if (HeapTupleIsValid(tup))
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);

		if (form->reltuples > 0 && form->relpages > 0)
			density = form->reltuples / form->relpages;
		ReleaseSysCache(tup);
	}
	return density;
}

/*
 * Read up to limit rows after "after" and before "before", in ctid order,
 * from a window of pages just large enough for them.  A TID range scan
 * returns rows in no order the planner knows, so they are sorted; without
 * the window every read would fetch and sort the rest of the table.  The
 * query takes $1 after, $2 the window's end and $3 limit, and returns ctid
 * first.  Empty windows are passed over.  *next is where the following
 * read starts: the last row returned, or the window's end when the window
 * held fewer than limit rows.  Returns the number of rows (0: nothing is
 * left before "before").
 */
static uint64
read_window(const char *query, ItemPointer after, ItemPointer before,
			int32 limit, double density, ItemPointer next)
{
	Oid			types[3] = {TIDOID, TIDOID, INT4OID};
	Datum		args[3];
	BlockNumber pages;
	ItemPointerData start;
	ItemPointerData end;

	/* Twice the rows expected, and one page for a start mid-page */
	pages = density > 0 ? (BlockNumber) (2.0 * limit / density) + 1 : (BlockNumber) limit;
	pages = Max(pages, 2);
	ItemPointerCopy(after, &start);

	for (;;)
	{
		BlockNumber from = ItemPointerGetBlockNumber(&start);

		if (ItemPointerCompare(&start, before) >= 0)
		{
			ItemPointerCopy(before, next);
			return 0;
		}
		if (ItemPointerGetBlockNumber(before) - from <= pages)
			ItemPointerCopy(before, &end);
		else
			ItemPointerSet(&end, from + pages, 0);

		args[0] = PointerGetDatum(&start);
		args[1] = PointerGetDatum(&end);
		args[2] = Int32GetDatum(limit);
		if (SPI_execute_with_args(query, 3, types, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read rows of a table by ctid");

		if (SPI_processed == (uint64) limit)
		{
			bool		isnull;
			Datum		ctid = SPI_getbinval(SPI_tuptable->vals[limit - 1],
											 SPI_tuptable->tupdesc, 1, &isnull);

			ItemPointerCopy((ItemPointer) DatumGetPointer(ctid), next);
			return SPI_processed;
		}
		ItemPointerCopy(&end, next);
		if (SPI_processed > 0)
			return SPI_processed;
		ItemPointerCopy(&end, &start);
	}
}

/* The object at a key of an object container, or NULL */
static JsonbContainer *
object_at(JsonbContainer *c, const char *key, JsonbValue *buf)
{
	if (c == NULL || !JsonContainerIsObject(c) ||
		getKeyJsonValueFromContainer(c, key, strlen(key), buf) == NULL ||
		buf->type != jbvBinary)
		return NULL;
	return buf->val.binary.data;
}

/* Has this step already written its verdicts on the event? */
static bool
already_enriched(Jsonb *event, const EnrichConfig *cfg)
{
	JsonbValue	v;
	JsonbContainer *ioc;
	JsonbContainer *steps;
	JsonbContainer *fields;
	bool		named = false;

	if (!JB_ROOT_IS_OBJECT(event) || JB_ROOT_IS_SCALAR(event))
		return false;
	ioc = object_at(object_at(&event->root, "arcanna", &v), "ioc", &v);
	steps = object_at(object_at(ioc, "global", &v), "steps", &v);
	if (steps == NULL || !JsonContainerIsArray(steps))
		return false;
	for (uint32 i = 0; i < JsonContainerSize(steps) && !named; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(steps, i);

		named = e->type == jbvString &&
			e->val.string.len == (int) strlen(cfg->display_name) &&
			memcmp(e->val.string.val, cfg->display_name, e->val.string.len) == 0;
	}
	if (!named)
		return false;

	fields = object_at(ioc, "fields", &v);
	for (int p = 0; p < cfg->npaths; p++)
		if (object_at(fields, cfg->paths[p]->text, &v) == NULL)
			return false;
	return true;
}

/* Refuse relations whose ctids do not identify rows on their own */
static char *
checked_relation(Oid relid)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (relkind == RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is a partitioned table", get_rel_name(relid)),
				 errdetail("Rows are addressed by ctid, which is unique only within one partition."),
				 errhint("Enrich each partition on its own.")));
	if (relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", get_rel_name(relid))));
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/*
 * Fill the batch's last request with observables of the rows after "after"
 * and before "before": at most max_rows rows, read in groups, none written.
 */
static void
look_ahead(EnrichBatch *batch, const EnrichConfig *cfg, const char *rel,
		   const char *column, ItemPointer after, ItemPointer before,
		   int32 max_rows, double density)
{
	ItemPointerData pos;
	char	   *query;
	int64		nread = 0;
	int			room;

	if ((room = enrich_batch_lookahead_room(batch)) == 0)
		return;

	query = psprintf("SELECT ctid, %s FROM ONLY %s "
					 "WHERE ctid > $1 AND ctid < $2 ORDER BY ctid LIMIT $3",
					 quote_identifier(column), rel);
	ItemPointerCopy(after, &pos);
	while (room > 0 && nread < max_rows)
	{
		int32		group = (int32) Min(max_rows - nread, LOOKAHEAD_GROUP);
		SPITupleTable *rows;
		uint64		nrows;

		nrows = read_window(query, &pos, before, group, density, &pos);
		if (nrows == 0)
			break;				/* the range ends here */
		rows = SPI_tuptable;
		nread += nrows;

		for (uint64 i = 0; i < nrows && room > 0; i++)
		{
			HeapTuple	t = rows->vals[i];
			bool		ev_null;
			Datum		ev = SPI_getbinval(t, rows->tupdesc, 2, &ev_null);
			Jsonb	   *event;

			if (ev_null)
				continue;
			event = DatumGetJsonbP(ev);
			if (!already_enriched(event, cfg))
				room -= enrich_batch_add_lookahead(batch, event, room);
			/* The batch keeps copies of what it takes: free a detoasted one */
			if ((Pointer) event != DatumGetPointer(ev))
				pfree(event);
		}
		SPI_freetuptable(rows);
	}
	pfree(query);
}

/*
 * anomali_enrich_batch(tbl regclass, column_name name, step_name text,
 *		after tid, batch_rows int, before tid)
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
	ItemPointer before = (ItemPointer) PG_GETARG_POINTER(5);
	const Step *step = step_get(step_name);
	char	   *rel;
	double		density;
	Datum	   *ctids;
	Datum	   *events;
	Datum	   *xmins;
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
	rel = checked_relation(relid);

	SPI_connect();
	density = rows_per_page(relid);
	nrows = read_window(psprintf("SELECT ctid, xmin, %s FROM ONLY %s "
								 "WHERE ctid > $1 AND ctid < $2 ORDER BY ctid LIMIT $3",
								 quote_identifier(column), rel),
						after, before, batch_rows, density, &last);
	rows = SPI_tuptable;

	batch = enrich_batch_begin(step->config);
	batch_row = palloc(sizeof(int) * Max(nrows, 1));
	for (uint64 i = 0; i < nrows; i++)
	{
		bool		ev_null;
		Datum		ev = SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &ev_null);

		if (ev_null || !step->enabled)
			continue;
		if (already_enriched(DatumGetJsonbP(ev), step->config))
			continue;
		if (enrich_batch_add(batch, DatumGetJsonbP(ev)))
			batch_row[nbatch++] = (int) i;
	}

	if (nbatch > 0)
	{
		/* Nothing lies ahead of the range's last batch */
		if (ItemPointerCompare(&last, before) < 0)
			look_ahead(batch, step->config, rel, column, &last, before,
					   batch_rows, density);
		enrich_batch_lookup(batch);
	}

	ctids = palloc(sizeof(Datum) * Max(nbatch, 1));
	events = palloc(sizeof(Datum) * Max(nbatch, 1));
	xmins = palloc(sizeof(Datum) * Max(nbatch, 1));
	for (int k = 0; k < nbatch; k++)
	{
		HeapTuple	t = rows->vals[batch_row[k]];
		bool		isnull;

		events[k] = JsonbPGetDatum(enrich_batch_result(batch, k));
		ctids[k] = SPI_getbinval(t, rows->tupdesc, 1, &isnull);
		xmins[k] = SPI_getbinval(t, rows->tupdesc, 2, &isnull);
	}
	row_update_batch(rel, column, ctids, events, xmins, nbatch);

	values[0] = PointerGetDatum(&last);
	values[1] = Int32GetDatum((int32) nrows);
	values[2] = Int32GetDatum(nbatch);
	values[3] = Int32GetDatum(nbatch > 0 ? enrich_batch_observables(batch) : 0);
	values[4] = Int32GetDatum(nbatch > 0 ? enrich_batch_stats(batch)->requests : 0);
	SPI_finish();

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}
