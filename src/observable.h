/*
 * observable.h
 *		Classification and normalisation of observables.
 *
 * This module owns the rules that turn a string found in an event into an
 * observable ThreatStream can be asked about: IPv4, IPv6, domain, MD5, SHA1
 * or SHA256, in one canonical spelling.  It is plain C with no PostgreSQL
 * dependency so that it can be fuzzed on its own; it never allocates.
 */
#ifndef ANOMALI_OBSERVABLE_H
#define ANOMALI_OBSERVABLE_H

#include <stdbool.h>
#include <stddef.h>

/* Longest canonical observable: a 253-character domain name */
#define OBSERVABLE_MAX_LEN 256

typedef enum ObservableClass
{
	OBS_UNSUPPORTED = 0,
	OBS_IPV4,
	OBS_IPV6,
	OBS_DOMAIN,
	OBS_MD5,
	OBS_SHA1,
	OBS_SHA256
} ObservableClass;

/* Classify one raw string, writing its canonical form into out */
extern ObservableClass observable_classify(const char *raw, size_t len,
										   char out[OBSERVABLE_MAX_LEN]);

/* True when a canonical observable must not leave the server by default */
extern bool observable_is_non_public(ObservableClass cls, const char *canon);

/* Name of the class as written on events ("ipv4", "domain", "sha256"...) */
extern const char *observable_class_name(ObservableClass cls);

/* The ThreatStream "type" an indicator of this class carries */
extern const char *observable_api_type(ObservableClass cls);

/* True when an indicator's canonical value may be compared to this class */
extern bool observable_is_hash(ObservableClass cls);

#endif							/* ANOMALI_OBSERVABLE_H */
