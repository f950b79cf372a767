/*
 * anomali_ts.c
 *		Module entry: settings, and shared memory when preloaded.
 *
 * Loading the library defines the anomali_ts.* settings.  Loaded through
 * shared_preload_libraries it also reserves the shared lookup cache and the
 * background workers' slots, and registers the launcher of the workers that
 * finish asynchronous steps; loaded on first use instead, each backend
 * keeps a cache of its own and asynchronous steps run synchronously.  libcurl is
 * not touched here: it is initialised lazily in each backend (see
 * http_client.c), never in the postmaster.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"

#include "cache.h"
#include "settings.h"
#include "worker.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Reserve shared memory for the cache */
static void
request_shmem(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	cache_shmem_request();
	worker_shmem_request();
}

/* Create or attach the cache's shared memory */
static void
startup_shmem(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	cache_shmem_startup();
	worker_shmem_startup();
}

/* Module load */
void
_PG_init(void)
{
	settings_init();

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_shmem;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = startup_shmem;

	worker_register_launcher();
}
