/* cli/cmd_migrate_data.c — `medcore migrate-data --from URL --to URL`: copy a whole medcore database
 * to another one, typically sqlite:PATH -> postgres://... (either direction works).
 *
 * Generic: no list of tables or columns is kept here. The tables come from store_tables() (every
 * application table of the source, in foreign-key order of the target), the columns from the source's
 * `SELECT *`, and every value is bound with its runtime type (store_rows_type), so the tables of new
 * migrations are copied without touching this file.
 *
 * Steps, all inside ONE read snapshot of the source (so the copy is a consistent point in time, and
 * each table's row count is checked against what was copied):
 *   1. The source must be at this binary's schema (we never change the source); the target is migrated.
 *   2. Checks before anything is written: the target must be empty, i.e. every table has no rows except
 *      tables whose rows the migrations themselves insert (store_table_seeded: mrn_seq's first row);
 *      every source table must exist in the target with every source column (else: schema mismatch,
 *      exit 1). A source table missing from the target is tolerated only when it is empty (e.g. the
 *      vitals tables a PostgreSQL server creates in its main database, migrating to SQLite).
 *   3. Tables are copied in the target's foreign-key order (parents first). A seeded table is cleared
 *      first, then copied verbatim like the others: settings (the token key: issued tokens stay valid),
 *      users and refresh tokens, the audit chain (seq, timestamps and hashes unchanged, so `medcore
 *      audit verify` passes on the target), the MRN counter, resource versions, search indexes ...
 *   4. Identity/serial sequences of a PostgreSQL target (found through pg_get_serial_sequence on every
 *      column of current_schema()) are moved past the copied keys.
 *
 * Streaming: a table is read in pages of COPY_PAGE rows by keyset pagination on the key store_tables
 * reports (its primary key, or a NOT NULL unique key): `SELECT * ... WHERE (k1, k2) > ($1, $2) ORDER BY
 * k1, k2 LIMIT n`. Within one snapshot keyset pages are exact, each page is one index range scan (no
 * OFFSET re-reading), and the PostgreSQL backend, which buffers a whole result, holds one page at a
 * time. A table without such a key (a SQLite rowid table without a declared primary key) is read with
 * one plain SELECT: SQLite steps it lazily; on PostgreSQL every table medcore creates has a key.
 * Writes go in units of at most COPY_PAGE rows or COPY_BATCH_BYTES, each one durable transaction; a
 * failure part-way leaves a partial target: drop and recreate the target database and run again.
 * Exit codes: 0 copied, 1 failed, target not empty or schema mismatch, 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"

#define COPY_PAGE        500            /* rows per keyset page and per write unit */
#define COPY_BATCH_BYTES (16u << 20)    /* a write unit also ends after this many value bytes */
#define MAX_TABLES       4096
#define MAX_NAME         256

/* One table of one side. Strings owned. */
struct tab {
	char *name;
	char **key;       /* nkey key columns (source side) */
	int nkey;
	char **cols;      /* ncols column names of SELECT * */
	int ncols;
	int64_t count;
	bool seeded;      /* target side: the migrations insert rows into it */
};

struct side {
	struct store *s;
	struct tab *v;
	size_t n;
};

static void strv_free(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void side_free(struct side *sd)
{
	for (size_t i = 0; i < sd->n; i++) {
		free(sd->v[i].name);
		strv_free(sd->v[i].key, sd->v[i].nkey);
		strv_free(sd->v[i].cols, sd->v[i].ncols);
	}
	free(sd->v);
	sd->v = NULL;
	sd->n = 0;
}

static struct tab *side_find(struct side *sd, const char *name)
{
	for (size_t i = 0; i < sd->n; i++)
		if (!strcmp(sd->v[i].name, name))
			return &sd->v[i];
	return NULL;
}

/* Appends "name" as a quoted SQL identifier. */
static int put_ident(struct buf *b, const char *name)
{
	int rc = buf_putc(b, '"');
	for (const char *p = name; *p && !rc; p++)
		rc = *p == '"' ? buf_puts(b, "\"\"") : buf_putc(b, *p);
	return rc ? rc : buf_putc(b, '"');
}

static char **strv_dup(const char *const *v, int n)
{
	char **out = mc_calloc(n ? (size_t)n : 1, sizeof(*out));
	for (int i = 0; i < n; i++)
		out[i] = mc_strdup(v[i]);
	return out;
}

/* Row count and column names of t (in the unit's snapshot). */
static int describe(struct store_txn *t, struct tab *tb)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_puts(&b, "SELECT count(*) FROM ");
	int rc = put_ident(&b, tb->name);
	if (!rc)
		rc = store_query_int(t, buf_str(&b), NULL, 0, &tb->count);
	buf_reset(&b);
	buf_puts(&b, "SELECT * FROM ");
	put_ident(&b, tb->name);
	buf_puts(&b, " LIMIT 0");
	struct store_rows *r = NULL;
	if (!rc)
		rc = store_query(t, buf_str(&b), NULL, 0, &r);
	buf_release(&b);
	if (rc)
		return rc;
	int n = store_rows_ncols(r);
	for (int i = 0; i < n; i++) {
		const char *c = store_rows_colname(r, i);
		if (!c || strlen(c) >= MAX_NAME) {
			rc = MC_EINTERNAL;
			break;
		}
		tb->cols = mc_realloc(tb->cols, (size_t)(tb->ncols + 1) * sizeof(*tb->cols));
		tb->cols[tb->ncols++] = mc_strdup(c);
	}
	store_rows_close(r);
	return rc;
}

