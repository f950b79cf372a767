/*
 * fuzz_field_path.c
 *		libFuzzer target for the field-path parser and walker.
 *
 * An input is a path, a newline, and a JSON document.  The document is
 * read by a small parser of the JSON subset the walker cares about
 * (objects, arrays, strings without escapes; anything else is a scalar),
 * bounded in depth and size, into a tree that this file exposes through
 * path_walk.h's JsonNodeOps.  The walk must emit only strings of that
 * tree, must terminate, and must agree with a second, naive walk written
 * here that tries every split of the path into keys.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "path_walk.h"

#define MAX_NODES 4096
#define MAX_DEPTH 64
#define MAX_EMITS 100000

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct Node
{
	JsonNodeKind kind;
	const char *str;			/* string node: its text (in the input) */
	int			len;
	int			first;			/* first child (index), -1 if none */
	int			next;			/* next sibling, -1 if none */
	int			nchildren;
	const char *key;			/* as an object member: its key */
	int			keylen;
} Node;

static Node nodes[MAX_NODES];
static int	nnodes;
static const char *input_start;
static const char *input_end;
static long emits;
static long naive_emits;

/* Stop the run when an invariant does not hold */
static void
check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* ------------------------------------------------------------------ */
/* A bounded parser of a JSON subset                                   */
/* ------------------------------------------------------------------ */

typedef struct Parser
{
	const char *p;
	const char *end;
} Parser;

static void
skip_ws(Parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
}

/* A string without escapes: returns false on a syntax error */
static bool
parse_string(Parser *ps, const char **s, int *len)
{
	const char *start;

	if (ps->p >= ps->end || *ps->p != '"')
		return false;
	start = ++ps->p;
	while (ps->p < ps->end && *ps->p != '"')
		ps->p++;
	if (ps->p >= ps->end)
		return false;
	*s = start;
	*len = (int) (ps->p - start);
	ps->p++;
	return true;
}

static int	parse_value(Parser *ps, int depth);

/* Append a child to a parent's list */
static void
add_child(int parent, int child, int *last)
{
	if (*last < 0)
		nodes[parent].first = child;
	else
		nodes[*last].next = child;
	*last = child;
	nodes[parent].nchildren++;
}

/* Parse one value into a new node; -1 on a syntax error or a limit */
static int
parse_value(Parser *ps, int depth)
{
	int			id;
	int			last = -1;

	skip_ws(ps);
	if (ps->p >= ps->end || nnodes >= MAX_NODES || depth > MAX_DEPTH)
		return -1;
	id = nnodes++;
	memset(&nodes[id], 0, sizeof(Node));
	nodes[id].first = nodes[id].next = -1;

	if (*ps->p == '"')
	{
		nodes[id].kind = JSON_NODE_STRING;
		return parse_string(ps, &nodes[id].str, &nodes[id].len) ? id : -1;
	}
	if (*ps->p == '[' || *ps->p == '{')
	{
		bool		object = (*ps->p == '{');
		char		close = object ? '}' : ']';

		nodes[id].kind = object ? JSON_NODE_OBJECT : JSON_NODE_ARRAY;
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == close)
		{
			ps->p++;
			return id;
		}
		for (;;)
		{
			const char *key = NULL;
			int			keylen = 0;
			int			child;

			skip_ws(ps);
			if (object)
			{
				if (!parse_string(ps, &key, &keylen))
					return -1;
				skip_ws(ps);
				if (ps->p >= ps->end || *ps->p != ':')
					return -1;
				ps->p++;
			}
			child = parse_value(ps, depth + 1);
			if (child < 0)
				return -1;
			nodes[child].key = key;
			nodes[child].keylen = keylen;
			add_child(id, child, &last);
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',')
			{
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == close)
			{
				ps->p++;
				return id;
			}
			return -1;
		}
	}

	/* Any other token up to a delimiter is a scalar */
	nodes[id].kind = JSON_NODE_OTHER;
	while (ps->p < ps->end && *ps->p != ',' && *ps->p != ']' && *ps->p != '}')
		ps->p++;
	return id;
}

/* ------------------------------------------------------------------ */
/* JsonNodeOps over the tree: a node is its index                      */
/* ------------------------------------------------------------------ */

static int
node_of(const void *node)
{
	int			id;

	memcpy(&id, node, sizeof(int));
	check(id >= 0 && id < nnodes);
	return id;
}

static JsonNodeKind
t_kind(const void *node)
{
	return nodes[node_of(node)].kind;
}

/* The last member with that key wins, as in jsonb */
static bool
t_member(const void *node, const char *key, int keylen, void *out)
{
	int			found = -1;

	for (int c = nodes[node_of(node)].first; c >= 0; c = nodes[c].next)
		if (nodes[c].keylen == keylen && memcmp(nodes[c].key, key, keylen) == 0)
			found = c;
	if (found < 0)
		return false;
	memcpy(out, &found, sizeof(int));
	return true;
}

