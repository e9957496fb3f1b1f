/* http/server.c — libmicrohttpd glue: thread pool + epoll, body accumulation with limits, and
 * graceful shutdown.
 *
 * Per request: the URI-log callback (called once the request line is read) creates the request
 * context with the raw request-target, so the dispatcher decodes the path itself (MHD's own
 * unescaping is turned off: it would turn %2F into a '/' before we could refuse it). The access
 * handler then runs: first call — decide the route and body limit, refuse an oversized
 * Content-Length at once with 413; later calls — accumulate the body; final call — dispatch and
 * queue the response. Responses are queued on a later call on purpose: queueing on the first call
 * makes MHD close the connection (keep-alive dies; DESIGN §7 pitfall).
 *
 * Writes wait for the group commit (store_write returns once durable). Run on the few MHD threads
 * they would stall every other connection of that thread and cap the writer's batches at the
 * thread count, so a complete ROUTE_WRITE request is handed to a pool of cfg->workers threads: the
 * connection is suspended, a worker runs the dispatcher, then resumes it and MHD's thread queues
 * the reply. Reads stay on the MHD threads (no hand-off on the hot path).
 */
#include <arpa/inet.h>
#include <stdatomic.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "audit/audit.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "http/app.h"
#include "http/http_int.h"
#include "http/server.h"

struct conn_ctx;

/* An upgrade in flight: shared by the response's upgrade callback and the connection context
 * (refs 2); started/cancelled decide who owns arg (route.h: upgrade_fn or upgrade_free, once). */
struct upgrade {
	_Atomic int refs;
	_Atomic int state;   /* 0 pending, 1 started, 2 cancelled */
	reply_upgrade_fn *fn;
	void (*free_fn)(void *);
	void *arg;
};

static void upgrade_unref(struct upgrade *u)
{
	if (atomic_fetch_sub(&u->refs, 1) == 1)
		free(u);
}

struct stream {
	reply_stream_fn *fn;
	void (*free_fn)(void *);
	void *arg;
	struct MHD_Connection *conn;
};

/* The pool that runs blocking (write) requests; see the file comment. */
struct offload {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct conn_ctx *head, *tail;
	pthread_t *threads;
	size_t nthreads;
	bool stop;
};

struct http_server {
	struct MHD_Daemon *d;
	struct offload pool;
	struct http_service svc;
	unsigned port;
	pthread_mutex_t mu;
	pthread_cond_t idle;                /* signalled (under mu) when inflight drops to 0 */
	_Atomic int inflight;               /* requests begun and not yet completed */
};

struct conn_ctx {
	struct http_server *srv;
	struct arena *arena;
	char *target;                       /* raw request-target */
	struct MHD_Connection *conn;
	struct http_exchange ex;
	struct http_call call;
	struct buf body;                    /* max = body limit + 1 */
	bool begun, too_big, answered;
	bool ran;                           /* a worker ran the dispatcher; reply on resume */
	struct conn_ctx *next;              /* offload queue link */
	size_t discarded;
	struct upgrade *up;                 /* queued upgrade reply, until completed() */
};

static const char *conn_header(void *ctx, const char *name)
{
	struct conn_ctx *c = ctx;
	return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

/* Keep the raw text: the router decodes (see the file comment). */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http_server *srv = cls;
	struct conn_ctx *c = mc_calloc(1, sizeof(*c));
	c->srv = srv;
	c->arena = arena_create();
	c->target = arena_strdup(c->arena, uri ? uri : "/");
	c->conn = conn;
	c->ex.header = conn_header;
	c->ex.ctx = c;
	atomic_fetch_add_explicit(&srv->inflight, 1, memory_order_relaxed);   /* no lock per request */
	return c;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct conn_ctx *c = *con_cls;
	(void)conn;
	(void)toe;
	if (!c)
		return;
	if (c->up) {
		int expect = 0;
		/* a connection that ended before the upgrade ran: the callee never got arg */
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && atomic_compare_exchange_strong(&c->up->state, &expect, 2) &&
		    c->up->free_fn)
			c->up->free_fn(c->up->arg);
		upgrade_unref(c->up);
	}
	buf_release(&c->call.rep.body);
	buf_release(&c->body);
	arena_destroy(c->arena);
	free(c);
	*con_cls = NULL;
	/* Only the last one out takes the lock: http_server_stop checks inflight under mu before it
	 * waits, so the broadcast cannot fall between its check and its wait. */
	if (atomic_fetch_sub_explicit(&srv->inflight, 1, memory_order_acq_rel) == 1) {
		pthread_mutex_lock(&srv->mu);
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->mu);
	}
}

