/*
 * integration.c
 *		Integrations: ThreatStream accounts and their protected keys.
 *
 * The integration table is readable only by its owner (the role that
 * created the extension).  Code that must read it on behalf of an ordinary
 * role, such as the enrichment trigger, switches to the owner for the
 * duration of one SPI query, in a security-restricted operation, the way a
 * SECURITY DEFINER function would.  All SQL here is schema-qualified and
 * carries values only as parameters.
 *
 * Decrypting a key costs a pgcrypto call, too slow for every row, so
 * endpoints are cached per backend.  A statement trigger on the table calls
 * anomali_integration_changed(), which queues a relcache invalidation for
 * the table; every backend's relcache callback then drops its cache and
 * wipes the keys it held.  Plain DML would not invalidate anything by itself.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "utils/timestamp.h"

#include "http_client.h"
#include "integration.h"
#include "master_key.h"
#include "settings.h"

#define SCHEMA "anomali_ts"

typedef struct CachedEndpoint
{
	TsEndpoint	endpoint;
	char	   *authorization;	/* the same string as endpoint.authorization */
} CachedEndpoint;

static MemoryContext endpoint_cxt = NULL;
static List *endpoints = NIL;
static bool callback_registered = false;

PG_FUNCTION_INFO_V1(anomali_create_integration);
PG_FUNCTION_INFO_V1(anomali_alter_integration);
PG_FUNCTION_INFO_V1(anomali_set_integration_key);
PG_FUNCTION_INFO_V1(anomali_drop_integration);
PG_FUNCTION_INFO_V1(anomali_rotate_master_key);
PG_FUNCTION_INFO_V1(anomali_purge_master_keys);
PG_FUNCTION_INFO_V1(anomali_integration_changed);

static void forget_endpoints(void);
static void relcache_changed(Datum arg, Oid relid);
static char *check_url(const char *url);
static void check_header_text(const char *what, const char *value);
static char *build_authorization(const char *username, const char *key);
static uint64 account_hash(const char *url, const char *username);
static void health_check_or_raise(const char *title, const char *url,
								  const char *username, const char *key,
								  bool ssl_verify);
static void require_text_arg(FunctionCallInfo fcinfo, int n, const char *name);

/* OID of a relation in the extension's schema, InvalidOid if absent */
Oid
integration_schema_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid(SCHEMA, true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return get_relname_relid(relname, nsp);
}

/* The owner of a relation, or InvalidOid when it is gone */
Oid
integration_relation_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Run fn as role, in a security-restricted operation, the way a SECURITY
 * DEFINER function would; the caller's identity comes back however fn ends
 */
void
integration_run_as(Oid role, OwnerFn fn, void *arg)
{
	Oid			save_uid;
	int			save_sec;

	GetUserIdAndSecContext(&save_uid, &save_sec);
	SetUserIdAndSecContext(role, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		fn(arg);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_uid, save_sec);
	}
	PG_END_TRY();
}

/* Run fn with the privileges of the extension's owner */
void
integration_run_as_owner(OwnerFn fn, void *arg)
{
	Oid			owner = integration_relation_owner(integration_schema_relid("integration"));

	if (!OidIsValid(owner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("anomali_ts is not installed in this database")));
	integration_run_as(owner, fn, arg);
}

/* Drop every cached endpoint, wiping the keys */
static void
forget_endpoints(void)
{
	ListCell   *lc;

	foreach(lc, endpoints)
	{
		CachedEndpoint *c = lfirst(lc);

		explicit_bzero(c->authorization, strlen(c->authorization));
	}
	endpoints = NIL;
	if (endpoint_cxt != NULL)
		MemoryContextReset(endpoint_cxt);
}

/* Relcache callback: the integration table (or everything) changed */
static void
relcache_changed(Datum arg, Oid relid)
{
	/* Cheap and conservative: any invalidation of our table, or of all */
	if (endpoints == NIL)
		return;
	if (!OidIsValid(relid) || !IsTransactionState() ||
		relid == integration_schema_relid("integration"))
		forget_endpoints();
}

typedef struct LoadArgs
{
	const char *title;
	bool		found;
	int			id;
	char	   *url;
	char	   *username;
	bytea	   *ciphertext;
	int			key_id;
	bool		ssl_verify;
} LoadArgs;

