/*
 * settings.c
 *		Definition of the anomali_ts.* configuration parameters.
 *
 * Who may change a setting decides its context: timeouts only affect the
 * caller's own session, so any role may shorten or lengthen them; anything
 * that chooses where requests go, how they are secured or what may leave the
 * server is reserved to superusers (PGC_SUSET or stricter), so that a
 * pipeline role cannot redirect lookups or weaken TLS.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "settings.h"

int			anomali_connect_timeout_ms = 2000;
int			anomali_request_timeout_ms = 5000;
char	   *anomali_ca_bundle = NULL;
char	   *anomali_proxy = NULL;
bool		anomali_allow_plain_http = false;
int			anomali_max_response_kb = 8192;
bool		anomali_skip_non_public = true;
int			anomali_max_retries = 2;
int			anomali_retry_max_wait_ms = 2000;
int			anomali_breaker_failures = 5;
int			anomali_breaker_cooldown_ms = 30000;
int			anomali_batch_size = 25;
int			anomali_max_pages = 10;
int			anomali_max_concurrency = 4;
int			anomali_cache_ttl_s = 3600;
int			anomali_cache_entries = 65536;
char	   *anomali_master_key_file = NULL;
int			anomali_worker_batch_rows = 1000;
int			anomali_worker_idle_timeout_ms = 10000;
int			anomali_worker_max_attempts = 5;
int			anomali_worker_retry_delay_ms = 10000;

/* Define every anomali_ts.* setting and reserve the prefix */
void
settings_init(void)
{
	DefineCustomIntVariable("anomali_ts.connect_timeout",
							"Time allowed to open a connection to ThreatStream.",
							NULL, &anomali_connect_timeout_ms,
							2000, 1, 60000, PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.request_timeout",
							"Time allowed for one whole request to ThreatStream.",
							"Covers connecting, sending and receiving the answer.",
							&anomali_request_timeout_ms,
							5000, 1, 300000, PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomStringVariable("anomali_ts.ca_bundle",
							   "File of CA certificates used to verify ThreatStream's TLS certificate.",
							   "Empty means the system's default CA store.",
							   &anomali_ca_bundle, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);

	DefineCustomStringVariable("anomali_ts.proxy",
							   "HTTP proxy for requests to ThreatStream, e.g. http://proxy.example:3128.",
							   "Empty means no proxy; the server's http_proxy environment is never used.",
							   &anomali_proxy, "", PGC_SUSET, 0,
							   NULL, NULL, NULL);

	DefineCustomBoolVariable("anomali_ts.allow_plain_http",
							 "Allow integrations whose URL uses plain http.",
							 "Meant for a local simulator; API keys then travel unencrypted.",
							 &anomali_allow_plain_http, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.max_response_size",
							"Largest ThreatStream response accepted; larger transfers are aborted.",
							NULL, &anomali_max_response_kb,
							8192, 16, 1048576, PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("anomali_ts.skip_non_public",
							 "Do not send private, loopback, link-local, documentation and other non-public addresses or names to ThreatStream.",
							 NULL, &anomali_skip_non_public, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.max_retries",
							"How many times a request answered with 429 or 5xx is retried.",
							NULL, &anomali_max_retries,
							2, 0, 10, PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.retry_max_wait",
							"Longest wait before one retry, whatever Retry-After asks for.",
							NULL, &anomali_retry_max_wait_ms,
							2000, 0, 60000, PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.breaker_failures",
							"Consecutive failed requests after which an integration is not asked again for a while.",
							"Zero disables the circuit breaker.",
							&anomali_breaker_failures,
							5, 0, 1000, PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.breaker_cooldown",
							"How long an integration whose circuit breaker opened is left alone.",
							NULL, &anomali_breaker_cooldown_ms,
							30000, 0, 3600000, PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.batch_size",
							"Observables sent to ThreatStream in one request.",
							NULL, &anomali_batch_size,
							25, 1, 200, PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.max_pages",
							"Result pages followed for one request before the lookup is reported incomplete.",
							NULL, &anomali_max_pages,
							10, 1, 1000, PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.max_concurrency",
							"Requests to ThreatStream in flight at once from one session.",
							NULL, &anomali_max_concurrency,
							4, 1, 64, PGC_SUSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.cache_ttl",
							"How long an answer from ThreatStream is reused.",
							"Zero disables the lookup cache.",
							&anomali_cache_ttl_s,
							3600, 0, 7 * 86400, PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.cache_entries",
							"Observables kept in the shared lookup cache.",
							"Needs anomali_ts in shared_preload_libraries; takes effect at server start.",
							&anomali_cache_entries,
							65536, 128, 16 * 1024 * 1024, PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	DefineCustomStringVariable("anomali_ts.master_key_file",
							   "File holding the master keys that encrypt integration API keys.",
							   "A relative path is relative to the data directory.",
							   &anomali_master_key_file, "anomali_ts_master.key",
							   PGC_SIGHUP, 0,
							   NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.worker_batch_size",
							"Queued rows a background worker finishes in one transaction.",
							NULL, &anomali_worker_batch_rows,
							1000, 1, 100000, PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.worker_idle_timeout",
							"How long a background worker waits for new rows before it exits.",
							"It is started again by the next commit of queued rows.",
							&anomali_worker_idle_timeout_ms,
							10000, 100, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.worker_max_attempts",
							"Lookups a queued row gets before its errors are final.",
							NULL, &anomali_worker_max_attempts,
							5, 1, 100, PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("anomali_ts.worker_retry_delay",
							"Wait before the first retry of a queued row whose lookups failed; doubles each time, at most an hour.",
							NULL, &anomali_worker_retry_delay_ms,
							10000, 10, 3600000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("anomali_ts");
}
