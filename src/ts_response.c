/*
 * ts_response.c
 *		Parser of ThreatStream intelligence responses.
 *
 * A small recursive-descent JSON reader specialised to the response
 * envelope.  Recursion is bounded by TS_MAX_DEPTH, every string is copied
 * into a fixed-size field (longer strings are marked, not truncated into a
 * different value), and parsing stops at the first syntax error.  Values it
 * does not need are skipped without being stored.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ts_response.h"

typedef struct Reader
{
	const char *p;
	const char *end;
	int			depth;
	bool		too_deep;
} Reader;

static void skip_ws(Reader *r);
static bool read_string(Reader *r, char *out, size_t outsz, bool *fits);
static bool skip_value(Reader *r);
static bool read_int(Reader *r, long long *out, bool *is_int);
static bool read_literal(Reader *r, const char *lit);
static bool parse_indicator(Reader *r, TsIndicator *ind, bool *usable);
static bool parse_meta(Reader *r, TsPage *page);
static bool parse_objects(Reader *r, TsPage *page, bool *too_many);
static bool enter(Reader *r);

/* Skip white space */
static void
skip_ws(Reader *r)
{
	while (r->p < r->end &&
		   (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

/* Count one more level of nesting; false past the limit */
static bool
enter(Reader *r)
{
	if (++r->depth > TS_MAX_DEPTH)
	{
		r->too_deep = true;
		return false;
	}
	return true;
}

/* Append one code point as UTF-8, if there is room */
static void
put_utf8(char *out, size_t outsz, size_t *n, bool *fits, uint32_t cp)
{
	char		tmp[4];
	size_t		len;

	if (cp < 0x80)
	{
		tmp[0] = (char) cp;
		len = 1;
	}
	else if (cp < 0x800)
	{
		tmp[0] = (char) (0xc0 | (cp >> 6));
		tmp[1] = (char) (0x80 | (cp & 0x3f));
		len = 2;
	}
	else if (cp < 0x10000)
	{
		tmp[0] = (char) (0xe0 | (cp >> 12));
		tmp[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (char) (0x80 | (cp & 0x3f));
		len = 3;
	}
	else
	{
		tmp[0] = (char) (0xf0 | (cp >> 18));
		tmp[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (char) (0x80 | (cp & 0x3f));
		len = 4;
	}

	if (out == NULL || *n + len >= outsz)
	{
		*fits = false;
		return;
	}
	memcpy(out + *n, tmp, len);
	*n += len;
	out[*n] = '\0';
}

/* Read four hex digits of a \u escape */
static bool
read_hex4(Reader *r, uint32_t *cp)
{
	*cp = 0;
	if (r->end - r->p < 4)
		return false;
	for (int i = 0; i < 4; i++)
	{
		char		c = r->p[i];

		*cp <<= 4;
		if (c >= '0' && c <= '9')
			*cp |= (uint32_t) (c - '0');
		else if (c >= 'a' && c <= 'f')
			*cp |= (uint32_t) (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			*cp |= (uint32_t) (c - 'A' + 10);
		else
			return false;
	}
	r->p += 4;
	return true;
}

/*
 * Read a JSON string into out (NUL-terminated); *fits is cleared when it did
 * not fit or held a NUL character.  out may be NULL to skip the string.
 */
static bool
read_string(Reader *r, char *out, size_t outsz, bool *fits)
{
	size_t		n = 0;

	/* Keep out terminated at every step, even when parsing fails midway */
	*fits = true;
	if (out != NULL && outsz > 0)
		out[0] = '\0';
	if (r->p >= r->end || *r->p != '"')
		return false;
	r->p++;

	while (r->p < r->end)
	{
		unsigned char c = (unsigned char) *r->p++;

		if (c == '"')
		{
			if (out != NULL && outsz > 0)
				out[n < outsz ? n : outsz - 1] = '\0';
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\')
		{
			uint32_t	cp;

			if (r->p >= r->end)
				return false;
			c = (unsigned char) *r->p++;
			switch (c)
			{
				case '"':
				case '\\':
				case '/':
					break;
				case 'b':
					c = '\b';
					break;
				case 'f':
					c = '\f';
					break;
				case 'n':
					c = '\n';
					break;
				case 'r':
					c = '\r';
					break;
				case 't':
					c = '\t';
					break;
				case 'u':
					if (!read_hex4(r, &cp))
						return false;
					if (cp >= 0xd800 && cp <= 0xdbff)
					{
						uint32_t	lo;

						if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
							return false;
						r->p += 2;
						if (!read_hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
							return false;
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					}
					else if (cp >= 0xdc00 && cp <= 0xdfff)
						return false;
					if (cp == 0)
						*fits = false;
					put_utf8(out, outsz, &n, fits, cp);
					continue;
				default:
					return false;
			}
		}
		if (out == NULL || n + 1 >= outsz)
		{
			*fits = false;
			continue;
		}
		out[n++] = (char) c;
		out[n] = '\0';
	}
	return false;
}

/* Match a literal such as "true" */
static bool
read_literal(Reader *r, const char *lit)
{
	size_t		n = strlen(lit);

	if ((size_t) (r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
		return false;
	r->p += n;
	return true;
}

/*
 * Read a JSON number; *is_int tells whether it was an integer that fits in a
 * long long (fractions and exponents are read but not converted).
 */
static bool
read_int(Reader *r, long long *out, bool *is_int)
{
	const char *start = r->p;
	bool		neg = false;
	unsigned long long v = 0;
	bool		overflow = false;

	*is_int = true;
	if (r->p < r->end && *r->p == '-')
	{
		neg = true;
		r->p++;
	}
	if (r->p >= r->end || !isdigit((unsigned char) *r->p))
		return false;
	while (r->p < r->end && isdigit((unsigned char) *r->p))
	{
		if (v > (unsigned long long) 1e17)
			overflow = true;
		v = v * 10 + (unsigned long long) (*r->p - '0');
		r->p++;
	}
	if (r->p < r->end && *r->p == '.')
	{
		*is_int = false;
		r->p++;
		if (r->p >= r->end || !isdigit((unsigned char) *r->p))
			return false;
		while (r->p < r->end && isdigit((unsigned char) *r->p))
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
	{
		*is_int = false;
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (r->p >= r->end || !isdigit((unsigned char) *r->p))
			return false;
		while (r->p < r->end && isdigit((unsigned char) *r->p))
			r->p++;
	}
	if (overflow)
	{
		*is_int = false;
		v = 0;					/* never negate a wrapped value */
	}
	*out = neg ? -(long long) v : (long long) v;
	return r->p > start;
}

/* Skip any JSON value, bounded in depth */
static bool
skip_value(Reader *r)
{
	bool		fits;
	long long	num;
	bool		is_int;

	skip_ws(r);
	if (r->p >= r->end)
		return false;

	switch (*r->p)
	{
		case '"':
			return read_string(r, NULL, 0, &fits);
		case 't':
			return read_literal(r, "true");
		case 'f':
			return read_literal(r, "false");
		case 'n':
			return read_literal(r, "null");
		case '[':
			if (!enter(r))
				return false;
			r->p++;
			skip_ws(r);
			if (r->p < r->end && *r->p == ']')
			{
				r->p++;
				r->depth--;
				return true;
			}
			for (;;)
			{
				if (!skip_value(r))
					return false;
				skip_ws(r);
				if (r->p < r->end && *r->p == ',')
				{
					r->p++;
					continue;
				}
				if (r->p < r->end && *r->p == ']')
				{
					r->p++;
					r->depth--;
					return true;
				}
				return false;
			}
		case '{':
			if (!enter(r))
				return false;
			r->p++;
			skip_ws(r);
			if (r->p < r->end && *r->p == '}')
			{
				r->p++;
				r->depth--;
				return true;
			}
			for (;;)
			{
				skip_ws(r);
				if (!read_string(r, NULL, 0, &fits))
					return false;
				skip_ws(r);
				if (r->p >= r->end || *r->p != ':')
					return false;
				r->p++;
				if (!skip_value(r))
					return false;
				skip_ws(r);
				if (r->p < r->end && *r->p == ',')
				{
					r->p++;
					continue;
				}
				if (r->p < r->end && *r->p == '}')
				{
					r->p++;
					r->depth--;
					return true;
				}
				return false;
			}
		default:
			return read_int(r, &num, &is_int);
	}
}

/*
 * Iterate over the members of an object: calls member(r, key, ctx) with the
 * reader positioned at the value, which the callback must consume.
 */
typedef bool (*MemberFn) (Reader *r, const char *key, void *ctx);

static bool
each_member(Reader *r, MemberFn member, void *ctx)
{
	char		key[64];
	bool		fits;

	skip_ws(r);
	if (r->p >= r->end || *r->p != '{')
		return false;
	if (!enter(r))
		return false;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == '}')
	{
		r->p++;
		r->depth--;
		return true;
	}
	for (;;)
	{
		skip_ws(r);
		if (!read_string(r, key, sizeof(key), &fits))
			return false;
		if (!fits)
			key[0] = '\0';		/* a key we do not know: skipped below */
		skip_ws(r);
		if (r->p >= r->end || *r->p != ':')
			return false;
		r->p++;
		skip_ws(r);
		if (!member(r, key, ctx))
			return false;
		skip_ws(r);
		if (r->p < r->end && *r->p == ',')
		{
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == '}')
		{
			r->p++;
			r->depth--;
			return true;
		}
		return false;
	}
}

/* Read a short string field, or leave it empty for null or other types */
static bool
read_short(Reader *r, char *out, size_t outsz)
{
	bool		fits;

	out[0] = '\0';
	if (r->p < r->end && *r->p == '"')
	{
		if (!read_string(r, out, outsz, &fits))
			return false;
		if (!fits)
			out[0] = '\0';
		return true;
	}
	return skip_value(r);
}

/* Member callback of an indicator's "meta" object */
static bool
indicator_meta_member(Reader *r, const char *key, void *ctx)
{
	TsIndicator *ind = ctx;

	if (strcmp(key, "severity") == 0)
		return read_short(r, ind->severity, sizeof(ind->severity));
	return skip_value(r);
}

/* Member callback of one indicator object */
static bool
indicator_member(Reader *r, const char *key, void *ctx)
{
	TsIndicator *ind = ctx;

	if (strcmp(key, "value") == 0)
	{
		bool		fits;

		if (r->p < r->end && *r->p == '"')
		{
			if (!read_string(r, ind->value, sizeof(ind->value), &fits))
				return false;
			ind->value_ok = fits && ind->value[0] != '\0';
			return true;
		}
		ind->value_ok = false;
		return skip_value(r);
	}
	if (strcmp(key, "type") == 0)
		return read_short(r, ind->type, sizeof(ind->type));
	if (strcmp(key, "status") == 0)
		return read_short(r, ind->status, sizeof(ind->status));
	if (strcmp(key, "itype") == 0)
		return read_short(r, ind->itype, sizeof(ind->itype));
	if (strcmp(key, "confidence") == 0)
	{
		long long	v;
		bool		is_int;

		if (r->p < r->end && (*r->p == '-' || isdigit((unsigned char) *r->p)))
		{
			if (!read_int(r, &v, &is_int))
				return false;
			ind->confidence = (is_int && v >= 0 && v <= 100) ? (int) v : -1;
			return true;
		}
		ind->confidence = -1;
		return skip_value(r);
	}
	if (strcmp(key, "meta") == 0)
	{
		if (r->p < r->end && *r->p == '{')
			return each_member(r, indicator_meta_member, ind);
		return skip_value(r);
	}
	return skip_value(r);
}

/* Parse one element of "objects"; *usable is false when it has no value */
static bool
parse_indicator(Reader *r, TsIndicator *ind, bool *usable)
{
	memset(ind, 0, sizeof(*ind));
	ind->confidence = -1;
	*usable = false;

	if (r->p < r->end && *r->p != '{')
		return skip_value(r);
	if (!each_member(r, indicator_member, ind))
		return false;
	*usable = ind->value_ok;
	return true;
}

/* Read the "objects" array */
static bool
parse_objects(Reader *r, TsPage *page, bool *too_many)
{
	TsIndicator scratch;

	if (!enter(r))
		return false;
	r->p++;
	skip_ws(r);
	if (r->p < r->end && *r->p == ']')
	{
		r->p++;
		r->depth--;
		return true;
	}
	for (;;)
	{
		TsIndicator *slot = page->count < page->capacity ?
			&page->indicators[page->count] : &scratch;
		bool		usable;

		skip_ws(r);
		if (!parse_indicator(r, slot, &usable))
			return false;
		if (!usable)
			page->malformed++;
		else if (slot == &scratch)
			*too_many = true;
		else
			page->count++;

		skip_ws(r);
		if (r->p < r->end && *r->p == ',')
		{
			r->p++;
			continue;
		}
		if (r->p < r->end && *r->p == ']')
		{
			r->p++;
			r->depth--;
			return true;
		}
		return false;
	}
}

/* Member callback of the envelope's "meta" object */
static bool
meta_member(Reader *r, const char *key, void *ctx)
{
	TsPage	   *page = ctx;

	if (strcmp(key, "next") == 0)
	{
		bool		fits = true;

		/*
		 * A link cut short, or not a string, must not read as "no more
		 * pages"; null or "" after a link (a repeated key) does not undo it
		 */
		if (r->p < r->end && *r->p == '"')
		{
			char	   *link = malloc(TS_NEXT_MAX);
			bool		ok;

			if (link == NULL)
				return false;
			ok = read_string(r, link, TS_NEXT_MAX, &fits);
			if (ok && !fits)
				page->next_unusable = true;
			else if (ok && link[0] != '\0')
				memcpy(page->next, link, strlen(link) + 1);
			free(link);
			return ok;
		}
		if (r->p < r->end && *r->p != 'n')
			page->next_unusable = true; /* a number, object, array, bool */
		return skip_value(r);
	}
	if (strcmp(key, "total_count") == 0 &&
		r->p < r->end && (*r->p == '-' || isdigit((unsigned char) *r->p)))
	{
		long long	v;
		bool		is_int;

		if (!read_int(r, &v, &is_int))
			return false;
		page->total_count = is_int ? v : -1;
		return true;
	}
	return skip_value(r);
}

typedef struct EnvelopeState
{
	TsPage	   *page;
	bool		have_objects;
	bool		seen_objects;
	bool		too_many;
} EnvelopeState;

/* Member callback of the top-level envelope */
static bool
envelope_member(Reader *r, const char *key, void *ctx)
{
	EnvelopeState *st = ctx;

	if (strcmp(key, "objects") == 0)
	{
		/* A second "objects" would count its indicators twice: refuse it */
		if (st->seen_objects)
			return false;
		st->seen_objects = true;
		if (r->p < r->end && *r->p == '[')
		{
			st->have_objects = true;
			return parse_objects(r, st->page, &st->too_many);
		}
		st->have_objects = false;
		return skip_value(r);
	}
	if (strcmp(key, "meta") == 0 && r->p < r->end && *r->p == '{')
		return parse_meta(r, st->page);
	return skip_value(r);
}

/* Read the envelope's "meta" object */
static bool
parse_meta(Reader *r, TsPage *page)
{
	return each_member(r, meta_member, page);
}

/* Parse one response page into the caller's TsPage */
TsParseResult
ts_parse_page(const char *body, size_t len, TsPage *page)
{
	Reader		r = {body, body + len, 0, false};
	EnvelopeState st = {page, false, false, false};

	page->count = 0;
	page->total_count = -1;
	page->next[0] = '\0';
	page->next_unusable = false;
	page->malformed = 0;

	skip_ws(&r);
	if (r.p >= r.end || *r.p != '{')
		return TS_PARSE_NOT_JSON;
	if (!each_member(&r, envelope_member, &st))
		return r.too_deep ? TS_PARSE_TOO_DEEP : TS_PARSE_NOT_JSON;
	skip_ws(&r);
	if (r.p != r.end)
		return TS_PARSE_NOT_JSON;
	if (!st.have_objects)
		return TS_PARSE_NO_OBJECTS;
	if (st.too_many)
		return TS_PARSE_TOO_MANY;
	return TS_PARSE_OK;
}

/* A sentence describing a parse result, for the created fields */
const char *
ts_parse_result_message(TsParseResult r)
{
	switch (r)
	{
		case TS_PARSE_OK:
			return "ok";
		case TS_PARSE_NOT_JSON:
			return "ThreatStream answered with a body that is not a JSON object";
		case TS_PARSE_TOO_DEEP:
			return "ThreatStream answered with JSON nested too deeply";
		case TS_PARSE_NO_OBJECTS:
			return "ThreatStream answered without an \"objects\" array";
		case TS_PARSE_TOO_MANY:
			return "ThreatStream answered with more objects than requested";
	}
	return "unknown parse result";
}
