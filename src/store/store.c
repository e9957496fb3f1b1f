/* store/store.c — URL dispatch to a backend, the public API's thin forwarding layer, and the
 * backend-independent parts: one-value query helpers and migrations.
 *
 * Migrations: schema_migrations(number, name, applied_ms) records what was applied. Each missing
 * script runs as one unit of work through the writer (so it is durable and atomic: the unit's
 * SAVEPOINT rolls back a half-applied script) and re-checks inside that unit that its number is still
 * missing, so two processes migrating the same database at once apply each script exactly once: the
 * backend's write transactions exclude each other across processes (SQLite: the database write lock;
 * PostgreSQL: every write transaction holds pg_advisory_xact_lock of medcore's write key).
 */
#include "store/store.h"

#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "store/migrations.h"
#include "store/store_int.h"

/* ---- open / close ---------------------------------------------------------------------------- */

int store_open(const char *url, struct store **out)
{
	*out = NULL;
	if (!url || !url[0]) {
		LOGE("store: empty database URL", "\"component\":\"%s\"", "store");
		return MC_EINVAL;
	}
	if (!strncmp(url, "sqlite:", 7)) {
		const char *path = url + 7;
		/* "sqlite:///abs/path" and "sqlite://rel" are accepted as well as "sqlite:path". */
		if (!strncmp(path, "//", 2))
			path += 2;
		return store_sqlite_backend.open(path, out);
	}
	if (!strncmp(url, "postgres://", 11) || !strncmp(url, "postgresql://", 13)) {
		/* The whole URL goes to libpq. It may hold a password: never log it. */
		return store_postgres_backend.open(url, out);
	}
	LOGE("store: unknown database URL scheme (want sqlite:PATH or postgres://...)", "\"url_len\":%zu", strlen(url));
	return MC_EINVAL;
}

void store_close(struct store *s)
{
	if (s)
		s->be->close(s);
}

const char *store_backend_name(const struct store *s) { return s->be->name; }

/* ---- units of work --------------------------------------------------------------------------- */

int store_write(struct store *s, store_work_fn *fn, void *arg)
{
	if (!fn)
		return MC_EINVAL;
	return s->be->write(s, fn, arg, NULL);
}

int store_write_async(struct store *s, store_work_fn *fn, void *arg, store_done_fn *done)
{
	if (!fn || !done)
		return MC_EINVAL;
	return s->be->write(s, fn, arg, done);
}

int store_read(struct store *s, store_work_fn *fn, void *arg)
{
	if (!fn)
		return MC_EINVAL;
	return s->be->read(s, fn, arg);
}

void store_stats(struct store *s, struct store_stats *out) { s->be->stats(s, out); }

void store_on_commit(struct store *s, store_commit_fn *fn, void *arg)
{
	/* arg first: a writer that sees the new fn also sees its arg (seq_cst atomics). */
	atomic_store(&s->on_commit, NULL);
	atomic_store(&s->on_commit_arg, arg);
	atomic_store(&s->on_commit, fn);
}

void store_commit_notify(struct store *s)
{
	store_commit_fn *fn = atomic_load(&s->on_commit);
	if (fn)
		fn(atomic_load(&s->on_commit_arg));
}

/* ---- statements ------------------------------------------------------------------------------ */

static int check_stmt(const char *sql, const struct store_arg *args, size_t n)
{
	if (!sql || (n && !args) || n > STORE_MAX_ARGS || strlen(sql) > STORE_MAX_SQL) {
		LOGE("store: bad statement arguments", "\"nargs\":%zu", n);
		return MC_EINTERNAL;
	}
	return MC_OK;
}

int store_exec(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n)
{
	int rc = check_stmt(sql, args, n);
	return rc ? rc : t->be->exec(t, sql, args, n);
}

int store_query(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n,
		struct store_rows **out)
{
	*out = NULL;
	int rc = check_stmt(sql, args, n);
	return rc ? rc : t->be->query(t, sql, args, n, out);
}

int store_rows_next(struct store_rows *r) { return r->be->rows_next(r); }
bool store_rows_null(struct store_rows *r, int col) { return r->be->rows_null(r, col); }
int64_t store_rows_int(struct store_rows *r, int col) { return r->be->rows_int(r, col); }
double store_rows_real(struct store_rows *r, int col) { return r->be->rows_real(r, col); }
const char *store_rows_text(struct store_rows *r, int col) { return r->be->rows_text(r, col); }

const void *store_rows_blob(struct store_rows *r, int col, size_t *len)
{
	return r->be->rows_blob(r, col, len);
}

void store_rows_close(struct store_rows *r)
{
	if (r)
		r->be->rows_close(r);
}

int64_t store_changes(struct store_txn *t) { return t->be->changes(t); }

