/*
 * http_client.h
 *		The HTTP client: libcurl inside a backend.
 *
 * This module owns every libcurl object of the process: one multi handle and
 * a small pool of easy handles kept for the life of the backend, so that
 * keep-alive connections and TLS sessions are reused across requests and
 * rows.  Callers hand it a batch of GET requests; it runs up to
 * anomali_ts.max_concurrency of them at once and fills in the outcomes.
 *
 * Invariants: no libcurl callback raises an error or allocates with palloc;
 * a pending cancel or statement timeout aborts every transfer, releases the
 * handles, and then surfaces as PostgreSQL's own error.  No secret is ever
 * written into an outcome, error or log line by this module.
 */
#ifndef ANOMALI_HTTP_CLIENT_H
#define ANOMALI_HTTP_CLIENT_H

#define HTTP_ERROR_MAX 256

typedef enum HttpFailure
{
	HTTP_OK = 0,				/* an HTTP answer arrived (any status) */
	HTTP_FAIL_CONNECT,			/* resolve or connect failed */
	HTTP_FAIL_TIMEOUT,			/* connect or total timeout */
	HTTP_FAIL_TLS,				/* certificate or handshake refused */
	HTTP_FAIL_TOO_LARGE,		/* body exceeded anomali_ts.max_response_size */
	HTTP_FAIL_TRANSFER,			/* connection closed early, bad framing... */
	HTTP_FAIL_CANCELLED			/* interrupted by a cancel request */
} HttpFailure;

typedef struct HttpRequest
{
	/* Set by the caller */
	const char *url;
	const char *authorization;	/* full header value; never logged */
	bool		ssl_verify;

	/* Filled in by http_perform */
	HttpFailure failure;
	long		status;			/* HTTP status, 0 without an answer */
	char	   *body;			/* palloc'd, NUL-terminated; NULL if none */
	size_t		body_len;
	int			retry_after_s;	/* integer Retry-After, or -1 */
	double		elapsed_ms;
	bool		reused_connection;
	char		error[HTTP_ERROR_MAX];	/* transport failure, for humans */
} HttpRequest;

/* Run a batch of GET requests, several at once; see the file header */
extern void http_perform(HttpRequest *requests, int nrequests);

/* Connections opened by this backend since it started */
extern long http_connections_opened(void);

/* Requests sent by this backend since it started */
extern long http_requests_sent(void);


/*
 * Check an integration URL: http(s) only (http only when
 * anomali_ts.allow_plain_http is on), a host, no credentials, query or
 * fragment.  Returns the URL with exactly one trailing slash on its path,
 * or NULL with *problem set.
 */
extern char *http_normalise_url(const char *url, const char **problem);

#endif							/* ANOMALI_HTTP_CLIENT_H */
