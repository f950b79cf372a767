/*
 * field_path.h
 *		Field paths over jsonb: where in an event observables are read.
 *
 * A path is written with dots between keys and "[*]" for every element of
 * an array ("destination.ip", "answers.[*]", "event.[*].ip"); a key that
 * itself contains dots, as Zeek writes "id.resp_h", resolves too.  The
 * language itself is path_walk.c's; this module compiles a path with
 * PostgreSQL's errors and walks it over jsonb.  It knows nothing about
 * what the strings it finds mean.
 */
#ifndef ANOMALI_FIELD_PATH_H
#define ANOMALI_FIELD_PATH_H

#include "utils/jsonb.h"

#include "path_walk.h"

typedef struct FieldPath
{
	char	   *text;			/* as configured, the key written on events */
	PathPlan	plan;
} FieldPath;

/* Called for every string found at the end of a path */
typedef PathEmit FieldPathEmit;

extern FieldPath *field_path_compile(const char *text);
extern void field_path_walk(JsonbContainer *root, const FieldPath *path,
							FieldPathEmit emit, void *ctx);

#endif							/* ANOMALI_FIELD_PATH_H */