/* Read one integration row (runs as the owner) */
static void
load_row(void *arg)
{
	LoadArgs   *a = arg;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	values[0] = CStringGetTextDatum(a->title);
	SPI_connect();
	rc = SPI_execute_with_args("SELECT id, api_url, username, api_key_ciphertext, key_id, ssl_verify "
							   "FROM " SCHEMA ".integration WHERE title = $1",
							   1, types, values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read integration: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		TupleDesc	td = SPI_tuptable->tupdesc;
		HeapTuple	t = SPI_tuptable->vals[0];
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(endpoint_cxt);

		a->found = true;
		a->id = DatumGetInt32(SPI_getbinval(t, td, 1, &isnull));
		a->url = SPI_getvalue(t, td, 2);
		a->username = SPI_getvalue(t, td, 3);
		a->ciphertext = DatumGetByteaPCopy(SPI_getbinval(t, td, 4, &isnull));
		a->key_id = DatumGetInt32(SPI_getbinval(t, td, 5, &isnull));
		a->ssl_verify = DatumGetBool(SPI_getbinval(t, td, 6, &isnull));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/* The endpoint of an integration, by title */
const TsEndpoint *
integration_endpoint(const char *title, const char *config_key)
{
	ListCell   *lc;
	LoadArgs	a;
	CachedEndpoint *c;
	MemoryContext old;
	char	   *key;

	foreach(lc, endpoints)
	{
		c = lfirst(lc);
		if (strcmp(c->endpoint.title, title) == 0)
			return &c->endpoint;
	}

	if (endpoint_cxt == NULL)
		endpoint_cxt = AllocSetContextCreate(TopMemoryContext,
											 "anomali_ts integration endpoints",
											 ALLOCSET_SMALL_SIZES);
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(relcache_changed, (Datum) 0);
		callback_registered = true;
	}

	memset(&a, 0, sizeof(a));
	a.title = title;
	integration_run_as_owner(load_row, &a);

	if (!a.found)
	{
		if (config_key != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for enrichment configuration key \"%s\"", config_key),
					 errdetail("No integration is titled \"%s\".", title),
					 errhint("Create it with anomali_create_integration(), or list them in anomali_ts.integrations.")));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("integration \"%s\" does not exist", title)));
	}

	key = master_key_decrypt(a.ciphertext, a.key_id);

	old = MemoryContextSwitchTo(endpoint_cxt);
	c = palloc0(sizeof(CachedEndpoint));
	c->endpoint.integration_id = a.id;
	c->endpoint.cache_scope.database = MyDatabaseId;
	c->endpoint.cache_scope.account = account_hash(a.url, a.username);
	c->endpoint.title = pstrdup(title);
	c->endpoint.base_url = a.url;
	c->endpoint.ssl_verify = a.ssl_verify;
	c->authorization = build_authorization(a.username, key);
	c->endpoint.authorization = c->authorization;
	endpoints = lappend(endpoints, c);
	MemoryContextSwitchTo(old);

	explicit_bzero(key, strlen(key));
	pfree(key);
	return &c->endpoint;
}

typedef struct TitleArgs
{
	List	   *titles;
} TitleArgs;

/* Read every title (runs as the owner) */
static void
load_titles(void *arg)
{
	TitleArgs  *a = arg;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	if (SPI_execute("SELECT title FROM " SCHEMA ".integration ORDER BY title",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not list integrations");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *t = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(caller);

		a->titles = lappend(a->titles, pstrdup(t));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
}

/* Titles of every integration, in title order */
List *
integration_titles(void)
{
	TitleArgs	a = {NIL};

	integration_run_as_owner(load_titles, &a);
	return a.titles;
}

/* A hash naming one ThreatStream account: its URL and username */
static uint64
account_hash(const char *url, const char *username)
{
	char	   *both = psprintf("%s\n%s", url, username);
	uint64		h = hash_bytes_extended((const unsigned char *) both, strlen(both), 0);

	pfree(both);
	return h;
}

/* "apikey user:key", the Authorization header value */
static char *
build_authorization(const char *username, const char *key)
{
	return psprintf("apikey %s:%s", username, key);
}

/* Refuse characters that could break out of an HTTP header */
static void
check_header_text(const char *what, const char *value)
{
	if (value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s may not be empty", what)));
	for (const unsigned char *c = (const unsigned char *) value; *c; c++)
		if (*c < 0x21 || *c == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s contains white space or control characters", what),
					 errhint("Check that the value was copied without surrounding spaces or line breaks.")));
}

/* Validate and normalise an integration URL, or raise */
static char *
check_url(const char *url)
{
	const char *problem;
	char	   *normalised = http_normalise_url(url, &problem);

	if (normalised == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ThreatStream URL \"%s\"", url),
				 errdetail("The URL is refused because %s.", problem),
				 errhint("The usual URL is https://api.threatstream.com/api/v2/intelligence/.")));
	return normalised;
}

