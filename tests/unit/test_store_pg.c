/* tests/unit/test_store_pg.c — the storage interface over the PostgreSQL backend.
 *
 * Needs MEDCORE_TEST_PG (a base URL, e.g. postgres://postgres@127.0.0.1:55432/postgres; `make test`
 * and .ci/run start a private cluster with scripts/pg-test-cluster.sh). Each test gets a fresh
 * database t_unit_<pid>_<n>, dropped afterwards. Without MEDCORE_TEST_PG every test is skipped.
 */
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
#include <libpq-fe.h>

#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

/* ---- fixture ---------------------------------------------------------------------------------- */

struct fx {
	char name[64];
	char url[512];
	struct store *s;
};

static const char *base_url(void)
{
	const char *b = getenv("MEDCORE_TEST_PG");
	return b && b[0] ? b : NULL;
}

/* The base URL with its database replaced by db. */
static void url_for(const char *db, char *out, size_t n)
{
	const char *b = base_url();
	const char *q = strchr(b, '?');
	const char *hostpart = strstr(b, "://");
	const char *slash = hostpart ? strchr(hostpart + 3, '/') : NULL;
	size_t keep = slash ? (size_t)(slash - b) : (q ? (size_t)(q - b) : strlen(b));
	snprintf(out, n, "%.*s/%s%s", (int)keep, b, db, q ? q : "");
}

