/*
 * config.c
 *		The enrichment configuration: parsing and validating it.
 *
 * Each key has one checker that raises a precise error naming the key, so
 * config_parse reads as a list of keys.  Integers may be written as JSON
 * numbers or as strings of digits (forms built in other tools often quote
 * them); booleans as JSON booleans or "true"/"false".
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "config.h"

static const char *const known_keys[] = {
	"integration", "display_name", "ioc_fields", "confidence_threshold",
	"positive_hits", "skip_previously_malicious", "save_raw_response",
	"exposed_fields",
};

static const struct
{
	const char *name;
	unsigned	bits;
}			exposed_names[] = {
	{"result", 0},
	{"is_malicious", 0},
	{"value", EXPOSE_OBSERVABLES},
	{"observables", EXPOSE_OBSERVABLES},
	{"type", EXPOSE_OBSERVABLES | EXPOSE_TYPE},
	{"positive_hits", EXPOSE_OBSERVABLES | EXPOSE_POSITIVE_HITS},
	{"matches", EXPOSE_OBSERVABLES | EXPOSE_MATCHES},
	{"max_confidence", EXPOSE_OBSERVABLES | EXPOSE_MAX_CONFIDENCE},
	{"severity", EXPOSE_OBSERVABLES | EXPOSE_SEVERITY},
	{"statuses", EXPOSE_OBSERVABLES | EXPOSE_STATUSES},
	{"itypes", EXPOSE_OBSERVABLES | EXPOSE_ITYPES},
	{"error", EXPOSE_OBSERVABLES | EXPOSE_ERROR},
};

static MemoryContext cache_cxt = NULL;
static Jsonb *cached_source = NULL;
static EnrichConfig *cached_config = NULL;

static void bad_key(const char *key, const char *detail) pg_attribute_noreturn();

/* Raise the error for a bad value of one key */
static void
bad_key(const char *key, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for enrichment configuration key \"%s\"", key),
			 errdetail("%s", detail)));
}

/* Look up one key of the configuration object */
static bool
get_key(Jsonb *config, const char *key, JsonbValue *out)
{
	if (getKeyJsonValueFromContainer(&config->root, key, strlen(key), out) == NULL)
		return false;
	return out->type != jbvNull;
}

/* A text value, or NULL when absent */
static char *
get_text(Jsonb *config, const char *key)
{
	JsonbValue	v;

	if (!get_key(config, key, &v))
		return NULL;
	if (v.type != jbvString)
		bad_key(key, "The value must be a string.");
	return pnstrdup(v.val.string.val, v.val.string.len);
}

/* An integer value within bounds, or dflt when absent */
static int
get_int(Jsonb *config, const char *key, int dflt, int min, int max)
{
	JsonbValue	v;
	int64		value;
	char	   *s;
	char	   *end;

	if (!get_key(config, key, &v))
		return dflt;

	if (v.type == jbvNumeric)
	{
		s = DatumGetCString(DirectFunctionCall1(numeric_out,
												NumericGetDatum(v.val.numeric)));
	}
	else if (v.type == jbvString)
		s = pnstrdup(v.val.string.val, v.val.string.len);
	else
		bad_key(key, "The value must be an integer.");

	errno = 0;
	value = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0)
		bad_key(key, "The value must be an integer.");
	if (value < min || value > max)
		bad_key(key, psprintf("The value must be between %d and %d; it is %lld.",
							  min, max, (long long) value));
	return (int) value;
}

/* A boolean value, or dflt when absent */
static bool
get_bool(Jsonb *config, const char *key, bool dflt)
{
	JsonbValue	v;

	if (!get_key(config, key, &v))
		return dflt;
	if (v.type == jbvBool)
		return v.val.boolean;
	if (v.type == jbvString)
	{
		bool		result;
		char	   *s = pnstrdup(v.val.string.val, v.val.string.len);

		if (parse_bool(s, &result))
			return result;
	}
	bad_key(key, "The value must be true or false.");
}

/*
 * A list of names: a comma-separated string or a JSON array of strings.
 * Items are trimmed; empty items are dropped.
 */
