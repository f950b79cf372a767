/*
 * jsonb_member.c
 *		Replacing one top-level member of a jsonb object in place of a rebuild.
 *
 * The layout this relies on is jsonb's on-disk format (utils/jsonb.h):
 * an object container is a header word (JB_FOBJECT | number of pairs),
 * then one JEntry per key, then one JEntry per value, then the keys' bytes
 * and the values' bytes in the same order.  Keys are sorted by length,
 * then bytewise.  A JEntry holds its child's type and either its length
 * or, for every JB_OFFSET_STRIDE-th child, its end offset.  Numerics and
 * containers start at an int-aligned offset, the padding before them being
 * counted in their length; a nested container's own offsets are relative
 * to itself, so it can move to any other int-aligned place unchanged.
 *
 * So the new object is written child by child: each kept child's bytes
 * are copied without their old padding and padded again for their new
 * offset, and the JEntries are computed afresh.  Nothing is parsed.
 */
#include "postgres.h"

#include "utils/jsonb.h"

#include "jsonb_member.h"

/* One child of the object being written: where its bytes come from */
typedef struct Child
{
	uint32		type;			/* JENTRY_IS* bits */
	const char *data;			/* without alignment padding */
	uint32		len;
} Child;

static bool aligned_type(uint32 type);
static void read_children(const JsonbContainer *c, Child *out);
static int	key_compare(const char *a, int alen, const char *b, int blen);

/* Do values of this type start at an int-aligned offset? */
static bool
aligned_type(uint32 type)
{
	return type == JENTRY_ISNUMERIC || type == JENTRY_ISCONTAINER;
}

/*
 * The children of an object container, keys then values, without their
 * padding: one pass, each end offset following from the one before.
 */
static void
read_children(const JsonbContainer *c, Child *out)
{
	int			nchildren = JsonContainerSize(c) * 2;
	const char *base = (const char *) &c->children[nchildren];
	uint32		off = 0;

	for (int i = 0; i < nchildren; i++)
	{
		JEntry		entry = c->children[i];
		uint32		end = JBE_OFFLENFLD(entry);
		uint32		start = off;

		if (!JBE_HAS_OFF(entry))
			end += off;
		out[i].type = entry & JENTRY_TYPEMASK;
		if (aligned_type(out[i].type))
			start = INTALIGN(start);
		out[i].data = base + start;
		out[i].len = end - start;
		off = end;
	}
}

/* jsonb's order of object keys: shorter first, then bytewise */
static int
key_compare(const char *a, int alen, const char *b, int blen)
{
	if (alen != blen)
		return alen < blen ? -1 : 1;
	return memcmp(a, b, alen);
}

/* The object with its member "key" set to the container "value" */
Jsonb *
jsonb_set_member(Jsonb *object, const char *key,
				 const JsonbContainer *value, uint32 value_len)
{
	const JsonbContainer *root = &object->root;
	int			npairs = JsonContainerSize(root);
	int			keylen = strlen(key);
	int			at;
	bool		replace = false;
	int			newpairs;
	Child	   *old;
	Child	   *children;
	Size		size;
	Jsonb	   *result;
	JEntry	   *entries;
	char	   *base;
	uint32		off = 0;

	Assert(JsonContainerIsObject(root) && !JsonContainerIsScalar(root));

	old = palloc(sizeof(Child) * Max(npairs * 2, 1));
	read_children(root, old);

	/* Where the key goes among the sorted keys */
	for (at = 0; at < npairs; at++)
	{
		int			cmp = key_compare(old[at].data, old[at].len, key, keylen);

		if (cmp >= 0)
		{
			replace = cmp == 0;
			break;
		}
	}
	newpairs = replace ? npairs : npairs + 1;

	/* The children of the new object, keys then values */
	children = palloc(sizeof(Child) * newpairs * 2);
	for (int i = 0, j = 0; i < npairs; i++, j++)
	{
		if (j == at && !replace)
			j++;
		children[j] = old[i];
		children[newpairs + j] = old[npairs + i];
	}
	children[at].type = JENTRY_ISSTRING;
	children[at].data = key;
	children[at].len = keylen;
	children[newpairs + at].type = JENTRY_ISCONTAINER;
	children[newpairs + at].data = (const char *) value;
	children[newpairs + at].len = value_len;

	/* An upper bound: every child padded by at most three bytes */
	size = VARHDRSZ + sizeof(uint32) + sizeof(JEntry) * newpairs * 2;
	for (int i = 0; i < newpairs * 2; i++)
		size += children[i].len + 3;
	result = palloc0(size);
	result->root.header = JB_FOBJECT | newpairs;
	entries = result->root.children;
	base = (char *) &entries[newpairs * 2];

	for (int i = 0; i < newpairs * 2; i++)
	{
		uint32		start = off;

		if (aligned_type(children[i].type))
			off = INTALIGN(off);
		memcpy(base + off, children[i].data, children[i].len);
		off += children[i].len;
		if (off > JENTRY_OFFLENMASK)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("total size of jsonb object elements exceeds the maximum of %u bytes",
							JENTRY_OFFLENMASK)));
		if (i % JB_OFFSET_STRIDE == 0)
			entries[i] = children[i].type | JENTRY_HAS_OFF | off;
		else
			entries[i] = children[i].type | (off - start);
	}

	SET_VARSIZE(result, (base - (char *) result) + off);
	pfree(old);
	pfree(children);
	return result;
}
