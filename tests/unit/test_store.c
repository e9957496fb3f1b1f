/* tests/unit/test_store.c — the storage interface over the SQLite backend, on temporary files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/log.h"
#include "store/migrations.h"
#include "store/store.h"

/* ---- fixture: a fresh database file per test -------------------------------------------------- */

struct fx {
	char dir[64];
	char url[128];
	struct store *s;
};

static void fx_paths_remove(struct fx *f)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/t.db%s", f->dir, sfx[i]);
		unlink(p);
	}
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	if (store_open(f->url, &f->s) != MC_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	fx_paths_remove(f);
	rmdir(f->dir);
	free(f);
	return 0;
}

struct sql_unit {
	const char *sql;
	const struct store_arg *args;
	size_t n;
};

static int unit_exec(struct store_txn *t, void *arg)
{
	struct sql_unit *u = arg;
	return store_exec(t, u->sql, u->args, u->n);
}

static int exec_w(struct store *s, const char *sql, const struct store_arg *args, size_t n)
{
	struct sql_unit u = {sql, args, n};
	return store_write(s, unit_exec, &u);
}

struct int_q {
	const char *sql;
	int64_t v;
};

static int unit_query_int(struct store_txn *t, void *arg)
{
	struct int_q *q = arg;
	return store_query_int(t, q->sql, NULL, 0, &q->v);
}

static int64_t read_int(struct store *s, const char *sql)
{
	struct int_q q = {sql, -1};
	assert_int_equal(store_read(s, unit_query_int, &q), MC_OK);
	return q.v;
}

/* ---- opening ---------------------------------------------------------------------------------- */

static void test_open_bad_urls(void **state)
{
	(void)state;
	struct store *s = (struct store *)1;
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;   /* the refusals below log errors */
	assert_int_equal(store_open("mysql://localhost/x", &s), MC_EINVAL);
	assert_null(s);
	/* postgres: a bad option of ours is refused before connecting; nobody on port 1: unavailable */
	assert_int_equal(store_open("postgres://u:secret@127.0.0.1:1/db?writers=0", &s), MC_EINVAL);
	assert_int_equal(store_open("postgres://u:secret@127.0.0.1:1/db", &s), MC_EUNAVAIL);
	assert_null(s);
	assert_int_equal(store_open("", &s), MC_EINVAL);
	assert_int_equal(store_open("sqlite:", &s), MC_EINVAL);
	assert_int_equal(store_open("sqlite::memory:", &s), MC_EINVAL);
	assert_int_equal(store_open("medcore.db", &s), MC_EINVAL);
	assert_int_equal(store_open("sqlite:/nonexistent-dir-xyz/sub/t.db", &s), MC_EUNAVAIL);
	assert_null(s);
	log_min_level = old;
}

static void test_open_forms_and_ping(void **state)
{
	struct fx *f = *state;
	assert_string_equal(store_backend_name(f->s), "sqlite");
	assert_int_equal(store_ping(f->s), MC_OK);
	/* sqlite:///abs/path names the same file as sqlite:/abs/path */
	char url[160];
	snprintf(url, sizeof(url), "sqlite://%s/t.db", f->dir);
	struct store *s2;
	assert_int_equal(store_open(url, &s2), MC_OK);
	assert_int_equal(exec_w(s2, "CREATE TABLE seen(x)", NULL, 0), MC_OK);
	store_close(s2);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name = 'seen'"), 1);
}

/* ---- statements and types --------------------------------------------------------------------- */

static const unsigned char BLOB[] = {0, 1, 2, 0xff, 0, 'x'};

static int unit_insert_types(struct store_txn *t, void *arg)
{
	(void)arg;
	int rc = store_exec(t, "CREATE TABLE v(id INTEGER PRIMARY KEY, i, r, s, b, n)", NULL, 0);
	if (rc)
		return rc;
	struct store_arg a[] = {SA_INT(1), SA_INT(INT64_MIN), SA_REAL(36.8), SA_TEXT("h\xc3\xa9llo"),
				SA_BLOB(BLOB, sizeof(BLOB)), SA_NULL()};
	rc = store_exec(t, "INSERT INTO v(id, i, r, s, b, n) VALUES ($1, $2, $3, $4, $5, $6)", a, 6);
	if (rc || store_changes(t) != 1)
		return rc ? rc : MC_EINTERNAL;
	/* TEXTN takes a length; an empty blob and empty text stay non-NULL; a NULL SA_TEXT is NULL. */
	struct store_arg b[] = {SA_INT(2), SA_INT(INT64_MAX), SA_REAL(-0.5), SA_TEXTN("abcdef", 3),
				SA_BLOB(NULL, 0), SA_TEXT((const char *)NULL)};
	rc = store_exec(t, "INSERT INTO v(id, i, r, s, b, n) VALUES ($1, $2, $3, $4, $5, $6)", b, 6);
	if (rc)
		return rc;
	struct store_arg c[] = {SA_INT(3), SA_TEXTN(NULL, 0)};
	rc = store_exec(t, "INSERT INTO v(id, s) VALUES ($1, $2)", c, 2);
	if (rc)
		return rc;
	rc = store_exec(t, "UPDATE v SET n = 7 WHERE id >= $1", (struct store_arg[]){SA_INT(2)}, 1);
	return rc ? rc : store_changes(t) == 2 ? MC_OK : MC_EINTERNAL;
}