static List *
get_list(Jsonb *config, const char *key)
{
	JsonbValue	v;
	List	   *items = NIL;

	if (!get_key(config, key, &v))
		return NIL;

	if (v.type == jbvString)
	{
		char	   *s = pnstrdup(v.val.string.val, v.val.string.len);
		char	   *tok;
		char	   *save = NULL;

		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		{
			char	   *end = tok + strlen(tok);

			while (*tok == ' ' || *tok == '\t' || *tok == '\n')
				tok++;
			while (end > tok && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n'))
				*--end = '\0';
			if (*tok != '\0')
				items = lappend(items, pstrdup(tok));
		}
		return items;
	}

	if (v.type == jbvBinary && JsonContainerIsArray(v.val.binary.data))
	{
		JsonbContainer *arr = v.val.binary.data;
		uint32		count = JsonContainerSize(arr);

		for (uint32 i = 0; i < count; i++)
		{
			JsonbValue *elem = getIthJsonbValueFromContainer(arr, i);
			char	   *item;

			if (elem->type != jbvString)
				bad_key(key, "Every element of the array must be a string.");
			item = pnstrdup(elem->val.string.val, elem->val.string.len);
			if (item[0] != '\0')
				items = lappend(items, item);
		}
		return items;
	}

	bad_key(key, "The value must be a comma-separated string or an array of strings.");
}

/* Refuse keys the configuration does not define */
static void
check_unknown_keys(Jsonb *config)
{
	JsonbIterator *it = JsonbIteratorInit(&config->root);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;
		char	   *key;

		if (tok != WJB_KEY)
			continue;
		key = pnstrdup(v.val.string.val, v.val.string.len);
		for (int i = 0; i < lengthof(known_keys); i++)
			if (strcmp(key, known_keys[i]) == 0)
				known = true;
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown enrichment configuration key \"%s\"", key),
					 errhint("Valid keys are integration, display_name, ioc_fields, confidence_threshold, positive_hits, skip_previously_malicious, save_raw_response and exposed_fields.")));
	}
}

/* Parse and validate a configuration */
EnrichConfig *
config_parse(Jsonb *config)
{
	EnrichConfig *cfg = palloc0(sizeof(EnrichConfig));
	List	   *fields;
	List	   *exposed;
	ListCell   *lc;
	int			i = 0;

	if (config == NULL || !JB_ROOT_IS_OBJECT(config) || JB_ROOT_IS_SCALAR(config))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("enrichment configuration must be a JSON object")));

	check_unknown_keys(config);

	cfg->integration = get_text(config, "integration");
	if (cfg->integration == NULL || cfg->integration[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("enrichment configuration key \"integration\" is required"),
				 errhint("Give the title of an integration created with anomali_create_integration().")));

	cfg->display_name = get_text(config, "display_name");
	if (cfg->display_name == NULL || cfg->display_name[0] == '\0')
		cfg->display_name = cfg->integration;

	fields = get_list(config, "ioc_fields");
	if (fields == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("enrichment configuration key \"ioc_fields\" is required and may not be empty"),
				 errhint("Give comma-separated paths such as \"source.ip,destination.ip\", or a JSON array of them.")));

	cfg->npaths = list_length(fields);
	cfg->paths = palloc(sizeof(FieldPath *) * cfg->npaths);
	foreach(lc, fields)
	{
		char	   *text = lfirst(lc);

		/* The same path twice would be written twice: keep the first */
		bool		dup = false;

		for (int k = 0; k < i; k++)
			if (strcmp(cfg->paths[k]->text, text) == 0)
				dup = true;
		if (!dup)
			cfg->paths[i++] = field_path_compile(text);
	}
	cfg->npaths = i;

	cfg->confidence_threshold = get_int(config, "confidence_threshold", 50, 0, 100);
	cfg->positive_hits = get_int(config, "positive_hits", 1, 1, 1000);
	cfg->skip_previously_malicious = get_bool(config, "skip_previously_malicious", false);
	cfg->save_raw_response = get_bool(config, "save_raw_response", false);

	exposed = get_list(config, "exposed_fields");
	cfg->exposed = exposed == NIL ? EXPOSE_ALL : 0;
	foreach(lc, exposed)
	{
		char	   *name = lfirst(lc);
		bool		known = false;

		for (int k = 0; k < lengthof(exposed_names); k++)
		{
			if (strcmp(name, exposed_names[k].name) == 0)
			{
				cfg->exposed |= exposed_names[k].bits;
				known = true;
			}
		}
		if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for enrichment configuration key \"exposed_fields\""),
					 errdetail("\"%s\" is not a created field.", name),
					 errhint("Created fields are result, is_malicious, observables, value, type, positive_hits, matches, max_confidence, severity, statuses, itypes and error.")));
	}

	return cfg;
}

/*
 * Parse through a one-entry cache.  UPDATE ... SET ev = anomali_enrich(ev,
 * '{...}') passes the same configuration for every row; comparing its bytes
 * is much cheaper than parsing it again.
 */
const EnrichConfig *
config_parse_cached(Jsonb *config)
{
	MemoryContext old;

	if (cached_source != NULL &&
		VARSIZE(cached_source) == VARSIZE(config) &&
		memcmp(cached_source, config, VARSIZE(config)) == 0)
		return cached_config;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext,
										  "anomali_ts configuration cache",
										  ALLOCSET_SMALL_SIZES);

	/* Empty the cache first: if parsing raises, it stays empty */
	MemoryContextReset(cache_cxt);
	cached_source = NULL;
	cached_config = NULL;

	old = MemoryContextSwitchTo(cache_cxt);
	cached_config = config_parse(config);
	cached_source = palloc(VARSIZE(config));
	memcpy(cached_source, config, VARSIZE(config));
	MemoryContextSwitchTo(old);

	return cached_config;
}
