/*
 * enrich.c
 *		The enrichment step: from events to events with verdicts.
 *
 * Observables are de-duplicated twice: per event and path (one entry per
 * value, reported under each path it appears at), and across the batch
 * (one lookup per value whatever the number of events).  Values that cannot
 * be classified are kept, under their trimmed raw text, as "unsupported";
 * non-public addresses and names are "skipped" unless
 * anomali_ts.skip_non_public is off; values an earlier step found malicious
 * are not looked up again when skip_previously_malicious is set.
 *
 * A batch may also carry look-ahead observables (enrich_batch_add_lookahead):
 * values of events outside the batch, looked up with it only to fill its last
 * request, so that the cache holds them when those events' batch comes.  No
 * event refers to them, so they appear on no event and their failures are
 * reported nowhere (and, like every failure, not cached).
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "mb/pg_wchar.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "created_fields.h"
#include "enrich.h"
#include "integration.h"
#include "observable.h"
#include "settings.h"
#include "verdict.h"

#define UNSUPPORTED_SHOWN 128	/* characters of an unsupported value kept */

/* One unique observable of the batch */
typedef struct BatchObservable
{
	ObservableClass cls;
	char	   *value;
	uint32		hash;
	bool		non_public;
	bool		wanted;			/* some event needs it looked up */
	int			stamp;			/* last (event, path) it was noted for */
	int			counted;		/* last written event that counted it */
	int			item;			/* index into items, or -1 */
	ObservableVerdict verdict;
} BatchObservable;

/* One event of the batch and where its observables are */
typedef struct BatchEvent
{
	Jsonb	   *event;
	int		  **path_obs;		/* per path: indexes into observables */
	int		   *path_nobs;
	List	   *previously_malicious;
} BatchEvent;

struct EnrichBatch
{
	const EnrichConfig *config;
	const TsEndpoint *endpoint;

	BatchEvent *events;
	int			nevents;
	int			events_cap;

	BatchObservable *observables;
	int			nobservables;
	int			observables_cap;
	int		   *slots;			/* open-addressing table of observable indexes */
	int			nslots;

	int			stamps;			/* (event, path) pairs walked so far */
	int			writes;			/* events written so far */
	MemoryContext scratch;		/* what writing one event needs only briefly */

	int			nlookahead;		/* observables added for later batches */
	int			uncached;		/* wanted, not cached; -1 until counted */

	LookupItem *items;
	int			nitems;
	List	   *raw;
	LookupStats stats;
	bool		looked_up;
};

static int	find(EnrichBatch *b, ObservableClass cls, const char *value,
				 uint32 *hash, uint32 *slot);
static int	intern(EnrichBatch *b, ObservableClass cls, const char *value);
static void grow_slots(EnrichBatch *b);
static bool canonical(const char *str, int len, ObservableClass *cls,
					  char *canon);
static void collect_string(const char *str, int len, void *ctx);
static void lookahead_string(const char *str, int len, void *ctx);
static bool was_malicious(List *values, const char *value);
static bool needs_lookup(ObservableClass cls, bool non_public,
						 const char *value, List *previously_malicious);
static void outcome_of(EnrichBatch *b, BatchEvent *ev, int obs,
					   ObservableOutcome *out, StepOutcome *so);

/* Start a batch for a step */
EnrichBatch *
enrich_batch_begin(const EnrichConfig *config)
{
	EnrichBatch *b = palloc0(sizeof(EnrichBatch));

	b->config = config;
	b->endpoint = integration_endpoint(config->integration, "integration");
	b->events_cap = 8;
	b->events = palloc(sizeof(BatchEvent) * b->events_cap);
	b->observables_cap = 16;
	b->observables = palloc(sizeof(BatchObservable) * b->observables_cap);
	b->nslots = 64;
	b->slots = palloc(sizeof(int) * b->nslots);
	memset(b->slots, -1, sizeof(int) * b->nslots);
	b->uncached = -1;
	return b;
}