/* Run the health check for prospective settings; raise when it fails */
static void
health_check_or_raise(const char *title, const char *url, const char *username,
					  const char *key, bool ssl_verify)
{
	TsEndpoint	ep;
	HealthProbe probe;
	char	   *auth = build_authorization(username, key);

	memset(&ep, 0, sizeof(ep));
	ep.integration_id = -1;
	ep.title = title;
	ep.base_url = url;
	ep.authorization = auth;
	ep.ssl_verify = ssl_verify;

	PG_TRY();
	{
		lookup_probe(&ep, &probe);
	}
	PG_FINALLY();
	{
		explicit_bzero(auth, strlen(auth));
	}
	PG_END_TRY();

	if (!probe.reachable)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("health check of integration \"%s\" failed", title),
				 errdetail("ThreatStream at %s is %s.", url, probe.message),
				 errhint("Check the URL and the network, or pass skip_health_check => true to store the integration anyway.")));
	if (!probe.credentials_accepted)
		ereport(ERROR,
				(errcode(probe.http_status == 401 || probe.http_status == 403 ?
						 ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION :
						 ERRCODE_CONNECTION_FAILURE),
				 errmsg("health check of integration \"%s\" failed", title),
				 errdetail("ThreatStream at %s answered: %s.", url, probe.message),
				 errhint("Check the username and API key, or pass skip_health_check => true to store the integration anyway.")));
}

/* Raise unless argument n is non-null */
static void
require_text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s may not be null", name)));
}

/* Warn that TLS verification is off */
static void
warn_insecure(const char *title)
{
	ereport(WARNING,
			(errmsg("TLS certificate verification is disabled for integration \"%s\"", title),
			 errdetail("Anyone on the network path can impersonate ThreatStream and read the API key."),
			 errhint("Configure anomali_ts.ca_bundle instead, and set ssl_verify back to true.")));
}

/*
 * anomali_create_integration(title, username, api_key, api_url, ssl_verify,
 * skip_health_check)
 */
Datum
anomali_create_integration(PG_FUNCTION_ARGS)
{
	char	   *title;
	char	   *username;
	char	   *key;
	char	   *url;
	bool		ssl_verify;
	bool		skip;
	bytea	   *ciphertext;
	int			key_id;
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, BYTEAOID, INT4OID, BOOLOID};
	Datum		values[6];
	int			rc;

	require_text_arg(fcinfo, 0, "title");
	require_text_arg(fcinfo, 1, "username");
	require_text_arg(fcinfo, 2, "api_key");
	require_text_arg(fcinfo, 3, "api_url");

	title = text_to_cstring(PG_GETARG_TEXT_PP(0));
	username = text_to_cstring(PG_GETARG_TEXT_PP(1));
	key = text_to_cstring(PG_GETARG_TEXT_PP(2));
	url = check_url(text_to_cstring(PG_GETARG_TEXT_PP(3)));
	ssl_verify = PG_ARGISNULL(4) ? true : PG_GETARG_BOOL(4);
	skip = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);

	if (title[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("title may not be empty")));
	check_header_text("username", username);
	check_header_text("api_key", key);

	if (!ssl_verify)
		warn_insecure(title);
	if (!skip)
		health_check_or_raise(title, url, username, key, ssl_verify);

	ciphertext = master_key_encrypt(key, &key_id);
	explicit_bzero(key, strlen(key));

	values[0] = CStringGetTextDatum(title);
	values[1] = CStringGetTextDatum(url);
	values[2] = CStringGetTextDatum(username);
	values[3] = PointerGetDatum(ciphertext);
	values[4] = Int32GetDatum(key_id);
	values[5] = BoolGetDatum(ssl_verify);

	SPI_connect();
	rc = SPI_execute_with_args("INSERT INTO " SCHEMA ".integration "
							   "(title, api_url, username, api_key_ciphertext, key_id, ssl_verify) "
							   "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (title) DO NOTHING",
							   6, types, values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not store integration: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("integration \"%s\" already exists", title),
				 errhint("Use anomali_alter_integration() or anomali_set_integration_key() to change it.")));
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * anomali_alter_integration(title, api_url, username, ssl_verify,
 * new_title, skip_health_check): change what is given, keep the rest.
 */
