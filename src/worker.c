/*
 * worker.c
 *		Asynchronous enrichment by background workers.
 *
 * An asynchronous step's trigger writes "pending" created fields, naming
 * the step in arcanna.ioc.global.pending_step, and the row commits at
 * once.  The queue is those rows themselves: nothing is written anywhere
 * else, a rolled-back insert leaves nothing queued, a deleted row leaves
 * the queue with it, and a row is finished by the same UPDATE that clears
 * its pending mark, so a crash between the two is impossible.  Each
 * attached table has a partial index on the pending mark (created by
 * anomali_attach_step), so finding queued rows costs nothing when there
 * are none.
 *
 * One worker per database.  A launcher, registered when the library is
 * preloaded, starts one for every database at server start (rows queued
 * before a restart are finished), then stays to start again any worker
 * whose start failed for want of a background worker slot; the commit of
 * queued rows sets the latch of the database's worker, or starts one.
 *
 * A worker takes, for each table and step, up to
 * anomali_ts.worker_batch_size queued rows (FOR UPDATE SKIP LOCKED), looks
 * up the unique observables of the whole batch together (the cache first,
 * then chunked q= requests several at once), and writes the verdicts, all
 * in one transaction: killed midway, it leaves its rows queued, to be
 * finished exactly once later.  Rows whose lookups failed stay queued with
 * a retry time, doubling from anomali_ts.worker_retry_delay, until
 * anomali_ts.worker_max_attempts, then keep their errors.
 *
 * A worker with no queued rows left for anomali_ts.worker_idle_timeout
 * exits, and so does one whose database lost the extension (woken by the
 * commit of DROP EXTENSION); the next commit of queued rows starts one
 * again.  DROP DATABASE waits only five seconds for sessions to leave, so
 * its object access hook tells the database's worker to go, and brings it
 * back if the DROP fails.
 *
 * Shared memory holds, per database, the worker's pid and PGPROC number
 * (never a pointer), guarded by one LWLock.  A worker's memory is reset on
 * every loop; SIGTERM interrupts transfers like a cancel request; SIGHUP
 * reloads the configuration.
 */
#include "postgres.h"

#include <signal.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "created_fields.h"
#include "enrich.h"
#include "integration.h"
#include "row_update.h"
#include "settings.h"
#include "step.h"
#include "worker.h"

#define MAX_DB_WORKERS 64
#define START_GRACE_MS 10000	/* a worker asked for but not yet running */
#define BATCH_MAX_BYTES ((Size) 64 * 1024 * 1024)	/* events read per batch */
#define KEPT_FREE_BYTES (64 * 1024 * 1024)	/* freed memory kept for the next batch */
#define LAUNCHER_TICK_MS 1000	/* how often the launcher retries failed starts */

typedef struct WorkerSlot
{
	Oid			dbid;			/* InvalidOid: free */
	pid_t		pid;			/* 0 while starting */
	int			pgprocno;
	TimestampTz starting_since;
	int64		rows_finished;
	TimestampTz last_batch_at;
	bool		dropped;		/* the database was dropped: do not come back */
	bool		wanted;			/* a start failed: the launcher tries again */
} WorkerSlot;

typedef struct WorkerShared
{
	LWLock	   *lock;
	WorkerSlot	slots[MAX_DB_WORKERS];
} WorkerShared;

static WorkerShared *wshared = NULL;
static bool queued_in_xact = false;
static Oid	dropping_database = InvalidOid;	/* DROP DATABASE in this xact */
static bool dropping_database_had_worker = false;	/* and it may come back */
static bool dropping_extension = false; /* DROP EXTENSION in this xact */
static bool callback_registered = false;
static bool am_worker = false;
static object_access_hook_type prev_object_access_hook = NULL;

PGDLLEXPORT void anomali_launcher_main(Datum arg);
PGDLLEXPORT void anomali_worker_main(Datum arg);

PG_FUNCTION_INFO_V1(anomali_worker_status);

