/* modules/vitals/live.c — the live hub (subscribers, bounded queues, SSE streams, WebSocket I/O
 * thread), the WebSocket ingest endpoint, and the start/stop glue of alerting (see live.h).
 *
 * Threads and locks:
 *   hub.mu (rwlock)   the subscriber list. Publishers (ingest threads via the sink, the alerts
 *                     thread, HTTP workers after staff actions) hold it shared; adding/removing a
 *                     subscriber holds it exclusively, so a subscriber is freed only when no
 *                     publisher can still see it.
 *   sub->mu           its queue and flags. A publisher enqueues a reference to a shared, refcounted
 *                     message and wakes the consumer: an SSE stream by resuming its suspended
 *                     connection, a WebSocket by the I/O thread's eventfd (at most one write per
 *                     wake-up round, flagged by wake_pending).
 *   the I/O thread    owns every WebSocket subscriber's wslay context (epoll on their sockets);
 *                     moves queued messages into wslay only while wslay holds few frames, so a
 *                     client that does not read fills its own queue and is dropped (1008).
 *   ingest threads    one per WebSocket ingest connection (at most LIVE_INGEST_CONNS_MAX): the
 *                     ingest call waits for durability, which must not stall the subscribers.
 */
#include "modules/vitals/live.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "http/app.h"
#include "http/server.h"
#include "modules/vitals/vitals_module.h"
#include "modules/vitals/ws.h"
#include "store/store.h"

#define WS_INFLIGHT_MAX 16        /* frames handed to wslay and not yet written */
#define WS_CLOSE_GRACE_US 2000000 /* a dropped client gets this long to take the close frame */
#define SSE_PING_US 15000000      /* SSE comment to detect closed clients and keep proxies open */

struct msg {
	_Atomic int refs;
	const char *event;   /* "sample" "alert"; NULL = SSE comment (ping) */
	size_t len;
	char json[];
};

static struct msg *msg_new(const char *event, const char *text, size_t len)
{
	struct msg *m = mc_malloc(sizeof(*m) + len + 1);
	atomic_init(&m->refs, 1);
	m->event = event;
	m->len = len;
	memcpy(m->json, text, len);
	m->json[len] = '\0';
	return m;
}

