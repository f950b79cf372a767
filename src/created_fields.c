/*
 * created_fields.c
 *		Writing a step's outcome onto an event under arcanna.ioc.
 *
 *	arcanna.ioc.fields.<path>		one object per configured path:
 *		result, is_malicious, observables[] of
 *		{value, type, result, reason, positive_hits, matches,
 *		 max_confidence, severity, statuses[], itypes[], error}
 *	arcanna.ioc.global				result, is_malicious, counts, the
 *		step's display name and threshold, the steps applied, the time
 *	arcanna.ioc.raw					ThreatStream's answers, when asked for
 *
 * Only the arcanna member is built; the event's other members are copied
 * as they are stored (jsonb_member.c), and within arcanna only ioc is
 * rebuilt.  Paths of earlier steps that this step does not configure are
 * kept as they are.  For a path both configure, this step's observables
 * replace the earlier ones, except that an observable an earlier step
 * found malicious keeps that verdict; the path's and the event's results
 * are then derived again from what is written, so an earlier malicious
 * verdict survives.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "mb/pg_wchar.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "created_fields.h"
#include "jsonb_member.h"

static void put_key(JsonbParseState **st, const char *key);
static void put_text(JsonbParseState **st, JsonbIteratorToken seq, const char *s);
static void put_int(JsonbParseState **st, int v);
static void put_bool(JsonbParseState **st, bool v);
static bool get_key(JsonbContainer *c, const char *key, JsonbValue *out);
static Verdict read_result(JsonbContainer *c);
static char *read_text(JsonbContainer *c, const char *key);
static Verdict write_path(JsonbParseState **st, const StepOutcome *so,
						  const PathOutcome *p, JsonbContainer *old);
static void write_observable(JsonbParseState **st, unsigned exposed,
							 const ObservableOutcome *o);
static void write_global(JsonbParseState **st, const StepOutcome *so,
						 Verdict result, JsonbContainer *old_global);
static void write_ioc(JsonbParseState **st, const StepOutcome *so,
					  JsonbContainer *old_ioc);
static void write_raw(JsonbParseState **st, List *raw);
static void copy_members_except(JsonbParseState **st, JsonbContainer *c,
								const char *skip);
static Jsonb *with_arcanna(Jsonb *event, JsonbValue *arcanna);

/* Push an object key */
static void
put_key(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

/* Push a string value or element; NULL becomes JSON null */
static void
put_text(JsonbParseState **st, JsonbIteratorToken seq, const char *s)
{
	JsonbValue	v;

	if (s == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) s;
		v.val.string.len = strlen(s);
	}
	pushJsonbValue(st, seq, &v);
}

