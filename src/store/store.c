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

#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

int store_rows_ncols(struct store_rows *r) { return r->be->rows_ncols(r); }
const char *store_rows_colname(struct store_rows *r, int col) { return r->be->rows_colname(r, col); }
enum store_type store_rows_type(struct store_rows *r, int col) { return r->be->rows_type(r, col); }

/* ---- table listing --------------------------------------------------------------------------- */

struct store_tinfo *store_tlist_find(struct store_tlist *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].name, name))
			return &l->v[i];
	return NULL;
}

struct store_tinfo *store_tlist_add(struct store_tlist *l, const char *name)
{
	struct store_tinfo *e = store_tlist_find(l, name);
	if (e)
		return e;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 32;
		l->v = mc_realloc(l->v, l->cap * sizeof(*l->v));
	}
	e = &l->v[l->n++];
	memset(e, 0, sizeof(*e));
	e->name = mc_strdup(name);
	return e;
}

void store_tlist_push(char ***arr, int *n, const char *s)
{
	*arr = mc_realloc(*arr, (size_t)(*n + 1) * sizeof(**arr));
	(*arr)[(*n)++] = mc_strdup(s);
}

static void strv_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void store_tlist_free(struct store_tlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		strv_free(l->v[i].key, l->v[i].nkey);
		strv_free(l->v[i].refs, l->v[i].nrefs);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int tinfo_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_tinfo *)a)->name, ((const struct store_tinfo *)b)->name);
}

/* Whether every table e references (but itself, or tables not listed) is already done. */
static bool refs_done(struct store_tlist *l, const struct store_tinfo *e, const bool *done)
{
	for (int k = 0; k < e->nrefs; k++) {
		if (!strcmp(e->refs[k], e->name))
			continue;
		struct store_tinfo *p = store_tlist_find(l, e->refs[k]);
		if (p && !done[p - l->v])
			return false;
	}
	return true;
}

int store_tables(struct store_txn *t, store_table_fn *cb, void *arg)
{
	struct store_tlist l = {0};
	int rc = t->be->tables(t, &l);
	if (rc) {
		store_tlist_free(&l);
		return rc;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), tinfo_cmp);
	/* Parents first: repeatedly the first (by name) table whose referenced tables are all out; a
	 * cycle is broken at its first table by name. Quadratic, fine for a schema's few hundred tables. */
	bool *done = mc_calloc(l.n ? l.n : 1, sizeof(*done));
	for (size_t out = 0; out < l.n && !rc; out++) {
		size_t pick = l.n, first = l.n;
		for (size_t i = 0; i < l.n; i++) {
			if (done[i])
				continue;
			if (first == l.n)
				first = i;
			if (refs_done(&l, &l.v[i], done)) {
				pick = i;
				break;
			}
		}
		if (pick == l.n)
			pick = first;
		done[pick] = true;
		struct store_table tb = {l.v[pick].name, (const char *const *)l.v[pick].key, l.v[pick].nkey};
		rc = cb(&tb, arg);
	}
	free(done);
	store_tlist_free(&l);
	return rc;
}

/* The next word of SQL text at *p (letters, digits, _, $, or a "quoted identifier" without its
 * quotes), skipping blanks, punctuation, comments and string literals. *len = 0 at the end. */
static const char *sql_word(const char **p, size_t *len)
{
	const char *s = *p;
	for (;;) {
		if (!*s) {
			*len = 0;
			*p = s;
			return s;
		}
		if (s[0] == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
		} else if (s[0] == '/' && s[1] == '*') {
			const char *e = strstr(s + 2, "*/");
			s = e ? e + 2 : s + strlen(s);
		} else if (*s == '\'') {
			s++;
			while (*s && !(*s == '\'' && s[1] != '\''))
				s += *s == '\'' ? 2 : 1;   /* '' is a quote inside the literal */
			if (*s)
				s++;
		} else if (*s == '"') {
			const char *b = ++s;
			while (*s && *s != '"')
				s++;
			*len = (size_t)(s - b);
			*p = *s ? s + 1 : s;
			return b;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
			   *s == '_' || *s == '$') {
			const char *b = s;
			while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
			       *s == '_' || *s == '$')
				s++;
			*len = (size_t)(s - b);
			*p = s;
			return b;
		} else {
			s++;
		}
	}
}

static bool word_is(const char *w, size_t n, const char *kw)
{
	return strlen(kw) == n && !strncasecmp(w, kw, n);
}

bool store_table_seeded(const struct store *s, const char *table)
{
	size_t tl = strlen(table);
	for (unsigned i = 0; i < store_migrations_count; i++) {
		const struct store_migration *m = &store_migrations[i];
		if (strcmp(m->backend, s->be->name))
			continue;
		const char *p = m->sql;
		size_t n;
		const char *w;
		/* INSERT [OR word] INTO name */
		while ((w = sql_word(&p, &n)), n) {
			if (!word_is(w, n, "INSERT"))
				continue;
			w = sql_word(&p, &n);
			if (word_is(w, n, "OR")) {
				sql_word(&p, &n);
				w = sql_word(&p, &n);
			}
			if (!word_is(w, n, "INTO"))
				continue;
			w = sql_word(&p, &n);
			if (n == tl && !strncasecmp(w, table, n))
				return true;
		}
	}
	return false;
}

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