static void msg_unref(struct msg *m)
{
	if (m && atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

enum sub_kind { SUB_SSE, SUB_WS };

struct member {
	char id[65];
	uint32_t h;
	int64_t last[VP__COUNT];   /* sample time last sent, for decimation */
};

struct sub {
	struct sub *next;           /* hub list */
	struct sub *io_next;        /* I/O thread's list (WebSocket) */
	enum sub_kind kind;
	pthread_mutex_t mu;
	struct msg *q[LIVE_QUEUE_MAX];
	size_t qh, qn;
	bool dropped, ended, in_hub;
	int64_t decimate_ms;
	char location_id[65];       /* ward subscription, else "" */
	struct member *mem;         /* swapped only under hub.mu held exclusively (ward refresh) */
	size_t nmem;
	uint64_t uid;               /* unique for the process: identity across the hub lock */
	uint64_t gen;               /* ward: the membership generation mem was computed at */
	struct auth_principal who;  /* ward: whose access decides membership on refresh */
	/* SSE */
	void *conn;
	bool suspended;
	uint64_t next_id;
	char *pend;
	size_t pend_len, pend_off;
	int64_t last_send_us;
	/* WebSocket */
	struct ws_conn *ws;
	bool close_sent;
	int64_t close_deadline_us;
	_Atomic bool wake_pending;
};

struct ingest_conn {
	struct ingest_conn *next;
	struct auth_principal who;
	struct ws_conn *ws;
	pthread_t th;
	bool done;
};

static struct {
	pthread_rwlock_t mu;
	struct sub *subs;
	size_t nsubs;
	bool running, stopping;
	int efd, ep;
	pthread_t io;
	pthread_mutex_t pend_mu;
	struct sub *pending;        /* WebSocket subscribers waiting to join the I/O thread */
	_Atomic uint64_t dropped, delivered;
	/* ingest */
	pthread_mutex_t ing_mu;
	struct ingest_conn *ingest;
	size_t ningest;
	/* alerting */
	struct alerts *alerts;
	pthread_rwlock_t alerts_mu;
	const struct app *app;
	_Atomic uint64_t ward_gen, next_uid;
} hub = {
	.mu = PTHREAD_RWLOCK_INITIALIZER,
	.pend_mu = PTHREAD_MUTEX_INITIALIZER,
	.ing_mu = PTHREAD_MUTEX_INITIALIZER,
	.alerts_mu = PTHREAD_RWLOCK_INITIALIZER,
	.efd = -1,
	.ep = -1,
};

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static struct sub *sub_new(enum sub_kind kind)
{
	struct sub *s = mc_calloc(1, sizeof(*s));
	s->kind = kind;
	s->uid = atomic_fetch_add(&hub.next_uid, 1) + 1;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

static void sub_free(struct sub *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->qn; i++)
		msg_unref(s->q[(s->qh + i) % LIVE_QUEUE_MAX]);
	free(s->pend);
	free(s->mem);
	ws_conn_free(s->ws);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void hub_add(struct sub *s)
{
	pthread_rwlock_wrlock(&hub.mu);
	s->next = hub.subs;
	hub.subs = s;
	hub.nsubs++;
	s->in_hub = true;
	pthread_rwlock_unlock(&hub.mu);
}

static void hub_remove(struct sub *s)
{
	pthread_rwlock_wrlock(&hub.mu);
	if (s->in_hub) {
		for (struct sub **p = &hub.subs; *p; p = &(*p)->next)
			if (*p == s) {
				*p = s->next;
				hub.nsubs--;
				break;
			}
		s->in_hub = false;
	}
	pthread_rwlock_unlock(&hub.mu);
}

static void wake_io(void)
{
	uint64_t one = 1;
	if (hub.efd >= 0 && write(hub.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		LOGW("live: wake failed", "\"errno\":%d", errno);
}

/* Caller holds s->mu. Wake whoever consumes s. */
static void sub_wake_locked(struct sub *s, bool *need_io)
{
	if (s->kind == SUB_SSE) {
		if (s->suspended && s->conn) {
			s->suspended = false;
			http_stream_resume(s->conn);
		}
	} else if (!atomic_exchange(&s->wake_pending, true)) {
		*need_io = true;
	}
}

/* Caller holds s->mu. Takes a new reference to m; a full queue drops the subscriber. */
static void sub_push_locked(struct sub *s, struct msg *m, bool *need_io)
{
	if (s->dropped || s->ended)
		return;
	if (s->qn == LIVE_QUEUE_MAX) {
		s->dropped = true;
		for (size_t i = 0; i < s->qn; i++)
			msg_unref(s->q[(s->qh + i) % LIVE_QUEUE_MAX]);
		s->qn = 0;
		atomic_fetch_add(&hub.dropped, 1);
		LOGW("live: slow subscriber dropped", "\"kind\":\"%s\"", s->kind == SUB_SSE ? "sse" : "websocket");
	} else {
		atomic_fetch_add(&m->refs, 1);
		s->q[(s->qh + s->qn) % LIVE_QUEUE_MAX] = m;
		s->qn++;
	}
	sub_wake_locked(s, need_io);
}

static struct msg *sub_pop_locked(struct sub *s)
{
	if (!s->qn)
		return NULL;
	struct msg *m = s->q[s->qh];
	s->qh = (s->qh + 1) % LIVE_QUEUE_MAX;
	s->qn--;
	return m;
}

static int member_index(const struct sub *s, uint32_t h, const char *pid)
{
	for (size_t i = 0; i < s->nmem; i++)
		if (s->mem[i].h == h && !strcmp(s->mem[i].id, pid))
			return (int)i;
	return -1;
}

/* ---- publishing ---------------------------------------------------------------------------- */

void live_publish_samples(const struct vitals_sample *smp, size_t n)
{
	bool need_io = false;
	pthread_rwlock_rdlock(&hub.mu);
	if (!hub.subs) {
		pthread_rwlock_unlock(&hub.mu);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct vitals_sample *x = &smp[i];
		if ((unsigned)x->param >= VP__COUNT)
			continue;
		uint32_t h = hash_id(x->patient_id);
		struct msg *m = NULL;
		for (struct sub *s = hub.subs; s; s = s->next) {
			int mi = member_index(s, h, x->patient_id);
			if (mi < 0)
				continue;
			pthread_mutex_lock(&s->mu);
			int64_t *last = &s->mem[mi].last[x->param];
			if (s->decimate_ms && *last && x->ts_ms >= *last && x->ts_ms - *last < s->decimate_ms) {
				pthread_mutex_unlock(&s->mu);
				continue;
			}
			*last = x->ts_ms;
			if (!m) {
				char buf[512], dev[160], pid[160];
				struct buf b = BUF_INIT;
				buf_init(&b, sizeof(pid));
				buf_json_str(&b, x->patient_id);
				snprintf(pid, sizeof(pid), "%s", buf_str(&b));
				buf_reset(&b);
				buf_json_str(&b, x->device_id);
				snprintf(dev, sizeof(dev), "%s", buf_str(&b));
				buf_release(&b);
				int len = snprintf(buf, sizeof(buf),
						   "{\"type\":\"sample\",\"patientId\":%s,\"deviceId\":%s,\"code\":\"%s\","
						   "\"unit\":\"%s\",\"value\":%.15g,\"ts\":%lld,\"receivedUs\":%lld}",
						   pid, dev, vitals_param_loinc(x->param), vitals_param_unit(x->param), x->value,
						   (long long)x->ts_ms, (long long)x->received_us);
				m = msg_new("sample", buf, len > 0 && (size_t)len < sizeof(buf) ? (size_t)len : 0);
			}
			sub_push_locked(s, m, &need_io);
			pthread_mutex_unlock(&s->mu);
		}
		msg_unref(m);
	}
	pthread_rwlock_unlock(&hub.mu);
	if (need_io)
		wake_io();
}

void live_publish_alert(const struct alerts_change *c)
{
	bool provisional = !c->alert_id || !*c->alert_id;
	json_t *j = json_pack("{s:s,s:s,s:b,s:{s:s?,s:s,s:s,s:s,s:s,s:s,s:s?,s:I}}", "type", "alert", "action",
			      c->action, "provisional", provisional, "alert", "id", provisional ? NULL : c->alert_id,
			      "patientId", c->patient_id, "ruleKey", c->rule_key, "kind", c->kind, "severity",
			      c->severity, "status", c->status, "locationId",
			      c->location_id && *c->location_id ? c->location_id : NULL, "updatedMs",
			      (json_int_t)c->ts_ms);
	if (!j)
		return;
	char *text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return;
	struct msg *m = msg_new("alert", text, strlen(text));
	free(text);
	uint32_t h = hash_id(c->patient_id);
	bool need_io = false;
	pthread_rwlock_rdlock(&hub.mu);
	for (struct sub *s = hub.subs; s; s = s->next) {
		bool match = member_index(s, h, c->patient_id) >= 0 ||
			     (s->location_id[0] && c->location_id && !strcmp(s->location_id, c->location_id));
		if (!match)
			continue;
		pthread_mutex_lock(&s->mu);
		sub_push_locked(s, m, &need_io);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_rwlock_unlock(&hub.mu);
	msg_unref(m);
	if (need_io)
		wake_io();
}

static void alert_hook(const struct alerts_change *c, void *arg)
{
	(void)arg;
	live_publish_alert(c);
}

static void live_sink(const struct vitals_sample *s, size_t n, void *arg)
{
	(void)arg;
	live_publish_samples(s, n);
}

/* The alerting sink goes through this lock so a stopped engine is never reached. */
static void alerts_sink_guarded(const struct vitals_sample *s, size_t n, void *arg)
{
	(void)arg;
	pthread_rwlock_rdlock(&hub.alerts_mu);
	if (hub.alerts)
		alerts_sink(s, n, hub.alerts);
	pthread_rwlock_unlock(&hub.alerts_mu);
}

void live_stats(struct live_stats *out)
{
	pthread_rwlock_rdlock(&hub.mu);
	out->subscribers = hub.nsubs;
	pthread_rwlock_unlock(&hub.mu);
	out->dropped = atomic_load(&hub.dropped);
	out->delivered = atomic_load(&hub.delivered);
}

/* ---- SSE ----------------------------------------------------------------------------------- */

static long sse_read(void *arg, void *conn, char *buf, size_t max)
{
	struct sub *s = arg;
	pthread_mutex_lock(&s->mu);
	s->conn = conn;
	for (;;) {
		if (s->pend) {
			size_t n = s->pend_len - s->pend_off;
			if (n > max)
				n = max;
			memcpy(buf, s->pend + s->pend_off, n);
			s->pend_off += n;
			if (s->pend_off == s->pend_len) {
				free(s->pend);
				s->pend = NULL;
			}
			s->last_send_us = mctime_mono_us();
			pthread_mutex_unlock(&s->mu);
			return (long)n;
		}
		if (s->dropped || s->ended)
			break;
		struct msg *m = sub_pop_locked(s);
		if (!m) {
			s->suspended = true;
			http_stream_suspend(conn);
			pthread_mutex_unlock(&s->mu);
			return 0;
		}
		struct buf b = BUF_INIT;
		buf_init(&b, m->len + 128);
		if (m->event)
			buf_printf(&b, "id: %llu\nevent: %s\ndata: %s\n\n", (unsigned long long)++s->next_id, m->event,
				   m->json);
		else
			buf_puts(&b, ": ping\n\n");
		s->pend = buf_detach(&b, &s->pend_len);
		s->pend_off = 0;
		if (m->event)
			atomic_fetch_add(&hub.delivered, 1);
		msg_unref(m);
	}
	pthread_mutex_unlock(&s->mu);
	return -1;
}

static void sse_done(void *arg)
{
	struct sub *s = arg;
	hub_remove(s);
	sub_free(s);
}

/* ---- WebSocket subscribers: the I/O thread ------------------------------------------------- */

static void ws_upgraded(void *arg, int fd, const char *extra, size_t extra_len, void *handle)
{
	struct sub *s = arg;
	s->ws = ws_conn_new(fd, extra, extra_len, handle, 4096, NULL, NULL);
	if (!s->ws) {
		http_upgrade_close(handle);
		sub_free(s);
		return;
	}
	pthread_mutex_lock(&hub.pend_mu);
	s->io_next = hub.pending;
	hub.pending = s;
	pthread_mutex_unlock(&hub.pend_mu);
	hub_add(s);
	wake_io();
}

static void ws_upgrade_free(void *arg) { sub_free(arg); }

static void io_update(struct sub *s)
{
	struct epoll_event ev = {.events = EPOLLIN | (ws_conn_want_write(s->ws) ? EPOLLOUT : 0), .data.ptr = s};
	epoll_ctl(hub.ep, EPOLL_CTL_MOD, ws_conn_fd(s->ws), &ev);
}

/* One round for one WebSocket subscriber; false when it is finished. */
static bool io_round(struct sub *s, int64_t now)
{
	atomic_store(&s->wake_pending, false);
	pthread_mutex_lock(&s->mu);
	if ((s->dropped || s->ended) && !s->close_sent) {
		ws_conn_close(s->ws, s->dropped ? 1008 : 1001, s->dropped ? "slow consumer" : "server stopping");
		s->close_sent = true;
		s->close_deadline_us = now + WS_CLOSE_GRACE_US;
	}
	/* Feed wslay in small steps while the socket takes everything; once it would block, EPOLLOUT
	 * (want_write) brings us back, and what is left waits in the subscriber's bounded queue. */
	for (;;) {
		size_t moved = 0;
		while (!s->close_sent && ws_conn_queued(s->ws) < WS_INFLIGHT_MAX) {
			struct msg *m = sub_pop_locked(s);
			if (!m)
				break;
			if (ws_conn_send_text(s->ws, m->json, m->len) == MC_OK)
				atomic_fetch_add(&hub.delivered, 1);
			msg_unref(m);
			moved++;
		}
		pthread_mutex_unlock(&s->mu);
		if (ws_conn_io(s->ws) != MC_OK)
			return false;
		pthread_mutex_lock(&s->mu);
		if (!moved || ws_conn_queued(s->ws) || !s->qn)
			break;
	}
	pthread_mutex_unlock(&s->mu);
	if (s->close_sent && now > s->close_deadline_us)
		return false;
	io_update(s);
	return true;
}

void live_membership_changed(void) { atomic_fetch_add(&hub.ward_gen, 1); }

static int ward_unit(struct store_txn *t, void *arg);
struct access_ctx {
	const struct auth_principal *who;
	const char *patient, *location;
	struct member *mem;
	size_t nmem;
	bool break_glass;
};

/* Recompute the members of ward subscriptions older than the current generation (I/O thread).
 * The query runs without the hub lock; the new list is swapped in under it exclusively, so no
 * publisher sees a list being replaced; decimation state carries over by patient. */
static void refresh_wards(void)
{
	uint64_t gen = atomic_load(&hub.ward_gen);
	struct todo {
		uint64_t uid;
		char loc[65];
		struct auth_principal who;
	} *td = NULL;
	size_t n = 0, cap = 0;
	pthread_rwlock_rdlock(&hub.mu);
	for (struct sub *s = hub.subs; s; s = s->next) {
		if (!s->location_id[0] || s->gen == gen)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			td = mc_realloc(td, cap * sizeof(*td));
		}
		td[n].uid = s->uid;
		memcpy(td[n].loc, s->location_id, sizeof(td[n].loc));
		td[n].who = s->who;
		n++;
	}
	pthread_rwlock_unlock(&hub.mu);
	for (size_t i = 0; i < n && hub.app; i++) {
		struct access_ctx x = {.who = &td[i].who, .location = td[i].loc};
		int rc = store_read(hub.app->store, ward_unit, &x);
		if (rc) {
			free(x.mem);
			LOGW("live: ward membership not refreshed; retrying", "\"code\":\"%s\"", mc_code_name(rc));
			continue;
		}
		pthread_rwlock_wrlock(&hub.mu);
		struct sub *s = hub.subs;
		while (s && s->uid != td[i].uid)
			s = s->next;
		if (s) {
			for (size_t j = 0; j < x.nmem; j++) {
				int k = member_index(s, x.mem[j].h, x.mem[j].id);
				if (k >= 0)
					memcpy(x.mem[j].last, s->mem[k].last, sizeof(x.mem[j].last));
			}
			struct member *old = s->mem;
			s->mem = x.mem;
			s->nmem = x.nmem;
			s->gen = gen;
			x.mem = old;
		}
		pthread_rwlock_unlock(&hub.mu);
		free(x.mem);
	}
	free(td);
}

static void *io_main(void *arg)
{
	(void)arg;
	struct sub *list = NULL;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(hub.ep, evs, 64, 200);
		for (int i = 0; i < n; i++)
			if (!evs[i].data.ptr) {
				uint64_t v;
				if (read(hub.efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
					LOGW("live: eventfd read failed", "\"errno\":%d", errno);
			}
		pthread_mutex_lock(&hub.pend_mu);
		struct sub *p = hub.pending;
		hub.pending = NULL;
		bool stopping = hub.stopping;
		pthread_mutex_unlock(&hub.pend_mu);
		while (p) {
			struct sub *nx = p->io_next;
			struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = p};
			epoll_ctl(hub.ep, EPOLL_CTL_ADD, ws_conn_fd(p->ws), &ev);
			p->io_next = list;
			list = p;
			p = nx;
		}
		if (!stopping)
			refresh_wards();
		int64_t now = mctime_mono_us();
		for (struct sub **pp = &list; *pp;) {
			struct sub *s = *pp;
			if (stopping) {
				pthread_mutex_lock(&s->mu);
				s->ended = true;
				pthread_mutex_unlock(&s->mu);
			}
			if (io_round(s, now)) {
				pp = &s->io_next;
				continue;
			}
			*pp = s->io_next;
			epoll_ctl(hub.ep, EPOLL_CTL_DEL, ws_conn_fd(s->ws), NULL);
			hub_remove(s);
			sub_free(s);
		}
		/* SSE keep-alive: a ping to streams idle for a while (and so closed clients are noticed) */
		pthread_rwlock_rdlock(&hub.mu);
		bool need_io = false;
		struct msg *ping = NULL;
		for (struct sub *s = hub.subs; s; s = s->next) {
			if (s->kind != SUB_SSE)
				continue;
			pthread_mutex_lock(&s->mu);
			if (s->last_send_us && now - s->last_send_us > SSE_PING_US && !s->qn) {
				if (!ping)
					ping = msg_new(NULL, "", 0);
				s->last_send_us = now;
				sub_push_locked(s, ping, &need_io);
			}
			pthread_mutex_unlock(&s->mu);
		}
		pthread_rwlock_unlock(&hub.mu);
		msg_unref(ping);
		if (stopping && !list)
			break;
	}
	return NULL;
}

/* ---- WebSocket ingest ---------------------------------------------------------------------- */

static void ingest_text(struct ws_conn *c, const uint8_t *msg, size_t len, void *arg)
{
	struct ingest_conn *ic = arg;
	json_t *report = NULL;
	int rc = vitals_ingest_batch(&ic->who, (const char *)msg, len, true, &report);
	char out[160];
	if (report && (rc == MC_OK || rc == MC_EUNPROC)) {
		snprintf(out, sizeof(out), "{\"accepted\":%lld,\"rejected\":%lld}",
			 (long long)json_integer_value(json_object_get(report, "accepted")),
			 (long long)json_integer_value(json_object_get(report, "rejected")));
	} else {
		snprintf(out, sizeof(out), "{\"error\":\"%s\"}", mc_code_name(rc));
	}
	json_decref(report);
	ws_conn_send_text(c, out, strlen(out));
}

static void *ingest_main(void *arg)
{
	struct ingest_conn *ic = arg;
	bool closing = false;
	int64_t deadline = 0;
	for (;;) {
		pthread_mutex_lock(&hub.pend_mu);
		bool stopping = hub.stopping;
		pthread_mutex_unlock(&hub.pend_mu);
		if (stopping && !closing) {
			ws_conn_close(ic->ws, 1001, "server stopping");
			closing = true;
			deadline = mctime_mono_us() + WS_CLOSE_GRACE_US;
		}
		if (ws_conn_io(ic->ws) != MC_OK || (closing && mctime_mono_us() > deadline))
			break;
		struct pollfd pfd = {.fd = ws_conn_fd(ic->ws),
				     .events = (short)(POLLIN | (ws_conn_want_write(ic->ws) ? POLLOUT : 0))};
		poll(&pfd, 1, 200);
	}
	ws_conn_free(ic->ws);
	ic->ws = NULL;
	pthread_mutex_lock(&hub.ing_mu);
	ic->done = true;
	pthread_mutex_unlock(&hub.ing_mu);
	return NULL;
}

/* Join finished ingest threads (caller holds ing_mu). */
static void ingest_reap_locked(void)
{
	for (struct ingest_conn **pp = &hub.ingest; *pp;) {
		struct ingest_conn *ic = *pp;
		if (!ic->done) {
			pp = &ic->next;
			continue;
		}
		*pp = ic->next;
		pthread_join(ic->th, NULL);
		hub.ningest--;
		free(ic);
	}
}

static void ingest_upgraded(void *arg, int fd, const char *extra, size_t extra_len, void *handle)
{
	struct ingest_conn *ic = arg;
	ic->ws = ws_conn_new(fd, extra, extra_len, handle, LIVE_INGEST_MSG_MAX, ingest_text, ic);
	if (!ic->ws) {
		http_upgrade_close(handle);
		free(ic);
		return;
	}
	pthread_mutex_lock(&hub.ing_mu);
	ingest_reap_locked();
	if (hub.stopping || hub.ningest >= LIVE_INGEST_CONNS_MAX || pthread_create(&ic->th, NULL, ingest_main, ic)) {
		pthread_mutex_unlock(&hub.ing_mu);
		ws_conn_free(ic->ws);
		free(ic);
		return;
	}
	ic->next = hub.ingest;
	hub.ingest = ic;
	hub.ningest++;
	pthread_mutex_unlock(&hub.ing_mu);
}

static void ingest_upgrade_free(void *arg) { free(arg); }

/* ---- routes -------------------------------------------------------------------------------- */

static bool header_has_token(const char *h, const char *tok)
{
	size_t tl = strlen(tok);
	while (h && *h) {
		while (*h == ' ' || *h == ',')
			h++;
		size_t n = strcspn(h, ",");
		size_t m = n;
		while (m && h[m - 1] == ' ')
			m--;
		if (m == tl && !strncasecmp(h, tok, tl))
			return true;
		h += n;
	}
	return false;
}

/* MC_OK: a WebSocket handshake (accept filled); MC_ENOTFOUND: not a WebSocket request;
 * MC_EINVAL: a broken one. */
static int ws_handshake(struct req *r, char accept[WS_ACCEPT_LEN + 1])
{
	const char *up = req_header(r, "Upgrade");
	if (!up || strcasecmp(up, "websocket"))
		return MC_ENOTFOUND;
	const char *ver = req_header(r, "Sec-WebSocket-Version");
	if (!header_has_token(req_header(r, "Connection"), "upgrade") || !ver || strcmp(ver, "13"))
		return MC_EINVAL;
	return ws_accept_key(req_header(r, "Sec-WebSocket-Key"), accept);
}

static int parse_decimate(const char *v, int64_t *out)
{
	*out = 0;
	if (!v)
		return MC_OK;
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (errno || end == v)
		return MC_EINVAL;
	if (!strcmp(end, "s"))
		n *= 1000;
	else if (*end && strcmp(end, "ms"))
		return MC_EINVAL;
	if (n < 1 || n > 60000)
		return MC_EINVAL;
	*out = n;
	return MC_OK;
}

static int patient_access_unit(struct store_txn *t, void *arg)
{
	struct access_ctx *x = arg;
	return auth_patient_access(t, x->who, x->patient, AUTH_CLINICAL_READ, &x->break_glass);
}

static int ward_unit(struct store_txn *t, void *arg)
{
	struct access_ctx *x = arg;
	struct store_arg a[] = {SA_TEXT(x->location), SA_INT(LIVE_WARD_MAX)};
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT patient_id FROM alert_patient_settings WHERE location_id = $1 UNION "
			     "SELECT r.patient_id FROM idx_ref x JOIN resources r ON r.rkey = x.rkey WHERE x.param = "
			     "'location' AND x.ref_id = $1 AND r.type = 'Encounter' AND r.deleted = 0 AND r.patient_id IS "
			     "NOT NULL LIMIT $2",
			     a, 2, &rows);
	if (rc)
		return rc;
	char(*ids)[65] = mc_calloc(LIVE_WARD_MAX, sizeof(*ids));
	size_t n = 0;
	while ((rc = store_rows_next(rows)) == 1 && n < LIVE_WARD_MAX) {
		const char *pid = store_rows_text(rows, 0);
		if (pid && strlen(pid) < 65)
			snprintf(ids[n++], 65, "%s", pid);
	}
	store_rows_close(rows);
	if (rc < 0) {
		free(ids);
		return -rc;
	}
	x->mem = mc_calloc(n ? n : 1, sizeof(*x->mem));
	for (size_t i = 0; i < n; i++) {
		bool bg = false;
		if (auth_patient_access(t, x->who, ids[i], AUTH_CLINICAL_READ, &bg) != MC_OK || bg)
			continue;   /* a ward view never opens charts by break-the-glass */
		snprintf(x->mem[x->nmem].id, sizeof(x->mem[x->nmem].id), "%s", ids[i]);
		x->mem[x->nmem].h = hash_id(ids[i]);
		x->nmem++;
	}
	free(ids);
	return MC_OK;
}

static bool hub_full(void)
{
	pthread_rwlock_rdlock(&hub.mu);
	bool full = hub.nsubs >= LIVE_SUBSCRIBERS_MAX || !hub.running || hub.stopping;
	pthread_rwlock_unlock(&hub.mu);
	return full;
}

static int subscribe(struct req *r, struct reply *rep, bool ward)
{
	const char *id = req_param(r, ward ? "locationId" : "id");
	if (!id || !mcid_valid_fhir_id(id))
		return req_fail(r, MC_ENOTFOUND, ward ? "no such location" : "no such patient", NULL, NULL);
	int64_t decimate;
	if (parse_decimate(req_query(r, "decimate"), &decimate))
		return req_fail(r, MC_EINVAL, "decimate: 1..60000 ms, e.g. 500ms or 1s", NULL,
				json_pack("{s:s}", "field", "decimate"));
	char accept[WS_ACCEPT_LEN + 1];
	int hs = ws_handshake(r, accept);
	if (hs == MC_EINVAL)
		return req_fail(r, MC_EINVAL, "bad WebSocket handshake (version 13 and a valid key are required)", NULL,
				NULL);
	r->audit.action = ward ? "search" : "read";
	r->audit.resource_type = ward ? "live-ward" : "live-patient";
	r->audit.resource_id = id;
	r->audit.patient_id = ward ? NULL : id;
	struct access_ctx x = {.who = r->who, .patient = id, .location = id};
	uint64_t gen = atomic_load(&hub.ward_gen);   /* before the query: a change meanwhile refreshes */
	int rc = store_read(r->app->store, ward ? ward_unit : patient_access_unit, &x);
	if (rc) {
		free(x.mem);
		if (rc == MC_EFORBIDDEN)
			return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
		return rc;
	}
	if (x.break_glass)
		r->audit.reason = "break-the-glass";
	if (hub_full()) {
		free(x.mem);
		return req_fail(r, MC_EUNAVAIL, "too many live subscribers", NULL, NULL);
	}
	struct sub *s = sub_new(hs == MC_OK ? SUB_WS : SUB_SSE);
	s->decimate_ms = decimate;
	if (ward) {
		snprintf(s->location_id, sizeof(s->location_id), "%s", id);
		s->mem = x.mem;
		s->nmem = x.nmem;
		s->gen = gen;
		s->who = *r->who;
	} else {
		s->mem = mc_calloc(1, sizeof(*s->mem));
		snprintf(s->mem[0].id, sizeof(s->mem[0].id), "%s", id);
		s->mem[0].h = hash_id(id);
		s->nmem = 1;
	}
	if (hs == MC_OK) {
		rep->status = 101;
		rep->content_type = NULL;
		reply_header(rep, r, "Upgrade", "websocket");
		reply_header(rep, r, "Sec-WebSocket-Accept", arena_strdup(r->arena, accept));
		rep->upgrade_fn = ws_upgraded;
		rep->upgrade_free = ws_upgrade_free;
		rep->upgrade_arg = s;
		return MC_OK;
	}
	s->last_send_us = mctime_mono_us();
	/* first bytes: the reconnection delay and a comment, so the client sees the stream open */
	static const char hello[] = "retry: 3000\n: live\n\n";
	s->pend = mc_strdup(hello);
	s->pend_len = sizeof(hello) - 1;
	hub_add(s);
	rep->status = 200;
	rep->content_type = "text/event-stream";
	reply_header(rep, r, "Cache-Control", "no-cache");
	reply_header(rep, r, "X-Accel-Buffering", "no");
	rep->stream_fn = sse_read;
	rep->stream_free = sse_done;
	rep->stream_arg = s;
	return MC_OK;
}

static int route_live_patient(struct req *r, struct reply *rep) { return subscribe(r, rep, false); }
static int route_live_ward(struct req *r, struct reply *rep) { return subscribe(r, rep, true); }

static int route_ingest_stream(struct req *r, struct reply *rep)
{
	char accept[WS_ACCEPT_LEN + 1];
	int hs = ws_handshake(r, accept);
	if (hs != MC_OK) {
		reply_header(rep, r, "Upgrade", "websocket");
		return req_fail(r, MC_EINVAL, "this endpoint speaks WebSocket only (Upgrade: websocket, version 13)", NULL,
				NULL);
	}
	pthread_mutex_lock(&hub.ing_mu);
	ingest_reap_locked();
	bool full = hub.ningest >= LIVE_INGEST_CONNS_MAX || !hub.running;
	pthread_mutex_unlock(&hub.ing_mu);
	if (full)
		return req_fail(r, MC_EUNAVAIL, "too many ingest streams", NULL, NULL);
	struct ingest_conn *ic = mc_calloc(1, sizeof(*ic));
	ic->who = *r->who;
	rep->status = 101;
	rep->content_type = NULL;
	reply_header(rep, r, "Upgrade", "websocket");
	reply_header(rep, r, "Sec-WebSocket-Accept", arena_strdup(r->arena, accept));
	rep->upgrade_fn = ingest_upgraded;
	rep->upgrade_free = ingest_upgrade_free;
	rep->upgrade_arg = ic;
	return MC_OK;
}

static const struct route routes[] = {
	{"GET", "/api/v1/live/patient/{id}", route_live_patient, ROUTE_PHI | ROUTE_QUERY_TOKEN, "read:patient_data", 0,
	 "Live vitals and alerts of one patient (WebSocket or Server-Sent Events; ?decimate=1s)"},
	{"GET", "/api/v1/live/ward/{locationId}", route_live_ward, ROUTE_PHI | ROUTE_QUERY_TOKEN, "read:patient_data", 0,
	 "Live vitals and alerts of a ward (WebSocket or Server-Sent Events; ?decimate=1s)"},
	{"GET", "/api/v1/vitals/stream", route_ingest_stream, 0, "write:patient_data", 0,
	 "WebSocket ingest for gateways: each text message is an NDJSON batch of samples"},
};

const struct route_table live_routes = {routes, sizeof(routes) / sizeof(routes[0])};

/* ---- start / stop -------------------------------------------------------------------------- */

static bool sinks_added;

int vitals_live_start(const struct app *app)
{
	if (hub.running)
		return MC_OK;
	const struct mc_config *cfg = app->cfg;
	struct alerts_opts o = {
		.store = app->store,
		.escalate_ms = cfg ? cfg->alert_escalate_seconds * 1000 : 300000,
		.stale_ms = cfg ? cfg->alert_stale_seconds * 1000 : 120000,
		.on_change = alert_hook,
		.on_detect = alert_hook,   /* provisional push the moment the engine decides (docs/vitals.md) */
	};
	struct alerts *a = NULL;
	int rc = alerts_create(&o, &a);
	if (rc)
		return rc;
	hub.app = app;
	hub.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	hub.ep = epoll_create1(EPOLL_CLOEXEC);
	if (hub.efd < 0 || hub.ep < 0) {
		alerts_destroy(a);
		return MC_EUNAVAIL;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(hub.ep, EPOLL_CTL_ADD, hub.efd, &ev);
	hub.stopping = false;
	if (pthread_create(&hub.io, NULL, io_main, NULL)) {
		alerts_destroy(a);
		return MC_EUNAVAIL;
	}
	pthread_rwlock_wrlock(&hub.alerts_mu);
	hub.alerts = a;
	pthread_rwlock_unlock(&hub.alerts_mu);
	alerts_set_current(a);
	alerts_staff_hook_set(alert_hook, NULL);
	if (!sinks_added) {   /* sinks cannot be removed: they check hub state instead */
		rc = vitals_sink_add(alerts_sink_guarded, NULL);
		rc = rc ? rc : vitals_sink_add(live_sink, NULL);
		if (rc)
			LOGE("live: vitals sinks not registered", "\"code\":\"%s\"", mc_code_name(rc));
		sinks_added = true;
	}
	pthread_rwlock_wrlock(&hub.mu);
	hub.running = true;
	pthread_rwlock_unlock(&hub.mu);
	/* Kafka ingest starts once the sinks are in place, so no sample it stores bypasses alerting. */
	if (cfg && cfg->kafka_brokers && cfg->kafka_brokers[0]) {
		rc = vitals_kafka_start(cfg->kafka_brokers, NULL);
		if (rc) {
			LOGE("vitals: the patient-vitals consumer failed to start", "\"code\":\"%s\"", mc_code_name(rc));
			vitals_live_stop();
			return rc;
		}
	}
	return MC_OK;
}

void vitals_live_stop(void)
{
	if (!hub.running)
		return;
	vitals_kafka_stop();   /* while alerting still runs: every sample it stores is evaluated */
	pthread_mutex_lock(&hub.pend_mu);
	hub.stopping = true;
	pthread_mutex_unlock(&hub.pend_mu);
	pthread_rwlock_wrlock(&hub.mu);
	hub.running = false;
	pthread_rwlock_unlock(&hub.mu);
	/* end every SSE stream: its next read returns the end, MHD then completes the request */
	pthread_rwlock_rdlock(&hub.mu);
	for (struct sub *s = hub.subs; s; s = s->next) {
		if (s->kind != SUB_SSE)
			continue;
		pthread_mutex_lock(&s->mu);
		s->ended = true;
		bool unused = false;
		sub_wake_locked(s, &unused);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_rwlock_unlock(&hub.mu);
	wake_io();
	pthread_join(hub.io, NULL);
	pthread_mutex_lock(&hub.ing_mu);
	struct ingest_conn *list = hub.ingest;
	hub.ingest = NULL;
	pthread_mutex_unlock(&hub.ing_mu);
	while (list) {
		struct ingest_conn *nx = list->next;
		pthread_join(list->th, NULL);
		free(list);
		list = nx;
	}
	hub.ningest = 0;
	alerts_staff_hook_set(NULL, NULL);
	alerts_set_current(NULL);
	pthread_rwlock_wrlock(&hub.alerts_mu);
	struct alerts *a = hub.alerts;
	hub.alerts = NULL;
	pthread_rwlock_unlock(&hub.alerts_mu);
	alerts_destroy(a);
	close(hub.ep);
	close(hub.efd);
	hub.ep = hub.efd = -1;
}