/* Push an integer value */
static void
put_int(JsonbParseState **st, int n)
{
	JsonbValue	v;

	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(n);
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Push a boolean value */
static void
put_bool(JsonbParseState **st, bool b)
{
	JsonbValue	v;

	v.type = jbvBool;
	v.val.boolean = b;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* Look up a key of an object container; false when absent or null */
static bool
get_key(JsonbContainer *c, const char *key, JsonbValue *out)
{
	if (c == NULL || !JsonContainerIsObject(c))
		return false;
	if (getKeyJsonValueFromContainer(c, key, strlen(key), out) == NULL)
		return false;
	return out->type != jbvNull;
}

/* A text member of an object, or NULL */
static char *
read_text(JsonbContainer *c, const char *key)
{
	JsonbValue	v;

	if (!get_key(c, key, &v) || v.type != jbvString)
		return NULL;
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* The "result" member of an object written by an earlier step */
static Verdict
read_result(JsonbContainer *c)
{
	char	   *r = read_text(c, "result");

	return r ? verdict_from_name(r) : VERDICT_UNKNOWN;
}

/* The container of a binary JsonbValue that holds an object, or NULL */
static JsonbContainer *
object_of(JsonbValue *v)
{
	if (v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data))
		return v->val.binary.data;
	return NULL;
}

/* Write one observable's entry */
static void
write_observable(JsonbParseState **st, unsigned exposed,
				 const ObservableOutcome *o)
{
	const ObservableVerdict *v = o->verdict;

	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	put_key(st, "value");
	put_text(st, WJB_VALUE, o->value);
	put_key(st, "result");
	put_text(st, WJB_VALUE, verdict_name(o->result));
	if (o->reason != NULL)
	{
		put_key(st, "reason");
		put_text(st, WJB_VALUE, o->reason);
	}
	if (exposed & EXPOSE_TYPE)
	{
		put_key(st, "type");
		put_text(st, WJB_VALUE, o->type);
	}

	/*
	 * A skipped observable was never asked about: it has no lookup fields
	 * to report.  (Most observables of real traffic are private addresses;
	 * leaving out nine empty keys keeps events small.)
	 */
	if (o->result == VERDICT_SKIPPED)
	{
		pushJsonbValue(st, WJB_END_OBJECT, NULL);
		return;
	}
	if (exposed & EXPOSE_POSITIVE_HITS)
	{
		put_key(st, "positive_hits");
		put_int(st, v ? v->positive_hits : 0);
	}
	if (exposed & EXPOSE_MATCHES)
	{
		put_key(st, "matches");
		put_int(st, v ? v->matches : 0);
	}

	/*
	 * Keys whose value would be null or an empty list are left out: SQL
	 * reads them the same way (->> gives NULL, an absent array has no
	 * elements), and most observables of real traffic match nothing, so
	 * events stay small enough to be stored without compression.
	 */
	if ((exposed & EXPOSE_MAX_CONFIDENCE) && v && v->max_confidence >= 0)
	{
		put_key(st, "max_confidence");
		put_int(st, v->max_confidence);
	}
	if ((exposed & EXPOSE_SEVERITY) && v && severity_name(v->severity) != NULL)
	{
		put_key(st, "severity");
		put_text(st, WJB_VALUE, severity_name(v->severity));
	}
	if ((exposed & EXPOSE_STATUSES) && v && v->statuses != 0)
	{
		put_key(st, "statuses");
		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (IndicatorStatus s = STATUS_OTHER; v && s <= STATUS_FALSEPOS; s++)
			if (v->statuses & (1u << s))
				put_text(st, WJB_ELEM, indicator_status_name(s));
		pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	if ((exposed & EXPOSE_ITYPES) && o->nindicators > 0)
	{
		put_key(st, "itypes");
		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (int i = 0; i < o->nindicators; i++)
		{
			bool		seen = false;

			for (int k = 0; k < i && !seen; k++)
				seen = strcmp(o->indicators[k].itype, o->indicators[i].itype) == 0;
			if (!seen && o->indicators[i].itype[0] != '\0')
				put_text(st, WJB_ELEM, o->indicators[i].itype);
		}
		pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	if ((exposed & EXPOSE_ERROR) && o->error != NULL)
	{
		put_key(st, "error");
		put_text(st, WJB_VALUE, o->error);
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/*
 * Write one configured path, merged with what an earlier step wrote there
 * (old, or NULL); returns the path's result.
 */
static Verdict
write_path(JsonbParseState **st, const StepOutcome *so, const PathOutcome *p,
		   JsonbContainer *old)
{
	unsigned	exposed = so->config->exposed;
	Verdict		result = VERDICT_UNKNOWN;
	JsonbValue	old_obs;
	JsonbContainer *old_list = NULL;
	uint32		nold = 0;
	bool	   *old_used = NULL;

	for (int i = 0; i < p->nobservables; i++)
		result = verdict_combine(result, p->observables[i].result);

	if (old != NULL && read_result(old) == VERDICT_MALICIOUS)
		result = VERDICT_MALICIOUS;
	if (old != NULL && get_key(old, "observables", &old_obs) &&
		old_obs.type == jbvBinary && JsonContainerIsArray(old_obs.val.binary.data))
	{
		old_list = old_obs.val.binary.data;
		nold = JsonContainerSize(old_list);
		old_used = palloc0(sizeof(bool) * Max(nold, 1));
	}

	put_key(st, p->path);
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	put_key(st, "result");
	put_text(st, WJB_VALUE, so->pending ? "pending" : verdict_name(result));
	put_key(st, "is_malicious");
	put_bool(st, result == VERDICT_MALICIOUS);

	if (exposed & EXPOSE_OBSERVABLES)
	{
		put_key(st, "observables");
		pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
		for (int i = 0; i < p->nobservables; i++)
		{
			const ObservableOutcome *o = &p->observables[i];
			JsonbValue *keep = NULL;

			/* An earlier malicious verdict on the same value wins */
			for (uint32 k = 0; k < nold; k++)
			{
				JsonbValue *e = getIthJsonbValueFromContainer(old_list, k);
				JsonbContainer *ec = object_of(e);
				char	   *value = ec ? read_text(ec, "value") : NULL;

				if (value == NULL || strcmp(value, o->value) != 0)
					continue;
				old_used[k] = true;
				if (o->result != VERDICT_MALICIOUS && read_result(ec) == VERDICT_MALICIOUS)
					keep = e;
			}
			if (keep != NULL)
				pushJsonbValue(st, WJB_ELEM, keep);
			else
				write_observable(st, exposed, o);
		}
		for (uint32 k = 0; k < nold; k++)
		{
			JsonbValue *e;
			JsonbContainer *ec;

			if (old_used[k])
				continue;
			e = getIthJsonbValueFromContainer(old_list, k);
			ec = object_of(e);
			if (ec != NULL && read_result(ec) == VERDICT_MALICIOUS)
				pushJsonbValue(st, WJB_ELEM, e);
		}
		pushJsonbValue(st, WJB_END_ARRAY, NULL);
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);

	return result;
}

/* The current time as ISO 8601 in UTC, with milliseconds */
static char *
now_iso8601(void)
{
	return created_fields_time(GetCurrentTimestamp());
}

/* A time as ISO 8601 in UTC, with milliseconds */
char *
created_fields_time(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
}

/* Write the global block */
static void
write_global(JsonbParseState **st, const StepOutcome *so, Verdict result,
			 JsonbContainer *old_global)
{
	const EnrichConfig *cfg = so->config;
	JsonbValue	v;
	bool		was_malicious = false;

	if (old_global != NULL && get_key(old_global, "is_malicious", &v) &&
		v.type == jbvBool)
		was_malicious = v.val.boolean;
	if (was_malicious)
		result = VERDICT_MALICIOUS;

	/* Skipped observables alone say nothing about the event */
	if (result == VERDICT_SKIPPED)
		result = VERDICT_UNKNOWN;

	put_key(st, "global");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);
	put_key(st, "result");
	put_text(st, WJB_VALUE, so->pending && result != VERDICT_MALICIOUS ?
			 "pending" : verdict_name(result));
	put_key(st, "is_malicious");
	put_bool(st, result == VERDICT_MALICIOUS);
	put_key(st, "display_name");
	put_text(st, WJB_VALUE, cfg->display_name);
	put_key(st, "integration");
	put_text(st, WJB_VALUE, cfg->integration);
	put_key(st, "confidence_threshold");
	put_int(st, cfg->confidence_threshold);
	put_key(st, "positive_hits_required");
	put_int(st, cfg->positive_hits);
	put_key(st, "observables");
	put_int(st, so->observables);
	put_key(st, "looked_up");
	put_int(st, so->looked_up);
	put_key(st, "from_cache");
	put_int(st, so->from_cache);
	put_key(st, "malicious");
	put_int(st, so->malicious);
	put_key(st, "not_malicious");
	put_int(st, so->not_malicious);
	put_key(st, "errors");
	put_int(st, so->errors);
	put_key(st, "skipped");
	put_int(st, so->skipped);
	if (so->pending)
	{
		put_key(st, "pending");
		put_bool(st, true);
		put_key(st, "pending_step");
		put_text(st, WJB_VALUE, so->pending_step);
		put_key(st, "attempts");
		put_int(st, so->attempts);
		put_key(st, "retry_at");
		put_text(st, WJB_VALUE, so->retry_at);
	}
	if (so->queued_at != NULL)
	{
		put_key(st, "queued_at");
		put_text(st, WJB_VALUE, so->queued_at);
	}
	put_key(st, "enriched_at");
	put_text(st, WJB_VALUE, so->pending ? NULL : now_iso8601());

	/* The display names of every step applied, in order, once each */
	put_key(st, "steps");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	if (old_global != NULL && get_key(old_global, "steps", &v) &&
		v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
	{
		uint32		n = JsonContainerSize(v.val.binary.data);

		for (uint32 i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(v.val.binary.data, i);

			if (e->type == jbvString &&
				!(e->val.string.len == (int) strlen(cfg->display_name) &&
				  memcmp(e->val.string.val, cfg->display_name, e->val.string.len) == 0))
				pushJsonbValue(st, WJB_ELEM, e);
		}
	}
	/* A queued step has not been applied yet */
	if (!so->pending)
		put_text(st, WJB_ELEM, cfg->display_name);
	pushJsonbValue(st, WJB_END_ARRAY, NULL);

	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* Write the raw answers; a body that jsonb cannot hold is noted instead */
static void
write_raw(JsonbParseState **st, List *raw)
{
	ListCell   *lc;

	put_key(st, "raw");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, raw)
	{
		char	   *body = lfirst(lc);
		size_t		len = strlen(body);

		/* jsonb refuses \u0000 and invalid UTF-8: do not let that fail a row */
		if (strstr(body, "\\u0000") != NULL ||
			!pg_verifymbstr(body, (int) len, true))
		{
			put_text(st, WJB_ELEM, "(answer not stored: not representable as jsonb)");
			continue;
		}
		{
			Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
															   CStringGetDatum(body)));
			JsonbValue	v;

			v.type = jbvBinary;
			v.val.binary.data = &j->root;
			v.val.binary.len = VARSIZE(j) - VARHDRSZ;
			pushJsonbValue(st, WJB_ELEM, &v);
		}
	}
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* Write arcanna.ioc, merged with the old one (or NULL) */
static void
write_ioc(JsonbParseState **st, const StepOutcome *so, JsonbContainer *old_ioc)
{
	JsonbValue	v;
	JsonbContainer *old_fields = NULL;
	JsonbContainer *old_global = NULL;
	Verdict		result = VERDICT_UNKNOWN;

	if (get_key(old_ioc, "fields", &v))
		old_fields = object_of(&v);
	if (get_key(old_ioc, "global", &v))
		old_global = object_of(&v);

	put_key(st, "ioc");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);

	put_key(st, "fields");
	pushJsonbValue(st, WJB_BEGIN_OBJECT, NULL);

	/* Paths of earlier steps that this step does not configure */
	if (old_fields != NULL)
	{
		JsonbIterator *it = JsonbIteratorInit(old_fields);
		JsonbIteratorToken tok;
		JsonbValue	key;

		while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
		{
			bool		ours = false;
			JsonbValue	val;

			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &val, true);
			for (int i = 0; i < so->npaths && !ours; i++)
				ours = key.val.string.len == (int) strlen(so->paths[i].path) &&
					memcmp(key.val.string.val, so->paths[i].path, key.val.string.len) == 0;
			if (ours)
				continue;
			pushJsonbValue(st, WJB_KEY, &key);
			pushJsonbValue(st, WJB_VALUE, &val);
			if (object_of(&val) != NULL)
				result = verdict_combine(result, read_result(object_of(&val)));
		}
	}

	for (int i = 0; i < so->npaths; i++)
	{
		JsonbContainer *old = NULL;

		if (old_fields != NULL && get_key(old_fields, so->paths[i].path, &v))
			old = object_of(&v);
		result = verdict_combine(result, write_path(st, so, &so->paths[i], old));
	}
	pushJsonbValue(st, WJB_END_OBJECT, NULL);

	write_global(st, so, result, old_global);

	if (so->config->save_raw_response && !so->pending)
		write_raw(st, so->raw);
	else if (get_key(old_ioc, "raw", &v))
	{
		put_key(st, "raw");
		pushJsonbValue(st, WJB_VALUE, &v);
	}

	pushJsonbValue(st, WJB_END_OBJECT, NULL);
}

/* The event with its arcanna member set to a built object */
static Jsonb *
with_arcanna(Jsonb *event, JsonbValue *arcanna)
{
	Jsonb	   *value = JsonbValueToJsonb(arcanna);

	return jsonb_set_member(event, "arcanna", &value->root,
							VARSIZE(value) - VARHDRSZ);
}

/* Write a step's outcome onto an event; returns the new event */
Jsonb *
created_fields_write(Jsonb *event, const StepOutcome *so)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbContainer *old_arcanna = NULL;
	JsonbContainer *old_ioc = NULL;

	if (get_key(&event->root, "arcanna", &v))
		old_arcanna = object_of(&v);
	if (old_arcanna != NULL && get_key(old_arcanna, "ioc", &v))
		old_ioc = object_of(&v);

	/* Only arcanna is built; every other member is copied as stored */
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	copy_members_except(&st, old_arcanna, "ioc");
	write_ioc(&st, so, old_ioc);
	return with_arcanna(event, pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* Copy every member of an object container but one */
static void
copy_members_except(JsonbParseState **st, JsonbContainer *c, const char *skip)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	int			skiplen = strlen(skip);

	if (c == NULL)
		return;
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &val, true);
		if (key.val.string.len == skiplen && memcmp(key.val.string.val, skip, skiplen) == 0)
			continue;
		pushJsonbValue(st, WJB_KEY, &key);
		pushJsonbValue(st, WJB_VALUE, &val);
	}
}

/* Mark an event as queued for an asynchronous step */
Jsonb *
created_fields_mark_pending(Jsonb *event, const EnrichConfig *cfg,
							const char *step, const char *queued_at)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbContainer *arcanna = NULL;
	JsonbContainer *ioc = NULL;
	JsonbContainer *global = NULL;
	bool		was_malicious = false;

	if (get_key(&event->root, "arcanna", &v))
		arcanna = object_of(&v);
	if (arcanna != NULL && get_key(arcanna, "ioc", &v))
		ioc = object_of(&v);
	if (ioc != NULL && get_key(ioc, "global", &v))
		global = object_of(&v);
	if (global != NULL && get_key(global, "is_malicious", &v) && v.type == jbvBool)
		was_malicious = v.val.boolean;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	copy_members_except(&st, arcanna, "ioc");
	put_key(&st, "ioc");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	copy_members_except(&st, ioc, "global");

	put_key(&st, "global");
	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	put_key(&st, "result");
	put_text(&st, WJB_VALUE, was_malicious ? "malicious" : "pending");
	put_key(&st, "is_malicious");
	put_bool(&st, was_malicious);
	put_key(&st, "pending");
	put_bool(&st, true);
	put_key(&st, "pending_step");
	put_text(&st, WJB_VALUE, step);
	put_key(&st, "attempts");
	put_int(&st, 0);
	put_key(&st, "queued_at");
	put_text(&st, WJB_VALUE, queued_at);
	put_key(&st, "display_name");
	put_text(&st, WJB_VALUE, cfg->display_name);
	put_key(&st, "integration");
	put_text(&st, WJB_VALUE, cfg->integration);
	put_key(&st, "steps");
	if (global != NULL && get_key(global, "steps", &v))
		pushJsonbValue(&st, WJB_VALUE, &v);
	else
	{
		pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
		pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	}
	pushJsonbValue(&st, WJB_END_OBJECT, NULL);

	pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return with_arcanna(event, pushJsonbValue(&st, WJB_END_OBJECT, NULL));
}