static int unit_check_types(struct store_txn *t, void *arg)
{
	(void)arg;
	struct store_rows *r;
	assert_int_equal(store_query(t, "SELECT id, i, r, s, b, n FROM v ORDER BY id", NULL, 0, &r), MC_OK);
	size_t len = 99;

	assert_int_equal(store_rows_next(r), 1);
	assert_int_equal(store_rows_int(r, 0), 1);
	assert_true(store_rows_int(r, 1) == INT64_MIN);
	assert_true(store_rows_real(r, 2) == 36.8);
	assert_string_equal(store_rows_text(r, 3), "h\xc3\xa9llo");
	const void *p = store_rows_blob(r, 4, &len);
	assert_int_equal(len, sizeof(BLOB));
	assert_memory_equal(p, BLOB, sizeof(BLOB));
	assert_true(store_rows_null(r, 5));
	assert_null(store_rows_text(r, 5));
	assert_false(store_rows_null(r, 4));

	assert_int_equal(store_rows_next(r), 1);
	assert_true(store_rows_int(r, 1) == INT64_MAX);
	assert_true(store_rows_real(r, 2) == -0.5);
	assert_string_equal(store_rows_text(r, 3), "abc");
	assert_false(store_rows_null(r, 4));
	store_rows_blob(r, 4, &len);
	assert_int_equal(len, 0);
	assert_int_equal(store_rows_int(r, 5), 7);

	assert_int_equal(store_rows_next(r), 1);
	assert_false(store_rows_null(r, 3));
	assert_string_equal(store_rows_text(r, 3), "");

	assert_int_equal(store_rows_next(r), 0);
	assert_int_equal(store_rows_next(r), 0);   /* stays done */
	store_rows_close(r);
	store_rows_close(NULL);

	/* helpers */
	int64_t v = 0;
	char *s = NULL;
	struct store_arg id = SA_INT(1);
	assert_int_equal(store_query_int(t, "SELECT i FROM v WHERE id = $1", &id, 1, &v), MC_OK);
	assert_true(v == INT64_MIN);
	assert_int_equal(store_query_text(t, "SELECT s FROM v WHERE id = $1", &id, 1, &s), MC_OK);
	assert_string_equal(s, "h\xc3\xa9llo");
	free(s);
	id = SA_INT(42);
	assert_int_equal(store_query_int(t, "SELECT i FROM v WHERE id = $1", &id, 1, &v), MC_ENOTFOUND);
	assert_int_equal(store_query_text(t, "SELECT s FROM v WHERE id = $1", &id, 1, &s), MC_ENOTFOUND);
	assert_null(s);
	/* the same placeholder twice, and the args array longer than the statement needs */
	struct store_arg two[] = {SA_INT(2), SA_INT(999)};
	assert_int_equal(store_query_int(t, "SELECT count(*) FROM v WHERE id = $1 OR id + 0 = $1", two, 2, &v), MC_OK);
	assert_int_equal(v, 1);
	/* args may be out of order in the SQL */
	struct store_arg ord[] = {SA_INT(10), SA_INT(3)};
	assert_int_equal(store_query_int(t, "SELECT $2 - $1", ord, 2, &v), MC_OK);
	assert_int_equal(v, -7);
	return MC_OK;
}

static void test_types_roundtrip(void **state)
{
	struct fx *f = *state;
	assert_int_equal(store_write(f->s, unit_insert_types, NULL), MC_OK);
	assert_int_equal(store_read(f->s, unit_check_types, NULL), MC_OK);
}

