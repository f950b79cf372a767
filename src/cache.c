/*
 * cache.c
 *		The lookup cache, in shared memory or per backend.
 *
 * Layout: a fixed-size dynahash of CacheEntry, keyed by (database,
 * account, class, canonical value) (see CacheScope in cache.h), each
 * holding up to CACHE_MAX_INDICATORS
 * indicators and an expiry time.  Answers with more indicators than that are
 * not cached (they are rare, and truncating them would change verdicts).
 *
 * Locking: one LWLock guards the shared table; readers take it shared,
 * writers exclusive.  Counters are atomics so that readers need not write
 * under the lock.  When the table is full, expired entries are dropped; if
 * that frees nothing, an eighth of the table is evicted in hash order.
 *
 * Nothing process-local is ever stored in shared memory.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "settings.h"

#define CACHE_MAX_INDICATORS 8

typedef struct CacheKey
{
	uint64		account;
	uint32		database;
	int32		cls;
	char		value[OBSERVABLE_MAX_LEN];
} CacheKey;

typedef struct CacheEntry
{
	CacheKey	key;
	TimestampTz expires;
	int			nindicators;
	Indicator	indicators[CACHE_MAX_INDICATORS];
} CacheEntry;

typedef struct CacheShared
{
	LWLock	   *lock;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	pg_atomic_uint64 stores;
	pg_atomic_uint64 evictions;
} CacheShared;

static CacheShared *shared = NULL;
static HTAB *shared_table = NULL;

/* Backend-local fallback when the library was not preloaded */
static HTAB *local_table = NULL;
static CacheShared local_counters;

static HTAB *cache_table(void);
static void lock_shared(bool exclusive);
static void unlock_shared(void);
static void make_room(HTAB *table);
static void fill_key(CacheKey *key, CacheScope scope, ObservableClass cls,
					 const char *value);

/* Ask for shared memory; called from the shmem_request hook */
void
cache_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(CacheShared)) +
						   hash_estimate_size(anomali_cache_entries,
											  sizeof(CacheEntry)));
	RequestNamedLWLockTranche("anomali_ts", 1);
}

/* Create or attach the shared table; called from the shmem_startup hook */
void
cache_shmem_startup(void)
{
	HASHCTL		info;
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);

	shared = ShmemInitStruct("anomali_ts lookup cache state",
							 sizeof(CacheShared), &found);
	if (!found)
	{
		shared->lock = &(GetNamedLWLockTranche("anomali_ts"))->lock;
		pg_atomic_init_u64(&shared->hits, 0);
		pg_atomic_init_u64(&shared->misses, 0);
		pg_atomic_init_u64(&shared->stores, 0);
		pg_atomic_init_u64(&shared->evictions, 0);
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(CacheKey);
	info.entrysize = sizeof(CacheEntry);
	shared_table = ShmemInitHash("anomali_ts lookup cache",
								 anomali_cache_entries, anomali_cache_entries,
								 &info, HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);

	LWLockRelease(AddinShmemInitLock);
}

