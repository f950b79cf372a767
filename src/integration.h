/*
 * integration.h
 *		Integrations: ThreatStream accounts and their protected keys.
 *
 * This module owns the anomali_ts.integration table: creating, changing and
 * dropping rows, and turning a row into a TsEndpoint with its key decrypted.
 * Endpoints are cached per backend and dropped (their keys wiped) whenever
 * the table changes anywhere in the cluster.
 */
#ifndef ANOMALI_INTEGRATION_H
#define ANOMALI_INTEGRATION_H

#include "lookup.h"

/*
 * The endpoint of an integration, by title; raises when there is none.
 * config_key names the configuration key to blame in that error, or NULL.
 */
extern const TsEndpoint *integration_endpoint(const char *title,
											  const char *config_key);

/* Titles of every integration, in title order */
extern List *integration_titles(void);

/* Run fn with the privileges of the extension's owner */
typedef void (*OwnerFn) (void *arg);
extern void integration_run_as_owner(OwnerFn fn, void *arg);

/* Run fn as a role, in a security-restricted operation */
extern void integration_run_as(Oid role, OwnerFn fn, void *arg);

/* The owner of a relation, or InvalidOid when it is gone */
extern Oid	integration_relation_owner(Oid relid);

/* OID of a relation in the extension's schema, InvalidOid if absent */
extern Oid	integration_schema_relid(const char *relname);

#endif							/* ANOMALI_INTEGRATION_H */
