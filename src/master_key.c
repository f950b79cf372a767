/*
 * master_key.c
 *		The master keys that encrypt integration API keys.
 *
 * The master keys live in one file, by default "anomali_ts_master.key" in
 * the data directory (anomali_ts.master_key_file), owned by the server's
 * operating-system user with mode 0600.  No SQL function returns its
 * content, so only the server process, the OS account that runs it, and
 * roles allowed to read server files can see it.  Each line is
 * "<id> <64 hex digits>"; the highest id is the current key.  The file is
 * created with the first key the first time one is needed.
 *
 * Encryption and decryption call pgcrypto's pgp_sym_encrypt and
 * pgp_sym_decrypt through the function manager, found by name in the
 * schema where pgcrypto is installed (pgcrypto is relocatable), after an
 * EXECUTE permission check.  No SQL text ever carries a key, so nothing
 * reaches log_statement or pg_stat_statements; the passphrase and clear
 * key buffers this module builds are wiped before they are freed.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "access/table.h"
#include "access/genam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "access/skey.h"

#include "master_key.h"
#include "settings.h"

#define KEY_HEX_LEN 64
#define MAX_KEYS 64

typedef struct MasterKey
{
	int			id;
	char		hex[KEY_HEX_LEN + 1];
} MasterKey;

static char *master_key_path(void);
static int	read_keys(MasterKey *keys, bool create);
static bool write_keys(const MasterKey *keys, int nkeys, bool create);
static Oid	pgcrypto_function(const char *name, int nargs, Oid *argtypes);
static const MasterKey *find_key(MasterKey *keys, int nkeys, int id);

/* Absolute path of the master key file */
static char *
master_key_path(void)
{
	const char *file = anomali_master_key_file;

	if (file == NULL || file[0] == '\0')
		file = "anomali_ts_master.key";
	if (is_absolute_path(file))
		return pstrdup(file);
	return psprintf("%s/%s", DataDir, file);
}

/* Write a fresh random key into *key with the given id */
static void
generate_key(MasterKey *key, int id)
{
	uint8		raw[KEY_HEX_LEN / 2];

	if (!pg_strong_random(raw, sizeof(raw)))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random master key")));
	key->id = id;
	hex_encode((const char *) raw, sizeof(raw), key->hex);
	key->hex[KEY_HEX_LEN] = '\0';
	explicit_bzero(raw, sizeof(raw));
}

/*
 * Read every key of the file.  With create, a missing file is created with
 * one new key; otherwise a missing file is an error.
 */
static int
read_keys(MasterKey *keys, bool create)
{
	char	   *path = master_key_path();
	FILE	   *f;
	char		line[256];
	int			n = 0;

	f = AllocateFile(path, "r");
	if (f == NULL)
	{
		if (errno == ENOENT && create)
		{
			generate_key(&keys[0], 1);
			if (write_keys(keys, 1, true))
			{
				ereport(NOTICE,
						(errmsg("created master key file \"%s\"", path),
						 errhint("Back this file up: without it the stored API keys cannot be decrypted.")));
				return 1;
			}

			/* Another session created it first: use that one */
			explicit_bzero(keys, sizeof(MasterKey));
			return read_keys(keys, false);
		}
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open master key file \"%s\": %m", path),
				 errhint("The master key is created with the first integration; restore the file from a backup if it was lost.")));
	}

	while (fgets(line, sizeof(line), f) != NULL)
	{
		int			id;
		char		hex[KEY_HEX_LEN + 2];

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (n == MAX_KEYS || sscanf(line, "%d %65s", &id, hex) != 2 ||
			strlen(hex) != KEY_HEX_LEN || id <= 0)
		{
			explicit_bzero(line, sizeof(line));
			FreeFile(f);
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("master key file \"%s\" is malformed", path),
					 errdetail("Each line must be an id and 64 hexadecimal digits.")));
		}
		keys[n].id = id;
		memcpy(keys[n].hex, hex, KEY_HEX_LEN + 1);
		explicit_bzero(hex, sizeof(hex));
		n++;
	}
	explicit_bzero(line, sizeof(line));
	FreeFile(f);

	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("master key file \"%s\" holds no key", path)));
	return n;
}

/*
 * Replace the file atomically with the given keys, mode 0600.  With create,
 * only create it: false when another session created it first, so two
 * sessions storing their first key at once cannot each write a different
 * master key.
 */
static bool
write_keys(const MasterKey *keys, int nkeys, bool create)
{
	char	   *path = master_key_path();
	char	   *tmp = psprintf("%s.tmp.%d", path, MyProcPid);
	int			fd;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf,
						   "# anomali_ts master keys: <id> <hex>. Keep private; back up with the database.\n");
	for (int i = 0; i < nkeys; i++)
		appendStringInfo(&buf, "%d %s\n", keys[i].id, keys[i].hex);

	fd = OpenTransientFilePerm(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY,
							   S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create master key file \"%s\": %m", tmp)));
	if (write(fd, buf.data, buf.len) != buf.len || pg_fsync(fd) != 0)
	{
		int			save = errno;

		explicit_bzero(buf.data, buf.len);
		CloseTransientFile(fd);
		unlink(tmp);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write master key file \"%s\": %m", tmp)));
	}
	explicit_bzero(buf.data, buf.len);
	pfree(buf.data);
	CloseTransientFile(fd);

	if (!create)
	{
		durable_rename(tmp, path, ERROR);
		return true;
	}

	/* link() fails if the file exists: the first creator wins */
	if (link(tmp, path) != 0)
	{
		int			save = errno;

		unlink(tmp);
		if (save == EEXIST)
			return false;
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create master key file \"%s\": %m", path)));
	}
	unlink(tmp);
	fsync_fname(path, false);
	return true;
}