static int unit_bad_statements(struct store_txn *t, void *arg)
{
	(void)arg;
	struct store_rows *r = (struct store_rows *)1;
	int64_t v;
	/* a placeholder without an argument */
	assert_int_equal(store_query_int(t, "SELECT $1 + $2", (struct store_arg[]){SA_INT(1)}, 1, &v), MC_EINTERNAL);
	/* anonymous placeholders are not bound */
	assert_int_equal(store_query_int(t, "SELECT ?", NULL, 0, &v), MC_EINTERNAL);
	/* syntax error, unknown table, two statements, empty SQL, NULL SQL */
	assert_int_equal(store_query(t, "SELEC 1", NULL, 0, &r), MC_EINTERNAL);
	assert_null(r);
	assert_int_equal(store_exec(t, "SELECT * FROM no_such_table", NULL, 0), MC_EINTERNAL);
	assert_int_equal(store_exec(t, "SELECT 1; SELECT 2", NULL, 0), MC_EINTERNAL);
	assert_int_equal(store_exec(t, "   ", NULL, 0), MC_EINTERNAL);
	assert_int_equal(store_exec(t, NULL, NULL, 0), MC_EINTERNAL);
	/* n without args, too many args */
	assert_int_equal(store_exec(t, "SELECT 1", NULL, 3), MC_EINTERNAL);
	static struct store_arg many[1000];
	assert_int_equal(store_exec(t, "SELECT 1", many, 1000), MC_EINTERNAL);
	/* a bad type tag */
	struct store_arg bad = {.type = (enum store_type)77};
	assert_int_equal(store_exec(t, "SELECT $1", &bad, 1), MC_EINTERNAL);
	/* trailing semicolon and whitespace are one statement */
	assert_int_equal(store_exec(t, "SELECT 1;  \n", NULL, 0), MC_OK);
	/* a read connection cannot write */
	assert_int_equal(store_exec(t, "CREATE TABLE nope(x)", NULL, 0), MC_EINTERNAL);
	return MC_OK;
}

static void test_bad_statements(void **state)
{
	struct fx *f = *state;
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;   /* the errors above are expected */
	assert_int_equal(store_read(f->s, unit_bad_statements, NULL), MC_OK);
	log_min_level = old;
	/* the read connection is still usable */
	assert_int_equal(store_ping(f->s), MC_OK);
}

static int unit_nested_rows(struct store_txn *t, void *arg)
{
	(void)arg;
	/* The same SQL twice at once: the second gets its own statement (the first is busy). */
	struct store_rows *a, *b, *leak;
	const char *q = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT x FROM c";
	assert_int_equal(store_query(t, q, NULL, 0, &a), MC_OK);
	int64_t sum = 0;
	while (store_rows_next(a) == 1) {
		assert_int_equal(store_query(t, q, NULL, 0, &b), MC_OK);
		while (store_rows_next(b) == 1)
			sum += store_rows_int(a, 0) * store_rows_int(b, 0);
		store_rows_close(b);
	}
	store_rows_close(a);
	assert_int_equal(sum, 36);
	/* Left open on purpose: closed by the store when this unit returns. */
	assert_int_equal(store_query(t, q, NULL, 0, &leak), MC_OK);
	assert_int_equal(store_rows_next(leak), 1);
	return MC_OK;
}

static int unit_many_sql(struct store_txn *t, void *arg)
{
	(void)arg;
	/* More distinct statements than the cache holds: the overflow runs uncached. */
	for (int i = 0; i < 2000; i++) {
		char sql[64];
		int64_t v;
		snprintf(sql, sizeof(sql), "SELECT %d + 1", i);
		int rc = store_query_int(t, sql, NULL, 0, &v);
		if (rc)
			return rc;
		if (v != i + 1)
			return MC_EINTERNAL;
	}
	return MC_OK;
}

static void test_rows_and_cache(void **state)
{
	struct fx *f = *state;
	assert_int_equal(store_read(f->s, unit_nested_rows, NULL), MC_OK);
	assert_int_equal(store_read(f->s, unit_nested_rows, NULL), MC_OK);
	assert_int_equal(store_write(f->s, unit_nested_rows, NULL), MC_OK);
	assert_int_equal(store_read(f->s, unit_many_sql, NULL), MC_OK);
	assert_int_equal(store_read(f->s, unit_many_sql, NULL), MC_OK);
	assert_int_equal(store_write(f->s, unit_many_sql, NULL), MC_OK);
}

/* ---- write semantics -------------------------------------------------------------------------- */

