/* store/postgres/postgres.c — the PostgreSQL backend (libpq) behind the vtable of store/store_int.h.
 *
 * URL: "postgres://user:pass@host:port/db?k=v..." — handed to libpq as is, except for our own query
 * keys, which are taken out first: writers=N (writer connections, default 4, 1..16) and readers=N
 * (pooled read connections, default 16, 1..128). connect_timeout defaults to 5 s. The URL may carry a
 * password: it is never logged.
 *
 * Writes (same contract as the SQLite backend, store.h). store_write queues a unit; a pool of writer
 * threads, each with its own connection, serves the queue. A writer opens a READ COMMITTED transaction
 * and first takes the cluster-wide write lock, pg_advisory_xact_lock(MC_PG_WRITE_LOCK), held to COMMIT;
 * only then does it take every queued unit (at most WRITER_BATCH_MAX) and run each inside its own
 * SAVEPOINT, then COMMITs once and wakes the waiters. So:
 *   - every medcore write transaction in every process runs alone, as with SQLite's single writer:
 *     the audit hash chain (read head, append), the MRN counter and If-Match version checks see the
 *     latest committed state and cannot race; and medcore writers never deadlock with each other;
 *   - group commit still works across the pool: while one writer holds the lock and commits, the next
 *     one waits on the lock and, once it has it, takes everything queued meanwhile as one batch.
 * A unit whose statement fails is rolled back alone (ROLLBACK TO its savepoint), even when it ignores
 * the error and returns MC_OK: on PostgreSQL a failed statement poisons the rest of the unit, so the
 * unit then gets that statement's code. A serialization failure or deadlock (40001, 40P01) anywhere
 * rolls the whole batch back and runs it again (RETRY_MAX times, then MC_EUNAVAIL). A connection lost
 * before COMMIT was sent: reconnect and rerun the batch once; lost during COMMIT: MC_EUNAVAIL (the
 * outcome is unknown, the client must retry or re-read).
 *
 * Reads. store_read takes a pooled connection, runs BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY,
 * the unit, COMMIT, and gives the connection back. A store_read nested on the same thread runs in the
 * outer snapshot. When the pool is exhausted the caller waits for a connection.
 *
 * Connection failures (SQLSTATE class 08, 57P01..57P03, or libpq CONNECTION_BAD) are MC_EUNAVAIL and
 * bump the store's epoch: every pooled connection older than the epoch is reconnected before its next
 * use, so a restarted database is picked up by the next request, without restarting medcore.
 *
 * Statements. Parameters go as text ($n of int8/float8 type for STORE_INT/REAL, untyped for TEXT/NULL
 * so the server infers them from context) and bytea in binary. Prepared statements are cached per
 * connection by (SQL text, argument types); at most STMT_CACHE_MAX per connection, beyond that
 * statements run unnamed (one-off search SQL). Results come back whole in text format (bytea decoded
 * on access). Error mapping: 23xxx MC_ECONFLICT, 40001/40P01 retried then MC_EUNAVAIL, connection
 * failures MC_EUNAVAIL, anything else MC_EINTERNAL; the server's message goes only to the log.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_int.h"
#include "store/wqueue.h"

#define WRITER_BATCH_MAX  512
#define WRITERS_DEFAULT   4
#define WRITERS_MAX       16
#define READERS_DEFAULT   16
#define READERS_MAX       128
#define STMT_CACHE_MAX    512        /* prepared statements per connection */
#define RETRY_MAX         4          /* batch attempts on serialization failure / deadlock */
#define MC_PG_WRITE_LOCK  0x6d65646364726501LL   /* "medcore" write lock key (advisory) */

#define BYTEAOID  17
#define INT8OID   20
#define INT2OID   21
#define INT4OID   23
#define TEXTOID   25
#define FLOAT4OID 700
#define FLOAT8OID 701
#define NUMERICOID 1700

/* ---- connections ------------------------------------------------------------------------------ */

struct pstmt {
	char *key;       /* argument type signature, '\n', SQL */
	uint64_t hash;
	char name[16];   /* "s<n>" */
};

struct pconn {
	PGconn *db;
	unsigned epoch;            /* the store epoch it was opened in */
	struct pstmt **slots;      /* open addressing, 2 * STMT_CACHE_MAX */
	size_t count;
	unsigned next_name;
	char sqlstate[6];          /* of the last failed statement, "" after success */
	bool lost;                 /* the connection failed: reconnect before use */
	bool epoch_noted;          /* its loss already bumped the store's epoch */
};

struct pg_store;

static void conn_drop_cache(struct pconn *c)
{
	if (!c->slots)
		return;
	for (size_t i = 0; i < 2 * STMT_CACHE_MAX; i++) {
		if (c->slots[i]) {
			free(c->slots[i]->key);
			free(c->slots[i]);
		}
	}
	free(c->slots);
	c->slots = NULL;
	c->count = 0;
}

static void conn_close(struct pconn *c)
{
	conn_drop_cache(c);
	if (c->db)
		PQfinish(c->db);
	c->db = NULL;
}

