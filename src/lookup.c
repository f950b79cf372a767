/*
 * lookup.c
 *		Asking ThreatStream about observables.
 *
 * Observables not served by the cache are split into chunks of
 * anomali_ts.batch_size.  A chunk of one is asked with value= and type=; a
 * larger chunk with a q= filter (value="a" OR value="b" ...).  Only values
 * the classifier produced ever reach q=, and they are checked once more
 * against a strict character set before quoting, so nothing can be spliced
 * into the filter.  Every returned object is matched back to what was asked
 * (verdict.c decides what "the same value" means); anything else is counted
 * and ignored.
 *
 * All chunks of a call are sent together (http_client.c runs them
 * concurrently); 429 and 5xx answers are retried up to anomali_ts.max_retries
 * times after an interruptible wait; full pages are followed through
 * meta.next, which must stay on the same origin.  A chunk that fails marks
 * only its own observables as errors.
 *
 * A per-integration circuit breaker stops sending after
 * anomali_ts.breaker_failures consecutive failed chunks, for
 * anomali_ts.breaker_cooldown.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "cache.h"
#include "http_client.h"
#include "lookup.h"
#include "settings.h"
#include "ts_response.h"

#define PAGE_LIMIT 1000

/* One request's worth of observables and where it stands */
typedef struct Chunk
{
	int		   *items;			/* indexes into the caller's items */
	int			nitems;
	char	   *url;			/* the next URL to fetch */
	int			attempts;		/* of the current page */
	int			pages;
	bool		finished;
	char	   *error;			/* set when the chunk failed */
	int			wait_ms;		/* before the next attempt */
} Chunk;

/* Circuit breaker state of one integration, kept per backend */
typedef struct Breaker
{
	int			integration_id;
	int			failures;
	TimestampTz open_until;
} Breaker;

#define MAX_BREAKERS 32
static Breaker breakers[MAX_BREAKERS];
static int	nbreakers = 0;

static Breaker *breaker_for(int integration_id);
static void breaker_record(Breaker *b, bool success);
static bool q_value_is_safe(const char *value);
static void append_encoded(StringInfo buf, const char *s);
static char *chunk_url(const TsEndpoint *ep, LookupItem *items, Chunk *chunk);
static char *resolve_next(const TsEndpoint *ep, const char *next);
static void absorb_page(LookupItem *items, Chunk *chunk, TsPage *page,
						List **found, LookupStats *stats);
static void handle_answer(const TsEndpoint *ep, LookupItem *items, Chunk *chunk,
						  HttpRequest *req, TsPage *page, List **found,
						  List **raw, LookupStats *stats);
static void wait_ms(int ms);

/* Find or create the breaker of an integration */
static Breaker *
breaker_for(int integration_id)
{
	for (int i = 0; i < nbreakers; i++)
		if (breakers[i].integration_id == integration_id)
			return &breakers[i];
	if (nbreakers == MAX_BREAKERS)
		nbreakers = 0;			/* forget the oldest; only a heuristic */
	breakers[nbreakers].integration_id = integration_id;
	breakers[nbreakers].failures = 0;
	breakers[nbreakers].open_until = 0;
	return &breakers[nbreakers++];
}

/* Count a chunk's outcome; open the breaker after too many failures */
static void
breaker_record(Breaker *b, bool success)
{
	if (success)
	{
		b->failures = 0;
		return;
	}
	b->failures++;
	if (anomali_breaker_failures > 0 && b->failures >= anomali_breaker_failures)
		b->open_until = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													anomali_breaker_cooldown_ms);
}

/* Circuit breaker state of one integration, for anomali_health() */
const char *
lookup_breaker_state(int integration_id)
{
	for (int i = 0; i < nbreakers; i++)
	{
		if (breakers[i].integration_id != integration_id)
			continue;
		if (breakers[i].open_until > GetCurrentTimestamp())
			return "open";
		return breakers[i].failures > 0 ? "failing" : "closed";
	}
	return "closed";
}

/*
 * Values that may be quoted into q=: the classifier only produces these
 * characters, and this second check keeps it that way whatever changes there.
 */
static bool
q_value_is_safe(const char *value)
{
	if (*value == '\0')
		return false;
	for (const char *c = value; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			  *c == '.' || *c == ':' || *c == '-' || *c == '_'))
			return false;
	return true;
}

