/*
 * http_client.c
 *		The HTTP client: libcurl inside a backend.
 *
 * libcurl is initialised lazily on first use in the backend (never in the
 * postmaster) and released by an on_proc_exit callback.  Transfers run on a
 * multi handle driven by our own loop, rather than curl_easy_perform, so the
 * loop can look at PostgreSQL's pending interrupts every POLL_MS without
 * raising from inside a libcurl callback: when a cancel or statement timeout
 * is pending, every transfer is removed, buffers are freed, and only then is
 * CHECK_FOR_INTERRUPTS() called, so the user sees PostgreSQL's own message
 * and SQLSTATE 57014.
 *
 * Response bodies are collected in malloc'd buffers (libcurl callbacks must
 * not palloc: palloc can raise) and copied into the caller's memory context
 * once a transfer has finished.  The Authorization header lives in a
 * curl_slist that is wiped before it is freed.
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/wait_event.h"

#include "http_client.h"
#include "settings.h"

/* How often the transfer loop looks at pending interrupts */
#define POLL_MS 50

#define MAX_SLOTS 64

/* One transfer in flight: its easy handle and the answer collected so far */
typedef struct Slot
{
	CURL	   *easy;			/* kept across requests for reuse */
	struct curl_slist *headers;
	HttpRequest *request;		/* NULL when the slot is free */
	char	   *buf;			/* malloc'd body */
	size_t		len;
	size_t		cap;
	size_t		limit;
	bool		too_large;
	int			retry_after_s;
	char		errbuf[CURL_ERROR_SIZE];
} Slot;

static bool curl_ready = false;
static CURLM *multi = NULL;
static Slot slots[MAX_SLOTS];
static long connections_opened = 0;
static long requests_sent = 0;

static void http_init(void);
static void http_exit(int code, Datum arg);
static size_t write_body(char *data, size_t size, size_t nmemb, void *ctx);
static size_t read_header(char *data, size_t size, size_t nmemb, void *ctx);
static void slot_start(Slot *slot, HttpRequest *request);
static void slot_finish(Slot *slot, CURLcode code);
static void slot_release(Slot *slot, bool drop_handle);
static void wipe_headers(Slot *slot);
static HttpFailure classify_failure(CURLcode code);

/* Initialise libcurl in this backend on first use */
static void
http_init(void)
{
	if (curl_ready)
		return;

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialise libcurl")));

	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));

	memset(slots, 0, sizeof(slots));
	on_proc_exit(http_exit, (Datum) 0);
	curl_ready = true;
}

/* Release every libcurl object when the backend exits */
static void
http_exit(int code, Datum arg)
{
	for (int i = 0; i < MAX_SLOTS; i++)
		slot_release(&slots[i], true);
	if (multi != NULL)
		curl_multi_cleanup(multi);
	multi = NULL;
	curl_global_cleanup();
	curl_ready = false;
}

/*
 * libcurl write callback: append to the slot's buffer.  Past the size limit
 * it returns 0, which makes libcurl abort the transfer instead of buffering
 * a hostile body.
 */
static size_t
write_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	Slot	   *slot = ctx;
	size_t		n = size * nmemb;

	if (slot->len + n > slot->limit)
	{
		slot->too_large = true;
		return 0;
	}
	if (slot->len + n + 1 > slot->cap)
	{
		size_t		cap = Max(slot->cap * 2, slot->len + n + 1);
		char	   *grown;

		cap = Max(cap, 8192);
		grown = realloc(slot->buf, cap);
		if (grown == NULL)
			return 0;
		slot->buf = grown;
		slot->cap = cap;
	}
	memcpy(slot->buf + slot->len, data, n);
	slot->len += n;
	return n;
}

/* libcurl header callback: remember an integer Retry-After */
static size_t
read_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	Slot	   *slot = ctx;
	size_t		n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && pg_strncasecmp(data, name, sizeof(name) - 1) == 0)
	{
		size_t		i = sizeof(name) - 1;
		long		v = 0;
		bool		digits = false;

		while (i < n && (data[i] == ' ' || data[i] == '\t'))
			i++;
		while (i < n && data[i] >= '0' && data[i] <= '9' && v < 86400)
		{
			v = v * 10 + (data[i] - '0');
			digits = true;
			i++;
		}
		slot->retry_after_s = digits ? (int) v : -1;
	}
	return n;
}