static const char *client_ip(struct MHD_Connection *conn, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (!ci || !ci->client_addr)
		return NULL;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)outsz);
	if (sa->sa_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
				 (socklen_t)outsz);
	return NULL;
}

static void upgrade_cb(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra, size_t extra_len,
		       MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct upgrade *u = cls;
	int expect = 0;
	(void)conn;
	(void)con_cls;
	if (atomic_compare_exchange_strong(&u->state, &expect, 1))
		u->fn(u->arg, sock, extra, extra_len, urh);
	else
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
	upgrade_unref(u);
}

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	long n = st->fn(st->arg, st->conn, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return (ssize_t)n;
}

static void stream_free_cb(void *cls)
{
	struct stream *st = cls;
	if (st->free_fn)
		st->free_fn(st->arg);
	free(st);
}

void http_stream_suspend(void *conn) { MHD_suspend_connection(conn); }
void http_stream_resume(void *conn) { MHD_resume_connection(conn); }
void http_upgrade_close(void *handle) { MHD_upgrade_action(handle, MHD_UPGRADE_ACTION_CLOSE); }

/* The response for a stream_fn or upgrade_fn reply; NULL (arg released) on failure. */
static struct MHD_Response *special_response(struct conn_ctx *c, struct reply *rep)
{
	struct MHD_Response *resp = NULL;
	if (rep->upgrade_fn) {
		struct upgrade *u = mc_calloc(1, sizeof(*u));
		atomic_init(&u->refs, 2);
		u->fn = rep->upgrade_fn;
		u->free_fn = rep->upgrade_free;
		u->arg = rep->upgrade_arg;
		resp = MHD_create_response_for_upgrade(upgrade_cb, u);
		if (!resp) {
			if (u->free_fn)
				u->free_fn(u->arg);
			free(u);
			return NULL;
		}
		c->up = u;
	} else {
		struct stream *st = mc_calloc(1, sizeof(*st));
		st->fn = rep->stream_fn;
		st->free_fn = rep->stream_free;
		st->arg = rep->stream_arg;
		st->conn = c->conn;
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_cb, st, stream_free_cb);
		if (!resp) {
			stream_free_cb(st);
			return NULL;
		}
	}
	rep->upgrade_fn = NULL;
	rep->stream_fn = NULL;
	return resp;
}