struct list_ctx {
	struct side *sd;
	struct store_txn *t;
};

static int on_table(const struct store_table *table, void *arg)
{
	struct list_ctx *c = arg;
	struct side *sd = c->sd;
	if (sd->n >= MAX_TABLES || strlen(table->name) >= MAX_NAME)
		return MC_ETOOBIG;
	sd->v = mc_realloc(sd->v, (sd->n + 1) * sizeof(*sd->v));
	struct tab *tb = &sd->v[sd->n++];
	memset(tb, 0, sizeof(*tb));
	tb->name = mc_strdup(table->name);
	tb->key = strv_dup(table->key, table->nkey);
	tb->nkey = table->nkey;
	tb->seeded = store_table_seeded(sd->s, table->name);
	return describe(c->t, tb);
}

static int unit_list(struct store_txn *t, void *arg)
{
	struct list_ctx c = {arg, t};
	return store_tables(t, on_table, &c);
}

/* ---- copying one table -------------------------------------------------------------------------- */

struct batch {
	struct store *dst;
	const char *insert;
	int ncols;
	size_t nrows, bytes;
	struct store_arg *args;   /* COPY_PAGE * ncols; text/blob bytes malloc'd */
	int64_t copied;
};

static void args_free(struct store_arg *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].type == STORE_TEXT || a[i].type == STORE_BLOB)
			free((void *)a[i].p);
	memset(a, 0, n * sizeof(*a));
}

