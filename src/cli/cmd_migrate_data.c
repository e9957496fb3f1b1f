/* cli/cmd_migrate_data.c — `medcore migrate-data --from URL --to URL`: copy a whole medcore database
 * to another one, typically sqlite:PATH -> postgres://... (either direction works).
 *
 * Both databases are brought to this binary's schema first (the source must already be at it: we do
 * not change the source; the target is migrated). The target must be empty (no resources, versions,
 * users or audit records), else nothing is copied (exit 1). Every table is then copied row by row,
 * verbatim: all resource versions, the search-index rows, users, refresh tokens, care teams,
 * break-the-glass grants, the audit chain (seq, timestamps and hashes unchanged, so `medcore audit
 * verify` passes on the target), the MRN counter, settings (the token key: issued tokens stay valid)
 * and, when present, the tables of later migrations listed below. Identity sequences of a PostgreSQL
 * target are moved past the copied keys.
 *
 * Writes go in units of COPY_BATCH rows, each one durable transaction; a failure part-way leaves a
 * partial target: drop and recreate the target database and run again. Stop the servers writing to
 * the source first (the copy reads one snapshot per table).
 * Exit codes: 0 copied, 1 failed or target not empty, 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "core/mem.h"
#include "store/store.h"

#define COPY_BATCH 500

/* cols: the column list; types: one letter per column: i int, r real, t text, b blob. */
struct table_spec {
	const char *name, *cols, *types;
};

static const struct table_spec tables[] = {
	{"settings", "key, value", "tt"},
	{"users", "id, username, role, password_hash, active, patient_id, practitioner_id, totp_secret, totp_enabled, "
		  "totp_last_step, failed_count, locked_until_ms, must_change, created_ms", "ittti tttiiiiii" },
	{"refresh_tokens", "hash, user_id, family_id, created_ms, expires_ms, used_ms, revoked", "bitiiii"},
	{"care_team", "patient_id, user_id, active, added_by, added_ms", "tiiti"},
	{"break_glass", "id, user_id, patient_id, reason, granted_ms, expires_ms, reviewed", "iittiii"},
	{"resources", "rkey, type, id, version, last_updated_ms, deleted, patient_id", "ittiiit"},
	{"resource_versions", "rkey, version, last_updated_ms, deleted, json", "iiiit"},
	{"idx_string", "param, norm, rkey, raw", "ttit"},
	{"idx_token", "param, code, system, rkey, text", "tttit"},
	{"idx_date", "param, lo, hi, rkey", "tiii"},
	{"idx_ref", "param, ref_id, ref_type, rkey", "ttti"},
	{"idx_number", "param, value, rkey", "tri"},
	{"idx_quantity", "param, value, system, code, rkey", "trtti"},
	{"idx_uri", "param, uri, rkey", "tti"},
	{"audit", "seq, ts_ms, user_id, username, role, action, resource_type, resource_id, patient_id, outcome, "
		  "request_id, client_ip, reason, prev_hash, hash", "iiitttttti tttbb"},
	/* later migrations (0007, 0008): copied when both databases have them */
	{"oauth_clients", "client_id, user_id, name, secret_hash, scopes, active, created_ms", "tittti i"},
	{"export_jobs", "id, owner_user_id, owner_username, owner_role, owner_patient, owner_scope, kind, group_id, "
			"types, since_ms, request, status, progress, created_ms, tx_time_ms, finished_ms, output",
	 "titttttttitttiiit"},
	{"outbox", "seq, name, patient_id, key, payload, created_ms", "itttti"},
	{"consumer_offsets", "name, seq, updated_ms", "tii"},
	{"patient_directory", "patient_id, mrn, family_norm, birth_date, active, updated_seq", "ttttii"},
};

/* Identity columns of a PostgreSQL target: moved past the copied keys. */
static const char *const identities[][2] = {
	{"resources", "rkey"}, {"users", "id"}, {"break_glass", "id"}, {"outbox", "seq"},
};

/* The type letters without the spaces used above to line them up with long column lists. */
static void types_of(const char *spec, char *out, size_t outsz)
{
	size_t n = 0;
	for (; *spec && n + 1 < outsz; spec++)
		if (*spec != ' ')
			out[n++] = *spec;
	out[n] = '\0';
}