/* Percent-encode a query-string value */
static void
append_encoded(StringInfo buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *c = (const unsigned char *) s; *c; c++)
	{
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			(*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~')
			appendStringInfoChar(buf, (char) *c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*c >> 4]);
			appendStringInfoChar(buf, hex[*c & 15]);
		}
	}
}

/* The first URL of a chunk */
static char *
chunk_url(const TsEndpoint *ep, LookupItem *items, Chunk *chunk)
{
	StringInfoData url;
	StringInfoData q;

	initStringInfo(&url);
	appendStringInfo(&url, "%s?limit=%d", ep->base_url, PAGE_LIMIT);

	if (chunk->nitems == 1)
	{
		LookupItem *item = &items[chunk->items[0]];

		appendStringInfoString(&url, "&value=");
		append_encoded(&url, item->value);
		appendStringInfoString(&url, "&type=");
		append_encoded(&url, observable_api_type(item->cls));
		return url.data;
	}

	initStringInfo(&q);
	for (int i = 0; i < chunk->nitems; i++)
	{
		const char *value = items[chunk->items[i]].value;

		if (!q_value_is_safe(value))
			elog(ERROR, "observable \"%s\" is not safe to quote into q=", value);
		appendStringInfo(&q, "%svalue=\"%s\"", i > 0 ? " OR " : "", value);
	}
	appendStringInfoString(&url, "&q=");
	append_encoded(&url, q.data);
	pfree(q.data);
	return url.data;
}

/*
 * Turn meta.next into a URL on the same origin as the integration.  A
 * relative path is joined to the origin; an absolute URL must start with
 * the origin.  Anything else is refused (NULL), so a hostile answer cannot
 * send the key to another host.
 */
static char *
resolve_next(const TsEndpoint *ep, const char *next)
{
	const char *scheme_end = strstr(ep->base_url, "://");
	const char *path;
	size_t		origin_len;

	if (scheme_end == NULL)
		return NULL;
	path = strchr(scheme_end + 3, '/');
	origin_len = path ? (size_t) (path - ep->base_url) : strlen(ep->base_url);

	if (next[0] == '/' && next[1] != '/')
		return psprintf("%.*s%s", (int) origin_len, ep->base_url, next);
	if (strncmp(next, ep->base_url, origin_len) == 0 && next[origin_len] == '/')
		return pstrdup(next);
	return NULL;
}

/* Attach a page's indicators to the chunk's observables they designate */
static void
absorb_page(LookupItem *items, Chunk *chunk, TsPage *page, List **found,
			LookupStats *stats)
{
	for (int i = 0; i < page->count; i++)
	{
		TsIndicator *ti = &page->indicators[i];
		char		canon[OBSERVABLE_MAX_LEN];
		ObservableClass rcls;
		bool		matched = false;

		/*
		 * An indicator's value is compared as it is: a URL indicator
		 * ("http://198.51.100.7/") is not an indicator for its host.
		 */
		rcls = strstr(ti->value, "://") != NULL ? OBS_UNSUPPORTED :
			observable_classify(ti->value, strlen(ti->value), canon);

		for (int k = 0; k < chunk->nitems; k++)
		{
			int			idx = chunk->items[k];
			Indicator  *ind;

			if (!verdict_value_matches(items[idx].cls, items[idx].value,
									   rcls, canon, ti->type))
				continue;

			ind = palloc(sizeof(Indicator));
			ind->status = indicator_status_from_name(ti->status);
			ind->severity = severity_from_name(ti->severity);
			ind->confidence = ti->confidence;
			strlcpy(ind->itype, ti->itype, sizeof(ind->itype));
			found[idx] = lappend(found[idx], ind);
			matched = true;
		}
		if (!matched)
			stats->unexpected_values++;
	}
}