/* Double the hash table and re-insert every observable */
static void
grow_slots(EnrichBatch *b)
{
	b->nslots *= 2;
	b->slots = repalloc(b->slots, sizeof(int) * b->nslots);
	memset(b->slots, -1, sizeof(int) * b->nslots);
	for (int i = 0; i < b->nobservables; i++)
	{
		uint32		s = b->observables[i].hash & (b->nslots - 1);

		while (b->slots[s] >= 0)
			s = (s + 1) & (b->nslots - 1);
		b->slots[s] = i;
	}
}

/* The index of an observable in the batch and its slot; -1 and a free slot */
static int
find(EnrichBatch *b, ObservableClass cls, const char *value, uint32 *hash,
	 uint32 *slot)
{
	uint32		h = hash_bytes((const unsigned char *) value, strlen(value)) ^ (uint32) cls;
	uint32		s = h & (b->nslots - 1);

	*hash = h;
	while (b->slots[s] >= 0)
	{
		BatchObservable *o = &b->observables[b->slots[s]];

		if (o->hash == h && o->cls == cls && strcmp(o->value, value) == 0)
			break;
		s = (s + 1) & (b->nslots - 1);
	}
	*slot = s;
	return b->slots[s];
}

/* The index of an observable in the batch, adding it if new */
static int
intern(EnrichBatch *b, ObservableClass cls, const char *value)
{
	uint32		h;
	uint32		s;
	int			idx = find(b, cls, value, &h, &s);
	BatchObservable *o;

	if (idx >= 0)
		return idx;

	if (b->nobservables == b->observables_cap)
	{
		b->observables_cap *= 2;
		b->observables = repalloc(b->observables,
								  sizeof(BatchObservable) * b->observables_cap);
	}
	o = &b->observables[b->nobservables];
	memset(o, 0, sizeof(*o));
	o->cls = cls;
	o->value = pstrdup(value);
	o->hash = h;
	o->item = -1;
	o->non_public = cls != OBS_UNSUPPORTED && observable_is_non_public(cls, value);
	b->slots[s] = b->nobservables;

	if (++b->nobservables * 2 > b->nslots)
		grow_slots(b);
	return b->nobservables - 1;
}

typedef struct CollectCtx
{
	EnrichBatch *batch;
	int			stamp;
	int		   *obs;
	int			nobs;
	int			cap;
} CollectCtx;

/* Classify a string into canon; false when it is no observable at all */
static bool
canonical(const char *str, int len, ObservableClass *cls, char *canon)
{
	int			start = 0;

	*cls = observable_classify(str, len, canon);
	if (*cls != OBS_UNSUPPORTED)
		return true;

	/* Keep the trimmed text, shortened, so the report shows what it was */
	while (start < len && isspace((unsigned char) str[start]))
		start++;
	while (len > start && isspace((unsigned char) str[len - 1]))
		len--;
	if (len == start)
		return false;			/* empty or blank */
	snprintf(canon, OBSERVABLE_MAX_LEN, "%.*s",
			 Min(len - start, UNSUPPORTED_SHOWN), str + start);
	if (!pg_verifymbstr(canon, strlen(canon), true))
		strlcpy(canon, "(invalid text)", OBSERVABLE_MAX_LEN);
	return true;
}

/* Field path callback: classify a string and note it for the path */
static void
collect_string(const char *str, int len, void *arg)
{
	CollectCtx *ctx = arg;
	char		canon[OBSERVABLE_MAX_LEN];
	ObservableClass cls;
	int			idx;

	if (!canonical(str, len, &cls, canon))
		return;

	/* Once per path: the stamp says whether this walk already noted it */
	idx = intern(ctx->batch, cls, canon);
	if (ctx->batch->observables[idx].stamp == ctx->stamp)
		return;
	ctx->batch->observables[idx].stamp = ctx->stamp;
	if (ctx->nobs == ctx->cap)
	{
		ctx->cap = ctx->cap ? ctx->cap * 2 : 4;
		ctx->obs = ctx->obs ? repalloc(ctx->obs, sizeof(int) * ctx->cap) :
			palloc(sizeof(int) * ctx->cap);
	}
	ctx->obs[ctx->nobs++] = idx;
}

/* Is value among those an earlier step found malicious? */
static bool
was_malicious(List *values, const char *value)
{
	ListCell   *lc;

	foreach(lc, values)
		if (strcmp(lfirst(lc), value) == 0)
			return true;
	return false;
}

