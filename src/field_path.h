/*
 * field_path.h
 *		Field paths: where in an event observables are read.
 *
 * A path is written with dots between keys and "[*]" for every element of
 * an array ("destination.ip", "answers.[*]", "event.[*].ip").  A key that
 * itself contains dots, as Zeek writes "id.resp_h", resolves too.  This
 * module owns compiling the text of a path and walking it over a jsonb
 * document; it knows nothing about what the strings it finds mean.
 */
#ifndef ANOMALI_FIELD_PATH_H
#define ANOMALI_FIELD_PATH_H

#include "utils/jsonb.h"

typedef struct FieldPath
{
	char	   *text;			/* as configured, the key written on events */
	int			ntokens;
	bool	   *wildcard;		/* token i is "[*]" */
	char	  **joined;			/* joined[i * ntokens + j]: tokens i..j with dots */
	int		   *joined_len;
} FieldPath;

/* Called for every string found at the end of a path */
typedef void (*FieldPathEmit) (const char *str, int len, void *ctx);

extern FieldPath *field_path_compile(const char *text);
extern void field_path_walk(JsonbContainer *root, const FieldPath *path,
							FieldPathEmit emit, void *ctx);

#endif							/* ANOMALI_FIELD_PATH_H */
