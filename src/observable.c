/*
 * observable.c
 *		Classification and normalisation of observables.
 *
 * A value is classified by parsing it, never by the name of the field it came
 * from.  The steps are: trim, refang the spellings analysts paste
 * ("example[.]com", "hxxp://"), reduce a URL to its host, then try, in order,
 * IPv4, IPv6, hex hashes and domain names.  Each class has exactly one
 * canonical spelling (lower case, RFC 5952 for IPv6, no root dot for
 * domains), so that de-duplication and comparison with ThreatStream's answers
 * are plain string equality.
 *
 * Everything here works on caller-provided buffers of OBSERVABLE_MAX_LEN
 * bytes and never allocates, which keeps the code usable from a fuzzer.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "observable.h"

/* Longest raw input considered at all; anything longer is unsupported */
#define RAW_MAX_LEN 2048

static size_t refang(const char *in, size_t len, char *out, size_t outsz);
static bool url_host(const char *in, char *out, size_t outsz);
static bool parse_ipv4(const char *s, uint8_t octets[4]);
static ObservableClass parse_ipv6(const char *s, char out[OBSERVABLE_MAX_LEN]);
static ObservableClass parse_hash(const char *s, char out[OBSERVABLE_MAX_LEN]);
static bool parse_domain(const char *s, char out[OBSERVABLE_MAX_LEN]);
static bool ipv4_is_non_public(const uint8_t o[4]);
static bool ipv6_is_non_public(const uint8_t a[16]);
static bool domain_is_non_public(const char *canon);

/* Classify one raw string, writing its canonical form into out */
ObservableClass
observable_classify(const char *raw, size_t len, char out[OBSERVABLE_MAX_LEN])
{
	char		buf[RAW_MAX_LEN + 1];
	char		host[RAW_MAX_LEN + 1];
	const char *s;
	uint8_t		octets[4];
	ObservableClass hash;

	out[0] = '\0';

	/* Trim surrounding white space */
	while (len > 0 && isspace((unsigned char) raw[0]))
	{
		raw++;
		len--;
	}
	while (len > 0 && isspace((unsigned char) raw[len - 1]))
		len--;
	if (len == 0 || len > RAW_MAX_LEN)
		return OBS_UNSUPPORTED;
	if (memchr(raw, '\0', len) != NULL)
		return OBS_UNSUPPORTED;

	if (refang(raw, len, buf, sizeof(buf)) == 0)
		return OBS_UNSUPPORTED;

	/* A URL stands for its host; anything with a scheme is reduced first */
	s = buf;
	if (strstr(buf, "://") != NULL)
	{
		if (!url_host(buf, host, sizeof(host)))
			return OBS_UNSUPPORTED;
		s = host;
	}

	if (parse_ipv4(s, octets))
	{
		snprintf(out, OBSERVABLE_MAX_LEN, "%u.%u.%u.%u",
				 octets[0], octets[1], octets[2], octets[3]);
		return OBS_IPV4;
	}
	hash = parse_ipv6(s, out);
	if (hash != OBS_UNSUPPORTED)
		return hash;
	hash = parse_hash(s, out);
	if (hash != OBS_UNSUPPORTED)
		return hash;
	if (parse_domain(s, out))
		return OBS_DOMAIN;

	out[0] = '\0';
	return OBS_UNSUPPORTED;
}

/*
 * Undo the usual defanging: "[.]", "(.)", "{.}", "[dot]" become ".", "[:]"
 * becomes ":", and a leading "hxxp://", "hxxps://" or "fxp://" scheme is
 * restored.
 * Returns the output length, 0 when it does not fit.
 */
static size_t
refang(const char *in, size_t len, char *out, size_t outsz)
{
	static const struct
	{
		const char *from;
		const char *to;
	}			subs[] = {
		{"[.]", "."}, {"(.)", "."}, {"{.}", "."}, {"[dot]", "."},
		{"(dot)", "."}, {"[:]", ":"}, {"[://]", "://"},
	};
	size_t		i = 0;
	size_t		o = 0;

	/* Most values carry no brackets at all: copy them in one go */
	if (memchr(in, '[', len) == NULL && memchr(in, '(', len) == NULL &&
		memchr(in, '{', len) == NULL)
	{
		if (len >= outsz)
			return 0;
		memcpy(out, in, len);
		o = i = len;
	}

	while (i < len)
	{
		bool		replaced = false;

		for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++)
		{
			size_t		fl = strlen(subs[k].from);
			size_t		tl = strlen(subs[k].to);

			if (len - i >= fl && strncasecmp(in + i, subs[k].from, fl) == 0)
			{
				if (o + tl >= outsz)
					return 0;
				memcpy(out + o, subs[k].to, tl);
				o += tl;
				i += fl;
				replaced = true;
				break;
			}
		}
		if (replaced)
			continue;
		if (o + 1 >= outsz)
			return 0;
		out[o++] = in[i++];
	}
	out[o] = '\0';

	/*
	 * Restore a defanged scheme only where a scheme is: after the brackets
	 * are undone, so "hxxp[://]" works, and never inside a name such as
	 * "fxpro.com".
	 */
	if (strncasecmp(out, "hxxp://", 7) == 0 || strncasecmp(out, "hxxps://", 8) == 0)
		memcpy(out, "http", 4);
	else if (strncasecmp(out, "fxp://", 6) == 0)
		memcpy(out, "ftp", 3);
	return o;
}