static void test_constraint_conflict(void **state)
{
	struct fx *f = *state;
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;
	assert_int_equal(exec_w(f->s, "CREATE TABLE p(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)", NULL, 0), MC_OK);
	assert_int_equal(exec_w(f->s, "CREATE TABLE c(id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES p(id))", NULL, 0), MC_OK);
	struct store_arg a[] = {SA_INT(1), SA_TEXT("x")};
	assert_int_equal(exec_w(f->s, "INSERT INTO p VALUES ($1, $2)", a, 2), MC_OK);
	struct store_arg dup[] = {SA_INT(2), SA_TEXT("x")};
	assert_int_equal(exec_w(f->s, "INSERT INTO p VALUES ($1, $2)", dup, 2), MC_ECONFLICT);
	assert_int_equal(exec_w(f->s, "INSERT INTO p VALUES ($1, $2)", a, 2), MC_ECONFLICT);
	struct store_arg nul[] = {SA_INT(3), SA_NULL()};
	assert_int_equal(exec_w(f->s, "INSERT INTO p VALUES ($1, $2)", nul, 2), MC_ECONFLICT);
	/* foreign keys are enforced */
	struct store_arg fk[] = {SA_INT(1), SA_INT(99)};
	assert_int_equal(exec_w(f->s, "INSERT INTO c VALUES ($1, $2)", fk, 2), MC_ECONFLICT);
	fk[1] = SA_INT(1);
	assert_int_equal(exec_w(f->s, "INSERT INTO c VALUES ($1, $2)", fk, 2), MC_OK);
	log_min_level = old;
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM p"), 1);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.units_failed, 4);
}

struct gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool entered, open;
};

static int unit_gate(struct store_txn *t, void *arg)
{
	struct gate *g = arg;
	(void)t;
	pthread_mutex_lock(&g->mu);
	g->entered = true;
	pthread_cond_broadcast(&g->cv);
	while (!g->open)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
	return MC_OK;
}

static void gate_done(void *arg, int rc)
{
	(void)arg;
	assert_int_equal(rc, MC_OK);
}

/* Holds the writer inside a unit so that the units queued meanwhile form one batch. */
static void gate_close(struct store *s, struct gate *g)
{
	memset(g, 0, sizeof(*g));
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cv, NULL);
	assert_int_equal(store_write_async(s, unit_gate, g, gate_done), MC_OK);
}

struct done_rec {
	int rc;
	int calls;
};

static void on_done(void *arg, int rc)
{
	struct done_rec *d = arg;
	d->rc = rc;
	d->calls++;
}

struct batch_unit {
	struct done_rec done;   /* first: on_done gets the unit */
	int64_t id;
	int ret;                /* what the unit returns after its insert */
	bool dup;               /* insert a duplicate key instead */
};

static int unit_batch(struct store_txn *t, void *arg)
{
	struct batch_unit *b = arg;
	struct store_arg a = SA_INT(b->dup ? 1 : b->id);
	int rc = store_exec(t, "INSERT INTO g(id) VALUES ($1)", &a, 1);
	if (rc)
		return rc;
	return b->ret;
}

