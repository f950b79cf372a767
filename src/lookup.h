/*
 * lookup.h
 *		Asking ThreatStream about observables.
 *
 * This module owns the ThreatStream protocol: how observables become
 * requests (one value per request, or several joined in a q= filter), how
 * pages are followed, which answers are retried, how answers are matched
 * back to the observables that were asked, and the lookup cache in front of
 * all of it.  It returns indicators, never verdicts.
 */
#ifndef ANOMALI_LOOKUP_H
#define ANOMALI_LOOKUP_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "cache.h"
#include "observable.h"
#include "verdict.h"

/* Where and as whom to ask */
typedef struct TsEndpoint
{
	int			integration_id;
	CacheScope	cache_scope;		/* database and account, for the cache */
	const char *title;
	const char *base_url;		/* always ends with "/" */
	const char *authorization;	/* "apikey user:key"; never logged */
	bool		ssl_verify;
} TsEndpoint;

/* One observable to look up, and what was found */
typedef struct LookupItem
{
	/* Set by the caller */
	ObservableClass cls;
	const char *value;			/* canonical */

	/* Filled in by lookup_run */
	bool		ok;
	bool		from_cache;
	char	   *error;			/* when !ok: for humans, no secrets */
	int			nindicators;	/* when !ok: those that arrived before the failure */
	Indicator  *indicators;
} LookupItem;

typedef struct LookupStats
{
	int			requests;		/* HTTP requests sent, retries and pages included */
	int			cache_hits;
	int			retries;
	int			unexpected_values;	/* returned objects nobody asked about */
} LookupStats;

/*
 * Look up items against one endpoint.  raw, when not NULL, receives every
 * response body that parsed as JSON (palloc'd strings), for
 * save_raw_response; the cache is then not read (cached answers have no
 * body), only written.
 */
extern void lookup_run(const TsEndpoint *endpoint, LookupItem *items,
					   int nitems, List **raw, LookupStats *stats);

/* Observables sent in one request: anomali_ts.batch_size */
extern int	lookup_chunk_size(void);

/*
 * Would lookup_run (without raw) serve the observable from the cache now?
 * Counts no cache hit or miss, so probing before a lookup counts nothing
 * twice.
 */
extern bool lookup_cached(const TsEndpoint *endpoint, ObservableClass cls,
						  const char *value);

/* Does lookup_run keep its answers for later calls (the cache is on)? */
extern bool lookup_keeps_answers(void);

/* Result of the health check request: GET <base_url>?limit=1 */
typedef struct HealthProbe
{
	bool		reachable;
	bool		credentials_accepted;
	long		http_status;
	double		latency_ms;
	char	   *message;
} HealthProbe;

extern void lookup_probe(const TsEndpoint *endpoint, HealthProbe *probe);

/* Circuit breaker state of one integration, for anomali_health() */
extern const char *lookup_breaker_state(int integration_id);

#endif							/* ANOMALI_LOOKUP_H */