static void at_xact_end(XactEvent event, void *arg);
static void wake_worker(Oid dbid, bool start);
static void register_callback(void);
static bool database_takes_workers(Oid dbid);
static WorkerSlot *find_slot(Oid dbid);
static WorkerSlot *new_slot(void);
static void release_slot(int code, Datum arg);
static void keep_freed_memory(void);
static int	process_queue(long *next_ms, bool *has_extension);
static int	process_attachment(Oid relid, const char *column, const char *step_name,
							   long *next_ms);
static int	process_rows(Oid relid, const char *column, const char *step_name,
						 long *next_ms);

/*
 * Keep memory freed at the end of a batch for the next one.  A batch
 * allocates and frees megabytes (its rows, their new events, the UPDATE's
 * arrays); glibc hands freed memory at the top of the heap, and blocks it
 * mapped on their own, back to the kernel at once, so every batch faulted
 * all its pages in again, which took over a third of a worker's time.  The
 * worker is a process of its own, so this changes no session's behaviour;
 * what it keeps is bounded by KEPT_FREE_BYTES.
 */
static void
keep_freed_memory(void)
{
#ifdef __GLIBC__
	mallopt(M_TRIM_THRESHOLD, KEPT_FREE_BYTES);
	mallopt(M_MMAP_THRESHOLD, KEPT_FREE_BYTES / 2);
#endif
}

/* Ask for shared memory; called from the shmem_request hook */
void
worker_shmem_request(void)
{
	RequestAddinShmemSpace(MAXALIGN(sizeof(WorkerShared)));
	RequestNamedLWLockTranche("anomali_ts_worker", 1);
}

/* Create or attach the worker slots; called from the shmem_startup hook */
void
worker_shmem_startup(void)
{
	bool		found;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	wshared = ShmemInitStruct("anomali_ts workers", sizeof(WorkerShared), &found);
	if (!found)
	{
		memset(wshared, 0, sizeof(WorkerShared));
		wshared->lock = &(GetNamedLWLockTranche("anomali_ts_worker"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Object access hook: when a database is dropped, its worker must leave
 * (DROP DATABASE waits only five seconds for sessions to go), and once
 * ended, by that or by DROP DATABASE ... WITH (FORCE), must not be
 * restarted into a database that no longer exists.  A DROP that fails
 * later starts the worker again when its transaction aborts.  When the
 * extension is dropped, the worker is woken at commit, and leaves.
 */
static void
note_dropped_database(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access != OAT_DROP || wshared == NULL)
		return;

	if (classId == DatabaseRelationId)
	{
		WorkerSlot *slot;
		bool		had_worker = false;

		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		slot = find_slot(objectId);

		/*
		 * A database that never had a worker gets a slot too, marked: a
		 * commit of queued rows there while the DROP waits for sessions to
		 * leave must not start one into a database about to vanish.
		 */
		if (slot == NULL && (slot = new_slot()) != NULL)
			slot->dbid = objectId;
		if (slot != NULL)
		{
			/* An idle worker leaves now, not after its idle timeout */
			slot->dropped = true;
			had_worker = slot->pid > 0 || slot->starting_since != 0 || slot->wanted;
			if (slot->pid > 0)
				SetLatch(&GetPGProcByNumber(slot->pgprocno)->procLatch);
		}
		LWLockRelease(wshared->lock);
		dropping_database = objectId;

		/*
		 * If the DROP fails, only a worker that was there comes back, and
		 * only into a database that takes connections (a failed DROP of
		 * template0 must not start one).
		 */
		dropping_database_had_worker = had_worker && database_takes_workers(objectId);
		register_callback();
	}
	else if (classId == ExtensionRelationId &&
			 objectId == get_extension_oid("anomali_ts", true))
	{
		/* Once it commits, the worker has nothing left to do here */
		dropping_extension = true;
		register_callback();
	}
}

/* Register the launcher that starts a worker per database at server start */
void
worker_register_launcher(void)
{
	BackgroundWorker w;

	prev_object_access_hook = object_access_hook;
	object_access_hook = note_dropped_database;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;		/* after a crash restart or a terminate, too */
	snprintf(w.bgw_library_name, BGW_MAXLEN, "anomali_ts");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "anomali_launcher_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "anomali_ts launcher");
	snprintf(w.bgw_type, BGW_MAXLEN, "anomali_ts launcher");
	RegisterBackgroundWorker(&w);
}

/* True when workers can run (the library was preloaded) */
bool
worker_available(void)
{
	return wshared != NULL;
}

/* True inside a worker */
bool
worker_is_self(void)
{
	return am_worker;
}

/* Does the database take connections (not a template, not closed)? */
static bool
database_takes_workers(Oid dbid)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid));
	bool		takes = false;

	if (HeapTupleIsValid(tup))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		takes = db->datallowconn && !db->datistemplate;
		ReleaseSysCache(tup);
	}
	return takes;
}