static enum MHD_Result queue_reply(struct conn_ctx *c)
{
	struct reply *rep = &c->call.rep;
	struct MHD_Response *resp;
	if (rep->upgrade_fn || rep->stream_fn) {
		resp = special_response(c, rep);
		if (!resp)
			return MHD_NO;
	} else {
		size_t len = rep->body.len;
		void *data = len ? buf_detach(&rep->body, &len) : NULL;
		resp = MHD_create_response_from_buffer(len, data ? data : (void *)"",
						       data ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
		if (!resp) {
			free(data);
			return MHD_NO;
		}
	}
	if (rep->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->content_type);
	for (size_t i = 0; i < rep->nheaders; i++)
		MHD_add_response_header(resp, rep->headers[i].key, rep->headers[i].value);
	enum MHD_Result ret = MHD_queue_response(c->conn, (unsigned)rep->status, resp);
	MHD_destroy_response(resp);
	c->answered = true;
	return ret;
}

static void *offload_main(void *arg)
{
	struct http_server *srv = arg;
	struct offload *o = &srv->pool;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (!o->head && !o->stop)
			pthread_cond_wait(&o->cv, &o->mu);
		if (!o->head)
			break;
		struct conn_ctx *c = o->head;
		o->head = c->next;
		if (!o->head)
			o->tail = NULL;
		pthread_mutex_unlock(&o->mu);
		http_call_run(&srv->svc, &c->call);
		c->ran = true;
		MHD_resume_connection(c->conn);   /* MHD calls access_handler again: it queues the reply */
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* false once the pool is stopping: the caller runs the request itself. */
static bool offload_push(struct http_server *srv, struct conn_ctx *c)
{
	struct offload *o = &srv->pool;
	c->next = NULL;
	pthread_mutex_lock(&o->mu);
	if (o->stop) {
		pthread_mutex_unlock(&o->mu);
		return false;
	}
	if (o->tail)
		o->tail->next = c;
	else
		o->head = c;
	o->tail = c;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return true;
}

static int offload_start(struct http_server *srv, size_t n)
{
	struct offload *o = &srv->pool;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->threads = mc_calloc(n, sizeof(pthread_t));
	for (; o->nthreads < n; o->nthreads++)
		if (pthread_create(&o->threads[o->nthreads], NULL, offload_main, srv))
			break;
	return o->nthreads ? MC_OK : MC_EUNAVAIL;
}

/* Runs every queued request, then joins the workers. Called before MHD_stop_daemon, so that the
 * connections they resume are still the daemon's; requests arriving meanwhile run inline. */
static void offload_stop(struct http_server *srv)
{
	struct offload *o = &srv->pool;
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	for (size_t i = 0; i < o->nthreads; i++)
		pthread_join(o->threads[i], NULL);
	free(o->threads);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
}

/* A matched write route without an early error: it will block on the group commit. */
static bool blocks(const struct conn_ctx *c)
{
	return c->call.mres == MATCH_OK && !c->call.early_rc && c->call.match.cr &&
	       (c->call.match.cr->r->flags & ROUTE_WRITE);
}

static enum MHD_Result access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				      const char *version, const char *upload_data, size_t *upload_data_size,
				      void **con_cls)
{
	struct http_server *srv = cls;
	struct conn_ctx *c = *con_cls;
	(void)url;
	(void)version;
	if (!c)
		return MHD_NO;   /* cannot happen: uri_log always runs first */
	if (!c->begun) {
		char ip[INET6_ADDRSTRLEN];
		c->begun = true;
		http_call_begin(&srv->svc, &c->call, c->arena, method, c->target, &c->ex,
				client_ip(conn, ip, sizeof(ip)));
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl) {
			char *end;
			unsigned long long n = strtoull(cl, &end, 10);
			if (n > c->call.body_limit || *end) {
				/* Refuse before reading: queueing now also closes the connection, which is what we
				 * want with an unread body on the wire. */
				c->call.early_rc = MC_ETOOBIG;
				http_call_run(&srv->svc, &c->call);
				return queue_reply(c);
			}
		}
		buf_init(&c->body, c->call.body_limit + 1);
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (c->too_big || c->call.discard_body) {
			c->discarded += n;
			/* a chunked body with no end in sight: stop reading, drop the connection */
			return c->discarded > 2 * c->call.body_limit + ((size_t)1 << 20) ? MHD_NO : MHD_YES;
		}
		if (buf_append(&c->body, upload_data, n)) {
			c->too_big = true;
			c->discarded = c->body.len + n;
			buf_release(&c->body);
		}
		return MHD_YES;
	}
	if (c->answered)
		return MHD_YES;
	if (c->ran)
		return queue_reply(c);
	if (c->too_big && !c->call.early_rc)
		c->call.early_rc = MC_ETOOBIG;
	if (c->body.len) {
		c->call.req.body = c->body.data;   /* NUL-terminated by struct buf */
		c->call.req.body_len = c->body.len;
	}
	if (blocks(c)) {
		MHD_suspend_connection(conn);
		if (offload_push(srv, c))
			return MHD_YES;
		MHD_resume_connection(conn);
	}
	http_call_run(&srv->svc, &c->call);
	return queue_reply(c);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	if (log_min_level <= LOG_DEBUG) {
		struct buf b = BUF_INIT;
		buf_json_str(&b, msg);
		LOGD("http: libmicrohttpd", "\"detail\":%s", buf_str(&b));
		buf_release(&b);
	}
}