/*
 * Does an event's enrichment ask ThreatStream about this observable?  Not
 * when it is unsupported, skipped as non-public, or already found malicious
 * by an earlier step (outcome_of() gives each of those its reason).
 */
static bool
needs_lookup(ObservableClass cls, bool non_public, const char *value,
			 List *previously_malicious)
{
	if (cls == OBS_UNSUPPORTED)
		return false;
	if (non_public && anomali_skip_non_public)
		return false;
	return !was_malicious(previously_malicious, value);
}

/* Add an event; false when it is not a JSON object */
bool
enrich_batch_add(EnrichBatch *b, Jsonb *event)
{
	const EnrichConfig *cfg = b->config;
	BatchEvent *ev;

	if (!JB_ROOT_IS_OBJECT(event) || JB_ROOT_IS_SCALAR(event))
		return false;

	/* Look-ahead observables must stay ones that no event refers to */
	Assert(b->nlookahead == 0);

	if (b->nevents == b->events_cap)
	{
		b->events_cap *= 2;
		b->events = repalloc(b->events, sizeof(BatchEvent) * b->events_cap);
	}
	ev = &b->events[b->nevents++];
	ev->event = event;
	ev->path_obs = palloc(sizeof(int *) * cfg->npaths);
	ev->path_nobs = palloc(sizeof(int) * cfg->npaths);
	ev->previously_malicious = cfg->skip_previously_malicious ?
		created_fields_previously_malicious(event) : NIL;

	for (int p = 0; p < cfg->npaths; p++)
	{
		CollectCtx	ctx = {b, ++b->stamps, NULL, 0, 0};

		field_path_walk(&event->root, cfg->paths[p], collect_string, &ctx);
		ev->path_obs[p] = ctx.obs;
		ev->path_nobs[p] = ctx.nobs;

		for (int i = 0; i < ctx.nobs; i++)
		{
			BatchObservable *o = &b->observables[ctx.obs[i]];

			if (needs_lookup(o->cls, o->non_public, o->value,
							 ev->previously_malicious))
				o->wanted = true;
		}
	}
	return true;
}

typedef struct LookaheadCtx
{
	EnrichBatch *batch;
	List	   *previously_malicious;	/* of the event walked */
	int			max;
	int			added;
} LookaheadCtx;

/*
 * Field path callback of a look-ahead event: add the string as a wanted
 * observable if the event's own enrichment would ask ThreatStream about it
 * and the batch does not already ask, or the cache already know.
 */
static void
lookahead_string(const char *str, int len, void *arg)
{
	LookaheadCtx *ctx = arg;
	EnrichBatch *b = ctx->batch;
	char		canon[OBSERVABLE_MAX_LEN];
	ObservableClass cls;
	bool		non_public;
	uint32		h;
	uint32		s;
	int			idx;

	if (ctx->added >= ctx->max || !canonical(str, len, &cls, canon))
		return;
	non_public = cls != OBS_UNSUPPORTED && observable_is_non_public(cls, canon);
	if (!needs_lookup(cls, non_public, canon, ctx->previously_malicious))
		return;
	if (find(b, cls, canon, &h, &s) >= 0 ||
		lookup_cached(b->endpoint, cls, canon))
		return;

	idx = intern(b, cls, canon);
	b->observables[idx].wanted = true;
	b->nlookahead++;
	ctx->added++;
}

/* Observables the batch's lookup will ask ThreatStream about */
static int
count_uncached(EnrichBatch *b)
{
	int			n = 0;

	for (int i = 0; i < b->nobservables; i++)
	{
		BatchObservable *o = &b->observables[i];

		if (o->wanted && !lookup_cached(b->endpoint, o->cls, o->value))
			n++;
	}
	return n;
}

/* Observables the batch lacks to fill its last request, for look-ahead */
int
enrich_batch_lookahead_room(EnrichBatch *b)
{
	int			chunk = lookup_chunk_size();

	Assert(!b->looked_up);

	/*
	 * Extra answers help only if a later batch takes them from the cache,
	 * which it does not read when raw responses are saved.
	 */
	if (b->config->save_raw_response || !lookup_keeps_answers())
		return 0;
	if (b->uncached < 0)
		b->uncached = count_uncached(b);
	if (b->uncached == 0)
		return 0;				/* no request at all: nothing to fill */
	return (chunk - b->uncached % chunk) % chunk;
}

