/*
 * created_fields.h
 *		Writing a step's outcome onto an event under arcanna.ioc.
 *
 * This module owns the shape of the created fields (the names existing
 * decision models and dashboards read) and the rule that a later step adds
 * to an event's verdict but never clears an earlier malicious one.
 */
#ifndef ANOMALI_CREATED_FIELDS_H
#define ANOMALI_CREATED_FIELDS_H

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "config.h"
#include "verdict.h"

/* What one step concluded about one observable at one path */
typedef struct ObservableOutcome
{
	const char *value;
	const char *type;			/* observable_class_name() */
	Verdict		result;
	const char *reason;			/* for skipped: non_public, unsupported... */
	const char *error;			/* for error */
	const ObservableVerdict *verdict;	/* NULL unless looked up */
	const Indicator *indicators;
	int			nindicators;
} ObservableOutcome;

typedef struct PathOutcome
{
	const char *path;
	int			nobservables;
	ObservableOutcome *observables;
} PathOutcome;

/* Everything one step wrote about one event */
typedef struct StepOutcome
{
	const EnrichConfig *config;
	int			npaths;
	PathOutcome *paths;
	bool		pending;		/* queued for the background worker */
	const char *pending_step;	/* when pending: the step that will finish it */
	int			attempts;		/* when pending: lookups tried so far */
	const char *retry_at;		/* when pending after a failure: not before */
	const char *queued_at;		/* when it was queued (kept when finished) */
	int			observables;	/* unique observables of the event */
	int			looked_up;
	int			from_cache;
	int			malicious;
	int			not_malicious;
	int			errors;
	int			skipped;
	List	   *raw;			/* response bodies, for save_raw_response */
} StepOutcome;

extern Jsonb *created_fields_write(Jsonb *event, const StepOutcome *outcome);

/*
 * Mark an event as queued for an asynchronous step: only
 * arcanna.ioc.global changes (result pending, the step, the time), so the
 * insert pays for no field walk and no lookup.
 */
extern Jsonb *created_fields_mark_pending(Jsonb *event, const EnrichConfig *config,
										  const char *step, const char *queued_at);

/* A time as written in created fields: ISO 8601, UTC, milliseconds */
extern char *created_fields_time(TimestampTz t);

/* Values an earlier step found malicious on this event (palloc'd strings) */
extern List *created_fields_previously_malicious(Jsonb *event);

#endif							/* ANOMALI_CREATED_FIELDS_H */
