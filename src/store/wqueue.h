/* store/wqueue.h — the write queue shared by the storage backends (internal to src/store/).
 *
 * store_write() / store_write_async() enqueue a unit; one or more backend writer threads take
 * batches of units, run them in the backend's own way (group commit), then hand the batch back
 * with store_wq_finish(), which updates the counters, runs async done() callbacks and wakes the
 * synchronous waiters. The queue holds at most STORE_WQ_MAX units: beyond that, submitters block
 * (back-pressure) until a batch finishes — except on a writer thread, which must never wait.
 *
 * Thread safety: every function may be called from any thread; q->mu guards all fields.
 */
#ifndef MC_STORE_WQUEUE_H
#define MC_STORE_WQUEUE_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_WQ_MAX 65536   /* queued units before store_write* block (back-pressure) */

/* One queued unit of work. A synchronous unit (done == NULL) lives on its waiter's stack; an
 * async one is heap-allocated by store_wq_submit and freed by store_wq_finish after its done(). */
struct store_wunit {
	store_work_fn *fn;
	void *arg;
	store_done_fn *done;   /* NULL: a synchronous waiter owns this unit (on its stack) */
	int rc;                /* set by the writer before store_wq_finish */
	bool finished;         /* set under mu; the waiter may free the unit right after */
	struct store_wunit *next;
};

struct store_wqueue {
	const char *backend;       /* static backend name, for log lines only (not owned) */
	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t work_cv;    /* writers: units queued, or stopping */
	pthread_cond_t done_cv;    /* waiters: a batch finished or was taken (units done, queue space) */
	struct store_wunit *qhead, *qtail;
	size_t qlen;
	bool stopping;
	uint64_t commits, units, units_failed;
};

/* Initializes an empty queue. backend: a static string (e.g. "sqlite"), not copied. */
void store_wq_init(struct store_wqueue *q, const char *backend);
/* Destroys the mutex and condvars. The queue must be empty and no thread may use it any more
 * (call store_wq_stop and join the writers first). */
void store_wq_destroy(struct store_wqueue *q);

/* The whole body of store_write (done == NULL: waits until the unit finished and returns its rc)
 * and store_write_async (done != NULL: returns MC_OK once queued; done(arg, rc) runs later on a
 * writer thread). on_writer: the caller runs on one of this store's writer threads (inside a
 * unit); a synchronous write there would deadlock (MC_EINTERNAL), and an async one skips
 * back-pressure. MC_EUNAVAIL once the store is stopping (done is then not called). */
int store_wq_submit(struct store_wqueue *q, bool on_writer, store_work_fn *fn, void *arg,
		    store_done_fn *done);

/* Writer side: waits until units are queued or the queue is stopping. Returns false when the
 * queue is stopping and drained (the writer should exit), true when work is queued. */
bool store_wq_wait(struct store_wqueue *q);

/* Writer side: takes up to max queued units (oldest first) into batch[]; returns how many (may be
 * 0). wait: first wait like store_wq_wait (0 then means stopping and drained).
 * pool: the backend runs several writer threads (PostgreSQL): taking units broadcasts done_cv at
 * once (queue space for back-pressured submitters) and, when units remain queued, wakes a peer
 * writer. Without pool (SQLite, one writer) queue space is announced only by store_wq_finish. */
size_t store_wq_take(struct store_wqueue *q, struct store_wunit **batch, size_t max, bool wait,
		     bool pool);

/* Writer side: the batch of n units (each rc set) is done; commits COMMITs succeeded. Runs the
 * async units' done() callbacks first, without the lock (done() may queue more work), and frees
 * them, so a synchronous unit queued behind async ones returns only after their done() ran; then
 * adds to the counters, marks the synchronous units finished and wakes their waiters.
 * Overwrites batch[] entries. */
void store_wq_finish(struct store_wqueue *q, struct store_wunit **batch, size_t n, uint64_t commits);

/* Makes submitters fail with MC_EUNAVAIL from now on and wakes every waiting writer and
 * back-pressured submitter. Writers drain what is already queued before store_wq_take /
 * store_wq_wait report the end. */
void store_wq_stop(struct store_wqueue *q);

/* The counters: commits, units, units_failed (other fields of out untouched). */
void store_wq_stats(struct store_wqueue *q, struct store_stats *out);

#endif