/* "HOST:PORT", "[V6]:PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen)
		return MC_EINVAL;
	size_t hl = (size_t)(colon - listen);
	const char *h = listen;
	if (listen[0] == '[') {
		if (hl < 2 || listen[hl - 1] != ']')
			return MC_EINVAL;
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return MC_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res) || !res)
		return MC_EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return MC_OK;
}

int http_server_start(struct app *app, const struct router *rt, struct http_server **out)
{
	const struct mc_config *cfg = app->cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	*out = NULL;
	if (parse_listen(cfg->listen, &ss, &sl)) {
		LOGE("http: bad listen address", "\"listen\":\"%s\"", "(see --listen)");
		return MC_EINVAL;
	}
	struct http_server *srv = mc_calloc(1, sizeof(*srv));
	srv->svc.app = app;
	srv->svc.router = rt;
	srv->svc.ops.token_verify = auth_token_verify;
	srv->svc.ops.audit_async = audit_append_async;
	pthread_mutex_init(&srv->mu, NULL);
	pthread_cond_init(&srv->idle, NULL);

	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	/* MHD's per-connection pool holds the request line, the headers and its read/write buffers;
	 * a header block past max_header cannot fit and MHD answers 431. */
	size_t memlimit = (size_t)cfg->max_header + 4096;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;
	if (offload_start(srv, (size_t)cfg->workers)) {
		pthread_cond_destroy(&srv->idle);
		pthread_mutex_destroy(&srv->mu);
		free(srv);
		return MC_EUNAVAIL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv->d = MHD_start_daemon(flags, 0, NULL, NULL, access_handler, srv,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_THREAD_POOL_SIZE, threads,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, memlimit,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->request_timeout,
				  MHD_OPTION_URI_LOG_CALLBACK, uri_log, srv,
				  MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
				  MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				  MHD_OPTION_END);
	(void)sl;
	if (!srv->d) {
		offload_stop(srv);
		pthread_cond_destroy(&srv->idle);
		pthread_mutex_destroy(&srv->mu);
		free(srv);
		return MC_EUNAVAIL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = di ? di->port : 0;
	*out = srv;
	return MC_OK;
}

unsigned http_server_port(const struct http_server *srv) { return srv->port; }

void http_server_stop(struct http_server *srv, int64_t wait_ms)
{
	if (!srv)
		return;
	MHD_socket ls = MHD_quiesce_daemon(srv->d);   /* stop accepting */
	if (ls != MHD_INVALID_SOCKET)
		close(ls);
	int64_t deadline = mctime_mono_us() + wait_ms * 1000;
	pthread_mutex_lock(&srv->mu);
	while (atomic_load(&srv->inflight) > 0) {
		int64_t left = deadline - mctime_mono_us();
		if (left <= 0)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t step = left < 100000 ? left : 100000;   /* re-check at least every 100 ms */
		ts.tv_nsec += (long)(step % 1000000) * 1000;
		ts.tv_sec += step / 1000000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&srv->idle, &srv->mu, &ts);
	}
	int left = atomic_load(&srv->inflight);
	pthread_mutex_unlock(&srv->mu);
	if (left)
		LOGW("http: shutdown with requests still running", "\"inflight\":%d", left);
	offload_stop(srv);
	MHD_stop_daemon(srv->d);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->mu);
	free(srv);
}