static void gate_wait_entered(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	while (!g->entered)
		pthread_cond_wait(&g->cv, &g->mu);
	pthread_mutex_unlock(&g->mu);
}

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->open = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static void test_failing_unit_rolls_back_alone(void **state)
{
	struct fx *f = *state;
	struct gate g;
	assert_int_equal(exec_w(f->s, "CREATE TABLE g(id INTEGER PRIMARY KEY)", NULL, 0), MC_OK);
	gate_close(f->s, &g);
	gate_wait_entered(&g);

	struct store_stats before;
	store_stats(f->s, &before);
	struct batch_unit u[5] = {
		{{0, 0}, 1, MC_OK, false},
		{{0, 0}, 2, MC_EUNPROC, false},   /* inserts, then fails: its row must vanish */
		{{0, 0}, 3, MC_OK, false},
		{{0, 0}, 4, MC_OK, true},         /* duplicate of id 1: ECONFLICT */
		{{0, 0}, 5, MC_OK, false},
	};
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;
	for (int i = 0; i < 5; i++)
		assert_int_equal(store_write_async(f->s, unit_batch, &u[i], on_done), MC_OK);
	gate_open(&g);
	/* A synchronous no-op queued behind them returns once they are all done. */
	assert_int_equal(exec_w(f->s, "SELECT 1", NULL, 0), MC_OK);
	log_min_level = old;

	for (int i = 0; i < 5; i++)
		assert_int_equal(u[i].done.calls, 1);
	assert_int_equal(u[0].done.rc, MC_OK);
	assert_int_equal(u[1].done.rc, MC_EUNPROC);
	assert_int_equal(u[2].done.rc, MC_OK);
	assert_int_equal(u[3].done.rc, MC_ECONFLICT);
	assert_int_equal(u[4].done.rc, MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM g"), 3);
	assert_int_equal(read_int(f->s, "SELECT sum(id) FROM g"), 1 + 3 + 5);

	struct store_stats after;
	store_stats(f->s, &after);
	/* gate batch (1 commit) + the five units, queued together while the gate held the writer
	 * (1 commit) + the no-op, which may join their batch or get its own (0 or 1 commit) */
	assert_int_equal(after.units - before.units, 1 + 5 + 1);
	assert_int_equal(after.units_failed - before.units_failed, 2);
	assert_in_range(after.commits - before.commits, 2, 3);
	pthread_cond_destroy(&g.cv);
	pthread_mutex_destroy(&g.mu);
}

static int unit_reenter(struct store_txn *t, void *arg)
{
	struct store *s = arg;
	(void)t;
	if (store_write(s, unit_query_int, &(struct int_q){"SELECT 1", 0}) != MC_EINTERNAL)
		return MC_EUNPROC;
	if (store_read(s, unit_query_int, &(struct int_q){"SELECT 1", 0}) != MC_EINTERNAL)
		return MC_EUNPROC;
	return MC_OK;
}

static void test_unit_must_not_reenter(void **state)
{
	struct fx *f = *state;
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;
	assert_int_equal(store_write(f->s, unit_reenter, f->s), MC_OK);
	log_min_level = old;
	assert_int_equal(store_write(f->s, NULL, NULL), MC_EINVAL);
	assert_int_equal(store_read(f->s, NULL, NULL), MC_EINVAL);
	assert_int_equal(store_write_async(f->s, unit_reenter, f->s, NULL), MC_EINVAL);
}

/* ---- concurrency ------------------------------------------------------------------------------ */

#define NTHREADS 8
#define PER_THREAD 500

struct worker {
	struct store *s;
	int n, base, failures;
};

static void *writer_thread(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < w->n; i++) {
		struct store_arg a[] = {SA_INT(w->base + i), SA_TEXT("payload-payload-payload")};
		if (exec_w(w->s, "INSERT INTO cc(id, v) VALUES ($1, $2)", a, 2) != MC_OK)
			w->failures++;
		if (i % 50 == 0) {   /* and reads on each thread's own connection meanwhile */
			struct int_q q = {"SELECT count(*) FROM cc", -1};
			if (store_read(w->s, unit_query_int, &q) != MC_OK || q.v < i)
				w->failures++;
		}
	}
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct fx *f = *state;
	assert_int_equal(exec_w(f->s, "CREATE TABLE cc(id INTEGER PRIMARY KEY, v TEXT NOT NULL)", NULL, 0), MC_OK);
	struct store_stats before, after;
	store_stats(f->s, &before);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){f->s, PER_THREAD, i * PER_THREAD, 0};
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	store_stats(f->s, &after);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM cc"), NTHREADS * PER_THREAD);
	assert_int_equal(read_int(f->s, "SELECT max(id) FROM cc"), NTHREADS * PER_THREAD - 1);
	uint64_t units = after.units - before.units, commits = after.commits - before.commits;
	assert_int_equal(units, NTHREADS * PER_THREAD);
	assert_int_equal(after.units_failed, before.units_failed);
	/* group commit happened: fewer commits than units */
	assert_true(commits < units);
	assert_true(commits > 0);
}

static void test_async_complete_before_close(void **state)
{
	struct fx *f = *state;
	enum { N = 1000 };
	struct batch_unit *u = calloc(N, sizeof(*u));
	for (int i = 0; i < N; i++) {
		u[i].id = i + 1;
		u[i].ret = MC_OK;
	}
	/* unit_batch inserts into g */
	assert_int_equal(exec_w(f->s, "CREATE TABLE g(id INTEGER PRIMARY KEY)", NULL, 0), MC_OK);
	for (int i = 0; i < N; i++)
		assert_int_equal(store_write_async(f->s, unit_batch, &u[i], on_done), MC_OK);
	store_close(f->s);   /* drains: every queued unit runs and commits */
	for (int i = 0; i < N; i++) {
		assert_int_equal(u[i].done.calls, 1);
		assert_int_equal(u[i].done.rc, MC_OK);
	}
	free(u);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);   /* reopen: the data is there */
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM g"), N);
}

/* ---- reads ------------------------------------------------------------------------------------ */

struct snap {
	struct store *s;
	int64_t first, second;
};

static int unit_snapshot(struct store_txn *t, void *arg)
{
	struct snap *sn = arg;
	int rc = store_query_int(t, "SELECT count(*) FROM sn", NULL, 0, &sn->first);
	if (rc)
		return rc;
	/* Another writer commits while this read is open (from this thread: it is not the writer). */
	struct store_arg a = SA_INT(100);
	rc = exec_w(sn->s, "INSERT INTO sn(id) VALUES ($1)", &a, 1);
	if (rc)
		return rc;
	/* A nested store_read runs in the same snapshot. */
	struct int_q q = {"SELECT count(*) FROM sn", -1};
	rc = store_read(sn->s, unit_query_int, &q);
	if (rc)
		return rc;
	if (q.v != sn->first)
		return MC_EUNPROC;
	return store_query_int(t, "SELECT count(*) FROM sn", NULL, 0, &sn->second);
}

