/*
 * step.h
 *		Saved enrichment steps: a named configuration and its switches.
 *
 * This module owns reading the anomali_ts.step table, with a per-backend
 * cache that is dropped whenever the table changes anywhere.
 */
#ifndef ANOMALI_STEP_H
#define ANOMALI_STEP_H

#include "config.h"

typedef struct Step
{
	char	   *name;
	bool		enabled;
	bool		strict;
	bool		async;			/* finished by a background worker */
	const EnrichConfig *config;
} Step;

/* The step of that name, or NULL when there is none */
extern const Step *step_get(const char *name);

#endif							/* ANOMALI_STEP_H */