static int
t_size(const void *node)
{
	return nodes[node_of(node)].nchildren;
}

static bool
t_element(const void *node, int i, void *out)
{
	int			c = nodes[node_of(node)].first;

	for (int k = 0; c >= 0 && k < i; k++)
		c = nodes[c].next;
	if (c < 0)
		return false;
	memcpy(out, &c, sizeof(int));
	return true;
}

static void
t_string(const void *node, const char **str, int *len)
{
	*str = nodes[node_of(node)].str;
	*len = nodes[node_of(node)].len;
}

static const JsonNodeOps tree_ops = {t_kind, t_member, t_size, t_element, t_string, NULL};

/* Every emitted string is a string of the input */
static void
on_emit(const char *str, int len, void *ctx)
{
	(void) ctx;
	check(len >= 0);
	check(str >= input_start && str + len <= input_end);
	check(++emits <= MAX_EMITS);
}

/* ------------------------------------------------------------------ */
/* The naive reference walk: every split of the remaining path text    */
/* ------------------------------------------------------------------ */

static void
naive(int id, const char *rest, int restlen, int depth)
{
	check(depth <= 2 * 64);
	if (restlen == 0)
	{
		if (nodes[id].kind == JSON_NODE_STRING)
			naive_emits++;
		return;
	}
	if (restlen >= 3 && memcmp(rest, "[*]", 3) == 0 &&
		(restlen == 3 || rest[3] == '.'))
	{
		if (nodes[id].kind == JSON_NODE_ARRAY)
			for (int c = nodes[id].first; c >= 0; c = nodes[c].next)
				naive(c, rest + (restlen == 3 ? 3 : 4), restlen - (restlen == 3 ? 3 : 4),
					  depth + 1);
		return;
	}
	if (nodes[id].kind != JSON_NODE_OBJECT)
		return;

	/* A key ends at a dot, before "[*]", or at the end */
	for (int end = restlen; end > 0; end--)
	{
		int			keylen = end;
		int			skip;
		int			found = -1;

		if (end < restlen && rest[end] != '.' &&
			!(restlen - end >= 3 && memcmp(rest + end, "[*]", 3) == 0))
			continue;
		if (end < restlen && rest[end] == '.' && end + 1 == restlen)
			continue;
		if (memchr(rest, '[', keylen) != NULL && keylen >= 3)
		{
			/* "[*]" inside a joined key ends the run */
			bool		has_wild = false;

			for (int k = 0; k + 2 < keylen; k++)
				if (memcmp(rest + k, "[*]", 3) == 0 && (k == 0 || rest[k - 1] == '.'))
					has_wild = true;
			if (has_wild)
				continue;
		}
		for (int c = nodes[id].first; c >= 0; c = nodes[c].next)
			if (nodes[c].keylen == keylen && memcmp(nodes[c].key, rest, keylen) == 0)
				found = c;
		if (found < 0)
			continue;
		skip = end < restlen && rest[end] == '.' ? end + 1 : end;
		naive(found, rest + skip, restlen - skip, depth + 1);
	}
}

/* The fuzzing entry point */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *nl = memchr(text, '\n', size);
	char	   *path;
	size_t		pathlen;
	char	   *storage;
	size_t		storage_size;
	PathPlan   *plan;
	Parser		ps;
	int			root;
	int			root_node;

	if (nl == NULL)
		return 0;
	pathlen = (size_t) (nl - text);
	if (pathlen > 512 || memchr(text, '\0', pathlen) != NULL)
		return 0;

	path = malloc(pathlen + 1);
	memcpy(path, text, pathlen);
	path[pathlen] = '\0';
	storage_size = PATH_STORAGE_SIZE(pathlen);
	storage = malloc(storage_size);
	plan = malloc(sizeof(PathPlan));

	if (path_plan_parse(path, storage, storage_size, plan) == PATH_OK)
	{
		check(plan->ntokens > 0 && plan->ntokens <= PATH_MAX_TOKENS);
		for (int i = 0; i < plan->ntokens; i++)
			for (int j = i; j < plan->ntokens; j++)
			{
				const char *k = plan->joined[i * plan->ntokens + j];

				if (k == NULL)
					continue;
				check((int) strlen(k) == plan->joined_len[i * plan->ntokens + j]);
				check(k >= storage && k + strlen(k) < storage + storage_size);
			}

		nnodes = 0;
		input_start = nl + 1;
		input_end = text + size;
		ps.p = input_start;
		ps.end = input_end;
		root = parse_value(&ps, 0);
		if (root >= 0)
		{
			root_node = root;
			emits = naive_emits = 0;
			path_walk(plan, &tree_ops, &root_node, on_emit, NULL);

			/* Paths whose keys have no "[" agree with the naive walk */
			if (strchr(path, '[') == NULL)
			{
				naive(root, path, (int) pathlen, 0);
				check(emits == naive_emits);
			}
		}
	}

	free(plan);
	free(storage);
	free(path);
	return 0;
}
