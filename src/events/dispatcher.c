/* events/dispatcher.c — the in-process dispatcher: one thread per consumer (events/events.h).
 *
 * Wake-ups. The store's post-commit hook bumps `gen` and broadcasts `cv`. A thread notes gen before
 * it reads the outbox; when the read finds nothing it sleeps until gen moves (a commit happened
 * after its read began, so there may be new rows) or EVENTS_POLL_MS passes (rows committed by
 * another process, which fires no hook here). No wake-up is lost: a commit after the read bumps gen.
 * Failures sleep the backoff (doubling, capped) on the same cv, so stop is prompt.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "events/events_int.h"
#include "store/store.h"

struct worker {
	struct events_dispatcher *d;
	const struct events_consumer *c;
	pthread_t th;
	bool started;
	_Atomic int64_t ckpt;
	struct metric *lag, *delivered, *failures;
};

struct events_dispatcher {
	struct store *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* commits, stop */
	pthread_cond_t prog_cv;   /* a checkpoint advanced */
	uint64_t gen;
	bool stopping;
	struct worker *w;
	size_t n;
};

static void on_commit(void *arg)
{
	struct events_dispatcher *d = arg;
	pthread_mutex_lock(&d->mu);
	d->gen++;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

void events_dispatcher_poke(struct events_dispatcher *d)
{
	if (d)
		on_commit(d);
}

static struct timespec deadline_in(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Under d->mu: sleep until gen != seen (if check_gen), stop, or ms pass. */
static void sleep_locked(struct events_dispatcher *d, bool check_gen, uint64_t seen, int64_t ms)
{
	struct timespec until = deadline_in(ms);
	while (!d->stopping && (!check_gen || d->gen == seen))
		if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT)
			break;
}

static void set_lag(struct worker *w)
{
	int64_t head;
	if (events_head(w->d->s, &head) == MC_OK)
		metrics_set(w->lag, head > w->ckpt ? head - w->ckpt : 0);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct events_dispatcher *d = w->d;
	struct ev_batch b = {0};
	int64_t backoff = 0, ckpt = 0;
	bool loaded = false;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		bool stop = d->stopping;
		uint64_t seen = d->gen;
		pthread_mutex_unlock(&d->mu);
		if (stop)
			break;
		int rc = MC_OK;
		size_t done = 0;
		if (!loaded) {
			rc = events_checkpoint(d->s, w->c->name, &ckpt);
			loaded = rc == MC_OK;
			if (loaded)
				atomic_store(&w->ckpt, ckpt);
		}
		if (rc == MC_OK)
			rc = ev_round(d->s, w->c, &b, &ckpt, EVENTS_BATCH_MAX, &done);
		if (done) {
			metrics_add(w->delivered, (int64_t)done);
			atomic_store(&w->ckpt, ckpt);
			pthread_mutex_lock(&d->mu);
			pthread_cond_broadcast(&d->prog_cv);
			pthread_mutex_unlock(&d->mu);
		}
		set_lag(w);
		if (rc == MC_ECONFLICT) {
			/* Another process moved the checkpoint (a rebuild): start again from it. */
			LOGI("events: consumer checkpoint moved elsewhere; reloading", "\"consumer\":\"%s\"", w->c->name);
			loaded = false;
			continue;
		}
		pthread_mutex_lock(&d->mu);
		if (rc) {
			metrics_add(w->failures, 1);
			backoff = backoff ? backoff * 2 : EVENTS_BACKOFF_MIN_MS;
			if (backoff > EVENTS_BACKOFF_MAX_MS)
				backoff = EVENTS_BACKOFF_MAX_MS;
			LOGW("events: consumer failed; retrying", "\"consumer\":\"%s\",\"code\":\"%s\",\"seq\":%lld,\"backoff_ms\":%lld",
			     w->c->name, mc_code_name(rc), (long long)(ckpt + 1), (long long)backoff);
			sleep_locked(d, false, 0, backoff);
		} else {
			backoff = 0;
			if (done < EVENTS_BATCH_MAX)
				sleep_locked(d, true, seen, EVENTS_POLL_MS);
		}
		pthread_mutex_unlock(&d->mu);
	}
	ev_batch_release(&b);
	return NULL;
}

int events_dispatcher_start(struct store *s, const struct events_consumer *const *consumers, size_t n,
			    struct events_dispatcher **out)
{
	*out = NULL;
	for (size_t i = 0; i < n; i++) {
		if (events_consumer_check(consumers[i]))
			return MC_EINVAL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(consumers[i]->name, consumers[j]->name))
				return MC_EINVAL;
	}
	struct events_dispatcher *d = mc_calloc(1, sizeof(*d));
	d->s = s;
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_cond_init(&d->prog_cv, &ca);
	pthread_condattr_destroy(&ca);
	d->n = n;
	d->w = mc_calloc(n ? n : 1, sizeof(*d->w));
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &d->w[i];
		char labels[EVENTS_CONSUMER_NAME_MAX + 16];
		snprintf(labels, sizeof(labels), "name=\"%s\"", consumers[i]->name);
		w->d = d;
		w->c = consumers[i];
		w->lag = metrics_gauge("medcore_consumer_lag", "outbox events not yet handled by the consumer", labels);
		w->delivered = metrics_counter("medcore_events_delivered_total", "events handled by the consumer", labels);
		w->failures = metrics_counter("medcore_consumer_failures_total", "failed delivery rounds (retried)", labels);
	}
	store_on_commit(s, on_commit, d);
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&d->w[i].th, NULL, worker_main, &d->w[i]) != 0) {
			LOGE("events: cannot start a consumer thread", "\"consumer\":\"%s\"", consumers[i]->name);
			events_dispatcher_stop(d);
			return MC_EUNAVAIL;
		}
		d->w[i].started = true;
	}
	*out = d;
	return MC_OK;
}

static int unit_noop(struct store_txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return MC_OK;
}

void events_dispatcher_stop(struct events_dispatcher *d)
{
	if (!d)
		return;
	store_on_commit(d->s, NULL, NULL);
	/* A barrier: once a unit queued now has committed, the writer has finished any hook call that
	 * still saw d (hooks run before the waiters of their batch are woken). */
	store_write(d->s, unit_noop, NULL);
	pthread_mutex_lock(&d->mu);
	d->stopping = true;
	pthread_cond_broadcast(&d->cv);
	pthread_cond_broadcast(&d->prog_cv);
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < d->n; i++)
		if (d->w[i].started)
			pthread_join(d->w[i].th, NULL);
	pthread_cond_destroy(&d->cv);
	pthread_cond_destroy(&d->prog_cv);
	pthread_mutex_destroy(&d->mu);
	free(d->w);
	free(d);
}

int events_dispatcher_wait(struct events_dispatcher *d, int64_t seq, int64_t timeout_ms)
{
	struct timespec until = deadline_in(timeout_ms);
	pthread_mutex_lock(&d->mu);
	int rc = MC_OK;
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < d->n; i++)
			if (atomic_load(&d->w[i].ckpt) < seq)
				all = false;
		if (all)
			break;
		if (d->stopping || pthread_cond_timedwait(&d->prog_cv, &d->mu, &until) == ETIMEDOUT) {
			rc = MC_ETIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}