/* Decide what one HTTP answer means for its chunk */
static void
handle_answer(const TsEndpoint *ep, LookupItem *items, Chunk *chunk,
			  HttpRequest *req, TsPage *page, List **found, List **raw,
			  LookupStats *stats)
{
	long		status = req->status;
	TsParseResult parsed;

	if (req->failure != HTTP_OK)
	{
		chunk->error = psprintf("request to ThreatStream failed: %s", req->error);
		return;
	}

	if (status == 429 || status >= 500)
	{
		if (chunk->attempts <= anomali_max_retries)
		{
			int			ms = req->retry_after_s >= 0 ?
				req->retry_after_s * 1000 : 250 * (1 << Min(chunk->attempts, 8));

			chunk->wait_ms = Min(ms, anomali_retry_max_wait_ms);
			stats->retries++;
			return;				/* stays unfinished: tried again */
		}
		chunk->error = status == 429 ?
			psprintf("ThreatStream is rate limiting (HTTP 429) after %d retries",
					 anomali_max_retries) :
			psprintf("ThreatStream failed with HTTP %ld after %d retries",
					 status, anomali_max_retries);
		return;
	}
	if (status == 401)
	{
		chunk->error = pstrdup("ThreatStream refused the credentials (HTTP 401)");
		return;
	}
	if (status == 403)
	{
		chunk->error = pstrdup("ThreatStream refused access: the account lacks permission (HTTP 403)");
		return;
	}
	if (status != 200)
	{
		chunk->error = psprintf("ThreatStream answered with unexpected HTTP status %ld", status);
		return;
	}

	parsed = ts_parse_page(req->body, req->body_len, page);
	if (parsed != TS_PARSE_OK)
	{
		chunk->error = pstrdup(ts_parse_result_message(parsed));
		return;
	}
	if (raw != NULL)
		*raw = lappend(*raw, req->body);

	absorb_page(items, chunk, page, found, stats);
	chunk->pages++;
	chunk->attempts = 0;

	if (page->next_unusable)
	{
		chunk->error = psprintf("answer incomplete: ThreatStream's next-page link cannot be followed (not a string, not text, or longer than %d bytes)",
								TS_NEXT_MAX - 1);
		return;
	}
	if (page->next[0] == '\0')
	{
		chunk->finished = true;
		return;
	}
	if (chunk->pages >= anomali_max_pages)
	{
		chunk->error = psprintf("answer incomplete: more than %d pages of indicators",
								anomali_max_pages);
		return;
	}
	chunk->url = resolve_next(ep, page->next);
	if (chunk->url == NULL)
		chunk->error = pstrdup("ThreatStream's next-page link points to another host; refused");
}

