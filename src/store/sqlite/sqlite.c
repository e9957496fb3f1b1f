/* store/sqlite/sqlite.c — the embedded SQLite backend: one writer thread with group commit, and
 * per-thread read-only connections (WAL), behind the vtable of store/store_int.h.
 *
 * Writes. store_write() queues a unit and sleeps on done_cv. The writer thread takes every queued
 * unit (at most WRITER_BATCH_MAX), opens one BEGIN IMMEDIATE transaction, runs each unit inside its
 * own SAVEPOINT (a unit returning non-zero is rolled back to its savepoint alone), COMMITs once —
 * one fsync with synchronous=FULL for the whole batch — and then wakes every waiter with its own
 * code. While a batch commits, new units queue up, so the batch size grows with the load: that is
 * what turns ~3k fsyncs/s into tens of thousands of durable units/s.
 * If SQLite itself aborts the transaction inside a unit (I/O error, disk full), every unit already
 * run in that transaction loses its work and gets MC_EINTERNAL; the batch continues in a new
 * transaction. If COMMIT fails, every unit of the transaction gets the error.
 *
 * Reads. Each thread gets its own read-only connection per store, created on first use and kept in
 * a per-thread list (a pthread key, so it is closed when the thread exits). The store also lists
 * its readers, so store_close() closes them all. A read connection is thus owned by two parties
 * (its thread and its store); g_rlock guards that shared bookkeeping and the last owner frees it.
 * The hot path — finding this thread's connection — takes no lock.
 *
 * Statements. Each connection caches prepared statements by SQL text (SQLITE_PREPARE_PERSISTENT);
 * a statement is reset and its bindings cleared after each use. $1..$n placeholders are bound by
 * name. Errors are mapped to MC_* here and their SQLite text goes only to the log.
 */
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store_int.h"
#include "store/wqueue.h"

#define WRITER_BATCH_MAX  512      /* units per transaction */
#define STMT_CACHE_SLOTS_MAX 2048  /* hash slots per connection; 3/4 of them may be filled */
#define BUSY_TIMEOUT_MS   5000

/* ---- connections and the statement cache ------------------------------------------------------ */

struct stmt_ent {
	char *sql;
	uint64_t hash;
	sqlite3_stmt *st;
	bool busy;   /* handed out: a second user of the same SQL gets an uncached statement */
	int *argidx; /* argidx[i]: the parameter index of "$<i+1>", 0 when unused (param_map) */
	int nargidx;
};

struct conn {
	sqlite3 *db;
	struct stmt_ent **slots;   /* open addressing; NULL = empty */
	size_t nslots, count;
};

