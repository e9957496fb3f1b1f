/* store/wqueue.c — the write queue shared by the storage backends (see wqueue.h). */
#include "store/wqueue.h"

#include <stdlib.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

void store_wq_init(struct store_wqueue *q, const char *backend)
{
	*q = (struct store_wqueue){.backend = backend};
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->work_cv, NULL);
	pthread_cond_init(&q->done_cv, NULL);
}

void store_wq_destroy(struct store_wqueue *q)
{
	pthread_cond_destroy(&q->work_cv);
	pthread_cond_destroy(&q->done_cv);
	pthread_mutex_destroy(&q->mu);
}

int store_wq_submit(struct store_wqueue *q, bool on_writer, store_work_fn *fn, void *arg,
		    store_done_fn *done)
{
	if (on_writer && !done) {
		LOGE("store: store_write called from a unit of work (would deadlock)", "\"backend\":\"%s\"",
		     q->backend);
		return MC_EINTERNAL;
	}
	struct store_wunit local = {fn, arg, done, MC_OK, false, NULL};
	struct store_wunit *u = &local;
	if (done) {
		u = mc_malloc(sizeof(*u));
		*u = local;
	}
	pthread_mutex_lock(&q->mu);
	/* Back-pressure, except on a writer thread itself, which must never wait for queue space. */
	while (!q->stopping && !on_writer && q->qlen >= STORE_WQ_MAX)
		pthread_cond_wait(&q->done_cv, &q->mu);
	if (q->stopping) {
		pthread_mutex_unlock(&q->mu);
		if (done)
			free(u);
		LOGW("store: write refused, the store is closing", "\"backend\":\"%s\"", q->backend);
		return MC_EUNAVAIL;
	}
	if (q->qtail)
		q->qtail->next = u;
	else
		q->qhead = u;
	q->qtail = u;
	q->qlen++;
	pthread_cond_signal(&q->work_cv);
	if (done) {
		pthread_mutex_unlock(&q->mu);
		return MC_OK;
	}
	while (!local.finished)
		pthread_cond_wait(&q->done_cv, &q->mu);
	pthread_mutex_unlock(&q->mu);
	return local.rc;
}

/* Under mu. */
static void wait_locked(struct store_wqueue *q)
{
	while (!q->qhead && !q->stopping)
		pthread_cond_wait(&q->work_cv, &q->mu);
}

bool store_wq_wait(struct store_wqueue *q)
{
	pthread_mutex_lock(&q->mu);
	wait_locked(q);
	bool work = q->qhead != NULL;   /* NULL: stopping and drained */
	pthread_mutex_unlock(&q->mu);
	return work;
}

size_t store_wq_take(struct store_wqueue *q, struct store_wunit **batch, size_t max, bool wait,
		     bool pool)
{
	pthread_mutex_lock(&q->mu);
	if (wait)
		wait_locked(q);
	size_t n = 0;
	while (q->qhead && n < max) {
		batch[n++] = q->qhead;
		q->qhead = q->qhead->next;
	}
	if (!q->qhead)
		q->qtail = NULL;
	q->qlen -= n;
	if (pool) {
		if (n)
			pthread_cond_broadcast(&q->done_cv);   /* queue space for back-pressured writers */
		if (q->qhead)
			pthread_cond_signal(&q->work_cv);      /* more than one batch queued: wake a peer */
	}
	pthread_mutex_unlock(&q->mu);
	return n;
}

void store_wq_finish(struct store_wqueue *q, struct store_wunit **batch, size_t n, uint64_t commits)
{
	/* Sync units may vanish the moment they are marked finished: collect the async ones first. */
	struct store_wunit *async = NULL;
	uint64_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (batch[i]->rc != MC_OK)
			failed++;
		if (batch[i]->done) {
			batch[i]->next = async;
			async = batch[i];
			batch[i] = NULL;   /* freed after its done() below */
		}
	}
	/* Async callbacks run first, without the lock (done() may queue more work), so that a
	 * synchronous unit queued behind async ones returns only after their done() ran. */
	while (async) {
		struct store_wunit *next = async->next;
		async->done(async->arg, async->rc);
		free(async);
		async = next;
	}
	pthread_mutex_lock(&q->mu);
	q->commits += commits;
	q->units += n;
	q->units_failed += failed;
	for (size_t i = 0; i < n; i++)
		if (batch[i])
			batch[i]->finished = true;
	pthread_cond_broadcast(&q->done_cv);
	pthread_mutex_unlock(&q->mu);
}

void store_wq_stop(struct store_wqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	/* Broadcast: a backend may run several writers (with one writer this equals a signal). */
	pthread_cond_broadcast(&q->work_cv);
	pthread_cond_broadcast(&q->done_cv);   /* submitters waiting for queue space give up */
	pthread_mutex_unlock(&q->mu);
}

void store_wq_stats(struct store_wqueue *q, struct store_stats *out)
{
	pthread_mutex_lock(&q->mu);
	out->commits = q->commits;
	out->units = q->units;
	out->units_failed = q->units_failed;
	pthread_mutex_unlock(&q->mu);
}