static uint64_t hash_str(const char *s, uint64_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static bool is_conn_state(const char *st)
{
	return !strncmp(st, "08", 2) || !strcmp(st, "57P01") || !strcmp(st, "57P02") || !strcmp(st, "57P03");
}

/* Map a failed result (res may be NULL) to MC_* and log the server's message (never to clients). */
static int pg_err(struct pconn *c, PGresult *res, const char *what)
{
	const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	int code;
	if (PQstatus(c->db) == CONNECTION_BAD || (st && is_conn_state(st))) {
		c->lost = true;
		code = MC_EUNAVAIL;
	} else if (st && !strncmp(st, "23", 2)) {
		code = MC_ECONFLICT;
	} else if (st && (!strcmp(st, "40001") || !strcmp(st, "40P01"))) {
		code = MC_EUNAVAIL;
	} else {
		code = MC_EINTERNAL;
	}
	snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", st ? st : (c->lost ? "08000" : "XX000"));
	enum log_level lvl = code == MC_EINTERNAL ? LOG_ERROR : code == MC_ECONFLICT ? LOG_DEBUG : LOG_WARN;
	if (lvl >= log_min_level) {
		struct buf b;
		buf_init(&b, 4096);
		const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		buf_json_str(&b, msg ? msg : PQerrorMessage(c->db));
		log_write(lvl, "store: postgres error", "\"op\":\"%s\",\"sqlstate\":\"%s\",\"detail\":%s,\"code\":\"%s\"",
			  what, c->sqlstate, buf_str(&b), mc_code_name(code));
		buf_release(&b);
	}
	return code;
}

static bool retryable(const struct pconn *c)
{
	return !strcmp(c->sqlstate, "40001") || !strcmp(c->sqlstate, "40P01");
}

/* Run a command without parameters (transaction control). */
static int conn_cmd(struct pconn *c, const char *sql)
{
	PGresult *res = PQexec(c->db, sql);
	ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	int rc = MC_OK;
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
		rc = pg_err(c, res, "command");
	else
		c->sqlstate[0] = '\0';
	PQclear(res);
	return rc;
}

static void notice_quiet(void *arg, const PGresult *res)
{
	(void)arg;
	(void)res;   /* "relation already exists, skipping" and the like: not worth a log line */
}

/* Open (or reopen) c. conninfo is a URL without our own keys. */
static int conn_open(const char *conninfo, unsigned epoch, struct pconn *c)
{
	conn_close(c);
	/* Keywords before "dbname" are defaults that the URL's own parameters override. */
	const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
	const char *const vals[] = {"5", "medcore", conninfo, NULL};
	c->db = PQconnectdbParams(keys, vals, 1);
	c->lost = false;
	c->epoch_noted = false;
	c->epoch = epoch;
	c->sqlstate[0] = '\0';
	if (!c->db || PQstatus(c->db) != CONNECTION_OK) {
		if (LOG_WARN >= log_min_level) {
			struct buf b;
			buf_init(&b, 4096);
			buf_json_str(&b, c->db ? PQerrorMessage(c->db) : "out of memory");
			log_write(LOG_WARN, "store: cannot connect to postgres", "\"detail\":%s", buf_str(&b));
			buf_release(&b);
		}
		conn_close(c);
		return MC_EUNAVAIL;
	}
	PQsetNoticeReceiver(c->db, notice_quiet, NULL);
	c->slots = mc_calloc(2 * STMT_CACHE_MAX, sizeof(*c->slots));
	return MC_OK;
}

/* Bound parameter arrays of one call. */
struct params {
	Oid *types;
	const char **vals;
	int *lens, *fmts;
	char *sig;        /* one char per argument: i r b u, NUL-terminated */
	char *scratch;    /* text renderings, NUL-separated */
};

static void params_free(struct params *p)
{
	free(p->types);
	free(p->vals);
	free(p->lens);
	free(p->fmts);
	free(p->sig);
	free(p->scratch);
}

static int params_make(const struct store_arg *args, size_t n, struct params *p)
{
	memset(p, 0, sizeof(*p));
	size_t need = 1;
	for (size_t i = 0; i < n; i++) {
		if (args[i].type == STORE_INT || args[i].type == STORE_REAL)
			need += 32;
		else if (args[i].type == STORE_TEXT && args[i].p)
			need += (args[i].len == (size_t)-1 ? strlen(args[i].p) : args[i].len) + 1;
		else if (args[i].type != STORE_NULL && args[i].type != STORE_BLOB && args[i].type != STORE_TEXT) {
			LOGE("store: unknown argument type", "\"arg\":%zu", i + 1);
			return MC_EINTERNAL;
		}
	}
	size_t m = n ? n : 1;
	p->types = mc_calloc(m, sizeof(*p->types));
	p->vals = mc_calloc(m, sizeof(*p->vals));
	p->lens = mc_calloc(m, sizeof(*p->lens));
	p->fmts = mc_calloc(m, sizeof(*p->fmts));
	p->sig = mc_calloc(n + 1, 1);
	p->scratch = mc_malloc(need);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		const struct store_arg *a = &args[i];
		char *dst = p->scratch + off;
		switch (a->type) {
		case STORE_NULL:
			p->sig[i] = 'u';
			break;
		case STORE_INT:
			p->sig[i] = 'i';
			p->types[i] = INT8OID;
			off += (size_t)snprintf(dst, 32, "%lld", (long long)a->i) + 1;
			p->vals[i] = dst;
			break;
		case STORE_REAL:
			p->sig[i] = 'r';
			p->types[i] = FLOAT8OID;
			off += (size_t)snprintf(dst, 32, "%.17g", a->d) + 1;
			p->vals[i] = dst;
			break;
		case STORE_TEXT: {
			/* Text format needs a NUL-terminated copy; an embedded NUL ends the value (PG text
			 * cannot hold one). */
			size_t len = !a->p ? 0 : a->len == (size_t)-1 ? strlen(a->p) : a->len;
			if (len)
				memcpy(dst, a->p, len);
			dst[len] = '\0';
			off += len + 1;
			p->sig[i] = 'u';
			p->vals[i] = dst;
			break;
		}
		case STORE_BLOB:
			p->sig[i] = 'b';
			p->types[i] = BYTEAOID;
			p->vals[i] = a->p ? a->p : "";
			p->lens[i] = (int)a->len;
			p->fmts[i] = 1;
			if (a->len > (1u << 30)) {
				LOGE("store: blob argument too large", "\"arg\":%zu", i + 1);
				return MC_EINTERNAL;
			}
			break;
		default:
			break;
		}
	}
	return MC_OK;
}

