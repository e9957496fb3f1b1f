/* store/store.h — the storage interface every layer above uses; backends plug in beneath it.
 *
 * Units of work. Callers never see BEGIN/COMMIT. A unit of work is a function run inside one
 * transaction-like scope:
 *   store_write(): queued to the backend's single writer. The SQLite backend runs each queued unit
 *     inside its own SAVEPOINT of one shared transaction (group commit), commits once with
 *     synchronous=FULL, then wakes every waiter. store_write returns only after the unit's changes
 *     are durable, with the unit's own return code. A unit that returns non-zero is rolled back
 *     alone (the others in its batch still commit). The unit runs on the writer thread: it must not
 *     block on anything but the database and must not call store_write/store_read itself.
 *   store_write_async(): the same, but returns at once; done(arg, rc) runs on the writer thread
 *     after the commit (or rollback). Used for work whose durability the caller need not wait for
 *     (read-audit records). The store keeps no reference to arg after done() returns.
 *   store_read(): runs on the calling thread's own read connection, inside one read snapshot.
 *
 * SQL uses $1, $2 ... placeholders in both backends. Always bind; never format values into SQL.
 * One statement per store_exec/store_query call, at most 999 arguments; args[i] binds $<i+1>, an
 * argument the statement does not use is ignored, a placeholder without an argument is an error.
 * Units never issue transaction control (BEGIN, COMMIT, SAVEPOINT ...): the backend owns it.
 * Results: MC_OK, or MC_* codes. A UNIQUE/constraint violation is MC_ECONFLICT; a busy/locked
 * database after retries MC_EUNAVAIL; anything else MC_EINTERNAL (details logged, never returned).
 *
 * Threads: a struct store is shared by all threads. A store_txn and store_rows belong to the unit of
 * work that received them and are invalid after it returns.
 */
#ifndef MC_STORE_STORE_H
#define MC_STORE_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;
struct store_rows;

enum store_type { STORE_NULL = 0, STORE_INT, STORE_REAL, STORE_TEXT, STORE_BLOB };

struct store_arg {
	enum store_type type;
	int64_t i;
	double d;
	const void *p;  /* TEXT or BLOB bytes; borrowed for the duration of the call */
	size_t len;     /* for TEXT, (size_t)-1 means NUL-terminated */
};

#define SA_NULL()        ((struct store_arg){.type = STORE_NULL})
#define SA_INT(v)        ((struct store_arg){.type = STORE_INT, .i = (int64_t)(v)})
#define SA_REAL(v)       ((struct store_arg){.type = STORE_REAL, .d = (double)(v)})
#define SA_TEXT(s)       store_arg_text(s)
#define SA_TEXTN(s, n)   ((struct store_arg){.type = STORE_TEXT, .p = (s), .len = (n)})
#define SA_BLOB(s, n)    ((struct store_arg){.type = STORE_BLOB, .p = (s), .len = (n)})

/* NULL text binds SQL NULL. (A function, not a macro: arrays would warn under -Waddress.) */
static inline struct store_arg store_arg_text(const char *s)
{
	struct store_arg a = {.type = s ? STORE_TEXT : STORE_NULL, .p = s, .len = (size_t)-1};
	return a;
}

typedef int store_work_fn(struct store_txn *t, void *arg);
typedef void store_done_fn(void *arg, int rc);

/* Open from a URL: "sqlite:PATH" (PATH may be relative) or "postgres://user:pass@host:port/db?..."
 * (store/postgres/postgres.c: extra keys writers=N, readers=N; fails when the server is unreachable).
 * Does not migrate. MC_EINVAL for an unknown scheme, MC_EUNAVAIL when it cannot be opened. */
int store_open(const char *url, struct store **out);
/* Drains the writer (every queued unit runs and commits), closes all connections, frees. */
void store_close(struct store *s);
const char *store_backend_name(const struct store *s);   /* "sqlite" or "postgres" */

/* fn must not be NULL (MC_EINVAL). Called from a unit or done() on the same store's writer thread:
 * MC_EINTERNAL (it would wait for itself). After store_close has begun: MC_EUNAVAIL. When very many
 * units are queued (SQLite: 65,536) the caller waits for room (back-pressure). */
int store_write(struct store *s, store_work_fn *fn, void *arg);
/* done must not be NULL (MC_EINVAL). MC_OK means queued: done() will be called exactly once. It may
 * call store_write_async (never store_write). On any error done() is never called. */