/* Values an earlier step found malicious on this event */
List *
created_fields_previously_malicious(Jsonb *event)
{
	JsonbValue	v;
	JsonbContainer *c;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	path;
	List	   *values = NIL;

	if (!get_key(&event->root, "arcanna", &v) || (c = object_of(&v)) == NULL)
		return NIL;
	if (!get_key(c, "ioc", &v) || (c = object_of(&v)) == NULL)
		return NIL;
	if (!get_key(c, "fields", &v) || (c = object_of(&v)) == NULL)
		return NIL;

	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		JsonbContainer *pc;
		JsonbValue	obs;

		if (tok != WJB_KEY)
			continue;
		JsonbIteratorNext(&it, &path, true);
		pc = object_of(&path);
		if (pc == NULL || !get_key(pc, "observables", &obs) ||
			obs.type != jbvBinary || !JsonContainerIsArray(obs.val.binary.data))
			continue;
		for (uint32 i = 0; i < JsonContainerSize(obs.val.binary.data); i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(obs.val.binary.data, i);
			JsonbContainer *ec = object_of(e);
			char	   *value;

			if (ec == NULL || read_result(ec) != VERDICT_MALICIOUS)
				continue;
			value = read_text(ec, "value");
			if (value != NULL)
				values = lappend(values, value);
		}
	}
	return values;
}