/* Marks used[n-1] for every $n in sql outside quotes; returns the highest n (at most cap). */
static int scan_placeholders(const char *sql, unsigned char *used, int cap)
{
	int max = 0;
	char q = 0;
	for (const char *s = sql; *s; s++) {
		if (q) {
			if (*s == q)
				q = 0;
			continue;
		}
		if (*s == '\'' || *s == '"') {
			q = *s;
			continue;
		}
		if (*s == '$' && s[1] >= '1' && s[1] <= '9') {
			int v = 0;
			const char *d = s + 1;
			while (*d >= '0' && *d <= '9' && v <= cap)
				v = v * 10 + (*d++ - '0');
			if (v > cap)
				return cap + 1;
			used[v - 1] = 1;
			if (v > max)
				max = v;
		}
	}
	return max;
}

/* Execute one statement; *out is the (successful) result, caller PQclears. */
static int conn_run(struct pconn *c, const char *sql, const struct store_arg *args, size_t n, PGresult **out)
{
	*out = NULL;
	if (c->sqlstate[0] && PQtransactionStatus(c->db) == PQTRANS_INERROR) {
		/* An earlier statement of this unit failed: PostgreSQL refuses the rest of it. */
		LOGW("store: statement after a failed statement in the same unit", "\"sqlstate\":\"%s\"", c->sqlstate);
		return MC_EINTERNAL;
	}
	if (c->lost)
		return MC_EUNAVAIL;
	unsigned char mark[STORE_MAX_ARGS] = {0};
	int used = scan_placeholders(sql, mark, STORE_MAX_ARGS);
	if ((size_t)used > n) {
		LOGE("store: statement has parameters without arguments", "\"params\":%d,\"bound\":%zu", used, n);
		return MC_EINTERNAL;
	}
	/* Arguments past the highest placeholder are dropped (PostgreSQL would refuse them). */
	struct params p;
	int rc = params_make(args, (size_t)used, &p);
	if (rc) {
		params_free(&p);
		return rc;
	}
	for (int i = 0; i < used; i++)
		if (!mark[i] && !p.types[i])
			p.types[i] = TEXTOID;   /* an unused, untyped $n: any type will do, but one is needed */
	uint64_t h = hash_str(sql, hash_str(p.sig, 1469598103934665603ull));
	struct pstmt *ps = NULL;
	size_t mask = 2 * STMT_CACHE_MAX - 1, slot = (size_t)h & mask;
	size_t siglen = strlen(p.sig);
	for (; c->slots[slot]; slot = (slot + 1) & mask) {
		struct pstmt *e = c->slots[slot];
		if (e->hash == h && !strncmp(e->key, p.sig, siglen) && e->key[siglen] == '\n' &&
		    !strcmp(e->key + siglen + 1, sql)) {
			ps = e;
			break;
		}
	}
	PGresult *res = NULL;
	if (!ps && c->count < STMT_CACHE_MAX) {
		struct pstmt *e = mc_calloc(1, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "s%u", c->next_name++);
		PGresult *pr = PQprepare(c->db, e->name, sql, used, p.types);
		if (!pr || PQresultStatus(pr) != PGRES_COMMAND_OK) {
			rc = pg_err(c, pr, "prepare");
			PQclear(pr);
			free(e);
			params_free(&p);
			return rc;
		}
		PQclear(pr);
		size_t kl = siglen + 1 + strlen(sql) + 1;
		e->key = mc_malloc(kl);
		snprintf(e->key, kl, "%s\n%s", p.sig, sql);
		e->hash = h;
		c->slots[slot] = e;
		c->count++;
		ps = e;
	}
	if (ps)
		res = PQexecPrepared(c->db, ps->name, used, p.vals, p.lens, p.fmts, 0);
	else
		res = PQexecParams(c->db, sql, used, p.types, p.vals, p.lens, p.fmts, 0);
	params_free(&p);
	ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
		rc = pg_err(c, res, "exec");
		PQclear(res);
		return rc;
	}
	c->sqlstate[0] = '\0';
	*out = res;
	return MC_OK;
}

/* ---- the store, transactions, rows ------------------------------------------------------------ */

struct rpool_ent {
	struct pconn c;
	struct rpool_ent *next;
};

