/*
 * row_update.h
 *		Writing enriched events back into stored rows, a batch at a time.
 *
 * Shared by the bulk enrichment of stored rows and by the background
 * workers: both hold a batch of rows read by ctid and write new events
 * back in one statement.
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

#endif							/* ANOMALI_ROW_UPDATE_H */