/* Add up to max observables of an event outside the batch, for the cache */
int
enrich_batch_add_lookahead(EnrichBatch *b, Jsonb *event, int max)
{
	const EnrichConfig *cfg = b->config;
	LookaheadCtx ctx = {b, NIL, max, 0};

	Assert(!b->looked_up);
	if (max <= 0 || !JB_ROOT_IS_OBJECT(event) || JB_ROOT_IS_SCALAR(event))
		return 0;
	if (cfg->skip_previously_malicious)
		ctx.previously_malicious = created_fields_previously_malicious(event);

	for (int p = 0; p < cfg->npaths && ctx.added < max; p++)
		field_path_walk(&event->root, cfg->paths[p], lookahead_string, &ctx);

	/* Each one added was found uncached */
	if (b->uncached >= 0)
		b->uncached += ctx.added;
	return ctx.added;
}

/* Look up every wanted observable of the batch, then decide verdicts */
void
enrich_batch_lookup(EnrichBatch *b)
{
	const EnrichConfig *cfg = b->config;

	b->items = palloc0(sizeof(LookupItem) * Max(b->nobservables, 1));
	for (int i = 0; i < b->nobservables; i++)
	{
		BatchObservable *o = &b->observables[i];

		if (!o->wanted)
			continue;
		o->item = b->nitems;
		b->items[b->nitems].cls = o->cls;
		b->items[b->nitems].value = o->value;
		b->nitems++;
	}

	if (b->nitems > 0)
		lookup_run(b->endpoint, b->items, b->nitems,
				   cfg->save_raw_response ? &b->raw : NULL, &b->stats);

	for (int i = 0; i < b->nobservables; i++)
	{
		BatchObservable *o = &b->observables[i];
		LookupItem *item;

		if (o->item < 0)
			continue;
		item = &b->items[o->item];
		if (item->ok)
			verdict_decide(item->indicators, item->nindicators,
						   cfg->confidence_threshold, cfg->positive_hits,
						   &o->verdict);
		else
			verdict_decide_failed(item->indicators, item->nindicators,
								  cfg->confidence_threshold, cfg->positive_hits,
								  &o->verdict);
	}
	b->looked_up = true;
}

/* What the step says about observable obs of event ev */
static void
outcome_of(EnrichBatch *b, BatchEvent *ev, int obs, ObservableOutcome *out,
		   StepOutcome *so)
{
	BatchObservable *o = &b->observables[obs];

	memset(out, 0, sizeof(*out));
	out->value = o->value;
	out->type = observable_class_name(o->cls);

	if (o->cls == OBS_UNSUPPORTED)
	{
		out->result = VERDICT_SKIPPED;
		out->reason = "unsupported";
	}
	else if (o->non_public && anomali_skip_non_public)
	{
		out->result = VERDICT_SKIPPED;
		out->reason = "non_public";
	}
	else if (was_malicious(ev->previously_malicious, o->value))
	{
		out->result = VERDICT_MALICIOUS;
		out->reason = "previously_malicious";
	}
	else if (o->item >= 0 && b->looked_up)
	{
		LookupItem *item = &b->items[o->item];

		out->result = o->verdict.result;
		out->error = item->ok ? NULL : item->error;
		out->verdict = item->ok || o->verdict.result == VERDICT_MALICIOUS ?
			&o->verdict : NULL;
		out->indicators = item->indicators;
		out->nindicators = item->nindicators;
		if (so != NULL)
		{
			so->looked_up += item->ok ? 1 : 0;
			so->from_cache += item->from_cache ? 1 : 0;
		}
	}
	else
	{
		out->result = VERDICT_UNKNOWN;
		out->reason = "pending";
	}
}