int store_query_int(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n, int64_t *out)
{
	struct store_rows *r;
	int rc = store_query(t, sql, args, n, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1)
		*out = store_rows_int(r, 0);
	store_rows_close(r);
	return st == 1 ? MC_OK : st == 0 ? MC_ENOTFOUND : -st;
}

int store_query_text(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n, char **out)
{
	struct store_rows *r;
	*out = NULL;
	int rc = store_query(t, sql, args, n, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1) {
		const char *v = store_rows_text(r, 0);
		*out = mc_strdup(v ? v : "");
	}
	store_rows_close(r);
	return st == 1 ? MC_OK : st == 0 ? MC_ENOTFOUND : -st;
}

/* ---- migrations ------------------------------------------------------------------------------ */

/* Portable across backends: both accept this DDL. */
static const char SQL_MIGRATIONS_TABLE[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" number INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL,"
	" applied_ms BIGINT NOT NULL)";

/* Latest number compiled in for this backend; MC_EINTERNAL when the table is out of order. */
static int latest_for(const char *backend, int *latest)
{
	int last = 0;
	for (unsigned i = 0; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		if (strcmp(m->backend, backend))
			continue;
		if (m->number <= last) {
			LOGE("store: compiled-in migrations out of order", "\"number\":%d", m->number);
			return MC_EINTERNAL;
		}
		last = m->number;
	}
	*latest = last;
	return MC_OK;
}

static int unit_create_migrations_table(struct store_txn *t, void *arg)
{
	(void)arg;
	return store_exec(t, SQL_MIGRATIONS_TABLE, NULL, 0);
}

struct apply_ctx {
	const struct store_migration *m;
	bool applied;   /* out: false when another process applied it first */
};

static int unit_apply(struct store_txn *t, void *arg)
{
	struct apply_ctx *a = arg;
	int64_t one;
	struct store_arg num = SA_INT(a->m->number);
	int rc = store_query_int(t, "SELECT 1 FROM schema_migrations WHERE number = $1", &num, 1, &one);
	if (rc == MC_OK)
		return MC_OK;   /* already there */
	if (rc != MC_ENOTFOUND)
		return rc;
	rc = t->be->exec_script(t, a->m->sql);
	if (rc) {
		LOGE("store: migration failed", "\"migration\":\"%s\"", a->m->name);
		return rc;
	}
	struct store_arg ins[3] = {SA_INT(a->m->number), SA_TEXT(a->m->name), SA_INT(mctime_now_ms())};
	rc = store_exec(t, "INSERT INTO schema_migrations(number, name, applied_ms) VALUES ($1, $2, $3)", ins, 3);
	if (rc == MC_OK)
		a->applied = true;
	return rc;
}

int store_migrate(struct store *s, int *applied)
{
	int latest, n = 0;
	if (applied)
		*applied = 0;
	int rc = latest_for(s->be->name, &latest);
	if (rc)
		return rc;
	rc = store_write(s, unit_create_migrations_table, NULL);
	if (rc)
		return rc;
	for (unsigned i = 0; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		if (strcmp(m->backend, s->be->name))
			continue;
		struct apply_ctx a = {m, false};
		rc = store_write(s, unit_apply, &a);
		if (rc)
			return rc;
		if (a.applied) {
			n++;
			LOGI("store: migration applied", "\"migration\":\"%s\"", m->name);
		}
	}
	if (applied)
		*applied = n;
	return MC_OK;
}

struct version_ctx {
	int64_t current;
};

static int unit_version(struct store_txn *t, void *arg)
{
	struct version_ctx *v = arg;
	bool exists = false;
	int rc = t->be->table_exists(t, "schema_migrations", &exists);
	if (rc || !exists)
		return rc;
	return store_query_int(t, "SELECT COALESCE(MAX(number), 0) FROM schema_migrations", NULL, 0, &v->current);
}

int store_schema_version(struct store *s, int *current, int *latest)
{
	struct version_ctx v = {0};
	int last;
	int rc = latest_for(s->be->name, &last);
	if (rc)
		return rc;
	rc = store_read(s, unit_version, &v);
	if (rc)
		return rc;
	if (current)
		*current = (int)v.current;
	if (latest)
		*latest = last;
	if (v.current > last)
		LOGW("store: database schema is newer than this binary", "\"current\":%d,\"latest\":%d",
		     (int)v.current, last);
	return MC_OK;
}

static int unit_ping(struct store_txn *t, void *arg)
{
	int64_t one = 0;
	(void)arg;
	int rc = store_query_int(t, "SELECT 1", NULL, 0, &one);
	return rc ? rc : one == 1 ? MC_OK : MC_EINTERNAL;
}

int store_ping(struct store *s) { return store_read(s, unit_ping, NULL); }