/* Configure a slot's easy handle for one request and add it to the multi */
static void
slot_start(Slot *slot, HttpRequest *request)
{
	char	   *auth;
	size_t		authlen;
	CURLMcode	mc;

	if (slot->easy == NULL)
	{
		slot->easy = curl_easy_init();
		if (slot->easy == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not create a libcurl handle")));
	}
	else
		curl_easy_reset(slot->easy);

	slot->request = request;
	slot->len = 0;
	slot->too_large = false;
	slot->retry_after_s = -1;
	slot->errbuf[0] = '\0';
	slot->limit = (size_t) anomali_max_response_kb * 1024;

	/* The key travels only in this header, built in memory we wipe */
	authlen = strlen("Authorization: ") + strlen(request->authorization) + 1;
	auth = palloc(authlen);
	snprintf(auth, authlen, "Authorization: %s", request->authorization);
	slot->headers = curl_slist_append(NULL, auth);
	explicit_bzero(auth, authlen);
	pfree(auth);
	if (slot->headers != NULL)
		slot->headers = curl_slist_append(slot->headers, "Accept: application/json");
	if (slot->headers == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not build request headers")));

	curl_easy_setopt(slot->easy, CURLOPT_URL, request->url);
	curl_easy_setopt(slot->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, slot->headers);
	curl_easy_setopt(slot->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(slot->easy, CURLOPT_USERAGENT, "anomali_ts/0.1.0");
	curl_easy_setopt(slot->easy, CURLOPT_PROTOCOLS_STR,
					 anomali_allow_plain_http ? "http,https" : "https");
	curl_easy_setopt(slot->easy, CURLOPT_CONNECTTIMEOUT_MS,
					 (long) anomali_connect_timeout_ms);
	curl_easy_setopt(slot->easy, CURLOPT_TIMEOUT_MS,
					 (long) anomali_request_timeout_ms);
	curl_easy_setopt(slot->easy, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t) slot->limit);
	curl_easy_setopt(slot->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(slot->easy, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(slot->easy, CURLOPT_SSL_VERIFYPEER, request->ssl_verify ? 1L : 0L);
	curl_easy_setopt(slot->easy, CURLOPT_SSL_VERIFYHOST, request->ssl_verify ? 2L : 0L);
	/* A proxy only when configured: "" also disables http_proxy & co. */
	curl_easy_setopt(slot->easy, CURLOPT_PROXY,
					 anomali_proxy != NULL ? anomali_proxy : "");
	if (anomali_ca_bundle != NULL && anomali_ca_bundle[0] != '\0')
		curl_easy_setopt(slot->easy, CURLOPT_CAINFO, anomali_ca_bundle);
	curl_easy_setopt(slot->easy, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(slot->easy, CURLOPT_WRITEDATA, slot);
	curl_easy_setopt(slot->easy, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(slot->easy, CURLOPT_HEADERDATA, slot);
	curl_easy_setopt(slot->easy, CURLOPT_ERRORBUFFER, slot->errbuf);
	curl_easy_setopt(slot->easy, CURLOPT_PRIVATE, slot);

	mc = curl_multi_add_handle(multi, slot->easy);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not start a request: %s", curl_multi_strerror(mc))));
	requests_sent++;
}

/* Map a libcurl result to the failure kinds callers distinguish */
static HttpFailure
classify_failure(CURLcode code)
{
	switch (code)
	{
		case CURLE_OK:
			return HTTP_OK;
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_CONNECT:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			return HTTP_FAIL_CONNECT;
		case CURLE_OPERATION_TIMEDOUT:
			return HTTP_FAIL_TIMEOUT;
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
			return HTTP_FAIL_TLS;
		case CURLE_FILESIZE_EXCEEDED:
			return HTTP_FAIL_TOO_LARGE;
		default:
			return HTTP_FAIL_TRANSFER;
	}
}

/* Copy a finished transfer's outcome into its request */
static void
slot_finish(Slot *slot, CURLcode code)
{
	HttpRequest *req = slot->request;
	double		total = 0;
	long		connects = 0;

	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &req->status);
	curl_easy_getinfo(slot->easy, CURLINFO_TOTAL_TIME, &total);
	curl_easy_getinfo(slot->easy, CURLINFO_NUM_CONNECTS, &connects);
	req->elapsed_ms = total * 1000.0;
	req->reused_connection = (connects == 0);
	connections_opened += connects;
	req->retry_after_s = slot->retry_after_s;

	req->failure = classify_failure(code);
	if (slot->too_large || code == CURLE_FILESIZE_EXCEEDED)
	{
		req->failure = HTTP_FAIL_TOO_LARGE;
		snprintf(req->error, HTTP_ERROR_MAX,
				 "response larger than anomali_ts.max_response_size (%d kB)",
				 anomali_max_response_kb);
	}
	else if (code != CURLE_OK)
		snprintf(req->error, HTTP_ERROR_MAX, "%s",
				 slot->errbuf[0] ? slot->errbuf : curl_easy_strerror(code));

	if (req->failure == HTTP_OK)
	{
		req->body = palloc(slot->len + 1);
		if (slot->len > 0)
			memcpy(req->body, slot->buf, slot->len);
		req->body[slot->len] = '\0';
		req->body_len = slot->len;
	}
	else
		req->status = 0;
}

/* Overwrite the Authorization header's bytes, then free the list */
static void
wipe_headers(Slot *slot)
{
	for (struct curl_slist *h = slot->headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(slot->headers);
	slot->headers = NULL;
}

/*
 * Detach a slot from the multi handle and free its request state.  After a
 * transport error or an abort the easy handle is dropped too, since its
 * connection state is unknown.
 */
static void
slot_release(Slot *slot, bool drop_handle)
{
	if (slot->easy != NULL && slot->request != NULL && multi != NULL)
		curl_multi_remove_handle(multi, slot->easy);
	slot->request = NULL;
	if (slot->headers != NULL)
		wipe_headers(slot);
	if (drop_handle && slot->easy != NULL)
	{
		curl_easy_cleanup(slot->easy);
		slot->easy = NULL;
	}
	if (slot->buf != NULL && slot->cap > 256 * 1024)
	{
		/* Do not keep a hostile body's worth of memory around */
		free(slot->buf);
		slot->buf = NULL;
		slot->cap = 0;
	}
	slot->len = 0;
}

/* Run a batch of GET requests, several at once */
void
http_perform(HttpRequest *requests, int nrequests)
{
	int			concurrency = Min(anomali_max_concurrency, MAX_SLOTS);
	volatile int next = 0;
	volatile int running = 0;
	volatile bool interrupted = false;

	http_init();

	for (int i = 0; i < nrequests; i++)
	{
		requests[i].failure = HTTP_FAIL_CANCELLED;
		requests[i].status = 0;
		requests[i].body = NULL;
		requests[i].body_len = 0;
		requests[i].retry_after_s = -1;
		requests[i].elapsed_ms = 0;
		requests[i].reused_connection = false;
		strlcpy(requests[i].error, "request was not completed", HTTP_ERROR_MAX);
	}

	PG_TRY();
	{
		while (next < nrequests || running > 0)
		{
			int			still = 0;
			CURLMsg    *msg;
			int			queued;

			/* Fill free slots with waiting requests */
			for (int s = 0; s < concurrency && next < nrequests; s++)
			{
				if (slots[s].request != NULL)
					continue;
				slot_start(&slots[s], &requests[next++]);
				running++;
			}

			curl_multi_perform(multi, &still);

			while ((msg = curl_multi_info_read(multi, &queued)) != NULL)
			{
				Slot	   *slot;

				if (msg->msg != CURLMSG_DONE)
					continue;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &slot);
				slot_finish(slot, msg->data.result);
				slot_release(slot, msg->data.result != CURLE_OK);
				running--;
			}

			if (running == 0 && next >= nrequests)
				break;

			/* Never raise from here: just stop and let the finally block clean up */
			if (QueryCancelPending || ProcDiePending)
			{
				interrupted = true;
				break;
			}

			pgstat_report_wait_start(PG_WAIT_EXTENSION);
			curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
			pgstat_report_wait_end();
		}
	}
	PG_FINALLY();
	{
		pgstat_report_wait_end();
		for (int s = 0; s < MAX_SLOTS; s++)
			if (slots[s].request != NULL)
				slot_release(&slots[s], true);
	}
	PG_END_TRY();

	/* Transfers are released: now PostgreSQL may report the interrupt */
	if (interrupted)
		CHECK_FOR_INTERRUPTS();
}

/* Connections opened by this backend since it started */
long
http_connections_opened(void)
{
	return connections_opened;
}

/* Requests sent by this backend since it started */
long
http_requests_sent(void)
{
	return requests_sent;
}

/* Check and normalise an integration URL; see http_client.h */
char *
http_normalise_url(const char *url, const char **problem)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *user = NULL;
	char	   *query = NULL;
	char	   *fragment = NULL;
	char	   *result = NULL;
	size_t		len;

	*problem = NULL;
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));

	if (strpbrk(url, " \t\r\n") != NULL ||
		curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		*problem = "it is not a valid absolute URL";
	else
	{
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
		curl_url_get(u, CURLUPART_HOST, &host, 0);
		curl_url_get(u, CURLUPART_USER, &user, 0);
		curl_url_get(u, CURLUPART_QUERY, &query, 0);
		curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);

		if (scheme == NULL ||
			(strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0))
			*problem = "only https URLs are accepted";
		else if (strcmp(scheme, "http") == 0 && !anomali_allow_plain_http)
			*problem = "plain http is refused unless anomali_ts.allow_plain_http is on";
		else if (host == NULL || host[0] == '\0')
			*problem = "the URL has no host";
		else if (user != NULL)
			*problem = "credentials may not be written into the URL";
		else if (query != NULL || fragment != NULL)
			*problem = "the URL may not carry a query string or fragment";
	}

	if (*problem == NULL)
	{
		len = strlen(url);
		while (len > 0 && url[len - 1] == '/')
			len--;
		result = psprintf("%.*s/", (int) len, url);
	}

	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	curl_free(query);
	curl_free(fragment);
	curl_url_cleanup(u);
	return result;
}