int store_write_async(struct store *s, store_work_fn *fn, void *arg, store_done_fn *done);
/* A store_read inside a store_read on the same thread runs in the outer snapshot. */
int store_read(struct store *s, store_work_fn *fn, void *arg);

int store_exec(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n);
int store_query(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n,
		struct store_rows **out);
/* Step: 1 = a row is ready, 0 = no more rows, negative = -MC_* error. */
int store_rows_next(struct store_rows *r);
bool store_rows_null(struct store_rows *r, int col);
int64_t store_rows_int(struct store_rows *r, int col);
double store_rows_real(struct store_rows *r, int col);
/* Column values of the current row. text: NUL-terminated, NULL for SQL NULL; text and blob pointers are
 * valid until the next step or close. blob of an empty value: *len = 0 and possibly a NULL pointer. */
const char *store_rows_text(struct store_rows *r, int col);
const void *store_rows_blob(struct store_rows *r, int col, size_t *len);
/* NULL is fine. Rows left open are closed for the caller when its unit of work returns. */
void store_rows_close(struct store_rows *r);
/* Result shape, for generic copies (medcore migrate-data). ncols and colname are valid before the first
 * step, even for a result without rows; colname is borrowed until close (NULL for a column out of range).
 * store_rows_type is the type of the current row's value: SQLite its storage class; PostgreSQL from the
 * column's type: int2/int4/int8 INT, float4/float8/numeric REAL, bytea BLOB, anything else TEXT (read it
 * with store_rows_blob for its exact bytes), and STORE_NULL for SQL NULL, a column out of range or no
 * current row. */
int store_rows_ncols(struct store_rows *r);
const char *store_rows_colname(struct store_rows *r, int col);
enum store_type store_rows_type(struct store_rows *r, int col);
int64_t store_changes(struct store_txn *t);                  /* rows changed by the last exec */

/* Helpers over store_query for one-value answers: MC_OK, MC_ENOTFOUND when no row. */
int store_query_int(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n, int64_t *out);
/* *out is malloc'd; caller frees. */
int store_query_text(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n, char **out);

/* The application's tables, for generic copies (medcore migrate-data); catalog tables and
 * schema_migrations are left out. SQLite: sqlite_master's tables but sqlite_%; PostgreSQL: the tables of
 * current_schema(). Order: every table comes after the tables its foreign keys reference (tables of a
 * reference cycle, and otherwise unrelated ones, in name order), so copying in this order satisfies the
 * foreign keys. key: the columns of the table's primary key in key order (PostgreSQL, a table without
 * one: its first unique constraint or index whose columns are all NOT NULL), nkey = 0 when there is none.
 * Everything passed to cb is borrowed for the call. cb returning non-zero stops the listing; that value
 * is returned. Runs in a read or write unit. */
struct store_table {
	const char *name;
	const char *const *key;
	int nkey;
};
typedef int store_table_fn(const struct store_table *table, void *arg);
int store_tables(struct store_txn *t, store_table_fn *cb, void *arg);
/* Whether this backend's compiled-in migrations insert rows into table (e.g. mrn_seq's first row): a
 * freshly migrated database is empty except for such tables. */
bool store_table_seeded(const struct store *s, const char *table);

/* Migrations: numbered SQL scripts compiled into the binary (sql/<backend>/NNNN_name.sql).
 * store_migrate applies the missing ones in order, each in its own transaction. */
int store_migrate(struct store *s, int *applied);
int store_schema_version(struct store *s, int *current, int *latest);
int store_ping(struct store *s);   /* a trivial read: MC_OK when the database answers */

/* Post-commit hook (one per store; fn NULL clears it). fn(arg) runs on the writer thread right after
 * every successful COMMIT, before the batch's waiters are woken; it must be quick and must not call
 * store_write/store_read (the events dispatcher uses it to signal a condition variable). The caller
 * keeps arg alive until the hook is cleared; clear it before store_close or let the store go first.
 * Backends call it for every commit they make (SQLite: the group-commit writer). */
typedef void store_commit_fn(void *arg);
void store_on_commit(struct store *s, store_commit_fn *fn, void *arg);

/* Counters for /metrics and benchmarks. */
struct store_stats {
	uint64_t commits, units, units_failed;
};
void store_stats(struct store *s, struct store_stats *out);

#endif
