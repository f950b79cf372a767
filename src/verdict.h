/*
 * verdict.h
 *		The verdict rules: when an indicator is a positive hit, when an
 *		observable is malicious, and how results combine.
 *
 * Every rule that decides malicious / not_malicious / error lives in
 * verdict.c and nowhere else.  Thresholds are applied here, at verdict time,
 * so that an answer kept in the cache gives the same verdict as a fresh one.
 */
#ifndef ANOMALI_VERDICT_H
#define ANOMALI_VERDICT_H

#include "observable.h"

#define INDICATOR_ITYPE_MAX 40

typedef enum IndicatorStatus
{
	STATUS_OTHER = 0,
	STATUS_ACTIVE,
	STATUS_INACTIVE,
	STATUS_FALSEPOS
} IndicatorStatus;

typedef enum Severity
{
	SEVERITY_NONE = 0,
	SEVERITY_LOW,
	SEVERITY_MEDIUM,
	SEVERITY_HIGH,
	SEVERITY_VERY_HIGH
} Severity;

/* One ThreatStream indicator whose value matched an observable */
typedef struct Indicator
{
	IndicatorStatus status;
	Severity	severity;
	int			confidence;		/* -1: not computed or not valid */
	char		itype[INDICATOR_ITYPE_MAX];
} Indicator;

/*
 * Results, in increasing order of precedence when they are combined: a path
 * or event is malicious if anything in it is, else error if any lookup
 * failed, and so on.
 */
typedef enum Verdict
{
	VERDICT_UNKNOWN = 0,		/* nothing to look at */
	VERDICT_SKIPPED,			/* seen, but not sent (non-public, unsupported) */
	VERDICT_NOT_MALICIOUS,		/* looked up, not enough evidence */
	VERDICT_ERROR,				/* the lookup failed: no evidence either way */
	VERDICT_MALICIOUS
} Verdict;

/* What the rules concluded about one observable */
typedef struct ObservableVerdict
{
	Verdict		result;
	int			positive_hits;
	int			matches;
	int			max_confidence;	/* -1 when nothing matched */
	Severity	severity;		/* highest among positive hits */
	unsigned	statuses;		/* bit per IndicatorStatus seen */
} ObservableVerdict;

extern bool verdict_value_matches(ObservableClass cls, const char *observable,
								  ObservableClass returned_cls,
								  const char *returned_canon,
								  const char *returned_type);
extern void verdict_decide(const Indicator *indicators, int nindicators,
						   int threshold, int required_hits,
						   ObservableVerdict *out);
extern void verdict_decide_failed(const Indicator *partial, int npartial,
								  int threshold, int required_hits,
								  ObservableVerdict *out);
extern Verdict verdict_combine(Verdict a, Verdict b);
extern const char *verdict_name(Verdict v);
extern Verdict verdict_from_name(const char *name);
extern IndicatorStatus indicator_status_from_name(const char *name);
extern const char *indicator_status_name(IndicatorStatus s);
extern Severity severity_from_name(const char *name);
extern const char *severity_name(Severity s);

#endif							/* ANOMALI_VERDICT_H */
