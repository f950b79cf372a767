/*
 * row_update.c
 *		Reading and writing stored rows a batch at a time.
 *
 * One UPDATE joins the table to the arrays of ctids and new events
 * (unnest), so the batch costs one statement rather than one per row.
 * Batch statements run with sequential scans disabled: the planner may
 * prefer to read the whole table, because it is small or never analysed
 * (the UPDATE would hash it rather than find each row by a TID scan), or
 * because it cannot tell how few rows a partial index holds (a worker's
 * queue read), and a batch must cost what it holds, not what the table
 * holds.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "row_update.h"

/* Write a batch of events back into their rows */
void
row_update_batch(const char *rel, const char *column, Datum *ctids,
				 Datum *events, Datum *xmins, int n)
{
	Oid			types[3] = {TIDARRAYOID, JSONBARRAYOID, XIDARRAYOID};
	Datum		values[3];
	const char *col = quote_identifier(column);
	char	   *sql;
	int			nargs = xmins != NULL ? 3 : 2;

	if (n == 0)
		return;

	values[0] = PointerGetDatum(construct_array(ctids, n, TIDOID, sizeof(ItemPointerData),
												false, TYPALIGN_SHORT));
	values[1] = PointerGetDatum(construct_array(events, n, JSONBOID, -1, false,
												TYPALIGN_INT));
	if (xmins != NULL)
	{
		values[2] = PointerGetDatum(construct_array(xmins, n, XIDOID, sizeof(TransactionId),
													true, TYPALIGN_INT));
		sql = psprintf("UPDATE ONLY %s AS t SET %s = v.ev "
					   "FROM unnest($1, $2, $3) AS v(row_ctid, ev, row_xmin) "
					   "WHERE t.ctid = v.row_ctid AND t.xmin = v.row_xmin",
					   rel, col);
	}
	else
		sql = psprintf("UPDATE ONLY %s AS t SET %s = v.ev "
					   "FROM unnest($1, $2) AS v(row_ctid, ev) WHERE t.ctid = v.row_ctid",
					   rel, col);

	row_batch_execute(sql, nargs, types, values, false, SPI_OK_UPDATE, rel);
}

/* Run a statement over a batch of rows with sequential scans disabled */
void
row_batch_execute(const char *sql, int nargs, Oid *types, Datum *values,
				  bool read_only, int expected, const char *rel)
{
	int			nestlevel = NewGUCNestLevel();

	(void) set_config_option("enable_seqscan", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	if (SPI_execute_with_args(sql, nargs, types, values, NULL,
							  read_only, 0) != expected)
		elog(ERROR, "could not run a batch statement on %s", rel);
	AtEOXact_GUC(true, nestlevel);
}
