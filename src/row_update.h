/*
 * row_update.h
 *		Reading and writing stored rows a batch at a time.
 *
 * Shared by the bulk enrichment of stored rows and by the background
 * workers: both hold a batch of rows read by ctid and write new events
 * back in one statement, and the workers read their queue in batches.
 * A batch must cost what it holds, not what its table holds.
 */
#ifndef ANOMALI_ROW_UPDATE_H
#define ANOMALI_ROW_UPDATE_H

/*
 * UPDATE ONLY rel SET column = events[i] for the row at ctids[i], and only
 * while its xmin is still xmins[i] (when xmins is not NULL), so a row
 * changed meanwhile is left alone.  Runs inside an SPI connection.
 */
extern void row_update_batch(const char *rel, const char *column,
							 Datum *ctids, Datum *events, Datum *xmins, int n);

/*
 * SPI_execute_with_args() with sequential scans disabled, for a statement
 * over a batch of rows that an index or their ctids can find; raises
 * (naming rel) unless the statement returns the expected SPI result.
 */
extern void row_batch_execute(const char *sql, int nargs, Oid *types,
							  Datum *values, bool read_only, int expected,
							  const char *rel);

#endif							/* ANOMALI_ROW_UPDATE_H */
