/* store/store_int.h — what a storage backend implements (internal to src/store/).
 *
 * store.c parses the URL, picks a backend and forwards every public call through its vtable;
 * everything dialect- or engine-specific (connections, durability, group commit, error mapping)
 * lives under src/store/<backend>/. Each backend allocates its own store, txn and rows objects
 * with the matching public struct below as their FIRST member, so store.c can find the vtable
 * and the backend can cast back to its own type.
 */
#ifndef MC_STORE_STORE_INT_H
#define MC_STORE_STORE_INT_H
#include <stdatomic.h>

#include "store/store.h"

struct store_backend;

/* A backend's raw table listing (store_tables). Strings and arrays are owned by the list. */
struct store_tinfo {
	char *name;
	char **key;     /* nkey column names: the key store_tables reports */
	int nkey;
	bool key_final; /* the primary key was set: later (unique-index) candidates are ignored */
	char **refs;    /* nrefs tables its foreign keys reference (may repeat, may name itself) */
	int nrefs;
};
struct store_tlist {
	struct store_tinfo *v;
	size_t n, cap;
};
/* The entry of table name, or NULL when the list has none (not added). */
struct store_tinfo *store_tlist_find(struct store_tlist *l, const char *name);
struct store_tinfo *store_tlist_add(struct store_tlist *l, const char *name);
/* Appends a copy of s to (*arr)[*n]. */
void store_tlist_push(char ***arr, int *n, const char *s);
void store_tlist_free(struct store_tlist *l);

struct store {
	const struct store_backend *be;
	/* store_on_commit's hook; zero-initialized by the backend's calloc. A backend calls
	 * store_commit_notify() after every successful COMMIT. */
	_Atomic(store_commit_fn *) on_commit;
	_Atomic(void *) on_commit_arg;
};
struct store_txn {
	const struct store_backend *be;
};
struct store_rows {
	const struct store_backend *be;
};

/* Limits shared by every backend: checked before anything reaches the engine. */
#define STORE_MAX_ARGS 999            /* binds per statement */
#define STORE_MAX_SQL  (1u << 20)     /* bytes of SQL text per statement (migrations excepted) */

struct store_backend {
	const char *name;   /* "sqlite": the sql/<name>/ directory of its migrations */
	/* target is the URL without its scheme ("sqlite:" stripped). */
	int (*open)(const char *target, struct store **out);
	void (*close)(struct store *s);
	/* done == NULL: synchronous store_write; otherwise store_write_async. */
	int (*write)(struct store *s, store_work_fn *fn, void *arg, store_done_fn *done);
	int (*read)(struct store *s, store_work_fn *fn, void *arg);
	void (*stats)(struct store *s, struct store_stats *out);

	int (*exec)(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n);
	int (*query)(struct store_txn *t, const char *sql, const struct store_arg *args, size_t n,
		     struct store_rows **out);
	/* Runs a script of several statements, no binds (migrations only). */
	int (*exec_script)(struct store_txn *t, const char *sql);
	/* *exists = whether a table of that name exists. */
	int (*table_exists)(struct store_txn *t, const char *table, bool *exists);
	int64_t (*changes)(struct store_txn *t);

	int (*rows_next)(struct store_rows *r);
	bool (*rows_null)(struct store_rows *r, int col);
	int64_t (*rows_int)(struct store_rows *r, int col);
	double (*rows_real)(struct store_rows *r, int col);
	const char *(*rows_text)(struct store_rows *r, int col);
	const void *(*rows_blob)(struct store_rows *r, int col, size_t *len);
	void (*rows_close)(struct store_rows *r);
	int (*rows_ncols)(struct store_rows *r);
	const char *(*rows_colname)(struct store_rows *r, int col);
	enum store_type (*rows_type)(struct store_rows *r, int col);
	/* Fills l (store_tlist_*) with the application's tables in any order: names, key columns and the
	 * tables each one's foreign keys reference; store.c orders it for store_tables. */
	int (*tables)(struct store_txn *t, struct store_tlist *l);
};

extern const struct store_backend store_sqlite_backend;
extern const struct store_backend store_postgres_backend;   /* store/postgres/postgres.c */

/* Runs the post-commit hook, if any (store.c). */
void store_commit_notify(struct store *s);

#endif