/*
 * Extract the host of a URL: after "scheme://", without user information,
 * port, path, query or fragment; IPv6 literals lose their brackets.
 */
static bool
url_host(const char *in, char *out, size_t outsz)
{
	const char *p = strstr(in, "://");
	const char *start;
	const char *end;
	const char *at;
	size_t		n;

	/* The scheme must be letters, digits, "+", "-" or "." */
	for (const char *c = in; c < p; c++)
		if (!isalnum((unsigned char) *c) && *c != '+' && *c != '-' && *c != '.')
			return false;
	if (p == in)
		return false;

	start = p + 3;
	end = start + strcspn(start, "/?#");

	/* Drop user information ("user:pass@host") */
	at = memchr(start, '@', end - start);
	while (at != NULL)
	{
		start = at + 1;
		at = memchr(start, '@', end - start);
	}

	if (start < end && *start == '[')
	{
		const char *close = memchr(start, ']', end - start);

		if (close == NULL)
			return false;
		start++;
		end = close;
	}
	else
	{
		const char *colon = memchr(start, ':', end - start);

		if (colon != NULL)
			end = colon;
	}

	n = end - start;
	if (n == 0 || n >= outsz)
		return false;
	memcpy(out, start, n);
	out[n] = '\0';
	return true;
}

/*
 * Strict dotted quad: four decimal parts of one to three digits, no leading
 * zeros (so nothing can be read as octal), each at most 255.
 */
static bool
parse_ipv4(const char *s, uint8_t octets[4])
{
	for (int part = 0; part < 4; part++)
	{
		int			value = 0;
		int			digits = 0;

		while (isdigit((unsigned char) *s))
		{
			if (digits == 1 && value == 0)
				return false;	/* leading zero */
			value = value * 10 + (*s - '0');
			if (++digits > 3 || value > 255)
				return false;
			s++;
		}
		if (digits == 0)
			return false;
		octets[part] = (uint8_t) value;

		if (part < 3)
		{
			if (*s != '.')
				return false;
			s++;
		}
	}
	return *s == '\0';
}

/*
 * RFC 4291 text, written back in RFC 5952 canonical form.  An IPv4-mapped
 * address (::ffff:a.b.c.d, as dual-stack servers log IPv4 clients) is the
 * IPv4 address it carries, so it meets the same indicators.
 */
static ObservableClass
parse_ipv6(const char *s, char out[OBSERVABLE_MAX_LEN])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	struct in6_addr addr;

	if (strchr(s, ':') == NULL || strlen(s) > 45)
		return OBS_UNSUPPORTED;
	if (inet_pton(AF_INET6, s, &addr) != 1)
		return OBS_UNSUPPORTED;
	if (memcmp(addr.s6_addr, mapped, sizeof(mapped)) == 0)
	{
		snprintf(out, OBSERVABLE_MAX_LEN, "%u.%u.%u.%u",
				 addr.s6_addr[12], addr.s6_addr[13], addr.s6_addr[14], addr.s6_addr[15]);
		return OBS_IPV4;
	}
	if (inet_ntop(AF_INET6, &addr, out, OBSERVABLE_MAX_LEN) == NULL)
		return OBS_UNSUPPORTED;
	return OBS_IPV6;
}

/* 32, 40 or 64 hex digits: MD5, SHA1 or SHA256, lower-cased */
static ObservableClass
parse_hash(const char *s, char out[OBSERVABLE_MAX_LEN])
{
	size_t		n = 0;

	while (s[n] != '\0')
	{
		if (!isxdigit((unsigned char) s[n]))
			return OBS_UNSUPPORTED;
		if (++n > 64)
			return OBS_UNSUPPORTED;
	}
	if (n != 32 && n != 40 && n != 64)
		return OBS_UNSUPPORTED;

	for (size_t i = 0; i <= n; i++)
		out[i] = (char) tolower((unsigned char) s[i]);

	return n == 32 ? OBS_MD5 : n == 40 ? OBS_SHA1 : OBS_SHA256;
}

/*
 * A DNS name with at least two labels: labels of 1..63 letters, digits,
 * hyphens or underscores (service names such as "_ldap._tcp" are real DNS
 * traffic) that neither start nor end with a hyphen, at most 253
 * characters, a top-level label that is not all digits (so
 * "999.888.777.666" is neither an IP nor a domain).  One root dot
 * is removed; the result is lower case.
 */