struct pg_store {
	struct store pub;
	char *conninfo;
	int nwriters, max_readers;
	pthread_t *writers;
	struct store_wqueue wq;    /* write queue, its stopping flag, counters (store/wqueue.h) */
	pthread_mutex_t mu;        /* reader pool: stopping, idle, nreaders */
	pthread_cond_t reader_cv;
	bool stopping;             /* readers refused (set with wq's, in pg_close) */
	struct rpool_ent *idle;    /* idle read connections */
	int nreaders;              /* read connections open (idle or in use) */
	atomic_uint epoch;
};

struct pg_rows;

struct pg_txn {
	struct store_txn pub;
	struct pconn *c;
	int64_t changes;
	struct pg_rows *open;
};

struct pg_rows {
	struct store_rows pub;
	struct pg_txn *t;
	PGresult *res;
	int row, nrows;
	unsigned char **blob;  /* per column: decoded bytea of the current row (PQfreemem), or NULL */
	size_t *blen;
	struct pg_rows *prev, *next;
};

static _Thread_local struct pg_store *tl_writer_of;
/* The read transaction open on this thread (nested store_read runs inside it). */
static _Thread_local struct pg_store *tl_read_store;
static _Thread_local struct pconn *tl_read_conn;

static void note_lost(struct pg_store *s, struct pconn *c)
{
	if (!c->lost || c->epoch_noted)
		return;
	/* Every idle connection opened before now may be dead too (a restarted server): reconnect them
	 * before their next use. A spurious bump only costs reconnects. */
	c->epoch_noted = true;
	atomic_fetch_add(&s->epoch, 1);
}

static void txn_init(struct pg_txn *t, struct pconn *c)
{
	memset(t, 0, sizeof(*t));
	t->pub.be = &store_postgres_backend;
	t->c = c;
}

static void blobs_clear(struct pg_rows *r)
{
	if (!r->blob)
		return;
	for (int i = 0; i < PQnfields(r->res); i++) {
		if (r->blob[i])
			PQfreemem(r->blob[i]);
		r->blob[i] = NULL;
	}
}

static void rows_close(struct store_rows *pr)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	if (r->prev)
		r->prev->next = r->next;
	else
		r->t->open = r->next;
	if (r->next)
		r->next->prev = r->prev;
	blobs_clear(r);
	free(r->blob);
	free(r->blen);
	PQclear(r->res);
	free(r);
}

static void txn_finish(struct pg_txn *t)
{
	while (t->open)
		rows_close(&t->open->pub);
}

static int pg_exec(struct store_txn *pt, const char *sql, const struct store_arg *args, size_t n)
{
	struct pg_txn *t = (struct pg_txn *)pt;
	PGresult *res;
	t->changes = 0;
	int rc = conn_run(t->c, sql, args, n, &res);
	if (rc)
		return rc;
	const char *ct = PQcmdTuples(res);
	t->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
	PQclear(res);
	return MC_OK;
}

static int pg_query(struct store_txn *pt, const char *sql, const struct store_arg *args, size_t n,
		    struct store_rows **out)
{
	struct pg_txn *t = (struct pg_txn *)pt;
	PGresult *res;
	int rc = conn_run(t->c, sql, args, n, &res);
	if (rc)
		return rc;
	const char *ct = PQcmdTuples(res);
	t->changes = ct && *ct ? strtoll(ct, NULL, 10) : 0;
	struct pg_rows *r = mc_calloc(1, sizeof(*r));
	r->pub.be = &store_postgres_backend;
	r->t = t;
	r->res = res;
	r->row = -1;
	r->nrows = PQntuples(res);
	r->next = t->open;
	if (t->open)
		t->open->prev = r;
	t->open = r;
	*out = &r->pub;
	return MC_OK;
}

static int pg_exec_script(struct store_txn *pt, const char *sql)
{
	struct pg_txn *t = (struct pg_txn *)pt;
	return conn_cmd(t->c, sql);   /* simple query protocol: several statements are fine */
}

static int pg_table_exists(struct store_txn *pt, const char *table, bool *exists)
{
	int64_t one = 0;
	struct store_arg a = SA_TEXT(table);
	int rc = store_query_int(pt, "SELECT 1 WHERE to_regclass($1::text) IS NOT NULL", &a, 1, &one);
	*exists = rc == MC_OK;
	return rc == MC_ENOTFOUND ? MC_OK : rc;
}

static int64_t pg_changes(struct store_txn *pt) { return ((struct pg_txn *)pt)->changes; }

static int rows_next(struct store_rows *pr)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	blobs_clear(r);
	if (r->row + 1 >= r->nrows) {
		r->row = r->nrows;
		return 0;
	}
	r->row++;
	return 1;
}

static bool valid_cell(struct pg_rows *r, int col)
{
	return r->row >= 0 && r->row < r->nrows && col >= 0 && col < PQnfields(r->res);
}

static bool rows_null(struct store_rows *pr, int col)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	return !valid_cell(r, col) || PQgetisnull(r->res, r->row, col);
}

static int64_t rows_int(struct store_rows *pr, int col)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	if (rows_null(pr, col))
		return 0;
	const char *v = PQgetvalue(r->res, r->row, col);
	if (v[0] == 't' && !v[1])
		return 1;   /* boolean */
	if (strpbrk(v, ".eE"))
		return (int64_t)strtod(v, NULL);
	return strtoll(v, NULL, 10);
}