static uint64_t hash_sql(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

/* Map an SQLite result to MC_* and log the engine's message (never shown to clients). */
static int sq_err(sqlite3 *db, int rc, const char *what)
{
	int prim = rc & 0xff;
	int code = prim == SQLITE_CONSTRAINT                        ? MC_ECONFLICT
		   : (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) ? MC_EUNAVAIL
								    : MC_EINTERNAL;
	enum log_level lvl = code == MC_EINTERNAL ? LOG_ERROR : LOG_WARN;
	if (lvl >= log_min_level) {
		struct buf b;
		buf_init(&b, 4096);
		buf_json_str(&b, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		log_write(lvl, "store: sqlite error", "\"op\":\"%s\",\"sqlite_code\":%d,\"detail\":%s,\"code\":\"%s\"",
			  what, rc, buf_str(&b), mc_code_name(code));
		buf_release(&b);
	}
	return code;
}

static void conn_close(struct conn *c)
{
	for (size_t i = 0; i < c->nslots; i++) {
		struct stmt_ent *e = c->slots[i];
		if (!e)
			continue;
		sqlite3_finalize(e->st);
		free(e->argidx);
		free(e->sql);
		free(e);
	}
	free(c->slots);
	c->slots = NULL;
	c->nslots = c->count = 0;
	if (c->db && sqlite3_close(c->db) != SQLITE_OK) {
		/* A statement outside the cache is still open: a bug, but don't leak the handle. */
		LOGE("store: closing a connection with statements still open", "\"backend\":\"%s\"", "sqlite");
		sqlite3_close_v2(c->db);
	}
	c->db = NULL;
}

static void cache_insert(struct conn *c, struct stmt_ent *e)
{
	size_t mask = c->nslots - 1, i = (size_t)e->hash & mask;
	while (c->slots[i])
		i = (i + 1) & mask;
	c->slots[i] = e;
	c->count++;
}

/* Grow the table when 3/4 full; false when it is at its maximum (the caller then does not cache). */
static bool cache_make_room(struct conn *c)
{
	if (c->nslots && (c->count + 1) * 4 <= c->nslots * 3)
		return true;
	if (c->nslots >= STMT_CACHE_SLOTS_MAX)
		return false;
	struct stmt_ent **old = c->slots;
	size_t oldn = c->nslots;
	c->nslots = oldn ? oldn * 2 : 64;
	c->slots = mc_calloc(c->nslots, sizeof(*c->slots));
	c->count = 0;
	for (size_t i = 0; i < oldn; i++)
		if (old[i])
			cache_insert(c, old[i]);
	free(old);
	return true;
}

/* Which parameter each argument binds: (*out)[i] is the index of "$<i+1>" in st, 0 when st does not
 * use it; returns the array's length (the highest $N; *out malloc'd, NULL when 0). Parameters not
 * named $N are left out, so binding finds them unbound. Computed once per cached statement: looking
 * a name up per argument and per execution (sqlite3_bind_parameter_index) is a linear scan. */
/* N for a parameter named "$N" (1..999, no leading zero), else 0. */
static int dollar_num(const char *name)
{
	if (!name || name[0] != '$' || name[1] < '1' || name[1] > '9')
		return 0;
	int k = 0;
	for (const char *p = name + 1; *p; p++) {
		if (*p < '0' || *p > '9' || p - name > 3)
			return 0;
		k = k * 10 + (*p - '0');
	}
	return k;
}

static int param_map(sqlite3_stmt *st, int **out)
{
	int np = sqlite3_bind_parameter_count(st), max = 0;
	*out = NULL;
	for (int j = 1; j <= np; j++) {
		const char *name = sqlite3_bind_parameter_name(st, j);
		int k = dollar_num(name);
		if (k > max)
			max = k;
	}
	if (max == 0)
		return 0;
	int *m = mc_calloc((size_t)max, sizeof(*m));
	for (int j = 1; j <= np; j++) {
		const char *name = sqlite3_bind_parameter_name(st, j);
		int k = dollar_num(name);
		if (k > 0)
			m[k - 1] = j;
	}
	*out = m;
	return max;
}

/* A statement ready to bind. *ent is its cache entry, or NULL when it must be finalized after use. */
static int stmt_get(struct conn *c, const char *sql, sqlite3_stmt **out, struct stmt_ent **ent)
{
	uint64_t h = hash_sql(sql);
	bool cached_busy = false;
	*out = NULL;
	*ent = NULL;
	if (c->nslots) {
		size_t mask = c->nslots - 1;
		for (size_t i = (size_t)h & mask; c->slots[i]; i = (i + 1) & mask) {
			struct stmt_ent *e = c->slots[i];
			if (e->hash == h && !strcmp(e->sql, sql)) {
				if (!e->busy) {
					e->busy = true;
					*out = e->st;
					*ent = e;
					return MC_OK;
				}
				cached_busy = true;
				break;
			}
		}
	}
	bool cache = !cached_busy && cache_make_room(c);
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	int rc = sqlite3_prepare_v3(c->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, &tail);
	if (rc != SQLITE_OK)
		return sq_err(c->db, rc, "prepare");
	if (!st) {
		LOGE("store: empty SQL statement", "\"backend\":\"%s\"", "sqlite");
		return MC_EINTERNAL;
	}
	if (tail && tail[strspn(tail, " \t\r\n;")]) {
		/* Only one statement per call: a second one would be silently ignored. */
		sqlite3_finalize(st);
		LOGE("store: more than one SQL statement in one call", "\"backend\":\"%s\"", "sqlite");
		return MC_EINTERNAL;
	}
	if (cache) {
		struct stmt_ent *e = mc_malloc(sizeof(*e));
		e->sql = mc_strdup(sql);
		e->hash = h;
		e->st = st;
		e->busy = true;
		e->nargidx = param_map(st, &e->argidx);
		cache_insert(c, e);
		*ent = e;
	}
	*out = st;
	return MC_OK;
}

static void stmt_put(sqlite3_stmt *st, struct stmt_ent *ent)
{
	if (!ent) {
		sqlite3_finalize(st);
		return;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	ent->busy = false;
}

/* Bind args[i] to "$<i+1>". copy: SQLite keeps its own copy (needed when stepping outlives the call).
 * ent: the statement's cache entry (its parameter map), or NULL for an uncached statement. */
static int stmt_bind(struct conn *c, sqlite3_stmt *st, struct stmt_ent *ent, const struct store_arg *args,
		     size_t n, bool copy)
{
	sqlite3_destructor_type keep = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
	int want = sqlite3_bind_parameter_count(st), bound = 0;
	for (size_t i = 0; i < n; i++) {
		int idx;
		if (ent) {
			idx = i < (size_t)ent->nargidx ? ent->argidx[i] : 0;
		} else {
			char name[24];   /* "$" + up to 20 digits */
			snprintf(name, sizeof(name), "$%zu", i + 1);
			idx = sqlite3_bind_parameter_index(st, name);
		}
		if (idx == 0)
			continue;   /* this statement does not use $i */
		const struct store_arg *a = &args[i];
		int rc;
		switch (a->type) {
		case STORE_NULL:
			rc = sqlite3_bind_null(st, idx);
			break;
		case STORE_INT:
			rc = sqlite3_bind_int64(st, idx, a->i);
			break;
		case STORE_REAL:
			rc = sqlite3_bind_double(st, idx, a->d);
			break;
		case STORE_TEXT:
			if (!a->p)   /* SA_TEXTN(NULL, 0): the empty string, not NULL */
				rc = sqlite3_bind_text(st, idx, "", 0, SQLITE_STATIC);
			else if (a->len == (size_t)-1)
				rc = sqlite3_bind_text(st, idx, a->p, -1, keep);
			else
				rc = sqlite3_bind_text64(st, idx, a->p, a->len, keep, SQLITE_UTF8);
			break;
		case STORE_BLOB:
			/* A NULL pointer would bind SQL NULL; an empty blob is still a blob. */
			if (!a->p || a->len == 0)
				rc = sqlite3_bind_zeroblob(st, idx, 0);
			else
				rc = sqlite3_bind_blob64(st, idx, a->p, a->len, keep);
			break;
		default:
			LOGE("store: unknown argument type", "\"arg\":%zu", i + 1);
			return MC_EINTERNAL;
		}
		if (rc != SQLITE_OK)
			return sq_err(c->db, rc, "bind");
		bound++;
	}
	if (bound != want) {
		LOGE("store: statement has parameters without arguments", "\"params\":%d,\"bound\":%d", want, bound);
		return MC_EINTERNAL;
	}
	return MC_OK;
}

/* Run one statement to completion. changes may be NULL. */
static int conn_exec(struct conn *c, const char *sql, const struct store_arg *args, size_t n, int64_t *changes)
{
	sqlite3_stmt *st;
	struct stmt_ent *ent;
	int rc = stmt_get(c, sql, &st, &ent);
	if (rc)
		return rc;
	rc = stmt_bind(c, st, ent, args, n, false);
	if (rc == MC_OK) {
		int s;
		while ((s = sqlite3_step(st)) == SQLITE_ROW)
			;
		if (s != SQLITE_DONE)
			rc = sq_err(c->db, s, "exec");
		else if (changes)
			*changes = sqlite3_changes64(c->db);
	}
	stmt_put(st, ent);
	return rc;
}

static int conn_open(const char *path, bool write, struct conn *c)
{
	static const char *const wpragmas[] = {
		"PRAGMA synchronous=FULL",   /* a unit is acknowledged only once durable */
		"PRAGMA foreign_keys=ON",
		"PRAGMA cache_size=-32768",  /* KiB: 32 MiB page cache for the writer */
		"PRAGMA mmap_size=268435456",
		"PRAGMA temp_store=MEMORY",
	};
	static const char *const rpragmas[] = {
		"PRAGMA foreign_keys=ON",
		"PRAGMA cache_size=-8192",   /* per reader thread */
		"PRAGMA mmap_size=268435456",
		"PRAGMA temp_store=MEMORY",
	};
	memset(c, 0, sizeof(*c));
	/* NOMUTEX: each connection is used by one thread at a time (the writer, or its reader thread). */
	int flags = (write ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY) | SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
	if (rc != SQLITE_OK) {
		sq_err(c->db, rc, "open");
		conn_close(c);
		return MC_EUNAVAIL;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if (write) {
		char *mode = NULL;
		sqlite3_stmt *st = NULL;
		rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
		if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
			const unsigned char *m = sqlite3_column_text(st, 0);
			mode = mc_strdup(m ? (const char *)m : "");
		}
		if (rc != SQLITE_OK)
			sq_err(c->db, rc, "journal_mode");
		sqlite3_finalize(st);
		bool wal = mode && !strcmp(mode, "wal");
		free(mode);
		if (!wal) {
			LOGE("store: cannot switch the database to WAL mode", "\"backend\":\"%s\"", "sqlite");
			conn_close(c);
			return MC_EUNAVAIL;
		}
		/* Grow the file in 16 MiB steps: each growth makes every reader remap its mmap window
		 * (munmap + page faults, measured at ~10% of a search load while audit rows grow it). */
		int chunk = 16 << 20;
		sqlite3_file_control(c->db, "main", SQLITE_FCNTL_CHUNK_SIZE, &chunk);
	}
	const char *const *pragmas = write ? wpragmas : rpragmas;
	size_t np = write ? sizeof(wpragmas) / sizeof(wpragmas[0]) : sizeof(rpragmas) / sizeof(rpragmas[0]);
	for (size_t i = 0; i < np; i++) {
		rc = sqlite3_exec(c->db, pragmas[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			sq_err(c->db, rc, "pragma");
			conn_close(c);
			return MC_EUNAVAIL;
		}
	}
	return MC_OK;
}

/* ---- the store, transactions, rows ------------------------------------------------------------ */

struct rconn;

struct sq_store {
	struct store pub;
	uint64_t id;               /* unique per process: keys the per-thread reader lists */
	char *path;
	struct conn w;             /* writer connection: only the writer thread touches it after open */
	pthread_t writer;
	struct store_wqueue wq;    /* queue, stopping, counters (store/wqueue.h) */
	struct rconn *readers;     /* guarded by g_rlock */
};

struct sq_rows;

struct sq_txn {
	struct store_txn pub;
	struct conn *c;
	int64_t changes;
	struct sq_rows *open;   /* rows not yet closed: closed for the caller when the unit returns */
};

struct sq_rows {
	struct store_rows pub;
	struct sq_txn *t;
	sqlite3_stmt *st;
	struct stmt_ent *ent;
	int state;   /* 1 stepping, 0 done, negative: -MC_* error */
	struct sq_rows *prev, *next;
};

/* Which store's writer runs on this thread: a unit must not wait on its own writer. */
static _Thread_local struct sq_store *tl_writer_of;

static void txn_init(struct sq_txn *t, struct conn *c)
{
	memset(t, 0, sizeof(*t));
	t->pub.be = &store_sqlite_backend;
	t->c = c;
}

static void rows_close(struct store_rows *pr)
{
	struct sq_rows *r = (struct sq_rows *)pr;
	if (r->prev)
		r->prev->next = r->next;
	else
		r->t->open = r->next;
	if (r->next)
		r->next->prev = r->prev;
	stmt_put(r->st, r->ent);
	free(r);
}

static void txn_finish(struct sq_txn *t)
{
	while (t->open)
		rows_close(&t->open->pub);
}

static int sq_exec(struct store_txn *pt, const char *sql, const struct store_arg *args, size_t n)
{
	struct sq_txn *t = (struct sq_txn *)pt;
	t->changes = 0;
	return conn_exec(t->c, sql, args, n, &t->changes);
}

static int sq_query(struct store_txn *pt, const char *sql, const struct store_arg *args, size_t n,
		    struct store_rows **out)
{
	struct sq_txn *t = (struct sq_txn *)pt;
	sqlite3_stmt *st;
	struct stmt_ent *ent;
	int rc = stmt_get(t->c, sql, &st, &ent);
	if (rc)
		return rc;
	rc = stmt_bind(t->c, st, ent, args, n, true);
	if (rc) {
		stmt_put(st, ent);
		return rc;
	}
	struct sq_rows *r = mc_calloc(1, sizeof(*r));
	r->pub.be = &store_sqlite_backend;
	r->t = t;
	r->st = st;
	r->ent = ent;
	r->state = 1;
	r->next = t->open;
	if (t->open)
		t->open->prev = r;
	t->open = r;
	*out = &r->pub;
	return MC_OK;
}

static int sq_exec_script(struct store_txn *pt, const char *sql)
{
	struct sq_txn *t = (struct sq_txn *)pt;
	int rc = sqlite3_exec(t->c->db, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? MC_OK : sq_err(t->c->db, rc, "script");
}

static int sq_table_exists(struct store_txn *pt, const char *table, bool *exists)
{
	int64_t one = 0;
	struct store_arg a = SA_TEXT(table);
	int rc = store_query_int(pt, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", &a, 1, &one);
	*exists = rc == MC_OK;
	return rc == MC_ENOTFOUND ? MC_OK : rc;
}

static int64_t sq_changes(struct store_txn *pt) { return ((struct sq_txn *)pt)->changes; }

static int rows_next(struct store_rows *pr)
{
	struct sq_rows *r = (struct sq_rows *)pr;
	if (r->state != 1)
		return r->state;
	int s = sqlite3_step(r->st);
	if (s == SQLITE_ROW)
		return 1;
	r->state = s == SQLITE_DONE ? 0 : -sq_err(r->t->c->db, s, "step");
	return r->state;
}

static bool rows_null(struct store_rows *pr, int col)
{
	return sqlite3_column_type(((struct sq_rows *)pr)->st, col) == SQLITE_NULL;
}

static int64_t rows_int(struct store_rows *pr, int col) { return sqlite3_column_int64(((struct sq_rows *)pr)->st, col); }
static double rows_real(struct store_rows *pr, int col) { return sqlite3_column_double(((struct sq_rows *)pr)->st, col); }

static const char *rows_text(struct store_rows *pr, int col)
{
	return (const char *)sqlite3_column_text(((struct sq_rows *)pr)->st, col);
}

static const void *rows_blob(struct store_rows *pr, int col, size_t *len)
{
	sqlite3_stmt *st = ((struct sq_rows *)pr)->st;
	const void *p = sqlite3_column_blob(st, col);   /* before _bytes: SQLite's documented order */
	if (len)
		*len = (size_t)sqlite3_column_bytes(st, col);
	return p;
}

static int rows_ncols(struct store_rows *pr) { return sqlite3_column_count(((struct sq_rows *)pr)->st); }

static const char *rows_colname(struct store_rows *pr, int col)
{
	sqlite3_stmt *st = ((struct sq_rows *)pr)->st;
	return col >= 0 && col < sqlite3_column_count(st) ? sqlite3_column_name(st, col) : NULL;
}

static enum store_type rows_type(struct store_rows *pr, int col)
{
	struct sq_rows *r = (struct sq_rows *)pr;
	/* Only while a row is ready (rows_next returned 1 and the statement was not reset since). */
	if (col < 0 || col >= sqlite3_data_count(r->st))
		return STORE_NULL;
	switch (sqlite3_column_type(r->st, col)) {
	case SQLITE_INTEGER:
		return STORE_INT;
	case SQLITE_FLOAT:
		return STORE_REAL;
	case SQLITE_TEXT:
		return STORE_TEXT;
	case SQLITE_BLOB:
		return STORE_BLOB;
	default:
		return STORE_NULL;
	}
}

/* Tables: sqlite_master's, without SQLite's own (sqlite_%) and schema_migrations. Key: the declared
 * primary key (pragma_table_info's pk order; an INTEGER PRIMARY KEY is its rowid alias); a rowid table
 * without one has none (it is still read in one cursor by a plain SELECT). Refs: the tables of
 * pragma_foreign_key_list. */
static int sq_tables(struct store_txn *t, struct store_tlist *l)
{
	static const char *const sql[3] = {
		"SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
		" AND name <> 'schema_migrations'",
		"SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"
		" WHERE m.type = 'table' AND p.pk > 0 ORDER BY m.name, p.pk",
		"SELECT m.name, f.\"table\" FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f"
		" WHERE m.type = 'table'",
	};
	for (int q = 0; q < 3; q++) {
		struct store_rows *r;
		int rc = store_query(t, sql[q], NULL, 0, &r);
		if (rc)
			return rc;
		int st;
		while ((st = store_rows_next(r)) == 1) {
			const char *name = store_rows_text(r, 0);
			if (!name)
				continue;
			struct store_tinfo *e = q == 0 ? store_tlist_add(l, name) : store_tlist_find(l, name);
			const char *v = q ? store_rows_text(r, 1) : NULL;
			if (!e || (q && !v))
				continue;
			if (q == 1)
				store_tlist_push(&e->key, &e->nkey, v);
			else if (q == 2)
				store_tlist_push(&e->refs, &e->nrefs, v);
		}
		store_rows_close(r);
		if (st < 0)
			return -st;
	}
	return MC_OK;
}

/* ---- the writer ------------------------------------------------------------------------------- */

static int w_run(struct sq_store *s, const char *sql) { return conn_exec(&s->w, sql, NULL, 0, NULL); }

/* Runs one batch; sets every unit's rc. Returns the number of successful COMMITs (0 or more). */
static uint64_t run_batch(struct sq_store *s, struct store_wunit **u, size_t n)
{
	uint64_t commits = 0;
	size_t seg = 0;          /* first unit of the current transaction */
	bool open = false;
	for (size_t i = 0; i < n; i++) {
		if (!open) {
			int rc = w_run(s, "BEGIN IMMEDIATE");
			if (rc) {
				for (size_t j = i; j < n; j++)
					u[j]->rc = rc;
				return commits;
			}
			open = true;
			seg = i;
		}
		struct sq_txn t;
		int rc = w_run(s, "SAVEPOINT unit");
		if (rc == MC_OK) {
			txn_init(&t, &s->w);
			rc = u[i]->fn(&t.pub, u[i]->arg);
			txn_finish(&t);
		}
		u[i]->rc = rc;
		if (sqlite3_get_autocommit(s->w.db)) {
			/* SQLite rolled the whole transaction back (I/O error, disk full, ...). */
			LOGE("store: transaction aborted by the engine; batch units lost", "\"units\":%zu", i - seg + 1);
			for (size_t j = seg; j <= i; j++)
				if (u[j]->rc == MC_OK)
					u[j]->rc = MC_EINTERNAL;
			open = false;
			continue;
		}
		if (rc != MC_OK && w_run(s, "ROLLBACK TO unit") != MC_OK) {
			/* Cannot undo this unit: abandon the whole transaction so it cannot commit. */
			sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
			for (size_t j = seg; j < i; j++)
				if (u[j]->rc == MC_OK)
					u[j]->rc = MC_EINTERNAL;
			open = false;
			continue;
		}
		if (w_run(s, "RELEASE unit") != MC_OK) {
			sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
			for (size_t j = seg; j <= i; j++)
				if (u[j]->rc == MC_OK)
					u[j]->rc = MC_EINTERNAL;
			open = false;
		}
	}
	if (open) {
		int rc = w_run(s, "COMMIT");
		if (rc == MC_OK) {
			commits++;
		} else {
			if (!sqlite3_get_autocommit(s->w.db))
				sqlite3_exec(s->w.db, "ROLLBACK", NULL, NULL, NULL);
			for (size_t j = seg; j < n; j++)
				if (u[j]->rc == MC_OK)
					u[j]->rc = rc;
		}
	}
	return commits;
}

static void *writer_main(void *arg)
{
	struct sq_store *s = arg;
	struct store_wunit *batch[WRITER_BATCH_MAX];
	tl_writer_of = s;
	for (;;) {
		/* One writer: wait and take under one lock; queue space is announced by finish only. */
		size_t n = store_wq_take(&s->wq, batch, WRITER_BATCH_MAX, true, false);
		if (n == 0)
			break;   /* stopping and drained */
		uint64_t commits = run_batch(s, batch, n);
		if (commits)
			store_commit_notify(&s->pub);   /* e.g. wake the events dispatcher */
		/* Async done() callbacks run before the synchronous waiters of this batch are released,
		 * so a synchronous unit queued behind async ones returns only after their done() ran. */
		store_wq_finish(&s->wq, batch, n, commits);
	}
	return NULL;
}

static int sq_write(struct store *ps, store_work_fn *fn, void *arg, store_done_fn *done)
{
	struct sq_store *s = (struct sq_store *)ps;
	return store_wq_submit(&s->wq, tl_writer_of == s, fn, arg, done);
}

static void sq_stats(struct store *ps, struct store_stats *out)
{
	struct sq_store *s = (struct sq_store *)ps;
	store_wq_stats(&s->wq, out);
}

/* ---- per-thread read connections -------------------------------------------------------------- */

struct rconn {
	struct conn c;
	struct sq_store *s;          /* NULL once closed by its store or thread (under g_rlock) */
	struct rconn *sprev, *snext; /* in s->readers (under g_rlock) */
	int refs;                    /* owners left: its thread's list entry, its store (under g_rlock) */
};

struct tls_ent {
	uint64_t store_id;
	struct rconn *rc;
	struct tls_ent *next;
};

static pthread_mutex_t g_rlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;   /* value: this thread's struct tls_ent list */
static atomic_uint_fast64_t g_next_id = 1;

/* Under g_rlock. */
static void rconn_unref(struct rconn *r)
{
	if (--r->refs == 0)
		free(r);
}

/* Under g_rlock: close the connection and take it off its store's list. Returns false when that
 * already happened. The caller drops the store's reference. */
static bool rconn_detach(struct rconn *r)
{
	if (!r->s)
		return false;
	if (r->sprev)
		r->sprev->snext = r->snext;
	else
		r->s->readers = r->snext;
	if (r->snext)
		r->snext->sprev = r->sprev;
	r->s = NULL;
	conn_close(&r->c);
	return true;
}

/* Under g_rlock: detach and end the store's ownership. A no-op when that already happened. */
static void rconn_unlink(struct rconn *r)
{
	if (rconn_detach(r))
		rconn_unref(r);
}

/* Under g_rlock: the thread's side lets go (at thread exit, or pruning a closed store's entry);
 * when the store still owned it too, both references go at once. */
static void rconn_thread_release(struct rconn *r)
{
	r->refs -= rconn_detach(r) ? 2 : 1;
	if (r->refs == 0)
		free(r);
}

static void tls_destroy(void *v)
{
	pthread_mutex_lock(&g_rlock);
	for (struct tls_ent *e = v, *next; e; e = next) {
		next = e->next;
		rconn_thread_release(e->rc);
		free(e);
	}
	pthread_mutex_unlock(&g_rlock);
}

static void key_create(void)
{
	if (pthread_key_create(&g_key, tls_destroy) != 0)
		abort();   /* no keys left: the process cannot work */
}

/* Drop this thread's entries whose store has closed. Under g_rlock. */
static struct tls_ent *tls_prune(struct tls_ent *head)
{
	struct tls_ent **pp = &head;
	while (*pp) {
		struct tls_ent *e = *pp;
		if (e->rc->s) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		rconn_thread_release(e->rc);
		free(e);
	}
	return head;
}

static int reader_get(struct sq_store *s, struct conn **out)
{
	pthread_once(&g_key_once, key_create);
	struct tls_ent *head = pthread_getspecific(g_key);
	for (struct tls_ent *e = head; e; e = e->next) {
		if (e->store_id == s->id) {
			*out = &e->rc->c;
			return MC_OK;
		}
	}
	struct rconn *r = mc_calloc(1, sizeof(*r));
	int rc = conn_open(s->path, false, &r->c);
	if (rc) {
		free(r);
		return rc;
	}
	struct tls_ent *e = mc_malloc(sizeof(*e));
	pthread_mutex_lock(&g_rlock);
	r->s = s;
	r->refs = 2;
	r->snext = s->readers;
	if (s->readers)
		s->readers->sprev = r;
	s->readers = r;
	head = tls_prune(head);
	e->store_id = s->id;
	e->rc = r;
	e->next = head;
	pthread_mutex_unlock(&g_rlock);
	pthread_setspecific(g_key, e);
	*out = &r->c;
	return MC_OK;
}

static int sq_read(struct store *ps, store_work_fn *fn, void *arg)
{
	struct sq_store *s = (struct sq_store *)ps;
	struct conn *c;
	if (tl_writer_of == s) {
		LOGE("store: store_read called from a unit of work on the writer", "\"backend\":\"%s\"", "sqlite");
		return MC_EINTERNAL;
	}
	int rc = reader_get(s, &c);
	if (rc)
		return rc;
	/* Nested store_read on this thread: run inside the snapshot already open. */
	bool outer = sqlite3_get_autocommit(c->db);
	if (outer) {
		rc = conn_exec(c, "BEGIN", NULL, 0, NULL);
		if (rc)
			return rc;
	}
	struct sq_txn t;
	txn_init(&t, c);
	rc = fn(&t.pub, arg);
	txn_finish(&t);
	if (outer && !sqlite3_get_autocommit(c->db)) {
		/* Read-only: COMMIT only ends the snapshot. */
		int crc = conn_exec(c, "COMMIT", NULL, 0, NULL);
		if (crc) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			if (rc == MC_OK)
				rc = crc;
		}
	}
	return rc;
}

/* ---- open / close ----------------------------------------------------------------------------- */

static void sq_close(struct store *ps)
{
	struct sq_store *s = (struct sq_store *)ps;
	store_wq_stop(&s->wq);   /* writers waiting for queue space give up */
	pthread_join(s->writer, NULL);   /* the writer drains the queue before it exits */

	pthread_mutex_lock(&g_rlock);
	while (s->readers)
		rconn_unlink(s->readers);   /* takes itself off s->readers */
	/* Free this thread's now-dead entries at once (the main thread runs no key destructors). */
	pthread_once(&g_key_once, key_create);
	struct tls_ent *head = tls_prune(pthread_getspecific(g_key));
	pthread_mutex_unlock(&g_rlock);
	pthread_setspecific(g_key, head);

	conn_close(&s->w);
	store_wq_destroy(&s->wq);
	free(s->path);
	free(s);
}

static int sq_open(const char *path, struct store **out)
{
	if (!path[0] || !strcmp(path, ":memory:") || !strncmp(path, "file:", 5)) {
		/* Read connections must see the writer's data: only a real file gives them that. */
		LOGE("store: sqlite needs a database file path", "\"backend\":\"%s\"", "sqlite");
		return MC_EINVAL;
	}
	struct sq_store *s = mc_calloc(1, sizeof(*s));
	s->pub.be = &store_sqlite_backend;
	s->id = atomic_fetch_add(&g_next_id, 1);
	s->path = mc_strdup(path);
	int rc = conn_open(path, true, &s->w);
	if (rc) {
		free(s->path);
		free(s);
		return rc;
	}
	store_wq_init(&s->wq, "sqlite");
	if (pthread_create(&s->writer, NULL, writer_main, s) != 0) {
		LOGE("store: cannot start the writer thread", "\"backend\":\"%s\"", "sqlite");
		conn_close(&s->w);
		store_wq_destroy(&s->wq);
		free(s->path);
		free(s);
		return MC_EUNAVAIL;
	}
	*out = &s->pub;
	return MC_OK;
}

const struct store_backend store_sqlite_backend = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.write = sq_write,
	.read = sq_read,
	.stats = sq_stats,
	.exec = sq_exec,
	.query = sq_query,
	.exec_script = sq_exec_script,
	.table_exists = sq_table_exists,
	.changes = sq_changes,
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
	.tables = sq_tables,
};