/* Build the outcome of event i and write it */
static Jsonb *
write_event(EnrichBatch *b, int i, bool pending, const QueueState *queue)
{
	const EnrichConfig *cfg = b->config;
	BatchEvent *ev = &b->events[i];
	StepOutcome so;
	int			write = ++b->writes;
	MemoryContext caller = CurrentMemoryContext;
	Jsonb	   *written;

	/*
	 * Everything but the event itself is garbage once it is written: build
	 * it in a context reset per event, so a batch of many rows does not
	 * keep (and fault in) megabytes of outcomes and JsonbValue trees.
	 */
	if (b->scratch == NULL)
		b->scratch = AllocSetContextCreate(GetMemoryChunkContext(b),
										   "anomali_ts event",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(b->scratch);

	memset(&so, 0, sizeof(so));
	so.config = cfg;
	so.pending = pending;
	if (queue != NULL)
	{
		so.pending_step = queue->step;
		so.attempts = queue->attempts;
		so.retry_at = queue->retry_at;
		so.queued_at = queue->queued_at;
	}
	so.npaths = cfg->npaths;
	so.paths = palloc(sizeof(PathOutcome) * cfg->npaths);
	so.raw = b->raw;

	for (int p = 0; p < cfg->npaths; p++)
	{
		PathOutcome *po = &so.paths[p];

		po->path = cfg->paths[p]->text;
		po->nobservables = ev->path_nobs[p];
		po->observables = palloc(sizeof(ObservableOutcome) * Max(po->nobservables, 1));

		for (int k = 0; k < po->nobservables; k++)
		{
			int			obs = ev->path_obs[p][k];
			ObservableOutcome *out = &po->observables[k];

			/* Counts are per unique observable of the event */
			if (b->observables[obs].counted == write)
			{
				outcome_of(b, ev, obs, out, NULL);
				continue;
			}
			b->observables[obs].counted = write;
			outcome_of(b, ev, obs, out, &so);
			so.observables++;
			switch (out->result)
			{
				case VERDICT_MALICIOUS:
					so.malicious++;
					break;
				case VERDICT_NOT_MALICIOUS:
					so.not_malicious++;
					break;
				case VERDICT_ERROR:
					so.errors++;
					break;
				case VERDICT_SKIPPED:
					so.skipped++;
					break;
				case VERDICT_UNKNOWN:
					break;
			}
		}
	}

	written = created_fields_write(ev->event, &so);
	MemoryContextSwitchTo(caller);
	written = (Jsonb *) datumCopy(PointerGetDatum(written), false, -1);
	MemoryContextReset(b->scratch);
	return written;
}

/* The i-th added event with the step's created fields */
Jsonb *
enrich_batch_result(EnrichBatch *b, int i)
{
	Assert(b->looked_up);
	return write_event(b, i, false, NULL);
}

/* The i-th event, queued for the background worker or finished by it */
Jsonb *
enrich_batch_queued(EnrichBatch *b, int i, const QueueState *queue, bool pending)
{
	Assert(pending || b->looked_up);
	return write_event(b, i, pending, queue);
}

/* True when any observable of event i ended as error */
bool
enrich_batch_has_error(EnrichBatch *b, int i)
{
	return enrich_batch_first_error(b, i) != NULL;
}

/* The first error message of event i, or NULL */
const char *
enrich_batch_first_error(EnrichBatch *b, int i)
{
	BatchEvent *ev = &b->events[i];

	for (int p = 0; p < b->config->npaths; p++)
		for (int k = 0; k < ev->path_nobs[p]; k++)
		{
			BatchObservable *o = &b->observables[ev->path_obs[p][k]];

			if (o->item >= 0 && !b->items[o->item].ok)
				return b->items[o->item].error;
		}
	return NULL;
}

/* Unique observables of the batch's events (look-ahead ones not counted) */
int
enrich_batch_observables(EnrichBatch *b)
{
	return b->nobservables - b->nlookahead;
}

/* Requests, cache hits and failures of the batch */
const LookupStats *
enrich_batch_stats(EnrichBatch *b)
{
	return &b->stats;
}

/* Enrich one event */
Jsonb *
enrich_event(Jsonb *event, const EnrichConfig *config)
{
	EnrichBatch *b = enrich_batch_begin(config);

	if (!enrich_batch_add(b, event))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("event must be a JSON object"),
				 errdetail("anomali_enrich() writes its verdict under \"arcanna\" at the top level of the event.")));
	enrich_batch_lookup(b);
	return enrich_batch_result(b, 0);
}
