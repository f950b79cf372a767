/*
 * jsonb_member.h
 *		Replacing one top-level member of a jsonb object in place of a rebuild.
 *
 * Writing created fields changes one member of the event (arcanna) and
 * leaves every other one as it is.  Rebuilding the whole event through
 * pushJsonbValue() walks, sorts and serialises every member again; this
 * module instead copies the members it keeps as they are stored and only
 * writes a new top-level header, so the cost follows the size of the event
 * in bytes, not its number of members.
 */
#ifndef ANOMALI_JSONB_MEMBER_H
#define ANOMALI_JSONB_MEMBER_H

#include "utils/jsonb.h"

/*
 * The object "object" with its member "key" set to the container "value"
 * (added when absent, replaced when present).  "object" must be a jsonb
 * object (not a scalar, not an array); "value" is a serialised container,
 * as in the root of another Jsonb, of value_len bytes.
 */
extern Jsonb *jsonb_set_member(Jsonb *object, const char *key,
							   const JsonbContainer *value, uint32 value_len);

#endif							/* ANOMALI_JSONB_MEMBER_H */
