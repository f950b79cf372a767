/*
 * verdict.c
 *		The verdict rules, in one place.
 *
 *	- An indicator returned by ThreatStream counts for an observable only
 *	  when its value is the observable itself (after normalisation) and its
 *	  type fits the observable's class.
 *	- It is a positive hit when, in addition, its status is "active" and its
 *	  confidence is at least the threshold.  "inactive" and "falsepos" never
 *	  count, whatever their confidence.
 *	- An observable is malicious when its positive hits reach the required
 *	  count; otherwise it is not_malicious (no evidence, not "benign").
 *	- A failed lookup is an error: missing evidence is never a clean bill.
 *	  Only when the indicators that did arrive before the failure already
 *	  prove the observable malicious is it malicious, since later pages can
 *	  add hits but never take one away.
 *	- Results combine by precedence: malicious, error, not_malicious,
 *	  skipped, unknown.
 */
#include <string.h>
#include <strings.h>

#include "verdict.h"

static bool verdict_is_positive_hit(const Indicator *indicator, int threshold);

/*
 * Does a returned indicator designate this observable?  The caller passes
 * the returned value already classified and canonicalised (observable.c),
 * so domains and hashes compare case-insensitively and "2001:0DB8::1"
 * matches "2001:db8::1".  The returned type, when present, must be the one
 * ThreatStream uses for the observable's class.
 */
bool
verdict_value_matches(ObservableClass cls, const char *observable,
					  ObservableClass returned_cls, const char *returned_canon,
					  const char *returned_type)
{
	if (returned_type != NULL && returned_type[0] != '\0' &&
		strcmp(returned_type, observable_api_type(cls)) != 0)
		return false;
	if (observable_is_hash(cls) != observable_is_hash(returned_cls))
		return false;
	if (!observable_is_hash(cls) && returned_cls != cls)
		return false;
	return strcmp(returned_canon, observable) == 0;
}

/* Active, and confident enough */
static bool
verdict_is_positive_hit(const Indicator *indicator, int threshold)
{
	return indicator->status == STATUS_ACTIVE &&
		indicator->confidence >= 0 &&
		indicator->confidence >= threshold;
}

/* Apply the rules to the indicators that matched one observable */
void
verdict_decide(const Indicator *indicators, int nindicators,
			   int threshold, int required_hits, ObservableVerdict *out)
{
	memset(out, 0, sizeof(*out));
	out->max_confidence = -1;

	for (int i = 0; i < nindicators; i++)
	{
		const Indicator *ind = &indicators[i];

		out->matches++;
		out->statuses |= 1u << ind->status;
		if (ind->confidence > out->max_confidence)
			out->max_confidence = ind->confidence;
		if (verdict_is_positive_hit(ind, threshold))
		{
			out->positive_hits++;
			if (ind->severity > out->severity)
				out->severity = ind->severity;
		}
	}

	out->result = out->positive_hits >= required_hits ?
		VERDICT_MALICIOUS : VERDICT_NOT_MALICIOUS;
}

/* Apply the rules to a lookup that failed after some indicators arrived */
void
verdict_decide_failed(const Indicator *partial, int npartial, int threshold,
					  int required_hits, ObservableVerdict *out)
{
	verdict_decide(partial, npartial, threshold, required_hits, out);
	if (out->result != VERDICT_MALICIOUS)
		out->result = VERDICT_ERROR;
}

/* The result of two results together */
Verdict
verdict_combine(Verdict a, Verdict b)
{
	return a > b ? a : b;
}

/* Name of a result as written on events */
const char *
verdict_name(Verdict v)
{
	switch (v)
	{
		case VERDICT_UNKNOWN:
			return "unknown";
		case VERDICT_SKIPPED:
			return "skipped";
		case VERDICT_NOT_MALICIOUS:
			return "not_malicious";
		case VERDICT_ERROR:
			return "error";
		case VERDICT_MALICIOUS:
			return "malicious";
	}
	return "unknown";
}

/* Read back a result written on an event by an earlier step */
Verdict
verdict_from_name(const char *name)
{
	for (Verdict v = VERDICT_UNKNOWN; v <= VERDICT_MALICIOUS; v++)
		if (strcmp(name, verdict_name(v)) == 0)
			return v;
	return VERDICT_UNKNOWN;
}

/* Status of an indicator from ThreatStream's spelling */
IndicatorStatus
indicator_status_from_name(const char *name)
{
	if (strcasecmp(name, "active") == 0)
		return STATUS_ACTIVE;
	if (strcasecmp(name, "inactive") == 0)
		return STATUS_INACTIVE;
	if (strcasecmp(name, "falsepos") == 0)
		return STATUS_FALSEPOS;
	return STATUS_OTHER;
}

/* ThreatStream's spelling of a status */
const char *
indicator_status_name(IndicatorStatus s)
{
	switch (s)
	{
		case STATUS_ACTIVE:
			return "active";
		case STATUS_INACTIVE:
			return "inactive";
		case STATUS_FALSEPOS:
			return "falsepos";
		case STATUS_OTHER:
			break;
	}
	return "other";
}

/* Severity from ThreatStream's meta.severity */
Severity
severity_from_name(const char *name)
{
	if (strcasecmp(name, "low") == 0)
		return SEVERITY_LOW;
	if (strcasecmp(name, "medium") == 0)
		return SEVERITY_MEDIUM;
	if (strcasecmp(name, "high") == 0)
		return SEVERITY_HIGH;
	if (strcasecmp(name, "very-high") == 0)
		return SEVERITY_VERY_HIGH;
	return SEVERITY_NONE;
}

/* ThreatStream's spelling of a severity, NULL for none */
const char *
severity_name(Severity s)
{
	switch (s)
	{
		case SEVERITY_LOW:
			return "low";
		case SEVERITY_MEDIUM:
			return "medium";
		case SEVERITY_HIGH:
			return "high";
		case SEVERITY_VERY_HIGH:
			return "very-high";
		case SEVERITY_NONE:
			break;
	}
	return NULL;
}
