/*
 * settings.h
 *		The anomali_ts.* configuration parameters.
 *
 * Every tunable of the extension is declared here and defined in settings.c;
 * other modules read the variables directly and never define settings of
 * their own.
 */
#ifndef ANOMALI_SETTINGS_H
#define ANOMALI_SETTINGS_H

/* Network waits, in milliseconds */
extern int	anomali_connect_timeout_ms;
extern int	anomali_request_timeout_ms;

/* Transport policy, reserved to superusers */
extern char *anomali_ca_bundle;
extern char *anomali_proxy;
extern bool anomali_allow_plain_http;
extern int	anomali_max_response_kb;

/* Which observables may leave the server */
extern bool anomali_skip_non_public;

/* Retries of 429 and 5xx answers */
extern int	anomali_max_retries;
extern int	anomali_retry_max_wait_ms;

/* Circuit breaker */
extern int	anomali_breaker_failures;
extern int	anomali_breaker_cooldown_ms;

/* Batching of lookups */
extern int	anomali_batch_size;
extern int	anomali_max_pages;
extern int	anomali_max_concurrency;

/* Shared lookup cache */
extern int	anomali_cache_ttl_s;
extern int	anomali_cache_entries;

/* Background workers of asynchronous steps */
extern int	anomali_worker_batch_rows;
extern int	anomali_worker_idle_timeout_ms;
extern int	anomali_worker_max_attempts;
extern int	anomali_worker_retry_delay_ms;

/* Where the master key that protects API keys lives */
extern char *anomali_master_key_file;

extern void settings_init(void);

#endif							/* ANOMALI_SETTINGS_H */