static void test_read_snapshot(void **state)
{
	struct fx *f = *state;
	assert_int_equal(exec_w(f->s, "CREATE TABLE sn(id INTEGER PRIMARY KEY)", NULL, 0), MC_OK);
	struct store_arg a = SA_INT(1);
	assert_int_equal(exec_w(f->s, "INSERT INTO sn(id) VALUES ($1)", &a, 1), MC_OK);
	struct snap sn = {f->s, -1, -1};
	assert_int_equal(store_read(f->s, unit_snapshot, &sn), MC_OK);
	assert_int_equal(sn.first, 1);
	assert_int_equal(sn.second, 1);   /* the snapshot did not move */
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM sn"), 2);   /* a new read sees it */
	/* a failing read unit returns its own code */
	assert_int_equal(store_read(f->s, unit_query_int, &(struct int_q){"SELECT 1 WHERE 0", 0}), MC_ENOTFOUND);
}

struct reader_arg {
	struct store *s;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *stage;
	int64_t v;
};

static void *reader_thread(void *arg)
{
	struct reader_arg *r = arg;
	struct int_q q = {"SELECT count(*) FROM sqlite_master", -1};
	if (store_read(r->s, unit_query_int, &q) == MC_OK)
		r->v = q.v;
	pthread_mutex_lock(r->mu);
	(*r->stage)++;
	pthread_cond_broadcast(r->cv);
	while (*r->stage < 100)   /* wait until the store is closed */
		pthread_cond_wait(r->cv, r->mu);
	pthread_mutex_unlock(r->mu);
	return NULL;   /* thread exit: its (already closed) reader entry is freed */
}

static void test_reader_threads_and_close(void **state)
{
	struct fx *f = *state;
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int stage = 0;
	enum { NR = 4 };
	pthread_t th[NR];
	struct reader_arg ra[NR];
	/* threads that read once and exit before close: the key destructor closes their connection */
	for (int i = 0; i < 3; i++) {
		pthread_t t1;
		struct reader_arg one = {f->s, &mu, &cv, &stage, -1};
		stage = 100;
		assert_int_equal(pthread_create(&t1, NULL, reader_thread, &one), 0);
		pthread_join(t1, NULL);
		assert_int_equal(one.v, 0);
	}
	stage = 0;
	for (int i = 0; i < NR; i++) {
		ra[i] = (struct reader_arg){f->s, &mu, &cv, &stage, -1};
		assert_int_equal(pthread_create(&th[i], NULL, reader_thread, &ra[i]), 0);
	}
	pthread_mutex_lock(&mu);
	while (stage < NR)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	/* close while those threads still hold their read connections */
	store_close(f->s);
	f->s = NULL;
	pthread_mutex_lock(&mu);
	stage = 100;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < NR; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(ra[i].v, 0);
	}
	/* a new store at (possibly) the same address gets fresh read connections */
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	assert_int_equal(exec_w(f->s, "CREATE TABLE z(x)", NULL, 0), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM sqlite_master"), 1);
}

/* ---- migrations ------------------------------------------------------------------------------- */

static int sqlite_migrations(int *latest)
{
	int n = 0;
	*latest = 0;
	for (unsigned i = 0; i < store_migrations_count; i++) {
		if (strcmp(store_migrations[i].backend, "sqlite"))
			continue;
		n++;
		*latest = store_migrations[i].number;
	}
	return n;
}

static void test_migrations(void **state)
{
	struct fx *f = *state;
	int latest_expect, n_expect = sqlite_migrations(&latest_expect);
	assert_true(n_expect >= 1);
	int cur = -1, latest = -1, applied = -1;
	assert_int_equal(store_schema_version(f->s, &cur, &latest), MC_OK);
	assert_int_equal(cur, 0);
	assert_int_equal(latest, latest_expect);

	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	assert_int_equal(applied, n_expect);
	assert_int_equal(store_schema_version(f->s, &cur, &latest), MC_OK);
	assert_int_equal(cur, latest_expect);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM schema_migrations"), n_expect);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM schema_migrations WHERE applied_ms > 0"), n_expect);
	/* 0001_core made the settings table */
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM sqlite_master WHERE name = 'settings'"), 1);

	/* idempotent, also from a second store on the same file */
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	assert_int_equal(applied, 0);
	store_close(f->s);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(store_migrate(f->s, NULL), MC_OK);
	assert_int_equal(store_schema_version(f->s, &cur, NULL), MC_OK);
	assert_int_equal(cur, latest_expect);

	/* a database newer than the binary still reports its version */
	struct store_arg a[] = {SA_INT(latest_expect + 100), SA_TEXT("9999_future"), SA_INT(1)};
	assert_int_equal(exec_w(f->s, "INSERT INTO schema_migrations VALUES ($1, $2, $3)", a, 3), MC_OK);
	enum log_level old = log_min_level;
	log_min_level = LOG_OFF;
	assert_int_equal(store_schema_version(f->s, &cur, &latest), MC_OK);
	log_min_level = old;
	assert_int_equal(cur, latest_expect + 100);
	assert_int_equal(latest, latest_expect);
}