/* The table in use: shared when preloaded, else this backend's own */
static HTAB *
cache_table(void)
{
	HASHCTL		info;

	if (shared_table != NULL)
		return shared_table;
	if (local_table != NULL)
		return local_table;

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(CacheKey);
	info.entrysize = sizeof(CacheEntry);
	info.hcxt = TopMemoryContext;
	local_table = hash_create("anomali_ts local lookup cache", 1024, &info,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	pg_atomic_init_u64(&local_counters.hits, 0);
	pg_atomic_init_u64(&local_counters.misses, 0);
	pg_atomic_init_u64(&local_counters.stores, 0);
	pg_atomic_init_u64(&local_counters.evictions, 0);
	return local_table;
}

/* The counters of the table in use */
static CacheShared *
counters(void)
{
	(void) cache_table();
	return shared_table != NULL ? shared : &local_counters;
}

/* Lock the shared table, if that is the one in use */
static void
lock_shared(bool exclusive)
{
	if (shared_table != NULL)
		LWLockAcquire(shared->lock, exclusive ? LW_EXCLUSIVE : LW_SHARED);
}

/* Release the lock taken by lock_shared */
static void
unlock_shared(void)
{
	if (shared_table != NULL)
		LWLockRelease(shared->lock);
}

/* Build a key; the value is zero-padded so HASH_BLOBS compares it whole */
static void
fill_key(CacheKey *key, CacheScope scope, ObservableClass cls,
		 const char *value)
{
	memset(key, 0, sizeof(*key));
	key->account = scope.account;
	key->database = scope.database;
	key->cls = (int32) cls;
	strlcpy(key->value, value, sizeof(key->value));
}

/* Is the cache in use?  (anomali_ts.cache_ttl = 0 turns it off) */
bool
cache_enabled(void)
{
	return anomali_cache_ttl_s > 0;
}

/* Find a fresh entry; copy its indicators when indicators is not NULL */
static bool
probe(CacheScope scope, ObservableClass cls, const char *value,
	  Indicator **indicators, int *n)
{
	HTAB	   *table = cache_table();
	CacheKey	key;
	CacheEntry *entry;
	bool		hit = false;

	fill_key(&key, scope, cls, value);

	lock_shared(false);
	entry = hash_search(table, &key, HASH_FIND, NULL);
	if (entry != NULL && entry->expires > GetCurrentTimestamp())
	{
		if (indicators != NULL)
		{
			*n = entry->nindicators;
			*indicators = palloc(sizeof(Indicator) *
								 Max(entry->nindicators, 1));
			memcpy(*indicators, entry->indicators,
				   sizeof(Indicator) * entry->nindicators);
		}
		hit = true;
	}
	unlock_shared();
	return hit;
}

/* A fresh cached answer: palloc'd copy of the indicators */
bool
cache_get(CacheScope scope, ObservableClass cls, const char *value,
		  Indicator **indicators, int *n)
{
	bool		hit;

	if (!cache_enabled())
		return false;

	hit = probe(scope, cls, value, indicators, n);
	pg_atomic_fetch_add_u64(hit ? &counters()->hits : &counters()->misses, 1);
	return hit;
}

/*
 * Is there a fresh answer?  Counts neither hit nor miss: a caller that
 * probes before looking up must not count each observable twice.
 */
bool
cache_contains(CacheScope scope, ObservableClass cls, const char *value)
{
	return cache_enabled() && probe(scope, cls, value, NULL, NULL);
}

/* Drop expired entries; if none expired, evict an eighth of the table */
static void
make_room(HTAB *table)
{
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;
	TimestampTz now = GetCurrentTimestamp();
	long		removed = 0;
	long		target = Max(hash_get_num_entries(table) / 8, 1);

	hash_seq_init(&scan, table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		if (entry->expires <= now)
		{
			hash_search(table, &entry->key, HASH_REMOVE, NULL);
			removed++;
		}
	}
	if (removed > 0)
		return;

	hash_seq_init(&scan, table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		hash_search(table, &entry->key, HASH_REMOVE, NULL);
		if (++removed >= target)
		{
			hash_seq_term(&scan);
			break;
		}
	}
	pg_atomic_fetch_add_u64(&counters()->evictions, removed);
}

/* Remember an answer for anomali_ts.cache_ttl */
void
cache_put(CacheScope scope, ObservableClass cls, const char *value,
		  const Indicator *indicators, int n)
{
	HTAB	   *table;
	CacheKey	key;
	CacheEntry *entry;
	long		limit = anomali_cache_entries;

	if (!cache_enabled() || n > CACHE_MAX_INDICATORS)
		return;

	table = cache_table();
	fill_key(&key, scope, cls, value);

	lock_shared(true);
	if (hash_get_num_entries(table) >= limit)
		make_room(table);
	entry = hash_search(table, &key, HASH_ENTER_NULL, NULL);
	if (entry != NULL)
	{
		entry->expires = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													 (int64) anomali_cache_ttl_s * 1000);
		entry->nindicators = n;
		memcpy(entry->indicators, indicators, sizeof(Indicator) * n);
	}
	unlock_shared();

	if (entry != NULL)
		pg_atomic_fetch_add_u64(&counters()->stores, 1);
}

/* Sizes and counters */
void
cache_stats(CacheStats *stats)
{
	HTAB	   *table = cache_table();
	CacheShared *c = counters();

	lock_shared(false);
	stats->entries = hash_get_num_entries(table);
	unlock_shared();

	stats->shared = shared_table != NULL;
	stats->capacity = anomali_cache_entries;
	stats->hits = (long) pg_atomic_read_u64(&c->hits);
	stats->misses = (long) pg_atomic_read_u64(&c->misses);
	stats->stores = (long) pg_atomic_read_u64(&c->stores);
	stats->evictions = (long) pg_atomic_read_u64(&c->evictions);
}

/* Remove every entry and reset the counters; returns entries removed */
long
cache_clear(void)
{
	HTAB	   *table = cache_table();
	CacheShared *c = counters();
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;
	long		removed = 0;

	lock_shared(true);
	hash_seq_init(&scan, table);
	while ((entry = hash_seq_search(&scan)) != NULL)
	{
		hash_search(table, &entry->key, HASH_REMOVE, NULL);
		removed++;
	}
	unlock_shared();

	pg_atomic_write_u64(&c->hits, 0);
	pg_atomic_write_u64(&c->misses, 0);
	pg_atomic_write_u64(&c->stores, 0);
	pg_atomic_write_u64(&c->evictions, 0);
	return removed;
}

/* Visit every entry, under the shared lock */
void
cache_scan(CacheVisit visit, void *ctx)
{
	HTAB	   *table = cache_table();
	HASH_SEQ_STATUS scan;
	CacheEntry *entry;
	TimestampTz now = GetCurrentTimestamp();

	lock_shared(false);
	PG_TRY();
	{
		hash_seq_init(&scan, table);
		while ((entry = hash_seq_search(&scan)) != NULL)
		{
			CacheScope	scope = {entry->key.database, entry->key.account};

			if (entry->expires <= now)
				continue;
			visit(scope, (ObservableClass) entry->key.cls,
				  entry->key.value, entry->nindicators,
				  (double) (entry->expires - now) / 1000000.0, ctx);
		}
	}
	PG_FINALLY();
	{
		unlock_shared();
	}
	PG_END_TRY();
}