static void admin(const char *sql)
{
	PGconn *c = PQconnectdb(base_url());
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("admin SQL failed: %s", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

static int setup(void **state)
{
	if (!base_url())
		return 0;
	static int n;
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "t_unit_%d_%d", (int)getpid(), n++);
	char sql[256];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", f->name);
	admin(sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'", f->name);
	admin(sql);
	url_for(f->name, f->url, sizeof(f->url));
	if (store_open(f->url, &f->s) != MC_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	store_close(f->s);
	char sql[128];
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->name);
	admin(sql);
	free(f);
	return 0;
}

#define NEED_PG()                                                 \
	do {                                                      \
		if (!base_url()) {                                \
			print_message("MEDCORE_TEST_PG unset\n"); \
			skip();                                   \
		}                                                 \
	} while (0)

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

static int write_sql(struct store *s, const char *sql, const struct store_arg *args, size_t n)
{
	struct sql_unit u = {sql, args, n};
	return store_write(s, unit_exec, &u);
}

struct qint {
	const char *sql;
	int64_t v;
};

static int unit_qint(struct store_txn *t, void *arg)
{
	struct qint *q = arg;
	return store_query_int(t, q->sql, NULL, 0, &q->v);
}

static int64_t read_int(struct store *s, const char *sql)
{
	struct qint q = {sql, -1};
	assert_int_equal(store_read(s, unit_qint, &q), MC_OK);
	return q.v;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_open_errors(void **state)
{
	(void)state;
	NEED_PG();
	struct store *s = NULL;
	/* nobody listens on port 1: unavailable, promptly */
	assert_int_equal(store_open("postgres://u:secret@127.0.0.1:1/x", &s), MC_EUNAVAIL);
	assert_null(s);
	char url[600];
	snprintf(url, sizeof(url), "%s%swriters=0", base_url(), strchr(base_url(), '?') ? "&" : "?");
	assert_int_equal(store_open(url, &s), MC_EINVAL);
	snprintf(url, sizeof(url), "%s%sreaders=abc", base_url(), strchr(base_url(), '?') ? "&" : "?");
	assert_int_equal(store_open(url, &s), MC_EINVAL);
	snprintf(url, sizeof(url), "%s%swriters=2&readers=3", base_url(), strchr(base_url(), '?') ? "&" : "?");
	assert_int_equal(store_open(url, &s), MC_OK);
	assert_string_equal(store_backend_name(s), "postgres");
	assert_int_equal(store_ping(s), MC_OK);
	store_close(s);
}

static void test_migrate_twice(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	int applied = -1, cur = 0, latest = 0;
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	assert_true(applied >= 5);
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(store_schema_version(f->s, &cur, &latest), MC_OK);
	assert_int_equal(cur, latest);
}

struct rt {
	unsigned char blob[5];
	bool ok;
};

static int unit_roundtrip_read(struct store_txn *t, void *arg)
{
	struct rt *x = arg;
	struct store_rows *r;
	int rc = store_query(t, "SELECT i, d, s, b, n, e FROM rt ORDER BY i", NULL, 0, &r);
	if (rc)
		return rc;
	assert_int_equal(store_rows_next(r), 1);
	assert_int_equal(store_rows_int(r, 0), INT64_C(-9007199254740993));
	assert_true(store_rows_real(r, 1) == 0.1);
	assert_string_equal(store_rows_text(r, 2), "h\xc3\xa9llo");
	size_t n = 0;
	const unsigned char *b = store_rows_blob(r, 3, &n);
	assert_int_equal(n, 5);
	assert_memory_equal(b, x->blob, 5);
	assert_true(store_rows_null(r, 4));
	assert_null(store_rows_text(r, 4));
	store_rows_blob(r, 5, &n);
	assert_int_equal(n, 0);
	assert_false(store_rows_null(r, 5));
	assert_int_equal(store_rows_next(r), 0);
	assert_int_equal(store_rows_next(r), 0);
	store_rows_close(r);
	x->ok = true;
	return MC_OK;
}

static void test_types_roundtrip(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE rt (i BIGINT, d DOUBLE PRECISION, s TEXT, b BYTEA, n TEXT, e BYTEA)",
				   NULL, 0),
			 MC_OK);
	struct rt x = {{0, 1, 0, 255, 'x'}, false};
	const char text[] = "h\xc3\xa9llo, not this";
	struct store_arg a[] = {SA_INT(INT64_C(-9007199254740993)), SA_REAL(0.1), SA_TEXTN(text, 6),
				SA_BLOB(x.blob, 5), SA_NULL(), SA_BLOB(NULL, 0), SA_INT(42) /* unused: ignored */};
	assert_int_equal(write_sql(f->s, "INSERT INTO rt VALUES ($1, $2, $3, $4, $5, $6)", a, 7), MC_OK);
	assert_int_equal(store_read(f->s, unit_roundtrip_read, &x), MC_OK);
	assert_true(x.ok);
}

static void test_bad_statements(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	struct store_arg a[] = {SA_INT(1)};
	/* a placeholder without an argument */
	assert_int_equal(write_sql(f->s, "SELECT $1, $2", a, 1), MC_EINTERNAL);
	/* syntax error: internal, nothing leaks into the return */
	assert_int_equal(write_sql(f->s, "SELEC 1", NULL, 0), MC_EINTERNAL);
	/* the store still works */
	assert_int_equal(store_ping(f->s), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT 7"), 7);
}

/* A unit that inserts, then (optionally) violates a unique key and ignores the error. */
struct bu {
	int64_t k;
	bool dup, ignore;
	int idx;
};

static int unit_batch(struct store_txn *t, void *arg)
{
	struct bu *b = arg;
	struct store_arg a[] = {SA_INT(b->k)};
	int rc = store_exec(t, "INSERT INTO u (k) VALUES ($1)", a, 1);
	if (rc)
		return rc;
	if (b->dup) {
		struct store_arg d[] = {SA_INT(0)};
		rc = store_exec(t, "INSERT INTO u (k) VALUES ($1)", d, 1);
		if (!b->ignore)
			return rc;
	}
	return MC_OK;
}

static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static int done_rcs[8], done_n;

static void on_done(void *arg, int rc)
{
	pthread_mutex_lock(&done_mu);
	done_rcs[((struct bu *)arg)->idx] = rc;
	done_n++;
	pthread_mutex_unlock(&done_mu);
}

static void test_units_roll_back_alone(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE u (k BIGINT PRIMARY KEY)", NULL, 0), MC_OK);
	struct store_arg z[] = {SA_INT(0)};
	assert_int_equal(write_sql(f->s, "INSERT INTO u (k) VALUES ($1)", z, 1), MC_OK);
	static struct bu units[4] = {{1, false, false, 0}, {2, true, false, 1}, {3, true, true, 2}, {4, false, false, 3}};
	done_n = 0;
	for (int i = 0; i < 4; i++)
		assert_int_equal(store_write_async(f->s, unit_batch, &units[i], on_done), MC_OK);
	/* a synchronous write behind them returns after their done() ran */
	struct store_arg five[] = {SA_INT(5)};
	assert_int_equal(write_sql(f->s, "INSERT INTO u (k) VALUES ($1)", five, 1), MC_OK);
	assert_int_equal(done_n, 4);
	assert_int_equal(done_rcs[0], MC_OK);
	assert_int_equal(done_rcs[1], MC_ECONFLICT);
	assert_int_equal(done_rcs[2], MC_ECONFLICT);   /* ignored the error: still fails, rolled back */
	assert_int_equal(done_rcs[3], MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u"), 4);   /* 0 1 4 5 */
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u WHERE k IN (2, 3)"), 0);
	struct store_stats st;
	store_stats(f->s, &st);
	assert_true(st.units >= 7 && st.units_failed >= 2 && st.commits >= 1);
}

struct nest {
	struct store *s;
	int64_t inner;
};

static int unit_inner(struct store_txn *t, void *arg)
{
	return store_query_int(t, "SELECT count(*) FROM u", NULL, 0, arg);
}

static int unit_outer(struct store_txn *t, void *arg)
{
	struct nest *n = arg;
	int64_t before = 0;
	int rc = store_query_int(t, "SELECT count(*) FROM u", NULL, 0, &before);
	if (rc)
		return rc;
	/* a write committed meanwhile is invisible to this snapshot and to a nested read */
	struct store_arg a[] = {SA_INT(99)};
	assert_int_equal(write_sql(n->s, "INSERT INTO u (k) VALUES ($1)", a, 1), MC_OK);
	rc = store_read(n->s, unit_inner, &n->inner);
	assert_int_equal(n->inner, before);
	return rc;
}

static int unit_write_in_read(struct store_txn *t, void *arg)
{
	struct store_arg a[] = {SA_INT(7)};
	(void)arg;
	return store_exec(t, "INSERT INTO u (k) VALUES ($1)", a, 1);
}

static void test_read_snapshot_nested(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE u (k BIGINT PRIMARY KEY)", NULL, 0), MC_OK);
	struct nest n = {f->s, -1};
	assert_int_equal(store_read(f->s, unit_outer, &n), MC_OK);
	assert_int_equal(n.inner, 0);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u"), 1);
	/* read transactions are read only */
	assert_int_equal(store_read(f->s, unit_write_in_read, NULL), MC_EINTERNAL);
}

struct hammer {
	struct store *s;
	int n;
};

static int unit_incr(struct store_txn *t, void *arg)
{
	(void)arg;
	int64_t v = 0;
	int rc = store_query_int(t, "SELECT v FROM counter WHERE id = 1", NULL, 0, &v);
	if (rc)
		return rc;
	struct store_arg a[] = {SA_INT(v + 1)};
	return store_exec(t, "UPDATE counter SET v = $1 WHERE id = 1", a, 1);
}

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	for (int i = 0; i < h->n; i++)
		assert_int_equal(store_write(h->s, unit_incr, NULL), MC_OK);
	return NULL;
}

static void test_concurrent_writers_serialize(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE counter (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)", NULL, 0), MC_OK);
	assert_int_equal(write_sql(f->s, "INSERT INTO counter VALUES (1, 0)", NULL, 0), MC_OK);
	/* a second store on the same database: another "process" with its own writer pool */
	struct store *s2;
	assert_int_equal(store_open(f->url, &s2), MC_OK);
	struct hammer h[4] = {{f->s, 50}, {f->s, 50}, {s2, 50}, {s2, 50}};
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer_main, &h[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	store_close(s2);
	/* read-modify-write units never lose an increment: write transactions exclude each other */
	assert_int_equal(read_int(f->s, "SELECT v FROM counter"), 200);
}

static int unit_insert_k(struct store_txn *t, void *arg)
{
	struct store_arg a[] = {SA_INT(*(int64_t *)arg)};
	return store_exec(t, "INSERT INTO u (k) VALUES ($1)", a, 1);
}

static void test_reconnect_after_terminate(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE u (k BIGINT PRIMARY KEY)", NULL, 0), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u"), 0);
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND pid <> pg_backend_pid()",
		 f->name);
	admin(sql);
	/* the first use of a dead connection may fail with EUNAVAIL; the store then reconnects */
	struct qint q = {"SELECT count(*) FROM u", -1};
	int rc = store_read(f->s, unit_qint, &q);
	assert_true(rc == MC_OK || rc == MC_EUNAVAIL);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u"), 0);
	int64_t k = 1;
	/* a write batch that lost its connection before COMMIT is rerun once on a new one */
	admin(sql);
	assert_int_equal(store_write(f->s, unit_insert_k, &k), MC_OK);
	assert_int_equal(read_int(f->s, "SELECT count(*) FROM u"), 1);
}