/* Sleep without ignoring cancel requests */
static void
wait_ms(int ms)
{
	if (ms <= 0)
		return;
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/* Observables sent in one request */
int
lookup_chunk_size(void)
{
	return Max(anomali_batch_size, 1);
}

/* Would lookup_run serve the observable from the cache now? */
bool
lookup_cached(const TsEndpoint *ep, ObservableClass cls, const char *value)
{
	return cache_contains(ep->cache_scope, cls, value);
}

/* Does lookup_run keep its answers for later calls? */
bool
lookup_keeps_answers(void)
{
	return cache_enabled();
}

/* Look up items against one endpoint */
void
lookup_run(const TsEndpoint *ep, LookupItem *items, int nitems,
		   List **raw, LookupStats *stats)
{
	int			batch = lookup_chunk_size();
	int		   *pending = palloc(sizeof(int) * Max(nitems, 1));
	int			npending = 0;
	Chunk	   *chunks;
	int			nchunks;
	List	  **found;
	TsPage		page;
	Breaker    *breaker = breaker_for(ep->integration_id);

	/* Serve what the cache can */
	for (int i = 0; i < nitems; i++)
	{
		items[i].ok = false;
		items[i].from_cache = false;
		items[i].error = NULL;
		items[i].nindicators = 0;
		items[i].indicators = NULL;

		/* Raw answers are wanted: ask ThreatStream rather than the cache */
		if (raw == NULL &&
			cache_get(ep->cache_scope, items[i].cls, items[i].value,
					  &items[i].indicators, &items[i].nindicators))
		{
			items[i].ok = true;
			items[i].from_cache = true;
			stats->cache_hits++;
		}
		else
			pending[npending++] = i;
	}
	if (npending == 0)
		return;

	if (breaker->open_until > GetCurrentTimestamp())
	{
		for (int i = 0; i < npending; i++)
			items[pending[i]].error =
				psprintf("not sent: ThreatStream failed %d times in a row; the circuit breaker is open",
						 breaker->failures);
		return;
	}

	nchunks = (npending + batch - 1) / batch;
	chunks = palloc0(sizeof(Chunk) * nchunks);
	for (int c = 0; c < nchunks; c++)
	{
		chunks[c].items = &pending[c * batch];
		chunks[c].nitems = Min(batch, npending - c * batch);
		chunks[c].url = chunk_url(ep, items, &chunks[c]);
	}

	found = palloc0(sizeof(List *) * nitems);
	page.capacity = PAGE_LIMIT;
	page.indicators = palloc(sizeof(TsIndicator) * PAGE_LIMIT);

	for (;;)
	{
		HttpRequest *reqs = palloc0(sizeof(HttpRequest) * nchunks);
		int		   *owner = palloc(sizeof(int) * nchunks);
		int			nreqs = 0;
		int			longest_wait = 0;
		int			round_cap;

		/* The breaker may have opened during this call: stop sending */
		if (breaker->open_until > GetCurrentTimestamp())
		{
			for (int c = 0; c < nchunks; c++)
				if (!chunks[c].finished && chunks[c].error == NULL)
					chunks[c].error =
						psprintf("not sent: ThreatStream failed %d times in a row; the circuit breaker is open",
								 breaker->failures);
		}

		/*
		 * Against a healthy remote every chunk is sent at once (the client
		 * keeps max_concurrency in flight); once requests fail, a round is
		 * one group of concurrent requests, so the breaker can stop the rest.
		 */
		round_cap = breaker->failures > 0 ? Max(anomali_max_concurrency, 1) : nchunks;

		for (int c = 0; c < nchunks && nreqs < round_cap; c++)
		{
			if (chunks[c].finished || chunks[c].error != NULL)
				continue;
			longest_wait = Max(longest_wait, chunks[c].wait_ms);
			chunks[c].wait_ms = 0;
			chunks[c].attempts++;
			reqs[nreqs].url = chunks[c].url;
			reqs[nreqs].authorization = ep->authorization;
			reqs[nreqs].ssl_verify = ep->ssl_verify;
			owner[nreqs++] = c;
		}
		if (nreqs == 0)
			break;

		wait_ms(longest_wait);
		http_perform(reqs, nreqs);
		stats->requests += nreqs;

		for (int r = 0; r < nreqs; r++)
		{
			Chunk	   *chunk = &chunks[owner[r]];

			handle_answer(ep, items, chunk, &reqs[r], &page, found, raw, stats);
			if (chunk->finished || chunk->error != NULL)
				breaker_record(breaker, chunk->error == NULL);
		}
	}

	/* Hand results to the items, and remember the clean answers */
	for (int c = 0; c < nchunks; c++)
	{
		for (int k = 0; k < chunks[c].nitems; k++)
		{
			int			idx = chunks[c].items[k];
			LookupItem *item = &items[idx];
			ListCell   *lc;
			int			n = 0;

			/* A failed chunk still hands over what did arrive (see verdict.c) */
			item->nindicators = list_length(found[idx]);
			item->indicators = palloc(sizeof(Indicator) * Max(item->nindicators, 1));
			foreach(lc, found[idx])
				item->indicators[n++] = *(Indicator *) lfirst(lc);
			if (chunks[c].error != NULL)
			{
				item->error = chunks[c].error;
				continue;
			}
			item->ok = true;
			cache_put(ep->cache_scope, item->cls, item->value,
					  item->indicators, item->nindicators);
		}
	}

	pfree(page.indicators);
}

/* The health check: GET <base_url>?limit=1 */
void
lookup_probe(const TsEndpoint *ep, HealthProbe *probe)
{
	HttpRequest req;
	TsPage		page;
	TsIndicator one[1];

	memset(&req, 0, sizeof(req));
	req.url = psprintf("%s?limit=1", ep->base_url);
	req.authorization = ep->authorization;
	req.ssl_verify = ep->ssl_verify;

	http_perform(&req, 1);

	probe->reachable = (req.failure == HTTP_OK);
	probe->http_status = req.status;
	probe->latency_ms = req.elapsed_ms;
	probe->credentials_accepted = false;

	if (req.failure != HTTP_OK)
	{
		probe->message = psprintf("unreachable: %s", req.error);
		return;
	}
	if (req.status == 401)
	{
		probe->message = pstrdup("credentials refused (HTTP 401)");
		return;
	}
	if (req.status == 403)
	{
		probe->message = pstrdup("access refused: the account lacks permission (HTTP 403)");
		return;
	}
	if (req.status != 200)
	{
		probe->message = psprintf("unexpected HTTP status %ld", req.status);
		return;
	}

	page.indicators = one;
	page.capacity = 1;
	if (ts_parse_page(req.body, req.body_len, &page) != TS_PARSE_OK)
	{
		probe->message = pstrdup("reachable, but the answer is not a ThreatStream intelligence response");
		return;
	}
	probe->credentials_accepted = true;
	probe->message = pstrdup("ok");
}