Datum
anomali_alter_integration(PG_FUNCTION_ARGS)
{
	char	   *title;
	const TsEndpoint *ep;
	char	   *url;
	char	   *username = NULL;
	bool		ssl_verify;
	char	   *new_title;
	bool		skip = PG_ARGISNULL(5) ? false : PG_GETARG_BOOL(5);
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, BOOLOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int			rc;

	require_text_arg(fcinfo, 0, "title");
	title = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ep = integration_endpoint(title, NULL);

	url = PG_ARGISNULL(1) ? pstrdup(ep->base_url) :
		check_url(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (!PG_ARGISNULL(2))
	{
		username = text_to_cstring(PG_GETARG_TEXT_PP(2));
		check_header_text("username", username);
	}
	ssl_verify = PG_ARGISNULL(3) ? ep->ssl_verify : PG_GETARG_BOOL(3);
	new_title = PG_ARGISNULL(4) ? title : text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (new_title[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("title may not be empty")));

	if (!ssl_verify)
		warn_insecure(new_title);

	/* A change of where or how we connect is checked with the stored key */
	if (!skip && (!PG_ARGISNULL(1) || !PG_ARGISNULL(2) || !PG_ARGISNULL(3)))
	{
		const char *auth = ep->authorization + strlen("apikey ");
		const char *colon = strchr(auth, ':');
		char	   *old_user = pnstrdup(auth, colon - auth);
		char	   *key = pstrdup(colon + 1);

		PG_TRY();
		{
			health_check_or_raise(new_title, url, username ? username : old_user,
								  key, ssl_verify);
		}
		PG_FINALLY();
		{
			explicit_bzero(key, strlen(key));
		}
		PG_END_TRY();
	}

	values[0] = CStringGetTextDatum(title);
	values[1] = CStringGetTextDatum(url);
	if (username != NULL)
		values[2] = CStringGetTextDatum(username);
	else
		nulls[2] = 'n';
	values[3] = BoolGetDatum(ssl_verify);
	values[4] = CStringGetTextDatum(new_title);

	SPI_connect();
	rc = SPI_execute_with_args("UPDATE " SCHEMA ".integration SET api_url = $2, "
							   "username = coalesce($3, username), ssl_verify = $4, "
							   "title = $5, updated_at = now() WHERE title = $1",
							   5, types, values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not update integration: %s", SPI_result_code_string(rc));
	SPI_finish();

	PG_RETURN_VOID();
}

/* anomali_set_integration_key(title, api_key, skip_health_check) */
Datum
anomali_set_integration_key(PG_FUNCTION_ARGS)
{
	char	   *title;
	char	   *key;
	bool		skip = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	const TsEndpoint *ep;
	bytea	   *ciphertext;
	int			key_id;
	Oid			types[3] = {TEXTOID, BYTEAOID, INT4OID};
	Datum		values[3];
	int			rc;

	require_text_arg(fcinfo, 0, "title");
	require_text_arg(fcinfo, 1, "api_key");
	title = text_to_cstring(PG_GETARG_TEXT_PP(0));
	key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	check_header_text("api_key", key);

	ep = integration_endpoint(title, NULL);
	if (!skip)
	{
		const char *auth = ep->authorization + strlen("apikey ");
		char	   *user = pnstrdup(auth, strchr(auth, ':') - auth);

		health_check_or_raise(title, ep->base_url, user, key, ep->ssl_verify);
	}

	ciphertext = master_key_encrypt(key, &key_id);
	explicit_bzero(key, strlen(key));

	values[0] = CStringGetTextDatum(title);
	values[1] = PointerGetDatum(ciphertext);
	values[2] = Int32GetDatum(key_id);
	SPI_connect();
	rc = SPI_execute_with_args("UPDATE " SCHEMA ".integration SET api_key_ciphertext = $2, "
							   "key_id = $3, updated_at = now() WHERE title = $1",
							   3, types, values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not update integration: %s", SPI_result_code_string(rc));
	SPI_finish();

	PG_RETURN_VOID();
}

/* anomali_drop_integration(title, if_exists) */
Datum
anomali_drop_integration(PG_FUNCTION_ARGS)
{
	char	   *title;
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int			rc;

	require_text_arg(fcinfo, 0, "title");
	title = text_to_cstring(PG_GETARG_TEXT_PP(0));
	values[0] = CStringGetTextDatum(title);

	SPI_connect();
	rc = SPI_execute_with_args("DELETE FROM " SCHEMA ".integration WHERE title = $1",
							   1, types, values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "could not drop integration: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0 && !if_exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("integration \"%s\" does not exist", title)));
	SPI_finish();

	PG_RETURN_VOID();
}

/*
 * anomali_rotate_master_key(): add a new master key and re-encrypt every
 * stored API key under it.  The old keys stay in the file (a crash or
 * rollback midway leaves every row decryptable) until
 * anomali_purge_master_keys() removes those no row uses.
 */
Datum
anomali_rotate_master_key(PG_FUNCTION_ARGS)
{
	int			new_id;
	int			rotated = 0;

	SPI_connect();
	if (SPI_execute("LOCK TABLE " SCHEMA ".integration IN EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock the integration table");

	new_id = master_key_add();

	if (SPI_execute("SELECT id, api_key_ciphertext, key_id FROM " SCHEMA ".integration ORDER BY id",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read integrations");

	{
		SPITupleTable *rows = SPI_tuptable;
		uint64		n = SPI_processed;

		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			int			id = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
			bytea	   *ct = DatumGetByteaPP(SPI_getbinval(rows->vals[i],
															   rows->tupdesc, 2, &isnull));
			int			key_id = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 3, &isnull));
			char	   *clear = master_key_decrypt(ct, key_id);
			int			got_id;
			bytea	   *fresh = master_key_encrypt(clear, &got_id);
			Oid			types[3] = {INT4OID, BYTEAOID, INT4OID};
			Datum		values[3];

			explicit_bzero(clear, strlen(clear));
			Assert(got_id == new_id);
			values[0] = Int32GetDatum(id);
			values[1] = PointerGetDatum(fresh);
			values[2] = Int32GetDatum(got_id);
			if (SPI_execute_with_args("UPDATE " SCHEMA ".integration SET api_key_ciphertext = $2, "
									  "key_id = $3, updated_at = now() WHERE id = $1",
									  3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
				elog(ERROR, "could not re-encrypt integration %d", id);
			rotated++;
		}
	}
	SPI_finish();

	ereport(NOTICE,
			(errmsg("master key %d is now current; %d API keys re-encrypted", new_id, rotated),
			 errhint("Commit, back up the master key file, then run anomali_purge_master_keys() on its own.")));
	PG_RETURN_INT32(new_id);
}

/* anomali_purge_master_keys(): remove master keys no integration uses */
Datum
anomali_purge_master_keys(PG_FUNCTION_ARGS)
{
	int		   *keep;
	int			nkeep;
	int			removed;

	/*
	 * The key file is not transactional.  Only rows committed by others are
	 * safe to judge by: in a transaction that has itself changed anything
	 * (a rotation, a new key), a rollback could bring back a ciphertext
	 * whose master key was just removed.
	 */
	if (GetTopTransactionIdIfAny() != InvalidTransactionId)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("anomali_purge_master_keys() must run in a transaction that has changed nothing"),
				 errdetail("Removing master keys cannot be rolled back, while this transaction's changes can."),
				 errhint("Commit the rotation first, then run anomali_purge_master_keys() on its own.")));

	SPI_connect();
	if (SPI_execute("LOCK TABLE " SCHEMA ".integration IN EXCLUSIVE MODE", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not lock the integration table");
	if (SPI_execute("SELECT DISTINCT key_id FROM " SCHEMA ".integration", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read integrations");
	nkeep = (int) SPI_processed;
	keep = palloc(sizeof(int) * Max(nkeep, 1));
	for (int i = 0; i < nkeep; i++)
	{
		bool		isnull;

		keep[i] = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
											  SPI_tuptable->tupdesc, 1, &isnull));
	}
	removed = master_key_purge(keep, nkeep);
	SPI_finish();

	PG_RETURN_INT32(removed);
}

/*
 * Statement trigger on the integration table: make every backend forget
 * its cached endpoints once this transaction commits.
 */
Datum
anomali_integration_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("anomali_integration_changed() must be called as a trigger")));

	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