static double rows_real(struct store_rows *pr, int col)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	return rows_null(pr, col) ? 0.0 : strtod(PQgetvalue(r->res, r->row, col), NULL);
}

static const void *rows_blob(struct store_rows *pr, int col, size_t *len);

static const char *rows_text(struct store_rows *pr, int col)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	if (rows_null(pr, col))
		return NULL;
	return PQgetvalue(r->res, r->row, col);
}

static const void *rows_blob(struct store_rows *pr, int col, size_t *len)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	if (len)
		*len = 0;
	if (rows_null(pr, col))
		return NULL;
	const char *v = PQgetvalue(r->res, r->row, col);
	if (PQftype(r->res, col) != BYTEAOID) {
		if (len)
			*len = (size_t)PQgetlength(r->res, r->row, col);
		return v;
	}
	if (!r->blob) {
		r->blob = mc_calloc((size_t)PQnfields(r->res), sizeof(*r->blob));
		r->blen = mc_calloc((size_t)PQnfields(r->res), sizeof(*r->blen));
	}
	if (!r->blob[col]) {
		r->blob[col] = PQunescapeBytea((const unsigned char *)v, &r->blen[col]);
		if (!r->blob[col])
			abort();   /* OOM policy: the value is already in memory, its decoding is smaller */
	}
	if (len)
		*len = r->blen[col];
	return r->blob[col];
}

static int rows_ncols(struct store_rows *pr) { return PQnfields(((struct pg_rows *)pr)->res); }

static const char *rows_colname(struct store_rows *pr, int col)
{
	PGresult *res = ((struct pg_rows *)pr)->res;
	return col >= 0 && col < PQnfields(res) ? PQfname(res, col) : NULL;
}

static enum store_type rows_type(struct store_rows *pr, int col)
{
	struct pg_rows *r = (struct pg_rows *)pr;
	if (rows_null(pr, col))
		return STORE_NULL;   /* also: no current row, column out of range */
	switch (PQftype(r->res, col)) {
	case INT2OID:
	case INT4OID:
	case INT8OID:
		return STORE_INT;
	case FLOAT4OID:
	case FLOAT8OID:
	case NUMERICOID:
		return STORE_REAL;
	case BYTEAOID:
		return STORE_BLOB;
	default:
		return STORE_TEXT;   /* text, and anything else in its text form (bool 't'/'f', dates ...) */
	}
}

/* Key candidates, one row per column: table, column, index, NOT NULL; the primary key first, then the
 * other valid unique indexes without predicate or expression in name order; key columns only. */
static const char SQL_PG_KEYS[] =
	"SELECT c.relname, a.attname, ic.relname, a.attnotnull FROM pg_index i"
	" JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
	" JOIN pg_class ic ON ic.oid = i.indexrelid"
	" CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)"
	" JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum"
	" WHERE n.nspname = current_schema() AND i.indisunique AND i.indisvalid AND i.indpred IS NULL"
	" AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts"
	" ORDER BY c.relname, i.indisprimary DESC, ic.relname, k.ord";

/* Ends one index's run of SQL_PG_KEYS rows: it becomes the table's key when the table has none yet
 * and every column is NOT NULL. Takes cols. */
static void pg_key_candidate(struct store_tlist *l, const char *table, char **cols, int ncols, bool notnull)
{
	struct store_tinfo *e = table[0] ? store_tlist_find(l, table) : NULL;
	if (e && !e->key_final && notnull && ncols > 0) {
		e->key = cols;
		e->nkey = ncols;
		e->key_final = true;
		return;
	}
	for (int i = 0; i < ncols; i++)
		free(cols[i]);
	free(cols);
}

/* Tables: the plain and partitioned tables of current_schema() (partitions are read through their
 * parent) but schema_migrations. Key: the primary key, else the first unique index (by name) whose key
 * columns are all NOT NULL. Refs: the tables of its foreign-key constraints. */