/* Register at_xact_end once per backend */
static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(at_xact_end, NULL);
		callback_registered = true;
	}
}

/* A row of this transaction was queued: wake or start a worker at commit */
void
worker_note_queued(void)
{
	register_callback();
	queued_in_xact = true;
}

/*
 * Transaction callback: after a commit that queued rows, get them done;
 * after a commit that dropped the extension, let the worker go; after a
 * DROP DATABASE that failed, bring the database's worker back.
 */
static void
at_xact_end(XactEvent event, void *arg)
{
	bool		commit = event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_COMMIT;
	bool		abort = event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_ABORT;

	if (!commit && !abort)
		return;

	if (queued_in_xact && commit)
		wake_worker(MyDatabaseId, true);
	if (dropping_extension && commit)
		wake_worker(MyDatabaseId, false);
	if (OidIsValid(dropping_database) && abort)
	{
		WorkerSlot *slot;

		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		slot = find_slot(dropping_database);
		if (slot != NULL)
			slot->dropped = false;
		LWLockRelease(wshared->lock);
		if (dropping_database_had_worker)
			wake_worker(dropping_database, true);
	}

	queued_in_xact = false;
	dropping_extension = false;
	dropping_database = InvalidOid;
	dropping_database_had_worker = false;
}


/*
 * A slot for a database that has none: a free one, else one whose worker
 * has stopped (its counters are lost); caller holds the lock
 */
static WorkerSlot *
new_slot(void)
{
	WorkerSlot *slot = find_slot(InvalidOid);

	for (int i = 0; slot == NULL && i < MAX_DB_WORKERS; i++)
		if (wshared->slots[i].pid == 0 && wshared->slots[i].starting_since == 0)
		{
			slot = &wshared->slots[i];
			memset(slot, 0, sizeof(*slot));
		}
	return slot;
}

/* The slot of a database, or NULL; caller holds the lock */
static WorkerSlot *
find_slot(Oid dbid)
{
	for (int i = 0; i < MAX_DB_WORKERS; i++)
		if (wshared->slots[i].dbid == dbid)
			return &wshared->slots[i];
	return NULL;
}

/*
 * Set the latch of the database's worker, or (when start is true) start
 * one.  Runs in transaction callbacks and in the launcher, so it never
 * raises: a failure to start (every max_worker_processes slot taken) is
 * logged and marks the database wanted, and the launcher tries again until
 * a slot is free.
 */
static void
wake_worker(Oid dbid, bool start)
{
	WorkerSlot *slot;
	BackgroundWorker w;
	TimestampTz now = GetCurrentTimestamp();

	if (wshared == NULL)
		return;

	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	slot = find_slot(dbid);
	if (slot != NULL && slot->pid > 0)
	{
		/*
		 * Under the lock: a worker decides to exit under the same lock, and
		 * only if its latch is not set, so no wake-up is lost.
		 */
		SetLatch(&GetPGProcByNumber(slot->pgprocno)->procLatch);
		LWLockRelease(wshared->lock);
		return;
	}
	/* Not into a database being dropped (a DROP that fails clears this) */
	if (!start || (slot != NULL && slot->dropped))
	{
		LWLockRelease(wshared->lock);
		return;
	}
	if (slot != NULL && slot->starting_since != 0 &&
		!TimestampDifferenceExceeds(slot->starting_since, now, START_GRACE_MS))
	{
		LWLockRelease(wshared->lock);
		return;					/* already on its way */
	}
	if (slot == NULL)
		slot = new_slot();
	if (slot == NULL)
	{
		LWLockRelease(wshared->lock);
		elog(LOG, "anomali_ts: no free worker slot for database %u", dbid);
		return;
	}
	slot->dbid = dbid;
	slot->pid = 0;
	slot->starting_since = now;
	slot->wanted = false;
	LWLockRelease(wshared->lock);

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 5;		/* killed by an error: come back */
	snprintf(w.bgw_library_name, BGW_MAXLEN, "anomali_ts");
	snprintf(w.bgw_function_name, BGW_MAXLEN, "anomali_worker_main");
	snprintf(w.bgw_name, BGW_MAXLEN, "anomali_ts worker for database %u", dbid);
	snprintf(w.bgw_type, BGW_MAXLEN, "anomali_ts worker");
	w.bgw_main_arg = ObjectIdGetDatum(dbid);
	if (!RegisterDynamicBackgroundWorker(&w, NULL))
	{
		LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
		if (slot->dbid == dbid && slot->pid == 0)
		{
			slot->starting_since = 0;
			slot->wanted = true;
		}
		LWLockRelease(wshared->lock);
		elog(LOG, "anomali_ts: could not start a worker for database %u, will try again; raise max_worker_processes",
			 dbid);
	}
}