static void test_reopen_sees_data(void **state)
{
	struct fx *f = *state;
	assert_int_equal(exec_w(f->s, "CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)", NULL, 0), MC_OK);
	struct store_arg a[] = {SA_INT(7), SA_TEXT("kept")};
	assert_int_equal(exec_w(f->s, "INSERT INTO r VALUES ($1, $2)", a, 2), MC_OK);
	/* read once on this thread so a read connection exists across the close */
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM r"), 1);
	store_close(f->s);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT id FROM r WHERE v = 'kept'"), 7);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_int_equal(st.units, 0);   /* counters are per open store */
}

/* ---- result shape, table listing (medcore migrate-data) ---------------------------------------- */

struct shape {
	int ncols, empty_ncols, rows, empty_next;
	char names[5][8];
	enum store_type types[2][5];
	enum store_type before, after, out_of_range;
	bool bad_names_null;
};

static int unit_shape(struct store_txn *t, void *arg)
{
	struct shape *sh = arg;
	struct store_rows *r;
	int rc = store_query(t, "SELECT i, r, t, b, n FROM shape ORDER BY i", NULL, 0, &r);
	if (rc)
		return rc;
	sh->ncols = store_rows_ncols(r);   /* before the first step */
	for (int c = 0; c < 5 && c < sh->ncols; c++)
		snprintf(sh->names[c], sizeof(sh->names[c]), "%s", store_rows_colname(r, c));
	sh->bad_names_null = !store_rows_colname(r, 5) && !store_rows_colname(r, -1);
	sh->before = store_rows_type(r, 0);
	int st;
	while ((st = store_rows_next(r)) == 1) {
		for (int c = 0; c < 5 && sh->rows < 2; c++)
			sh->types[sh->rows][c] = store_rows_type(r, c);
		sh->out_of_range = store_rows_type(r, 7);
		sh->rows++;
	}
	sh->after = store_rows_type(r, 0);
	store_rows_close(r);
	if (st < 0)
		return -st;
	rc = store_query(t, "SELECT i, t FROM shape WHERE i < 0", NULL, 0, &r);
	if (rc)
		return rc;
	sh->empty_ncols = store_rows_ncols(r);
	if (store_rows_colname(r, 1) && strcmp(store_rows_colname(r, 1), "t"))
		sh->empty_ncols = -1;
	sh->empty_next = store_rows_next(r);
	store_rows_close(r);
	return MC_OK;
}

static void test_rows_shape(void **state)
{
	struct fx *f = *state;
	assert_int_equal(exec_w(f->s, "CREATE TABLE shape (i INTEGER, r REAL, t TEXT, b BLOB, n)", NULL, 0), MC_OK);
	struct store_arg a[5] = {SA_INT(1), SA_REAL(1.5), SA_TEXT("x"), SA_BLOB("\0\377", 2), SA_NULL()};
	assert_int_equal(exec_w(f->s, "INSERT INTO shape VALUES ($1, $2, $3, $4, $5)", a, 5), MC_OK);
	/* SQLite's types are the values' own: an int in the untyped column, NULLs elsewhere */
	struct store_arg b[5] = {SA_INT(2), SA_NULL(), SA_NULL(), SA_NULL(), SA_INT(3)};
	assert_int_equal(exec_w(f->s, "INSERT INTO shape VALUES ($1, $2, $3, $4, $5)", b, 5), MC_OK);
	struct shape sh = {0};
	assert_int_equal(store_read(f->s, unit_shape, &sh), MC_OK);
	assert_int_equal(sh.ncols, 5);
	assert_string_equal(sh.names[0], "i");
	assert_string_equal(sh.names[3], "b");
	assert_string_equal(sh.names[4], "n");
	assert_true(sh.bad_names_null);
	assert_int_equal(sh.rows, 2);
	assert_int_equal(sh.before, STORE_NULL);
	assert_int_equal(sh.after, STORE_NULL);
	assert_int_equal(sh.out_of_range, STORE_NULL);
	enum store_type want0[5] = {STORE_INT, STORE_REAL, STORE_TEXT, STORE_BLOB, STORE_NULL};
	enum store_type want1[5] = {STORE_INT, STORE_NULL, STORE_NULL, STORE_NULL, STORE_INT};
	for (int c = 0; c < 5; c++) {
		assert_int_equal(sh.types[0][c], want0[c]);
		assert_int_equal(sh.types[1][c], want1[c]);
	}
	assert_int_equal(sh.empty_ncols, 2);
	assert_int_equal(sh.empty_next, 0);
}