/* ---- result shape, table listing (medcore migrate-data) ---------------------------------------- */

struct shape {
	int ncols, empty_ncols, rows, empty_next;
	char names[5][8];
	enum store_type types[2][5], more[5];
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
	sh->ncols = store_rows_ncols(r);
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
	rc = store_query(t, "SELECT 1::int2, 1.5::float4, 2.5::numeric, true, DATE '2024-01-02'", NULL, 0, &r);
	if (rc)
		return rc;
	if (store_rows_next(r) == 1)
		for (int c = 0; c < 5; c++)
			sh->more[c] = store_rows_type(r, c);
	store_rows_close(r);
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
	NEED_PG();
	struct fx *f = *state;
	assert_int_equal(write_sql(f->s, "CREATE TABLE shape (i BIGINT, r DOUBLE PRECISION, t TEXT, b BYTEA, n INTEGER)",
				   NULL, 0), MC_OK);
	struct store_arg a[5] = {SA_INT(1), SA_REAL(1.5), SA_TEXT("x"), SA_BLOB("\0\377", 2), SA_NULL()};
	assert_int_equal(write_sql(f->s, "INSERT INTO shape VALUES ($1, $2, $3, $4, $5)", a, 5), MC_OK);
	struct store_arg b[5] = {SA_INT(2), SA_NULL(), SA_NULL(), SA_NULL(), SA_INT(3)};
	assert_int_equal(write_sql(f->s, "INSERT INTO shape VALUES ($1, $2, $3, $4, $5)", b, 5), MC_OK);
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
	enum store_type want2[5] = {STORE_INT, STORE_REAL, STORE_REAL, STORE_TEXT, STORE_TEXT};
	for (int c = 0; c < 5; c++) {
		assert_int_equal(sh.types[0][c], want0[c]);
		assert_int_equal(sh.types[1][c], want1[c]);
		assert_int_equal(sh.more[c], want2[c]);
	}
	assert_int_equal(sh.empty_ncols, 2);
	assert_int_equal(sh.empty_next, 0);
}

