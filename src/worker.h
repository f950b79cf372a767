/*
 * worker.h
 *		Asynchronous enrichment by background workers.
 *
 * This module owns the per-database background workers that finish rows an
 * asynchronous step queued: their life cycle (started at server start and
 * on the commit of queued rows, gone when idle), their slots in shared
 * memory (a database keeps its slot, with its counters, between workers),
 * and the loop that takes batches of queued rows and enriches them.
 */
#ifndef ANOMALI_WORKER_H
#define ANOMALI_WORKER_H

extern void worker_shmem_request(void);
extern void worker_shmem_startup(void);
extern void worker_register_launcher(void);

/* True when workers can run (the library was preloaded) */
extern bool worker_available(void);

/* A row of this transaction was queued: wake or start a worker at commit */
extern void worker_note_queued(void);

/* True inside a worker: its own updates must not be queued again */
extern bool worker_is_self(void);

#endif							/* ANOMALI_WORKER_H */
