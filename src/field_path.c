/*
 * field_path.c
 *		Field paths over jsonb.
 *
 * Compiling raises PostgreSQL errors for malformed paths; walking hands
 * path_walk.c a table of operations over JsonbValue nodes.  A nested value
 * is a jbvBinary node whose container is an object or an array; member
 * lookups use the container's sorted keys, so each step costs a binary
 * search, and long arrays check for interrupts on every element.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/jsonb.h"

#include "field_path.h"

StaticAssertDecl(sizeof(JsonbValue) <= PATH_NODE_SIZE,
				 "PATH_NODE_SIZE must hold a JsonbValue");

static JsonNodeKind jsonb_kind(const void *node);
static bool jsonb_member(const void *node, const char *key, int keylen, void *out);
static int	jsonb_size(const void *node);
static bool jsonb_element(const void *node, int i, void *out);
static void jsonb_string(const void *node, const char **str, int *len);
static void jsonb_tick(void);

static const JsonNodeOps jsonb_ops = {
	jsonb_kind, jsonb_member, jsonb_size, jsonb_element, jsonb_string, jsonb_tick
};

/* Compile the text of a path; raises for a malformed one */
FieldPath *
field_path_compile(const char *text)
{
	FieldPath  *path = palloc0(sizeof(FieldPath));
	size_t		size = PATH_STORAGE_SIZE(strlen(text));
	char	   *storage = palloc(size);

	path->text = pstrdup(text);
	switch (path_plan_parse(path->text, storage, size, &path->plan))
	{
		case PATH_OK:
			break;
		case PATH_EMPTY_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid field path \"%s\" in \"ioc_fields\"", text),
					 errdetail("A path may not be empty or contain an empty key."),
					 errhint("Write paths like \"destination.ip\" or \"answers.[*]\".")));
			break;
		case PATH_TOO_DEEP:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("field path \"%s\" in \"ioc_fields\" is too deep", text),
					 errdetail("A path may have at most %d keys.", PATH_MAX_TOKENS - 2)));
			break;
		case PATH_NO_ROOM:
			elog(ERROR, "no room to compile field path \"%s\"", text);
			break;
	}
	return path;
}

/* What a jsonb node is */
static JsonNodeKind
jsonb_kind(const void *node)
{
	const JsonbValue *v = node;

	if (v->type == jbvString)
		return JSON_NODE_STRING;
	if (v->type != jbvBinary)
		return JSON_NODE_OTHER;
	if (JsonContainerIsObject(v->val.binary.data))
		return JSON_NODE_OBJECT;
	if (JsonContainerIsArray(v->val.binary.data) &&
		!JsonContainerIsScalar(v->val.binary.data))
		return JSON_NODE_ARRAY;
	return JSON_NODE_OTHER;
}

/* The member of an object node under key */
static bool
jsonb_member(const void *node, const char *key, int keylen, void *out)
{
	const JsonbValue *v = node;

	return getKeyJsonValueFromContainer(v->val.binary.data, key, keylen,
										(JsonbValue *) out) != NULL;
}

/* Elements of an array node */
static int
jsonb_size(const void *node)
{
	const JsonbValue *v = node;

	return (int) JsonContainerSize(v->val.binary.data);
}

/* Element i of an array node */
static bool
jsonb_element(const void *node, int i, void *out)
{
	const JsonbValue *v = node;
	JsonbValue *elem = getIthJsonbValueFromContainer(v->val.binary.data, (uint32) i);

	if (elem == NULL)
		return false;
	memcpy(out, elem, sizeof(JsonbValue));
	pfree(elem);
	return true;
}

/* The text of a string node */
static void
jsonb_string(const void *node, const char **str, int *len)
{
	const JsonbValue *v = node;

	*str = v->val.string.val;
	*len = v->val.string.len;
}

/* Let a cancel request through during a long array */
static void
jsonb_tick(void)
{
	CHECK_FOR_INTERRUPTS();
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
	path_walk(&path->plan, &jsonb_ops, &top, emit, ctx);
}