struct tlist_out {
	char text[1024];
	const char *stop_at;
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
	NEED_PG();
	struct fx *f = *state;
	struct tlist_out o = {{0}, NULL};
	assert_int_equal(store_read(f->s, unit_tables, &o), MC_OK);
	assert_string_equal(o.text, "");
	static const char *const ddl[] = {
		"CREATE TABLE schema_migrations (number BIGINT PRIMARY KEY)",
		"CREATE TABLE z_parent (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v TEXT)",
		"CREATE TABLE a_child (id BIGINT PRIMARY KEY, p BIGINT REFERENCES z_parent(id))",
		"CREATE TABLE m_pair (b TEXT NOT NULL, a BIGINT NOT NULL, x TEXT, PRIMARY KEY (a, b))",
		"CREATE TABLE k_nokey (y TEXT UNIQUE, x TEXT NOT NULL UNIQUE)",   /* key: the NOT NULL unique one */
		"CREATE TABLE k_none (y TEXT UNIQUE, z TEXT)",
		"CREATE UNIQUE INDEX k_none_z ON k_none (z) WHERE z IS NOT NULL",   /* partial: no key */
		"CREATE TABLE c_self (id BIGINT PRIMARY KEY, up BIGINT REFERENCES c_self(id))",
		"CREATE TABLE y_cyc (id BIGINT PRIMARY KEY, o BIGINT)",
		"CREATE TABLE x_cyc (id BIGINT PRIMARY KEY, o BIGINT REFERENCES y_cyc(id))",
		"ALTER TABLE y_cyc ADD FOREIGN KEY (o) REFERENCES x_cyc(id)",
		"CREATE VIEW v_view AS SELECT * FROM z_parent",
		"CREATE SEQUENCE s_seq",
		"CREATE SCHEMA other",
		"CREATE TABLE other.hidden (id BIGINT PRIMARY KEY)",
	};
	for (size_t i = 0; i < sizeof(ddl) / sizeof(ddl[0]); i++)
		assert_int_equal(write_sql(f->s, ddl[i], NULL, 0), MC_OK);
	assert_int_equal(store_read(f->s, unit_tables, &o), MC_OK);
	assert_string_equal(o.text, "c_self(id) k_nokey(x) k_none() m_pair(a+b) z_parent(id) a_child(id) x_cyc(id) "
				    "y_cyc(id)");
	struct tlist_out stop = {{0}, "k_nokey"};
	assert_int_equal(store_write(f->s, unit_tables, &stop), 42);
	assert_string_equal(stop.text, "c_self(id) k_nokey(x)");
}

static void test_table_seeded(void **state)
{
	NEED_PG();
	struct fx *f = *state;
	assert_true(store_table_seeded(f->s, "mrn_seq"));
	assert_false(store_table_seeded(f->s, "resources"));
	assert_false(store_table_seeded(f->s, "settings"));
	assert_false(store_table_seeded(f->s, ""));
}

int main(void)
{
	log_min_level = getenv("PGT_LOG") ? LOG_DEBUG : LOG_OFF;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test_setup_teardown(test_migrate_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_statements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_units_roll_back_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_snapshot_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_writers_serialize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_after_terminate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_shape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tables_listing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_seeded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