static int pg_tables(struct store_txn *t, struct store_tlist *l)
{
	static const char SQL_TABLES[] =
		"SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
		" AND c.relname <> 'schema_migrations'";
	static const char SQL_REFS[] =
		"SELECT c.relname, p.relname FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid"
		" JOIN pg_class p ON p.oid = f.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE f.contype = 'f' AND n.nspname = current_schema()";
	struct store_rows *r;
	int st, rc = store_query(t, SQL_TABLES, NULL, 0, &r);
	if (rc)
		return rc;
	while ((st = store_rows_next(r)) == 1)
		store_tlist_add(l, store_rows_text(r, 0));
	store_rows_close(r);
	if (st < 0)
		return -st;

	rc = store_query(t, SQL_PG_KEYS, NULL, 0, &r);
	if (rc)
		return rc;
	char table[128] = "", index[128] = "";
	char **cols = NULL;
	int ncols = 0;
	bool notnull = true;
	while ((st = store_rows_next(r)) == 1) {
		const char *tb = store_rows_text(r, 0), *col = store_rows_text(r, 1), *ix = store_rows_text(r, 2);
		if (strcmp(tb, table) || strcmp(ix, index)) {
			pg_key_candidate(l, table, cols, ncols, notnull);
			cols = NULL;
			ncols = 0;
			notnull = true;
			snprintf(table, sizeof(table), "%s", tb);   /* names are at most 63 bytes */
			snprintf(index, sizeof(index), "%s", ix);
		}
		store_tlist_push(&cols, &ncols, col);
		notnull = notnull && store_rows_int(r, 3) == 1;
	}
	pg_key_candidate(l, table, cols, ncols, notnull);
	store_rows_close(r);
	if (st < 0)
		return -st;

	rc = store_query(t, SQL_REFS, NULL, 0, &r);
	if (rc)
		return rc;
	while ((st = store_rows_next(r)) == 1) {
		struct store_tinfo *e = store_tlist_find(l, store_rows_text(r, 0));
		if (e)
			store_tlist_push(&e->refs, &e->nrefs, store_rows_text(r, 1));
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

/* ---- the writers ------------------------------------------------------------------------------ */

static int writer_ensure(struct pg_store *s, struct pconn *c)
{
	unsigned ep = atomic_load(&s->epoch);
	if (c->db && !c->lost && c->epoch == ep && PQstatus(c->db) == CONNECTION_OK)
		return MC_OK;
	return conn_open(s->conninfo, ep, c);
}

enum batch_outcome { BATCH_DONE, BATCH_RETRY, BATCH_LOST };

/* One attempt at a batch on c. Sets each unit's rc. */
static enum batch_outcome run_batch(struct pconn *c, struct store_wunit **u, size_t n,
				    bool *committed)
{
	*committed = false;
	for (size_t i = 0; i < n; i++) {
		struct pg_txn t;
		int rc = conn_cmd(c, "SAVEPOINT unit");
		if (rc == MC_OK) {
			txn_init(&t, c);
			rc = u[i]->fn(&t.pub, u[i]->arg);
			txn_finish(&t);
			if (rc == MC_OK && c->sqlstate[0]) {
				/* It ignored a failed statement: its work is gone, say so. */
				rc = c->lost ? MC_EUNAVAIL : retryable(c) ? MC_EUNAVAIL : MC_EINTERNAL;
				if (!strncmp(c->sqlstate, "23", 2))
					rc = MC_ECONFLICT;
			}
		}
		if (c->lost)
			return BATCH_LOST;
		if (retryable(c))
			return BATCH_RETRY;
		u[i]->rc = rc;
		if (rc != MC_OK) {
			if (conn_cmd(c, "ROLLBACK TO SAVEPOINT unit") != MC_OK)
				return c->lost ? BATCH_LOST : BATCH_RETRY;
		}
		if (conn_cmd(c, "RELEASE SAVEPOINT unit") != MC_OK)
			return c->lost ? BATCH_LOST : BATCH_RETRY;
	}
	int rc = conn_cmd(c, "COMMIT");
	if (rc == MC_OK) {
		*committed = true;
		return BATCH_DONE;
	}
	if (retryable(c))
		return BATCH_RETRY;
	/* Lost during COMMIT (outcome unknown) or refused (deferred constraint): every unit fails. */
	for (size_t i = 0; i < n; i++)
		if (u[i]->rc == MC_OK)
			u[i]->rc = rc;
	return BATCH_DONE;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Begin a write transaction holding the write lock. */
static int begin_locked(struct pconn *c)
{
	int rc = conn_cmd(c, "BEGIN ISOLATION LEVEL READ COMMITTED");
	if (rc == MC_OK) {
		char sql[96];
		snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%lld)", (long long)MC_PG_WRITE_LOCK);
		rc = conn_cmd(c, sql);
		if (rc && !c->lost)
			conn_cmd(c, "ROLLBACK");
	}
	return rc;
}

static void *writer_main(void *arg)
{
	struct pg_store *s = arg;
	struct pconn c = {0};
	struct store_wunit **batch = mc_malloc(sizeof(*batch) * WRITER_BATCH_MAX);
	tl_writer_of = s;
	for (;;) {
		if (!store_wq_wait(&s->wq))
			break;   /* stopping and drained */

		int rc = writer_ensure(s, &c);
		if (rc == MC_OK) {
			rc = begin_locked(&c);
			if (rc && c.lost) {   /* an idle connection died (server restart): one fresh try */
				note_lost(s, &c);
				rc = writer_ensure(s, &c);
				if (rc == MC_OK)
					rc = begin_locked(&c);
			}
			note_lost(s, &c);
		}
		/* A pool of writers (pool = true): a peer may have taken the work meanwhile (n == 0);
		 * taking announces queue space at once and wakes a peer when more is queued. */
		size_t n = store_wq_take(&s->wq, batch, WRITER_BATCH_MAX, false, true);
		if (n == 0) {
			if (rc == MC_OK)
				conn_cmd(&c, "ROLLBACK");
			continue;
		}
		uint64_t commits = 0;
		if (rc) {
			for (size_t i = 0; i < n; i++)
				batch[i]->rc = MC_EUNAVAIL;
			store_wq_finish(&s->wq, batch, n, 0);
			continue;
		}
		bool reconnected = false;
		for (int attempt = 1;; attempt++) {
			for (size_t i = 0; i < n; i++)
				batch[i]->rc = MC_OK;
			bool committed = false;
			enum batch_outcome o = run_batch(&c, batch, n, &committed);
			if (o == BATCH_DONE) {
				commits += committed;
				if (committed)
					store_commit_notify(&s->pub);   /* e.g. wake the events dispatcher */
				break;
			}
			note_lost(s, &c);
			if (o == BATCH_RETRY && !c.lost)
				conn_cmd(&c, "ROLLBACK");
			bool again = o == BATCH_RETRY ? attempt < RETRY_MAX : !reconnected;
			if (o == BATCH_LOST)
				reconnected = true;
			if (again) {
				if (o == BATCH_RETRY)
					sleep_ms(attempt * 5L);
				rc = writer_ensure(s, &c);
				if (rc == MC_OK)
					rc = begin_locked(&c);
				note_lost(s, &c);
			}
			if (!again || rc) {
				LOGW("store: write batch failed", "\"units\":%zu,\"attempts\":%d,\"lost\":%s", n, attempt,
				     c.lost ? "true" : "false");
				for (size_t i = 0; i < n; i++)
					batch[i]->rc = MC_EUNAVAIL;
				if (!c.lost && c.db && PQtransactionStatus(c.db) != PQTRANS_IDLE)
					conn_cmd(&c, "ROLLBACK");
				break;
			}
		}
		store_wq_finish(&s->wq, batch, n, commits);
	}
	conn_close(&c);
	free(batch);
	return NULL;
}

static int pg_write(struct store *ps, store_work_fn *fn, void *arg, store_done_fn *done)
{
	struct pg_store *s = (struct pg_store *)ps;
	return store_wq_submit(&s->wq, tl_writer_of == s, fn, arg, done);
}

static void pg_stats(struct store *ps, struct store_stats *out)
{
	struct pg_store *s = (struct pg_store *)ps;
	store_wq_stats(&s->wq, out);
}

/* ---- reads ------------------------------------------------------------------------------------ */

static int reader_take(struct pg_store *s, struct rpool_ent **out)
{
	*out = NULL;
	pthread_mutex_lock(&s->mu);
	while (!s->idle && s->nreaders >= s->max_readers && !s->stopping)
		pthread_cond_wait(&s->reader_cv, &s->mu);
	if (s->stopping) {
		pthread_mutex_unlock(&s->mu);
		return MC_EUNAVAIL;
	}
	struct rpool_ent *e = s->idle;
	if (e)
		s->idle = e->next;
	else
		s->nreaders++;
	pthread_mutex_unlock(&s->mu);
	if (!e)
		e = mc_calloc(1, sizeof(*e));
	unsigned ep = atomic_load(&s->epoch);
	if (!e->c.db || e->c.lost || e->c.epoch != ep || PQstatus(e->c.db) != CONNECTION_OK) {
		int rc = conn_open(s->conninfo, ep, &e->c);
		if (rc) {
			free(e);
			pthread_mutex_lock(&s->mu);
			s->nreaders--;
			pthread_cond_signal(&s->reader_cv);
			pthread_mutex_unlock(&s->mu);
			return rc;
		}
	}
	*out = e;
	return MC_OK;
}

static void reader_give(struct pg_store *s, struct rpool_ent *e)
{
	note_lost(s, &e->c);
	if (e->c.lost) {
		conn_close(&e->c);
		free(e);
		e = NULL;
	}
	pthread_mutex_lock(&s->mu);
	if (e) {
		e->next = s->idle;
		s->idle = e;
	} else {
		s->nreaders--;
	}
	pthread_cond_signal(&s->reader_cv);
	pthread_mutex_unlock(&s->mu);
}

static int pg_read(struct store *ps, store_work_fn *fn, void *arg)
{
	struct pg_store *s = (struct pg_store *)ps;
	if (tl_writer_of == s) {
		LOGE("store: store_read called from a unit of work on the writer", "\"backend\":\"%s\"", "postgres");
		return MC_EINTERNAL;
	}
	struct pg_txn t;
	if (tl_read_store == s) {   /* nested: the outer snapshot */
		txn_init(&t, tl_read_conn);
		int rc = fn(&t.pub, arg);
		txn_finish(&t);
		return rc;
	}
	struct rpool_ent *e;
	int rc = reader_take(s, &e);
	if (rc)
		return rc;
	rc = conn_cmd(&e->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (rc && e->c.lost) {
		/* An idle connection died (server restart, terminated session): nothing ran yet, so try
		 * once more on a new connection. */
		reader_give(s, e);
		rc = reader_take(s, &e);
		if (rc)
			return rc;
		rc = conn_cmd(&e->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	}
	if (rc == MC_OK) {
		struct pg_store *prev_s = tl_read_store;
		struct pconn *prev_c = tl_read_conn;
		tl_read_store = s;
		tl_read_conn = &e->c;
		txn_init(&t, &e->c);
		rc = fn(&t.pub, arg);
		txn_finish(&t);
		tl_read_store = prev_s;
		tl_read_conn = prev_c;
		if (e->c.lost) {
			rc = MC_EUNAVAIL;
		} else {
			/* COMMIT only ends the snapshot (after an error it rolls back). */
			int crc = conn_cmd(&e->c, "COMMIT");
			if (crc && rc == MC_OK)
				rc = crc;
		}
	}
	if (e->c.lost && rc != MC_OK)
		rc = MC_EUNAVAIL;
	reader_give(s, e);
	return rc;
}

/* ---- open / close ----------------------------------------------------------------------------- */

/* Split our own keys (writers, readers) off the URL's query; the rest goes to libpq. */
static int parse_url(const char *url, char **conninfo, int *writers, int *readers)
{
	*writers = WRITERS_DEFAULT;
	*readers = READERS_DEFAULT;
	struct buf b;
	buf_init(&b, 8192);
	const char *q = strchr(url, '?');
	int rc = buf_append(&b, url, q ? (size_t)(q - url) : strlen(url));
	char sep = '?';
	while (q && !rc) {
		const char *k = q + 1, *amp = strchr(k, '&');
		size_t len = amp ? (size_t)(amp - k) : strlen(k);
		int *dst = !strncmp(k, "writers=", 8) ? writers : !strncmp(k, "readers=", 8) ? readers : NULL;
		if (dst) {
			char num[12];
			size_t vl = len - 8;
			if (vl == 0 || vl >= sizeof(num) || strspn(k + 8, "0123456789") < vl) {
				rc = MC_EINVAL;
				break;
			}
			memcpy(num, k + 8, vl);
			num[vl] = '\0';
			*dst = atoi(num);
		} else if (len) {
			rc = buf_append(&b, &sep, 1);
			if (!rc)
				rc = buf_append(&b, k, len);
			sep = '&';
		}
		q = amp;
	}
	if (!rc && (*writers < 1 || *writers > WRITERS_MAX || *readers < 1 || *readers > READERS_MAX))
		rc = MC_EINVAL;
	if (rc) {
		buf_release(&b);
		LOGE("store: bad postgres URL options (writers=1..16, readers=1..128)", "\"backend\":\"%s\"", "postgres");
		return MC_EINVAL;
	}
	*conninfo = mc_strdup(buf_str(&b));
	buf_release(&b);
	return MC_OK;
}

static void pg_free(struct pg_store *s)
{
	while (s->idle) {
		struct rpool_ent *e = s->idle;
		s->idle = e->next;
		conn_close(&e->c);
		free(e);
	}
	store_wq_destroy(&s->wq);
	pthread_cond_destroy(&s->reader_cv);
	pthread_mutex_destroy(&s->mu);
	if (s->conninfo)   /* may hold a password: wipe it */
		memset(s->conninfo, 0, strlen(s->conninfo));
	free(s->conninfo);
	free(s->writers);
	free(s);
}

static void pg_close(struct store *ps)
{
	struct pg_store *s = (struct pg_store *)ps;
	store_wq_stop(&s->wq);
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->reader_cv);
	pthread_mutex_unlock(&s->mu);
	for (int i = 0; i < s->nwriters; i++)
		pthread_join(s->writers[i], NULL);   /* they drain the queue first */
	pthread_mutex_lock(&s->mu);
	while (s->idle) {
		struct rpool_ent *e = s->idle;
		s->idle = e->next;
		conn_close(&e->c);
		free(e);
		s->nreaders--;
	}
	/* Readers still in use belong to threads that outlive the store: a caller bug. */
	if (s->nreaders)
		LOGE("store: closing with read transactions still running", "\"readers\":%d", s->nreaders);
	pthread_mutex_unlock(&s->mu);
	pg_free(s);
}

static int pg_open(const char *url, struct store **out)
{
	struct pg_store *s = mc_calloc(1, sizeof(*s));
	s->pub.be = &store_postgres_backend;
	store_wq_init(&s->wq, "postgres");
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->reader_cv, NULL);
	int rc = parse_url(url, &s->conninfo, &s->nwriters, &s->max_readers);
	if (rc) {
		pg_free(s);
		return rc;
	}
	/* Fail at open when the database is unreachable: one connection to check, then pooled. */
	struct rpool_ent *e = mc_calloc(1, sizeof(*e));
	rc = conn_open(s->conninfo, 0, &e->c);
	if (rc) {
		free(e);
		pg_free(s);
		return rc;
	}
	PGresult *res = PQexec(e->c.db, "SELECT datcollate FROM pg_database WHERE datname = current_database()");
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		const char *coll = PQgetvalue(res, 0, 0);
		if (strcmp(coll, "C") && strcmp(coll, "POSIX"))
			LOGW("store: the postgres database's collation is not C; text ordering may differ from SQLite",
			     "\"backend\":\"%s\"", "postgres");
	}
	PQclear(res);
	s->idle = e;
	s->nreaders = 1;
	s->writers = mc_calloc((size_t)s->nwriters, sizeof(*s->writers));
	for (int i = 0; i < s->nwriters; i++) {
		if (pthread_create(&s->writers[i], NULL, writer_main, s) != 0) {
			LOGE("store: cannot start a writer thread", "\"backend\":\"%s\"", "postgres");
			s->nwriters = i;
			pg_close(&s->pub);
			return MC_EUNAVAIL;
		}
	}
	*out = &s->pub;
	return MC_OK;
}

const struct store_backend store_postgres_backend = {
	.name = "postgres",
	.open = pg_open,
	.close = pg_close,
	.write = pg_write,
	.read = pg_read,
	.stats = pg_stats,
	.exec = pg_exec,
	.query = pg_query,
	.exec_script = pg_exec_script,
	.table_exists = pg_table_exists,
	.changes = pg_changes,
	.rows_next = rows_next,
	.rows_null = rows_null,
	.rows_int = rows_int,
	.rows_real = rows_real,
	.rows_text = rows_text,
	.rows_blob = rows_blob,
	.rows_close = rows_close,
	.rows_ncols = rows_ncols,
	.rows_colname = rows_colname,
	.rows_type = rows_type,
	.tables = pg_tables,
};