/* The key with an id, or NULL */
static const MasterKey *
find_key(MasterKey *keys, int nkeys, int id)
{
	for (int i = 0; i < nkeys; i++)
		if (keys[i].id == id)
			return &keys[i];
	return NULL;
}

/* Schema of the installed pgcrypto, read from pg_extension */
static Oid
pgcrypto_namespace(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tuple;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("pgcrypto"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		nsp = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"pgcrypto\" is not installed"),
				 errhint("Run CREATE EXTENSION pgcrypto, or CREATE EXTENSION anomali_ts CASCADE.")));
	return nsp;
}

/* A pgcrypto function by name and argument types, after a permission check */
static Oid
pgcrypto_function(const char *name, int nargs, Oid *argtypes)
{
	Oid			nsp = pgcrypto_namespace();
	List	   *qualified = list_make2(makeString(get_namespace_name(nsp)),
									   makeString(pstrdup(name)));
	Oid			fn = LookupFuncName(qualified, nargs, argtypes, false);
	AclResult	acl = pg_proc_aclcheck(fn, GetUserId(), ACL_EXECUTE);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_FUNCTION, name);
	return fn;
}

/* Encrypt a clear API key under the current master key */
bytea *
master_key_encrypt(const char *clear, int *key_id)
{
	MasterKey	keys[MAX_KEYS];
	int			nkeys = read_keys(keys, true);
	const MasterKey *current = &keys[0];
	Oid			argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	Oid			fn = pgcrypto_function("pgp_sym_encrypt", 3, argtypes);
	text	   *data;
	text	   *pass;
	bytea	   *result;

	for (int i = 1; i < nkeys; i++)
		if (keys[i].id > current->id)
			current = &keys[i];

	data = cstring_to_text(clear);
	pass = cstring_to_text(current->hex);
	*key_id = current->id;
	explicit_bzero(keys, sizeof(keys));

	result = DatumGetByteaPP(OidFunctionCall3(fn, PointerGetDatum(data),
											  PointerGetDatum(pass),
											  CStringGetTextDatum("cipher-algo=aes256, s2k-mode=3")));
	explicit_bzero(VARDATA(data), VARSIZE(data) - VARHDRSZ);
	explicit_bzero(VARDATA(pass), VARSIZE(pass) - VARHDRSZ);
	pfree(data);
	pfree(pass);
	return result;
}

/* Decrypt a stored API key; the result is palloc'd and must be wiped */
char *
master_key_decrypt(bytea *ciphertext, int key_id)
{
	MasterKey	keys[MAX_KEYS];
	int			nkeys = read_keys(keys, false);
	const MasterKey *key = find_key(keys, nkeys, key_id);
	Oid			argtypes[2] = {BYTEAOID, TEXTOID};
	Oid			fn;
	text	   *pass;
	text	   *clear;
	char	   *result;

	if (key == NULL)
	{
		explicit_bzero(keys, sizeof(keys));
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("master key %d is not in the master key file", key_id),
				 errhint("Restore the master key file from the backup taken when this key was current.")));
	}

	fn = pgcrypto_function("pgp_sym_decrypt", 2, argtypes);
	pass = cstring_to_text(key->hex);
	explicit_bzero(keys, sizeof(keys));

	clear = DatumGetTextPP(OidFunctionCall2(fn, PointerGetDatum(ciphertext),
											PointerGetDatum(pass)));
	explicit_bzero(VARDATA(pass), VARSIZE(pass) - VARHDRSZ);
	pfree(pass);

	result = text_to_cstring(clear);
	explicit_bzero(VARDATA_ANY(clear), VARSIZE_ANY_EXHDR(clear));
	return result;
}

/* Add a new master key and make it current; returns its id */
int
master_key_add(void)
{
	MasterKey	keys[MAX_KEYS];
	int			nkeys = read_keys(keys, true);
	int			next = 0;

	if (nkeys == MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("master key file already holds %d keys", MAX_KEYS),
				 errhint("Run anomali_purge_master_keys() to remove keys no longer in use.")));
	for (int i = 0; i < nkeys; i++)
		next = Max(next, keys[i].id);
	generate_key(&keys[nkeys], next + 1);
	write_keys(keys, nkeys + 1, false);
	explicit_bzero(keys, sizeof(keys));
	return next + 1;
}

/* Remove keys whose ids are not in keep[], never the current one */
int
master_key_purge(const int *keep, int nkeep)
{
	MasterKey	keys[MAX_KEYS];
	MasterKey	kept[MAX_KEYS];
	int			nkeys = read_keys(keys, false);
	int			nkept = 0;
	int			current = 0;

	for (int i = 0; i < nkeys; i++)
		current = Max(current, keys[i].id);

	for (int i = 0; i < nkeys; i++)
	{
		bool		used = keys[i].id == current;

		for (int k = 0; k < nkeep && !used; k++)
			used = keep[k] == keys[i].id;
		if (used)
			kept[nkept++] = keys[i];
	}
	if (nkept < nkeys)
		write_keys(kept, nkept, false);
	explicit_bzero(keys, sizeof(keys));
	explicit_bzero(kept, sizeof(kept));
	return nkeys - nkept;
}
