/*
 * fuzz_observable.c
 *		libFuzzer target for the observable classifier.
 *
 * Each input is handed, as raw bytes, to observable_classify.  When it is
 * classified, the canonical output must keep the promises observable.h
 * makes: it is a NUL-terminated string shorter than OBSERVABLE_MAX_LEN, it
 * classifies again to the same class and the same text, and its spelling is
 * the one canonical spelling of its class.  Any broken promise stops the run
 * with __builtin_trap, so libFuzzer saves the input as a crash.
 *
 * The checks re-derive each property here rather than calling back into the
 * module, so that a bug in a shared helper cannot hide itself.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "observable.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok);
static bool is_lower_hex(const char *s);
static bool strict_ipv4(const char *s, unsigned octets[4]);
static void check_ipv4(const char *canon);
static void check_ipv6(const char *canon);
static void check_domain(const char *canon);
static void check_plain_name(const uint8_t *data, size_t size,
							 const char *canon);

/* Stop the run when an invariant does not hold */
static void
check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

/* True when s is made only of 0-9 and a-f */
static bool
is_lower_hex(const char *s)
{
	for (; *s != '\0'; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/*
 * Dotted quad written the strict way, parsed without the module's code:
 * four decimal parts of one to three digits, no leading zero, at most 255.
 */
static bool
strict_ipv4(const char *s, unsigned octets[4])
{
	for (int part = 0; part < 4; part++)
	{
		const char *start = s;
		unsigned	value = 0;

		while (*s >= '0' && *s <= '9' && s - start < 3)
			value = value * 10 + (unsigned) (*s++ - '0');
		if (s == start || (*start == '0' && s - start > 1) || value > 255)
			return false;
		octets[part] = value;

		if (part < 3 && *s++ != '.')
			return false;
	}
	return *s == '\0';
}

/* An IPv4 observable re-parses strictly and prints back to itself */
static void
check_ipv4(const char *canon)
{
	unsigned	o[4];
	char		again[16];

	check(strict_ipv4(canon, o));
	snprintf(again, sizeof(again), "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
	check(strcmp(again, canon) == 0);
}

/* An IPv6 observable is an address already in RFC 5952 form */
static void
check_ipv6(const char *canon)
{
	struct in6_addr addr;
	char		again[INET6_ADDRSTRLEN];

	check(inet_pton(AF_INET6, canon, &addr) == 1);
	check(inet_ntop(AF_INET6, &addr, again, sizeof(again)) != NULL);
	check(strcmp(again, canon) == 0);
}

/*
 * A domain observable is lower case, has at least two labels of 1..63
 * characters from [a-z0-9_-], at most 253 characters, no root dot, and a
 * top-level label that is not all digits.
 */
static void
check_domain(const char *canon)
{
	size_t		len = strlen(canon);
	size_t		label = 0;
	bool		all_digits = true;

	check(len > 0 && len <= 253);
	check(strchr(canon, '.') != NULL);
	check(canon[0] != '.' && canon[len - 1] != '.');

	for (const char *c = canon; *c != '\0'; c++)
	{
		if (*c == '.')
		{
			check(label > 0);
			label = 0;
			all_digits = true;
			continue;
		}
		check((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			  *c == '-' || *c == '_');
		if (*c < '0' || *c > '9')
			all_digits = false;
		check(++label <= 63);
	}
	check(!all_digits);
}

/*
 * A plain name (letters, digits, ".", "-", "_" only: nothing to trim, refang
 * or reduce) that classifies as a domain must come back only lower-cased and
 * without its root dot; any other change rewrites a real name.
 */
static void
check_plain_name(const uint8_t *data, size_t size, const char *canon)
{
	size_t		n = size;

	for (size_t i = 0; i < size; i++)
	{
		uint8_t		c = data[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			return;
	}

	if (n > 0 && data[n - 1] == '.')
		n--;
	check(strlen(canon) == n);
	for (size_t i = 0; i < n; i++)
	{
		uint8_t		c = data[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t) (c - 'A' + 'a');
		check((uint8_t) canon[i] == c);
	}
}

/* Classify one input and check every promise made about the result */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		out[OBSERVABLE_MAX_LEN];
	char		again[OBSERVABLE_MAX_LEN];
	ObservableClass cls;
	ObservableClass cls_again;
	size_t		len;

	/* Poison the buffer so that a missing terminator cannot go unnoticed */
	memset(out, 'Z', sizeof(out));
	cls = observable_classify((const char *) data, size, out);

	check(cls >= OBS_UNSUPPORTED && cls <= OBS_SHA256);
	check(memchr(out, '\0', sizeof(out)) != NULL);
	len = strlen(out);
	check(len < OBSERVABLE_MAX_LEN);
	(void) observable_is_non_public(cls, out);
	check(observable_class_name(cls) != NULL);

	if (cls == OBS_UNSUPPORTED)
	{
		check(len == 0);
		check(observable_api_type(cls) == NULL);
		return 0;
	}
	check(len > 0);
	check(observable_api_type(cls) != NULL);
	check(observable_is_hash(cls) ==
		  (cls == OBS_MD5 || cls == OBS_SHA1 || cls == OBS_SHA256));

	/* The canonical form is a fixed point of the classifier */
	memset(again, 'Z', sizeof(again));
	cls_again = observable_classify(out, len, again);
	check(cls_again == cls);
	check(memchr(again, '\0', sizeof(again)) != NULL);
	check(strcmp(again, out) == 0);

	switch (cls)
	{
		case OBS_MD5:
			check(len == 32 && is_lower_hex(out));
			break;
		case OBS_SHA1:
			check(len == 40 && is_lower_hex(out));
			break;
		case OBS_SHA256:
			check(len == 64 && is_lower_hex(out));
			break;
		case OBS_IPV4:
			check_ipv4(out);
			break;
		case OBS_IPV6:
			check_ipv6(out);
			break;
		case OBS_DOMAIN:
			check_domain(out);
			check_plain_name(data, size, out);
			break;
		case OBS_UNSUPPORTED:
			break;
	}
	return 0;
}