static bool
parse_domain(const char *s, char out[OBSERVABLE_MAX_LEN])
{
	size_t		n = strlen(s);
	size_t		label = 0;
	size_t		labels = 0;
	bool		label_all_digits = true;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return false;

	for (size_t i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '.')
		{
			if (label == 0 || s[i - 1] == '-')
				return false;
			labels++;
			label = 0;
			label_all_digits = true;
			out[i] = '.';
			continue;
		}
		if (!isalnum(c) && c != '-' && c != '_')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (!isdigit(c))
			label_all_digits = false;
		if (++label > 63)
			return false;
		out[i] = (char) tolower(c);
	}
	if (label == 0 || labels == 0 || label_all_digits || s[n - 1] == '-')
		return false;

	out[n] = '\0';
	return true;
}

/* True when a canonical observable must not leave the server by default */
bool
observable_is_non_public(ObservableClass cls, const char *canon)
{
	if (cls == OBS_IPV4)
	{
		uint8_t		o[4];

		return parse_ipv4(canon, o) && ipv4_is_non_public(o);
	}
	if (cls == OBS_IPV6)
	{
		uint8_t		a[16];

		return inet_pton(AF_INET6, canon, a) == 1 && ipv6_is_non_public(a);
	}
	if (cls == OBS_DOMAIN)
		return domain_is_non_public(canon);
	return false;
}

/* Special-purpose IPv4 ranges of RFC 6890 and its successors */
static bool
ipv4_is_non_public(const uint8_t o[4])
{
	return o[0] == 0 ||
		o[0] == 10 ||
		(o[0] == 100 && (o[1] & 0xc0) == 64) ||
		o[0] == 127 ||
		(o[0] == 169 && o[1] == 254) ||
		(o[0] == 172 && (o[1] & 0xf0) == 16) ||
		(o[0] == 192 && o[1] == 0 && o[2] == 0) ||
		(o[0] == 192 && o[1] == 0 && o[2] == 2) ||
		(o[0] == 192 && o[1] == 168) ||
		(o[0] == 198 && (o[1] & 0xfe) == 18) ||
		(o[0] == 198 && o[1] == 51 && o[2] == 100) ||
		(o[0] == 203 && o[1] == 0 && o[2] == 113) ||
		o[0] >= 224;
}

/* Special-purpose IPv6 ranges; IPv4-mapped addresses follow the IPv4 rules */
static bool
ipv6_is_non_public(const uint8_t a[16])
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	bool		zero_prefix = true;

	for (int i = 0; i < 15; i++)
		if (a[i] != 0)
			zero_prefix = false;
	if (zero_prefix && a[15] <= 1)
		return true;			/* :: and ::1 */
	if (memcmp(a, mapped, 12) == 0)
		return ipv4_is_non_public(a + 12);

	return (a[0] & 0xfe) == 0xfc ||		/* fc00::/7 unique local */
		(a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||	/* fe80::/10 */
		a[0] == 0xff ||			/* multicast */
		(a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) ||
		(a[0] == 0x01 && a[1] == 0x00 && a[2] == 0 && a[3] == 0 &&
		 a[4] == 0 && a[5] == 0 && a[6] == 0 && a[7] == 0);	/* 100::/64 */
}

/* Names under top-level domains that never resolve on the public Internet */
static bool
domain_is_non_public(const char *canon)
{
	static const char *const tlds[] = {
		"localhost", "local", "localdomain", "internal", "lan", "home",
		"arpa", "invalid", "corp", "intranet", "private", "test",
	};
	const char *dot = strrchr(canon, '.');
	const char *tld = dot ? dot + 1 : canon;

	for (size_t i = 0; i < sizeof(tlds) / sizeof(tlds[0]); i++)
		if (strcmp(tld, tlds[i]) == 0)
			return true;
	return false;
}

/* Name of the class as written on events */
const char *
observable_class_name(ObservableClass cls)
{
	switch (cls)
	{
		case OBS_IPV4:
			return "ipv4";
		case OBS_IPV6:
			return "ipv6";
		case OBS_DOMAIN:
			return "domain";
		case OBS_MD5:
			return "md5";
		case OBS_SHA1:
			return "sha1";
		case OBS_SHA256:
			return "sha256";
		case OBS_UNSUPPORTED:
			break;
	}
	return "unsupported";
}

/* ThreatStream stores every hash as type "md5", whatever its length */
const char *
observable_api_type(ObservableClass cls)
{
	switch (cls)
	{
		case OBS_IPV4:
			return "ip";
		case OBS_IPV6:
			return "ipv6";
		case OBS_DOMAIN:
			return "domain";
		case OBS_MD5:
		case OBS_SHA1:
		case OBS_SHA256:
			return "md5";
		case OBS_UNSUPPORTED:
			break;
	}
	return NULL;
}

/* True for the three hash classes */
bool
observable_is_hash(ObservableClass cls)
{
	return cls == OBS_MD5 || cls == OBS_SHA1 || cls == OBS_SHA256;
}
