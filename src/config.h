/*
 * config.h
 *		The enrichment configuration: parsing and validating it.
 *
 * This module owns the meaning of every configuration key of an enrichment
 * step and the error raised for each bad one; nothing else reads the
 * configuration jsonb.
 */
#ifndef ANOMALI_CONFIG_H
#define ANOMALI_CONFIG_H

#include "utils/jsonb.h"

#include "field_path.h"

/* Created fields that exposed_fields can select */
typedef enum ExposedField
{
	EXPOSE_OBSERVABLES = 1 << 0,
	EXPOSE_TYPE = 1 << 1,
	EXPOSE_POSITIVE_HITS = 1 << 2,
	EXPOSE_MATCHES = 1 << 3,
	EXPOSE_MAX_CONFIDENCE = 1 << 4,
	EXPOSE_SEVERITY = 1 << 5,
	EXPOSE_STATUSES = 1 << 6,
	EXPOSE_ITYPES = 1 << 7,
	EXPOSE_ERROR = 1 << 8,
	EXPOSE_ALL = (1 << 9) - 1
} ExposedField;

typedef struct EnrichConfig
{
	char	   *integration;
	char	   *display_name;
	int			npaths;
	FieldPath **paths;
	int			confidence_threshold;
	int			positive_hits;
	bool		skip_previously_malicious;
	bool		save_raw_response;
	unsigned	exposed;		/* ExposedField bits */
} EnrichConfig;

/* Parse and validate a configuration; raises naming the offending key */
extern EnrichConfig *config_parse(Jsonb *config);

/* Parse through a one-entry cache, for per-row callers */
extern const EnrichConfig *config_parse_cached(Jsonb *config);

#endif							/* ANOMALI_CONFIG_H */