/*
 * The launcher: start a worker for every database that accepts connections,
 * then stay, starting again every worker whose start failed for want of a
 * free background worker slot
 */
void
anomali_launcher_main(Datum arg)
{
	List	   *dbids = NIL;
	ListCell   *lc;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	StartTransactionCommand();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
			dbids = lappend_oid(dbids, db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();

	foreach(lc, dbids)
		wake_worker(lfirst_oid(lc), true);
	list_free(dbids);

	for (;;)
	{
		Oid			wanted[MAX_DB_WORKERS];
		int			nwanted = 0;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 LAUNCHER_TICK_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		LWLockAcquire(wshared->lock, LW_SHARED);
		for (int i = 0; i < MAX_DB_WORKERS; i++)
			if (wshared->slots[i].wanted && wshared->slots[i].pid == 0 &&
				!wshared->slots[i].dropped)
				wanted[nwanted++] = wshared->slots[i].dbid;
		LWLockRelease(wshared->lock);
		for (int i = 0; i < nwanted; i++)
			wake_worker(wanted[i], true);
	}
}

/*
 * on_shmem_exit callback: the database keeps its slot (and its counters)
 * for the next worker, marked as not running
 */
static void
release_slot(int code, Datum arg)
{
	WorkerSlot *slot;

	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	slot = find_slot(DatumGetObjectId(arg));
	if (slot != NULL && slot->pid == MyProcPid)
	{
		slot->pid = 0;
		slot->starting_since = 0;
	}
	LWLockRelease(wshared->lock);
}

/* A worker for one database */
void
anomali_worker_main(Datum arg)
{
	Oid			dbid = DatumGetObjectId(arg);
	WorkerSlot *slot;
	MemoryContext loop_cxt;
	TimestampTz idle_since;

	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* A restart after DROP DATABASE: done for good (exit 0: no restart) */
	LWLockAcquire(wshared->lock, LW_SHARED);
	slot = find_slot(dbid);
	if (slot != NULL && slot->dropped)
	{
		LWLockRelease(wshared->lock);
		proc_exit(0);
	}
	LWLockRelease(wshared->lock);

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	pgstat_report_appname("anomali_ts worker");

	/* One worker per database: leave if another one already runs */
	LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
	slot = find_slot(dbid);
	if (slot != NULL && slot->pid > 0 && slot->pid != MyProcPid &&
		kill(slot->pid, 0) == 0)
	{
		LWLockRelease(wshared->lock);
		proc_exit(0);
	}
	if (slot == NULL)
		slot = new_slot();
	if (slot == NULL)
	{
		LWLockRelease(wshared->lock);
		elog(LOG, "anomali_ts: no free worker slot for database %u", dbid);
		proc_exit(0);
	}
	slot->dbid = dbid;
	slot->pid = MyProcPid;
	slot->pgprocno = MyProc->pgprocno;
	slot->starting_since = 0;
	LWLockRelease(wshared->lock);
	on_shmem_exit(release_slot, ObjectIdGetDatum(dbid));

	am_worker = true;
	keep_freed_memory();
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "anomali_ts worker loop",
									 ALLOCSET_DEFAULT_SIZES);
	idle_since = GetCurrentTimestamp();

	for (;;)
	{
		long		next_ms = -1;
		bool		has_extension;
		bool		dropped;
		int			finished;
		long		wait;
		long		idle_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/* DROP DATABASE has begun (note_dropped_database): leave for good */
		LWLockAcquire(wshared->lock, LW_SHARED);
		dropped = slot->dropped;
		LWLockRelease(wshared->lock);
		if (dropped)
			proc_exit(0);

		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);
		finished = process_queue(&next_ms, &has_extension);
		MemoryContextSwitchTo(loop_cxt);

		if (finished > 0)
		{
			LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
			slot->rows_finished += finished;
			slot->last_batch_at = GetCurrentTimestamp();
			LWLockRelease(wshared->lock);
			idle_since = GetCurrentTimestamp();
			continue;
		}

		/*
		 * Rows waiting for a retry keep the worker; an empty queue keeps it
		 * for the idle timeout; without the extension nothing can be queued
		 * until a commit starts a worker again.
		 */
		idle_ms = TimestampDifferenceMilliseconds(idle_since, GetCurrentTimestamp());
		if (next_ms >= 0)
		{
			idle_since = GetCurrentTimestamp();
			wait = Min(Max(next_ms, 10), anomali_worker_idle_timeout_ms);
		}
		else if (!has_extension || idle_ms >= anomali_worker_idle_timeout_ms)
		{
			/* Leave only if no commit woke us since the last pass */
			LWLockAcquire(wshared->lock, LW_EXCLUSIVE);
			if (!MyLatch->is_set)
			{
				slot->pid = 0;
				LWLockRelease(wshared->lock);
				proc_exit(0);
			}
			LWLockRelease(wshared->lock);
			ResetLatch(MyLatch);
			idle_since = GetCurrentTimestamp();
			continue;
		}
		else
			wait = anomali_worker_idle_timeout_ms - idle_ms;

		/* Statistics held back by the last pass are due before a long sleep */
		pgstat_report_stat(true);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * One pass over every asynchronous attachment of this database, in one
 * transaction; returns rows finished, and in *next_ms when a queued row
 * waits for a retry (-1 when nothing is queued at all).
 */
static int
process_queue(long *next_ms, bool *has_extension)
{
	int			finished = 0;
	SPITupleTable *attachments;
	uint64		n;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "anomali_ts: reading the queue");

	*has_extension = OidIsValid(get_extension_oid("anomali_ts", true));
	if (!*has_extension)
		n = 0;
	else
	{
		if (SPI_execute("SELECT a.relid, a.column_name::text, a.step_name "
						"FROM anomali_ts.attachment a "
						"JOIN anomali_ts.step s ON s.name = a.step_name AND s.mode = 'async' "
						"JOIN pg_catalog.pg_class c ON c.oid = a.relid AND c.relkind = 'r' "
						"JOIN pg_catalog.pg_attribute t ON t.attrelid = a.relid "
						" AND t.attname = a.column_name AND NOT t.attisdropped "
						" AND t.atttypid = 'pg_catalog.jsonb'::pg_catalog.regtype",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read anomali_ts.attachment");
		n = SPI_processed;
	}
	attachments = SPI_tuptable;

	for (uint64 i = 0; i < n; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(attachments->vals[i],
														   attachments->tupdesc, 1, &isnull));
		char	   *column = SPI_getvalue(attachments->vals[i], attachments->tupdesc, 2);
		char	   *step = SPI_getvalue(attachments->vals[i], attachments->tupdesc, 3);
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;

		/* One table's trouble (dropped meanwhile, a bad row) spares the rest */
		BeginInternalSubTransaction(NULL);
		PG_TRY();
		{
			finished += process_attachment(relid, column, step, next_ms);
			ReleaseCurrentSubTransaction();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			ereport(WARNING,
					(errmsg("anomali_ts worker: step \"%s\" on table %u: %s",
							step, relid, edata->message)));
			FreeErrorData(edata);
		}
		PG_END_TRY();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		CHECK_FOR_INTERRUPTS();
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	/*
	 * Publish the pass's table statistics (a background worker has no idle
	 * loop doing it): autovacuum learns of the row versions it left.
	 */
	pgstat_report_stat(false);
	return finished;
}

/* A member of an event's arcanna.ioc.global, if present */
static bool
global_member(Jsonb *event, const char *key, JsonbValue *out)
{
	JsonbContainer *c = &event->root;
	static const char *const path[] = {"arcanna", "ioc", "global"};

	for (int i = 0; i < lengthof(path); i++)
	{
		if (!JsonContainerIsObject(c) ||
			getKeyJsonValueFromContainer(c, path[i], strlen(path[i]), out) == NULL ||
			out->type != jbvBinary)
			return false;
		c = out->val.binary.data;
	}
	return JsonContainerIsObject(c) &&
		getKeyJsonValueFromContainer(c, key, strlen(key), out) != NULL;
}

/* Read the queue bookkeeping a row carries */
static void
read_queue_state(Jsonb *event, QueueState *q)
{
	JsonbValue	v;

	q->attempts = 0;
	q->queued_at = NULL;
	if (global_member(event, "attempts", &v) && v.type == jbvNumeric)
		q->attempts = DatumGetInt32(DirectFunctionCall1(numeric_int4,
														NumericGetDatum(v.val.numeric)));
	if (global_member(event, "queued_at", &v) && v.type == jbvString)
		q->queued_at = pnstrdup(v.val.string.val, v.val.string.len);
}

/*
 * Finish queued rows of one table and step, with the rights of the table's
 * owner: the worker itself is a superuser, and the owner's own triggers,
 * constraints and index expressions run during its UPDATE, so it must not
 * lend them more than the owner has (as autovacuum does not).
 */
typedef struct AttachmentArgs
{
	Oid			relid;
	const char *column;
	const char *step_name;
	long	   *next_ms;
	int			finished;
} AttachmentArgs;

/* process_rows, as a callback of integration_run_as */
static void
process_rows_cb(void *arg)
{
	AttachmentArgs *a = arg;

	a->finished = process_rows(a->relid, a->column, a->step_name, a->next_ms);
}

static int
process_attachment(Oid relid, const char *column, const char *step_name,
				   long *next_ms)
{
	Oid			owner = integration_relation_owner(relid);
	AttachmentArgs a = {relid, column, step_name, next_ms, 0};

	if (!OidIsValid(owner))
		return 0;				/* dropped meanwhile */
	integration_run_as(owner, process_rows_cb, &a);
	return a.finished;
}

/* Finish up to worker_batch_size queued rows of one table and step */
static int
process_rows(Oid relid, const char *column, const char *step_name,
			 long *next_ms)
{
	const Step *step = step_get(step_name);
	char	   *rel;
	char	   *col = (char *) quote_identifier(column);
	char	   *mark;
	char	   *sql;
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	SPITupleTable *rows;
	uint64		nrows;
	EnrichBatch *batch;
	int		   *row_of;
	int			nbatch = 0;
	int			finished = 0;
	Size		bytes = 0;
	Datum	   *ctids;
	Datum	   *events;

	if (step == NULL || !step->enabled)
		return 0;
	rel = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									 get_rel_name(relid));
	mark = psprintf("(%s #>> '{arcanna,ioc,global,pending_step}')", col);

	values[0] = CStringGetTextDatum(step_name);
	values[1] = Int32GetDatum(anomali_worker_batch_rows);
	pgstat_report_activity(STATE_RUNNING, "anomali_ts: enriching queued rows");
	sql = psprintf("SELECT ctid, %s FROM ONLY %s "
				   "WHERE %s IS NOT NULL AND %s = $1 "
				   "AND coalesce(%s #>> '{arcanna,ioc,global,retry_at}' <= "
				   "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), true) "
				   "LIMIT $2 FOR UPDATE SKIP LOCKED",
				   col, rel, mark, mark, col);
	row_batch_execute(sql, 2, types, values, false, SPI_OK_SELECT, rel);
	rows = SPI_tuptable;
	nrows = SPI_processed;

	if (nrows == 0)
	{
		bool		isnull;
		Datum		wait;

		/*
		 * Nothing due: when is the next retry due?  Only retry times in the
		 * form this module writes are read, so a malformed row cannot stop
		 * the table's queue (it just never comes due).
		 */
		sql = psprintf("SELECT extract(epoch FROM min(r::timestamptz) - now()) * 1000 "
					   "FROM (SELECT %s #>> '{arcanna,ioc,global,retry_at}' AS r "
					   "FROM ONLY %s WHERE %s IS NOT NULL AND %s = $1) q "
					   "WHERE r ~ '^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$'",
					   col, rel, mark, mark);
		row_batch_execute(sql, 1, types, values, true, SPI_OK_SELECT, rel);
		wait = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			long		ms = (long) Max(DatumGetFloat8(DirectFunctionCall1(numeric_float8, wait)), 0);

			*next_ms = *next_ms < 0 ? ms : Min(*next_ms, ms);
		}
		return 0;
	}

	batch = enrich_batch_begin(step->config);
	row_of = palloc(sizeof(int) * nrows);
	for (uint64 i = 0; i < nrows; i++)
	{
		bool		isnull;
		Datum		ev = SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull);

		/* Huge events: stop well before one UPDATE's array would exceed 1 GB */
		if (!isnull)
			bytes += toast_raw_datum_size(ev);	/* stored out of line too */
		if (nbatch > 0 && bytes > BATCH_MAX_BYTES)
			break;
		if (!isnull && enrich_batch_add(batch, DatumGetJsonbP(ev)))
			row_of[nbatch++] = (int) i;
	}
	enrich_batch_lookup(batch);

	ctids = palloc(sizeof(Datum) * Max(nbatch, 1));
	events = palloc(sizeof(Datum) * Max(nbatch, 1));

	for (int k = 0; k < nbatch; k++)
	{
		HeapTuple	t = rows->vals[row_of[k]];
		bool		isnull;
		Jsonb	   *old = DatumGetJsonbP(SPI_getbinval(t, rows->tupdesc, 2, &isnull));
		QueueState	q;
		bool		again;

		read_queue_state(old, &q);
		q.step = step_name;
		q.attempts++;
		q.retry_at = NULL;

		/* Failed lookups are tried again later, a bounded number of times */
		again = enrich_batch_has_error(batch, k) && q.attempts < anomali_worker_max_attempts;
		if (again)
		{
			int64		delay = (int64) anomali_worker_retry_delay_ms << Min(q.attempts - 1, 10);

			delay = Min(delay, (int64) 3600 * 1000);
			q.retry_at = created_fields_time(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
																		 delay));

			/* The row is still queued: the worker must stay for its retry */
			*next_ms = *next_ms < 0 ? (long) delay : Min(*next_ms, (long) delay);
		}
		else
			finished++;

		events[k] = JsonbPGetDatum(enrich_batch_queued(batch, k, &q, again));
		ctids[k] = SPI_getbinval(t, rows->tupdesc, 1, &isnull);
	}

	/* The rows are locked (FOR UPDATE): no xmin check is needed */
	row_update_batch(rel, column, ctids, events, NULL, nbatch);

	return finished;
}

/* anomali_worker_status(): the workers of every database */
Datum
anomali_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (wshared == NULL)
		return (Datum) 0;

	LWLockAcquire(wshared->lock, LW_SHARED);
	for (int i = 0; i < MAX_DB_WORKERS; i++)
	{
		WorkerSlot *s = &wshared->slots[i];
		Datum		values[5];
		bool		nulls[5] = {false};

		if (!OidIsValid(s->dbid) || s->dropped)
			continue;
		values[0] = ObjectIdGetDatum(s->dbid);
		if (s->pid > 0)
			values[1] = Int32GetDatum(s->pid);
		else
			nulls[1] = true;
		values[2] = CStringGetTextDatum(s->pid > 0 ? "running" :
										s->starting_since != 0 ? "starting" : "stopped");
		values[3] = Int64GetDatum(s->rows_finished);
		if (s->last_batch_at != 0)
			values[4] = TimestampTzGetDatum(s->last_batch_at);
		else
			nulls[4] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(wshared->lock);
	return (Datum) 0;
}