static int unit_insert(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	for (size_t r = 0; r < b->nrows; r++) {
		int rc = store_exec(t, b->insert, b->args + r * (size_t)b->ncols, (size_t)b->ncols);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static int batch_flush(struct batch *b)
{
	if (!b->nrows)
		return MC_OK;
	int rc = store_write(b->dst, unit_insert, b);
	if (rc == MC_OK)
		b->copied += (int64_t)b->nrows;
	args_free(b->args, b->nrows * (size_t)b->ncols);
	b->nrows = 0;
	b->bytes = 0;
	return rc;
}

/* The current row's value of col as an owned argument (its runtime type, bytes copied). */
static struct store_arg value_of(struct store_rows *r, int col, size_t *bytes)
{
	size_t n = 0;
	const void *p;
	switch (store_rows_type(r, col)) {
	case STORE_INT:
		return SA_INT(store_rows_int(r, col));
	case STORE_REAL:
		return SA_REAL(store_rows_real(r, col));
	case STORE_BLOB: {
		p = store_rows_blob(r, col, &n);
		void *copy = mc_malloc(n ? n : 1);
		if (n)
			memcpy(copy, p, n);
		*bytes += n;
		return SA_BLOB(copy, n);
	}
	case STORE_TEXT: {
		p = store_rows_blob(r, col, &n);   /* the text's exact bytes */
		char *copy = mc_malloc(n + 1);
		if (n)
			memcpy(copy, p, n);
		copy[n] = '\0';
		*bytes += n;
		return SA_TEXTN(copy, n);
	}
	default:
		return SA_NULL();
	}
}

/* Copies src table tb into the target, page by page, in the source unit t. */
static int copy_table(struct store_txn *t, const struct tab *tb, struct batch *b)
{
	/* Where the key columns are in SELECT *; no usable key: one plain SELECT. */
	int keypos[64], nkey = tb->nkey <= 64 ? tb->nkey : 0;
	for (int k = 0; k < nkey; k++) {
		keypos[k] = -1;
		for (int i = 0; i < tb->ncols; i++)
			if (!strcmp(tb->cols[i], tb->key[k]))
				keypos[k] = i;
		if (keypos[k] < 0)
			nkey = 0;
	}
	struct buf first, next;
	buf_init(&first, 1u << 16);
	buf_init(&next, 1u << 16);
	buf_puts(&first, "SELECT * FROM ");
	put_ident(&first, tb->name);
	if (nkey) {
		buf_puts(&next, buf_str(&first));
		buf_puts(&next, " WHERE (");
		for (int k = 0; k < nkey; k++) {
			buf_puts(&next, k ? ", " : "");
			put_ident(&next, tb->key[k]);
		}
		buf_puts(&next, ") > (");
		for (int k = 0; k < nkey; k++)
			buf_printf(&next, "%s$%d", k ? ", " : "", k + 1);
		buf_puts(&next, ")");
		struct buf order;
		buf_init(&order, 1u << 16);
		buf_puts(&order, " ORDER BY ");
		for (int k = 0; k < nkey; k++) {
			buf_puts(&order, k ? ", " : "");
			put_ident(&order, tb->key[k]);
		}
		buf_printf(&order, " LIMIT %d", COPY_PAGE);
		buf_puts(&first, buf_str(&order));
		int brc = buf_puts(&next, buf_str(&order));
		buf_release(&order);
		if (brc) {
			buf_release(&first);
			buf_release(&next);
			return brc;
		}
	}
	struct store_arg last[64];
	memset(last, 0, sizeof(last));
	int rc = MC_OK;
	for (bool more = true, paged = false; more && !rc; paged = true) {
		struct store_rows *r;
		rc = store_query(t, paged ? buf_str(&next) : buf_str(&first), last, paged ? (size_t)nkey : 0, &r);
		if (rc)
			break;
		int st, got = 0;
		while ((st = store_rows_next(r)) == 1) {
			got++;
			struct store_arg *a = b->args + b->nrows * (size_t)b->ncols;
			for (int i = 0; i < b->ncols; i++)
				a[i] = value_of(r, i, &b->bytes);
			if (nkey) {   /* the page's last key, for the next page */
				args_free(last, (size_t)nkey);
				size_t ignored = 0;
				for (int k = 0; k < nkey; k++)
					last[k] = value_of(r, keypos[k], &ignored);
			}
			b->nrows++;
			if (b->nrows == COPY_PAGE || b->bytes >= COPY_BATCH_BYTES) {
				rc = batch_flush(b);
				if (rc)
					break;
			}
		}
		store_rows_close(r);
		if (!rc && st < 0)
			rc = -st;
		more = nkey && got == COPY_PAGE;
	}
	if (!rc)
		rc = batch_flush(b);
	args_free(last, (size_t)nkey);
	buf_release(&first);
	buf_release(&next);
	return rc;
}

/* ---- the whole copy --------------------------------------------------------------------------- */

struct job {
	struct store *src, *dst;
	struct side s, d;   /* the source's and the target's tables */
};

static int unit_clear(struct store_txn *t, void *arg)
{
	struct buf b;
	buf_init(&b, 4096);
	buf_puts(&b, "DELETE FROM ");
	int rc = put_ident(&b, arg);
	if (!rc)
		rc = store_exec(t, buf_str(&b), NULL, 0);
	buf_release(&b);
	return rc;
}

/* Checks before anything is written; 0 = go. */
static int preflight(struct job *j)
{
	for (size_t i = 0; i < j->d.n; i++) {
		const struct tab *d = &j->d.v[i];
		if (d->count && !d->seeded) {
			fprintf(stderr, "medcore migrate-data: the target is not empty (%s has %lld rows); nothing copied\n",
				d->name, (long long)d->count);
			return 1;
		}
	}
	int bad = 0;
	for (size_t i = 0; i < j->s.n; i++) {
		const struct tab *s = &j->s.v[i];
		const struct tab *d = side_find(&j->d, s->name);
		if (!d) {
			if (s->count) {
				fprintf(stderr, "medcore migrate-data: schema mismatch: the target has no table %s (%lld rows "
						"in the source)\n", s->name, (long long)s->count);
				bad = 1;
			} else {
				printf("skipped %-22s (empty; the target has no such table)\n", s->name);
			}
			continue;
		}
		if (s->ncols > 999) {
			fprintf(stderr, "medcore migrate-data: %s has too many columns\n", s->name);
			bad = 1;
		}
		for (int c = 0; c < s->ncols; c++) {
			bool found = false;
			for (int k = 0; k < d->ncols && !found; k++)
				found = !strcmp(s->cols[c], d->cols[k]);
			if (!found) {
				fprintf(stderr, "medcore migrate-data: schema mismatch: the target's %s has no column %s\n",
					s->name, s->cols[c]);
				bad = 1;
			}
		}
	}
	if (bad)
		fprintf(stderr, "medcore migrate-data: nothing copied (are both databases at this binary's schema?)\n");
	return bad;
}

static int copy_one(struct job *j, struct store_txn *t, const struct tab *s, const struct tab *d)
{
	if (d->count) {   /* seeded by the migrations: replaced by the source's rows */
		int rc = store_write(j->dst, unit_clear, d->name);
		if (rc) {
			fprintf(stderr, "medcore migrate-data: clearing %s: %s\n", d->name, mc_wire_code(rc));
			return rc;
		}
	}
	struct buf ins;
	buf_init(&ins, 1u << 20);
	buf_puts(&ins, "INSERT INTO ");
	put_ident(&ins, s->name);
	buf_puts(&ins, " (");
	for (int c = 0; c < s->ncols; c++) {
		buf_puts(&ins, c ? ", " : "");
		put_ident(&ins, s->cols[c]);
	}
	buf_puts(&ins, ") VALUES (");
	for (int c = 0; c < s->ncols; c++)
		buf_printf(&ins, "%s$%d", c ? ", " : "", c + 1);
	int rc = buf_puts(&ins, ")");
	if (rc) {
		buf_release(&ins);
		fprintf(stderr, "medcore migrate-data: %s: statement too long\n", s->name);
		return rc;
	}
	struct batch b = {.dst = j->dst, .insert = buf_str(&ins), .ncols = s->ncols};
	b.args = mc_calloc((size_t)COPY_PAGE * (size_t)(s->ncols ? s->ncols : 1), sizeof(*b.args));
	rc = copy_table(t, s, &b);
	args_free(b.args, b.nrows * (size_t)b.ncols);
	free(b.args);
	buf_release(&ins);
	if (rc) {
		fprintf(stderr, "medcore migrate-data: copying %s failed after %lld rows: %s\n", s->name,
			(long long)b.copied, mc_wire_code(rc));
		return rc;
	}
	if (b.copied != s->count) {   /* one snapshot: cannot differ unless a key was unusable */
		fprintf(stderr, "medcore migrate-data: %s: %lld rows counted, %lld copied\n", s->name,
			(long long)s->count, (long long)b.copied);
		return MC_EINTERNAL;
	}
	printf("copied %-22s %lld rows\n", s->name, (long long)b.copied);
	return MC_OK;
}

/* PostgreSQL target: every identity/serial column's sequence goes past the copied keys. */
static int unit_sequences(struct store_txn *t, void *arg)
{
	(void)arg;
	static const char SQL_SEQS[] =
		"SELECT pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname),"
		" c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
		" JOIN pg_namespace n ON n.oid = c.relnamespace"
		" WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0"
		" AND NOT a.attisdropped"
		" AND pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)"
		" IS NOT NULL ORDER BY 2, 3";
	struct store_rows *r;
	int rc = store_query(t, SQL_SEQS, NULL, 0, &r);
	if (rc)
		return rc;
	struct buf sql;
	buf_init(&sql, 1u << 16);
	char **seqs = NULL, **stmts = NULL;
	int nseq = 0, nstmt = 0, st;
	while ((st = store_rows_next(r)) == 1) {
		buf_reset(&sql);
		buf_puts(&sql, "SELECT setval($1::regclass, COALESCE((SELECT max(");
		put_ident(&sql, store_rows_text(r, 2));
		buf_puts(&sql, ") FROM ");
		put_ident(&sql, store_rows_text(r, 1));
		rc = buf_puts(&sql, "), 0) + 1, false)");
		if (rc)
			break;
		char *one = mc_strdup(buf_str(&sql));
		stmts = mc_realloc(stmts, (size_t)(nstmt + 1) * sizeof(*stmts));
		stmts[nstmt++] = one;
		char *seq = mc_strdup(store_rows_text(r, 0));
		seqs = mc_realloc(seqs, (size_t)(nseq + 1) * sizeof(*seqs));
		seqs[nseq++] = seq;
	}
	store_rows_close(r);
	if (!rc && st < 0)
		rc = -st;
	for (int i = 0; i < nstmt && !rc; i++) {
		struct store_arg a = SA_TEXT(seqs[i]);
		int64_t v;
		rc = store_query_int(t, stmts[i], &a, 1, &v);
	}
	strv_free(seqs, nseq);
	strv_free(stmts, nstmt);
	buf_release(&sql);
	return rc;
}

static int unit_target_list(struct store_txn *t, void *arg)
{
	return unit_list(t, &((struct job *)arg)->d);
}

/* The whole job, in one read unit (one snapshot) of the source. */
static int unit_job(struct store_txn *t, void *arg)
{
	struct job *j = arg;
	int rc = unit_list(t, &j->s);
	if (rc) {
		fprintf(stderr, "medcore migrate-data: cannot list the source's tables: %s\n", mc_wire_code(rc));
		return rc;
	}
	rc = store_read(j->dst, unit_target_list, j);
	if (rc) {
		fprintf(stderr, "medcore migrate-data: cannot list the target's tables: %s\n", mc_wire_code(rc));
		return rc;
	}
	if (preflight(j))
		return MC_EINVAL;
	/* The target's order: parents before the tables whose foreign keys reference them. */
	for (size_t i = 0; i < j->d.n; i++) {
		const struct tab *s = side_find(&j->s, j->d.v[i].name);
		if (!s)
			continue;
		rc = copy_one(j, t, s, &j->d.v[i]);
		if (rc)
			return rc;
	}
	if (!strcmp(store_backend_name(j->dst), "postgres")) {
		rc = store_write(j->dst, unit_sequences, NULL);
		if (rc) {
			fprintf(stderr, "medcore migrate-data: moving the target's sequences: %s\n", mc_wire_code(rc));
			return rc;
		}
		printf("moved the target's identity sequences past the copied keys\n");
	}
	return MC_OK;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: medcore migrate-data --from URL --to URL\n\n"
		"Copies every table of a medcore database (resource versions, search indexes, users, tokens,\n"
		"care teams, the audit chain verbatim, the MRN counter, and the tables of every module) into an\n"
		"EMPTY target database, which is migrated to this binary's schema first. The copy is one\n"
		"consistent snapshot of the source. The vitals samples of a SQLite site live in their own\n"
		"database (<db>-vitals.db) and are not part of it.\n\n"
		"  --from URL   source, e.g. sqlite:medcore.db (must be at this binary's schema: medcore migrate)\n"
		"  --to URL     target, e.g. postgres://medcore:PASSWORD@db.internal:5432/medcore\n"
		"  --help       this text\n");
}

static int scheme_len(const char *url)
{
	const char *c = strchr(url, ':');
	int n = c ? (int)(c - url) : 0;
	return n > 16 ? 16 : n;
}

int cmd_migrate_data(int argc, char **argv)
{
	const char *from = NULL, *to = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--from") && i + 1 < argc) {
			from = argv[++i];
		} else if (!strncmp(argv[i], "--from=", 7)) {
			from = argv[i] + 7;
		} else if (!strcmp(argv[i], "--to") && i + 1 < argc) {
			to = argv[++i];
		} else if (!strncmp(argv[i], "--to=", 5)) {
			to = argv[i] + 5;
		} else {
			fprintf(stderr, "medcore migrate-data: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (!from || !to || !from[0] || !to[0]) {
		fprintf(stderr, "medcore migrate-data: --from and --to are required\n");
		usage(stderr);
		return 2;
	}
	if (!strcmp(from, to)) {
		fprintf(stderr, "medcore migrate-data: --from and --to name the same database\n");
		return 2;
	}

	struct store *src = NULL, *dst = NULL;
	if (cli_open_store(from, 0, &src))
		return 1;
	int cur = 0, latest = 0, rc = store_schema_version(src, &cur, &latest);
	if (rc || cur != latest) {
		fprintf(stderr, "medcore migrate-data: the source %.*s database is at schema %d, this binary at %d: run "
				"`medcore migrate` on it first\n", scheme_len(from), from, cur, latest);
		store_close(src);
		return 1;
	}
	if (cli_open_store(to, 1, &dst)) {
		store_close(src);
		return 1;
	}
	struct job j = {.src = src, .dst = dst, .s = {.s = src}, .d = {.s = dst}};
	rc = store_read(src, unit_job, &j);
	side_free(&j.s);
	side_free(&j.d);
	store_close(src);
	store_close(dst);
	if (rc)
		return 1;
	printf("migrate-data: done (%.*s -> %.*s)\n", scheme_len(from), from, scheme_len(to), to);
	return 0;
}
