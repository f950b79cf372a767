/*
 * cache.h
 *		The lookup cache: ThreatStream's answers, kept for a while.
 *
 * The cache remembers, per ThreatStream account and observable, the indicators
 * ThreatStream returned (including "none") for anomali_ts.cache_ttl.  It
 * stores indicators, never verdicts, so thresholds apply when the answer is
 * used; failed lookups are never stored.  With anomali_ts in
 * shared_preload_libraries the cache lives in shared memory and serves every
 * connection; otherwise each backend keeps its own.
 */
#ifndef ANOMALI_CACHE_H
#define ANOMALI_CACHE_H

#include "observable.h"
#include "verdict.h"

/*
 * Whose answers an entry holds: one ThreatStream account (a hash of its URL
 * and username) as seen from one database.  Answers never cross databases,
 * and an integration pointed at another server or account stops seeing the
 * old answers at once.
 */
typedef struct CacheScope
{
	uint32		database;
	uint64		account;
} CacheScope;

typedef struct CacheStats
{
	bool		shared;
	long		entries;
	long		capacity;
	long		hits;
	long		misses;
	long		stores;
	long		evictions;
} CacheStats;

extern void cache_shmem_request(void);
extern void cache_shmem_startup(void);

/* False when anomali_ts.cache_ttl is zero: nothing is stored or served */
extern bool cache_enabled(void);

/* A fresh cached answer: palloc'd copy of the indicators */
extern bool cache_get(CacheScope scope, ObservableClass cls,
					  const char *value, Indicator **indicators, int *n);

/* Is a fresh answer cached?  Counts neither hit nor miss */
extern bool cache_contains(CacheScope scope, ObservableClass cls,
						   const char *value);
extern void cache_put(CacheScope scope, ObservableClass cls,
					  const char *value, const Indicator *indicators, int n);
extern void cache_stats(CacheStats *stats);
extern long cache_clear(void);

/* Visit every entry (for inspection); callback gets seconds left to live */
typedef void (*CacheVisit) (CacheScope scope, ObservableClass cls,
							const char *value, int nindicators,
							double ttl_left_s, void *ctx);
extern void cache_scan(CacheVisit visit, void *ctx);

#endif							/* ANOMALI_CACHE_H */
