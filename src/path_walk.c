/*
 * path_walk.c
 *		Parsing field paths and walking them over any JSON tree.
 *
 * A path parses into tokens: keys and "[*]" wildcards ("answers[*]" is
 * accepted as "answers.[*]").  At an object, every run of consecutive key
 * tokens is tried as one literal key joined with dots, longest first, so
 * "id.resp_h" finds Zeek's flat key and "destination.ip" the nested one;
 * when both exist both are read (de-duplication happens downstream).
 * Missing keys, nulls and values of the wrong kind yield nothing.  The
 * joined keys are computed once, at parse time, because the walk runs for
 * every row.
 */
#include <string.h>

#include "path_walk.h"

/* Parse the text of a path into a plan whose strings live in storage */
PathParseResult
path_plan_parse(const char *text, char *storage, size_t storage_size,
				PathPlan *plan)
{
	const char *tokens[PATH_MAX_TOKENS];
	int			lens[PATH_MAX_TOKENS];
	int			n = 0;
	const char *p = text;
	size_t		used = 0;

	memset(plan, 0, sizeof(*plan));

	for (;;)
	{
		const char *dot = strchr(p, '.');
		int			len = dot ? (int) (dot - p) : (int) strlen(p);

		if (len == 0)
			return PATH_EMPTY_KEY;
		if (n + 2 > PATH_MAX_TOKENS)
			return PATH_TOO_DEEP;

		if (len > 3 && memcmp(p + len - 3, "[*]", 3) == 0)
		{
			tokens[n] = p;
			lens[n] = len - 3;
			plan->wildcard[n++] = false;
			plan->wildcard[n++] = true;
		}
		else
		{
			tokens[n] = p;
			lens[n] = len;
			plan->wildcard[n] = (len == 3 && memcmp(p, "[*]", 3) == 0);
			n++;
		}

		if (dot == NULL)
			break;
		p = dot + 1;
	}
	plan->ntokens = n;

	for (int i = 0; i < n; i++)
	{
		size_t		keylen = 0;

		if (plan->wildcard[i])
			continue;
		for (int j = i; j < n && !plan->wildcard[j]; j++)
		{
			char	   *key = storage + used;

			keylen += (j > i ? 1 : 0) + (size_t) lens[j];
			if (used + keylen + 1 > storage_size)
				return PATH_NO_ROOM;

			/* tokens i..j are consecutive in text: copy the whole run */
			memcpy(key, tokens[i], keylen);
			key[keylen] = '\0';
			plan->joined[i * n + j] = key;
			plan->joined_len[i * n + j] = (int) keylen;
			used += keylen + 1;
		}
	}
	return PATH_OK;
}

/* Walk the rest of a plan, from token onwards, below node */
static void
walk(const PathPlan *plan, const JsonNodeOps *ops, const void *node, int token,
	 PathEmit emit, void *ctx)
{
	int			n = plan->ntokens;
	JsonNodeKind kind = ops->kind(node);
	union
	{
		char		bytes[PATH_NODE_SIZE];
		long double align;
	}			child;

	if (token == n)
	{
		if (kind == JSON_NODE_STRING)
		{
			const char *s;
			int			len;

			ops->string(node, &s, &len);
			emit(s, len, ctx);
		}
		return;
	}

	if (plan->wildcard[token])
	{
		int			count;

		if (kind != JSON_NODE_ARRAY)
			return;
		count = ops->size(node);
		for (int i = 0; i < count; i++)
		{
			if (ops->tick != NULL)
				ops->tick();
			if (ops->element(node, i, &child))
				walk(plan, ops, &child, token + 1, emit, ctx);
		}
		return;
	}

	if (kind != JSON_NODE_OBJECT)
		return;

	/* Longest literal key first: "id.resp_h" before "id" then "resp_h" */
	for (int j = n - 1; j >= token; j--)
	{
		const char *key = plan->joined[token * n + j];

		if (key == NULL)
			continue;
		if (ops->member(node, key, plan->joined_len[token * n + j], &child))
			walk(plan, ops, &child, j + 1, emit, ctx);
	}
}

/* Emit every string found at the end of the path below root */
void
path_walk(const PathPlan *plan, const JsonNodeOps *ops, const void *root,
		  PathEmit emit, void *ctx)
{
	walk(plan, ops, root, 0, emit, ctx);
}