struct batch {
	struct store *dst;
	const char *insert;
	size_t ncols, nrows;
	struct store_arg *args;   /* nrows * ncols; text/blob bytes malloc'd */
	int64_t copied;
	int rc;
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->nrows * b->ncols; i++)
		if (b->args[i].type == STORE_TEXT || b->args[i].type == STORE_BLOB)
			free((void *)b->args[i].p);
	b->nrows = 0;
}

static int unit_insert(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	for (size_t r = 0; r < b->nrows; r++) {
		int rc = store_exec(t, b->insert, b->args + r * b->ncols, b->ncols);
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
	batch_clear(b);
	return rc;
}

struct copy_ctx {
	const struct table_spec *spec;
	const char *types;
	struct batch *b;
};

static int unit_copy(struct store_txn *t, void *arg)
{
	struct copy_ctx *c = arg;
	char sql[1024];
	snprintf(sql, sizeof(sql), "SELECT %s FROM %s", c->spec->cols, c->spec->name);
	struct store_rows *rows;
	int rc = store_query(t, sql, NULL, 0, &rows);
	if (rc)
		return rc;
	int st;
	while ((st = store_rows_next(rows)) == 1) {
		struct store_arg *a = c->b->args + c->b->nrows * c->b->ncols;
		for (size_t i = 0; i < c->b->ncols; i++) {
			int col = (int)i;
			if (store_rows_null(rows, col)) {
				a[i] = SA_NULL();
				continue;
			}
			switch (c->types[i]) {
			case 'i':
				a[i] = SA_INT(store_rows_int(rows, col));
				break;
			case 'r':
				a[i] = SA_REAL(store_rows_real(rows, col));
				break;
			case 'b': {
				size_t n = 0;
				const void *p = store_rows_blob(rows, col, &n);
				void *copy = mc_malloc(n ? n : 1);
				if (n)
					memcpy(copy, p, n);
				a[i] = SA_BLOB(copy, n);
				break;
			}
			default: {
				size_t n = 0;
				const void *p = store_rows_blob(rows, col, &n);   /* the text's bytes */
				char *copy = mc_malloc(n + 1);
				if (n)
					memcpy(copy, p, n);
				copy[n] = '\0';
				a[i] = SA_TEXTN(copy, n);
				break;
			}
			}
		}
		c->b->nrows++;
		if (c->b->nrows == COPY_BATCH) {
			rc = batch_flush(c->b);
			if (rc)
				break;
		}
	}
	store_rows_close(rows);
	if (rc)
		return rc;
	if (st < 0)
		return -st;
	return batch_flush(c->b);
}

struct probe {
	const char *sql;
	const char *table;
	int64_t count;
	bool exists;
};

static int unit_probe(struct store_txn *t, void *arg)
{
	struct probe *p = arg;
	struct store_arg a = SA_TEXT(p->table);
	int64_t one = 0;
	int rc = store_query_int(t, p->sql, &a, 1, &one);
	if (rc == MC_ENOTFOUND)
		return MC_OK;
	if (rc)
		return rc;
	p->exists = true;
	char sql[128];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", p->table);
	return store_query_int(t, sql, NULL, 0, &p->count);
}

/* Whether table exists in s, and its row count. */
static int probe_table(struct store *s, const char *table, bool *exists, int64_t *count)
{
	struct probe p = {.table = table};
	p.sql = !strcmp(store_backend_name(s), "postgres")
			? "SELECT 1 WHERE to_regclass($1::text) IS NOT NULL"
			: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1";
	int rc = store_read(s, unit_probe, &p);
	*exists = p.exists;
	*count = p.count;
	return rc;
}

static int unit_mrn_read(struct store_txn *t, void *arg)
{
	return store_query_int(t, "SELECT next FROM mrn_seq WHERE id = 1", NULL, 0, arg);
}

static int unit_mrn_write(struct store_txn *t, void *arg)
{
	struct store_arg a = SA_INT(*(int64_t *)arg);
	int rc = store_exec(t, "INSERT INTO mrn_seq (id, next) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET next = $1", &a,
			    1);
	return rc;
}

static int unit_sequences(struct store_txn *t, void *arg)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(identities) / sizeof(identities[0]); i++) {
		char sql[512];
		snprintf(sql, sizeof(sql),
			 "SELECT setval(pg_get_serial_sequence('%s', '%s'), COALESCE((SELECT max(%s) FROM %s), 0) + 1, false) "
			 "WHERE to_regclass('%s') IS NOT NULL",
			 identities[i][0], identities[i][1], identities[i][1], identities[i][0], identities[i][0]);
		int rc = store_exec(t, sql, NULL, 0);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: medcore migrate-data --from URL --to URL\n\n"
		"Copies a whole medcore database (every resource version, search indexes, users, tokens, care\n"
		"teams, the audit chain verbatim, the MRN counter) into an EMPTY target database, which is\n"
		"migrated to this binary's schema first. Stop the servers using the source before copying.\n\n"
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
	int ret = 1;
	static const char *const must_be_empty[] = {"resources", "resource_versions", "users", "audit"};
	for (size_t i = 0; i < sizeof(must_be_empty) / sizeof(must_be_empty[0]); i++) {
		bool ex;
		int64_t n = 0;
		rc = probe_table(dst, must_be_empty[i], &ex, &n);
		if (rc || n) {
			if (rc)
				fprintf(stderr, "medcore migrate-data: cannot read the target: %s\n", mc_wire_code(rc));
			else
				fprintf(stderr, "medcore migrate-data: the target is not empty (%s has %lld rows); nothing copied\n",
					must_be_empty[i], (long long)n);
			goto out;
		}
	}
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		const struct table_spec *spec = &tables[i];
		bool in_src, in_dst;
		int64_t nsrc = 0, ndst = 0;
		rc = probe_table(src, spec->name, &in_src, &nsrc);
		if (!rc)
			rc = probe_table(dst, spec->name, &in_dst, &ndst);
		if (rc) {
			fprintf(stderr, "medcore migrate-data: %s: %s\n", spec->name, mc_wire_code(rc));
			goto out;
		}
		if (!in_src || !in_dst) {
			if (in_src && nsrc) {
				fprintf(stderr, "medcore migrate-data: %s: the target has no such table\n", spec->name);
				goto out;
			}
			continue;
		}
		if (ndst) {
			fprintf(stderr, "medcore migrate-data: the target's %s is not empty; stopping\n", spec->name);
			goto out;
		}
		char types[64];
		types_of(spec->types, types, sizeof(types));
		size_t ncols = strlen(types), commas = 0;
		for (const char *p = spec->cols; *p; p++)
			commas += *p == ',';
		if (ncols != commas + 1) {   /* a table spec out of step with its column list */
			fprintf(stderr, "medcore migrate-data: internal error: %s spec\n", spec->name);
			goto out;
		}
		char insert[1536], ph[512];
		size_t off = 0;
		for (size_t k = 0; k < ncols; k++)
			off += (size_t)snprintf(ph + off, sizeof(ph) - off, "%s$%zu", k ? ", " : "", k + 1);
		snprintf(insert, sizeof(insert), "INSERT INTO %s (%s) VALUES (%s)", spec->name, spec->cols, ph);
		struct batch b = {.dst = dst, .insert = insert, .ncols = ncols};
		b.args = mc_calloc(COPY_BATCH * ncols, sizeof(*b.args));
		struct copy_ctx c = {spec, types, &b};
		rc = store_read(src, unit_copy, &c);
		batch_clear(&b);
		free(b.args);
		if (rc) {
			fprintf(stderr, "medcore migrate-data: copying %s failed after %lld rows: %s\n", spec->name,
				(long long)b.copied, mc_wire_code(rc));
			goto out;
		}
		if (b.copied != nsrc)
			fprintf(stderr, "medcore migrate-data: warning: %s had %lld rows when counted, %lld copied (is a "
					"server still writing to the source?)\n", spec->name, (long long)nsrc, (long long)b.copied);
		printf("copied %-18s %lld rows\n", spec->name, (long long)b.copied);
	}
	int64_t next = 1;
	rc = store_read(src, unit_mrn_read, &next);
	if (rc == MC_OK || rc == MC_ENOTFOUND)
		rc = store_write(dst, unit_mrn_write, &next);
	if (rc == MC_OK && !strcmp(store_backend_name(dst), "postgres"))
		rc = store_write(dst, unit_sequences, NULL);
	if (rc) {
		fprintf(stderr, "medcore migrate-data: MRN counter / sequences: %s\n", mc_wire_code(rc));
		goto out;
	}
	printf("copied mrn counter (next %lld)\nmigrate-data: done (%.*s -> %.*s)\n", (long long)next, scheme_len(from),
	       from, scheme_len(to), to);
	ret = 0;
out:
	store_close(src);
	store_close(dst);
	return ret;
}
