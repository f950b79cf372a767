/*
 * field_path.c
 *		Compiling and walking field paths over jsonb.
 *
 * A path compiles to tokens: keys and "[*]" wildcards.  At an object, every
 * run of consecutive key tokens is tried as one literal key joined with
 * dots, longest first, so "id.resp_h" finds Zeek's flat key and
 * "destination.ip" finds the nested one; when both exist both are read
 * (de-duplication happens downstream).  Missing keys, nulls and values of
 * the wrong kind simply yield nothing.  The joined keys are computed once at
 * compile time because the walk runs for every row.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/jsonb.h"

#include "field_path.h"

#define MAX_TOKENS 32

static void walk(JsonbValue *node, const FieldPath *path, int token,
				 FieldPathEmit emit, void *ctx);

/* Compile the text of a path; raises for a malformed one */
FieldPath *
field_path_compile(const char *text)
{
	FieldPath  *path = palloc0(sizeof(FieldPath));
	char	   *tokens[MAX_TOKENS];
	bool		wild[MAX_TOKENS];
	int			n = 0;
	char	   *copy = pstrdup(text);
	char	   *p = copy;

	path->text = pstrdup(text);

	for (;;)
	{
		char	   *dot = strchr(p, '.');
		size_t		len;

		if (dot != NULL)
			*dot = '\0';
		len = strlen(p);

		if (len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid field path \"%s\" in \"ioc_fields\"", text),
					 errdetail("A path may not be empty or contain an empty key."),
					 errhint("Write paths like \"destination.ip\" or \"answers.[*]\".")));
		if (n + 2 > MAX_TOKENS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("field path \"%s\" in \"ioc_fields\" is too deep", text),
					 errdetail("A path may have at most %d keys.", MAX_TOKENS - 2)));

		/* "answers[*]" is accepted as a spelling of "answers.[*]" */
		if (len > 3 && strcmp(p + len - 3, "[*]") == 0)
		{
			p[len - 3] = '\0';
			tokens[n] = p;
			wild[n++] = false;
			tokens[n] = NULL;
			wild[n++] = true;
		}
		else
		{
			tokens[n] = strcmp(p, "[*]") == 0 ? NULL : p;
			wild[n] = tokens[n] == NULL;
			n++;
		}

		if (dot == NULL)
			break;
		p = dot + 1;
	}

	path->ntokens = n;
	path->wildcard = palloc(sizeof(bool) * n);
	memcpy(path->wildcard, wild, sizeof(bool) * n);
	path->joined = palloc0(sizeof(char *) * n * n);
	path->joined_len = palloc0(sizeof(int) * n * n);

	for (int i = 0; i < n; i++)
	{
		StringInfoData key;

		if (wild[i])
			continue;
		initStringInfo(&key);
		for (int j = i; j < n && !wild[j]; j++)
		{
			if (j > i)
				appendStringInfoChar(&key, '.');
			appendStringInfoString(&key, tokens[j]);
			path->joined[i * n + j] = pstrdup(key.data);
			path->joined_len[i * n + j] = key.len;
		}
		pfree(key.data);
	}

	pfree(copy);
	return path;
}

/* Walk the rest of a path, from token onwards, below node */
static void
walk(JsonbValue *node, const FieldPath *path, int token,
	 FieldPathEmit emit, void *ctx)
{
	JsonbContainer *container;
	int			n = path->ntokens;

	check_stack_depth();

	if (token == n)
	{
		if (node->type == jbvString)
			emit(node->val.string.val, node->val.string.len, ctx);
		return;
	}

	if (node->type != jbvBinary)
		return;
	container = node->val.binary.data;

	if (path->wildcard[token])
	{
		uint32		count;

		if (!JsonContainerIsArray(container))
			return;
		count = JsonContainerSize(container);
		for (uint32 i = 0; i < count; i++)
		{
			JsonbValue *elem;

			CHECK_FOR_INTERRUPTS();
			elem = getIthJsonbValueFromContainer(container, i);
			if (elem != NULL)
			{
				walk(elem, path, token + 1, emit, ctx);
				pfree(elem);
			}
		}
		return;
	}

	if (!JsonContainerIsObject(container))
		return;

	/* Longest literal key first: "id.resp_h" before "id" then "resp_h" */
	for (int j = n - 1; j >= token; j--)
	{
		JsonbValue	found;
		const char *key = path->joined[token * n + j];

		if (key == NULL)
			continue;
		if (getKeyJsonValueFromContainer(container, key,
										 path->joined_len[token * n + j],
										 &found) != NULL)
			walk(&found, path, j + 1, emit, ctx);
	}
}

/* Emit every string found at the end of the path in a jsonb document */
void
field_path_walk(JsonbContainer *root, const FieldPath *path,
				FieldPathEmit emit, void *ctx)
{
	JsonbValue	top;

	top.type = jbvBinary;
	top.val.binary.data = root;
	top.val.binary.len = 0;
	walk(&top, path, 0, emit, ctx);
}
