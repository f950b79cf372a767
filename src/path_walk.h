/*
 * path_walk.h
 *		Parsing field paths and walking them over any JSON tree.
 *
 * The path language (keys joined by dots, "[*]" for every element of an
 * array, keys that contain dots resolving too) is implemented here once,
 * in plain C with no PostgreSQL dependency, over an abstract tree given as
 * a table of operations.  field_path.c supplies the operations for jsonb;
 * the fuzzer supplies its own.  Nothing here allocates: plans point into a
 * buffer the caller provides, and recursion is bounded by the number of
 * tokens of a path.
 */
#ifndef ANOMALI_PATH_WALK_H
#define ANOMALI_PATH_WALK_H

#include <stdbool.h>
#include <stddef.h>

#define PATH_MAX_TOKENS 32
#define PATH_NODE_SIZE 64		/* room for one node of any implementation */

typedef enum PathParseResult
{
	PATH_OK = 0,
	PATH_EMPTY_KEY,				/* "a..b", ".a", "a." or "" */
	PATH_TOO_DEEP,				/* more than PATH_MAX_TOKENS - 2 keys */
	PATH_NO_ROOM				/* the caller's buffer is too small */
} PathParseResult;

/* A parsed path: tokens, and every run of key tokens joined with dots */
typedef struct PathPlan
{
	int			ntokens;
	bool		wildcard[PATH_MAX_TOKENS];
	const char *joined[PATH_MAX_TOKENS * PATH_MAX_TOKENS];	/* [i * n + j] */
	int			joined_len[PATH_MAX_TOKENS * PATH_MAX_TOKENS];
} PathPlan;

/* Room a plan of a path of this length needs in the caller's buffer */
#define PATH_STORAGE_SIZE(textlen) \
	(((size_t) (textlen) + 1) * (PATH_MAX_TOKENS * (PATH_MAX_TOKENS + 1) / 2))

extern PathParseResult path_plan_parse(const char *text, char *storage,
									   size_t storage_size, PathPlan *plan);

typedef enum JsonNodeKind
{
	JSON_NODE_OTHER = 0,
	JSON_NODE_OBJECT,
	JSON_NODE_ARRAY,
	JSON_NODE_STRING
} JsonNodeKind;

/*
 * A JSON tree, seen through its operations.  Nodes are opaque values of at
 * most PATH_NODE_SIZE bytes; member and element write the child into out
 * and return false when there is none.
 */
typedef struct JsonNodeOps
{
	JsonNodeKind (*kind) (const void *node);
	bool		(*member) (const void *node, const char *key, int keylen, void *out);
	int			(*size) (const void *node);
	bool		(*element) (const void *node, int i, void *out);
	void		(*string) (const void *node, const char **str, int *len);
	void		(*tick) (void);	/* called for every array element; may be NULL */
} JsonNodeOps;

/* Called for every string found at the end of a path */
typedef void (*PathEmit) (const char *str, int len, void *ctx);

extern void path_walk(const PathPlan *plan, const JsonNodeOps *ops,
					  const void *root, PathEmit emit, void *ctx);

#endif							/* ANOMALI_PATH_WALK_H */
