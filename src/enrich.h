/*
 * enrich.h
 *		The enrichment step: from events to events with verdicts.
 *
 * This module runs a step over a batch of events: it collects the
 * observables of every event (field_path.c, observable.c), looks up the
 * unique ones of the whole batch together (lookup.c), applies the verdict
 * rules once per observable (verdict.c), and writes each event's outcome
 * (created_fields.c).  One event is a batch of one.
 */
#ifndef ANOMALI_ENRICH_H
#define ANOMALI_ENRICH_H

#include "utils/jsonb.h"

#include "config.h"
#include "lookup.h"

typedef struct EnrichBatch EnrichBatch;

extern EnrichBatch *enrich_batch_begin(const EnrichConfig *config);

/* Add an event; returns false (and keeps nothing) when it is not an object */
extern bool enrich_batch_add(EnrichBatch *batch, Jsonb *event);

/*
 * How many observables enrich_batch_add_lookahead() should add so that the
 * batch's last request is full; 0 when it is, when the batch asks nothing,
 * or when no later lookup would take the answers from the cache.
 */
extern int	enrich_batch_lookahead_room(EnrichBatch *batch);

/*
 * Add up to max observables of an event outside the batch, to be looked up
 * with it and cached for a later batch, but written on no event.  Only
 * those the event's own enrichment would ask about, and neither in the
 * batch nor cached, are added; returns how many.  Call after the batch's
 * last enrich_batch_add().
 */
extern int	enrich_batch_add_lookahead(EnrichBatch *batch, Jsonb *event,
									   int max);

/* Look up every observable of the batch that needs it */
extern void enrich_batch_lookup(EnrichBatch *batch);

/* The i-th added event with the step's created fields */
extern Jsonb *enrich_batch_result(EnrichBatch *batch, int i);

/* Where a queued event stands, as written in its created fields */
typedef struct QueueState
{
	const char *step;			/* the step that will finish it */
	int			attempts;		/* lookups tried so far */
	const char *retry_at;		/* not before (after a failure), or NULL */
	const char *queued_at;
} QueueState;

/*
 * The i-th event, queued for the background worker (pending) or finished
 * by it (keeping queued_at).  A pending write needs no lookup.
 */
extern Jsonb *enrich_batch_queued(EnrichBatch *batch, int i,
								  const QueueState *queue, bool pending);

/* Requests, cache hits and failures of the batch */
extern const LookupStats *enrich_batch_stats(EnrichBatch *batch);

/* Unique observables of the batch's events (not the look-ahead ones) */
extern int	enrich_batch_observables(EnrichBatch *batch);

/* True when any observable of event i ended as error */
extern bool enrich_batch_has_error(EnrichBatch *batch, int i);

/* The first error message of event i, or NULL */
extern const char *enrich_batch_first_error(EnrichBatch *batch, int i);

/* Enrich one event (raises when it is not a JSON object) */
extern Jsonb *enrich_event(Jsonb *event, const EnrichConfig *config);

#endif							/* ANOMALI_ENRICH_H */