struct tlist_out {
	char text[1024];
	const char *stop_at;   /* cb returns 42 at this table */
};

static int on_table(const struct store_table *tb, void *arg)
{
	struct tlist_out *o = arg;
	size_t n = strlen(o->text);
	n += (size_t)snprintf(o->text + n, sizeof(o->text) - n, "%s%s(", n ? " " : "", tb->name);
	for (int k = 0; k < tb->nkey && n < sizeof(o->text); k++)
		n += (size_t)snprintf(o->text + n, sizeof(o->text) - n, "%s%s", k ? "+" : "", tb->key[k]);
	if (n < sizeof(o->text))
		snprintf(o->text + n, sizeof(o->text) - n, ")");
	return o->stop_at && !strcmp(tb->name, o->stop_at) ? 42 : 0;
}

static int unit_tables(struct store_txn *t, void *arg)
{
	return store_tables(t, on_table, arg);
}

static void test_tables_listing(void **state)
{
	struct fx *f = *state;
	struct tlist_out o = {{0}, NULL};
	assert_int_equal(store_read(f->s, unit_tables, &o), MC_OK);
	assert_string_equal(o.text, "");   /* an empty database */

	static const char *const ddl[] = {
		"CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY)",
		"CREATE TABLE z_parent (id INTEGER PRIMARY KEY, v TEXT)",
		"CREATE TABLE a_child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES z_parent(id))",
		"CREATE TABLE m_pair (b TEXT NOT NULL, a INTEGER NOT NULL, x TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID",
		"CREATE TABLE k_nokey (x TEXT NOT NULL UNIQUE)",
		"CREATE TABLE auto_t (id INTEGER PRIMARY KEY AUTOINCREMENT)",   /* makes sqlite_sequence */
		"CREATE TABLE c_self (id INTEGER PRIMARY KEY, up INTEGER REFERENCES c_self(id))",
		"CREATE TABLE y_cyc (id INTEGER PRIMARY KEY, o INTEGER REFERENCES x_cyc(id))",
		"CREATE TABLE x_cyc (id INTEGER PRIMARY KEY, o INTEGER REFERENCES y_cyc(id))",
		"CREATE VIEW v_view AS SELECT * FROM z_parent",
		"CREATE INDEX z_parent_v ON z_parent (v)",
	};
	for (size_t i = 0; i < sizeof(ddl) / sizeof(ddl[0]); i++)
		assert_int_equal(exec_w(f->s, ddl[i], NULL, 0), MC_OK);
	assert_int_equal(exec_w(f->s, "INSERT INTO auto_t DEFAULT VALUES", NULL, 0), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM sqlite_sequence"), 1);

	/* parents first (z_parent before a_child), a self-reference is no dependency, a cycle is broken in
	 * name order; no schema_migrations, sqlite_sequence, view or index; keys in primary-key order,
	 * none for a rowid table without a declared primary key */
	assert_int_equal(store_read(f->s, unit_tables, &o), MC_OK);
	assert_string_equal(o.text, "auto_t(id) c_self(id) k_nokey() m_pair(a+b) z_parent(id) a_child(id) x_cyc(id) "
				    "y_cyc(id)");
	/* also inside a write unit; a non-zero callback result stops the listing and is returned */
	struct tlist_out stop = {{0}, "k_nokey"};
	assert_int_equal(store_write(f->s, unit_tables, &stop), 42);
	assert_string_equal(stop.text, "auto_t(id) c_self(id) k_nokey()");
}

static void test_table_seeded(void **state)
{
	struct fx *f = *state;
	/* 0005_patients inserts mrn_seq's first row; nothing else is seeded by the migrations */
	assert_true(store_table_seeded(f->s, "mrn_seq"));
	assert_false(store_table_seeded(f->s, "mrn"));
	assert_false(store_table_seeded(f->s, "resources"));
	assert_false(store_table_seeded(f->s, "settings"));
	assert_false(store_table_seeded(f->s, "schema_migrations"));
	assert_false(store_table_seeded(f->s, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_bad_urls),
		cmocka_unit_test_setup_teardown(test_open_forms_and_ping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_statements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_and_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_constraint_conflict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_unit_rolls_back_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unit_must_not_reenter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async_complete_before_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_threads_and_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_sees_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_seeded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
