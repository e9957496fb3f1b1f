/* fhir/store.c — the versioned resource store (fhir/store.h) over store/store.h.
 *
 * A write: stamp id/meta into the resource, serialize once (mcjson_dump keeps decimal lexemes),
 * append a resource_versions row, insert or update the resources row (current version, patient
 * compartment owner), then replace the resource's index rows (fhir_index_extract). Reads return the
 * stored bytes untouched: nothing is parsed or re-serialized on the read path.
 * Schema: sql/sqlite/0002_fhir.sql.
 */
#include "fhir/store.h"

#include <pthread.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "events/events.h"
#include "fhir/resource.h"
#include "fhir/search.h"
#include "store/store.h"

#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* Benchmark-only switch (bench/store_create.c declares it): when true, writes store no index rows,
 * so a benchmark can measure what indexing costs. Never set by the server. */
extern bool fhir_store_bench_no_index;
bool fhir_store_bench_no_index;

/* Put resourceType, id and meta (versionId, lastUpdated first) at the front of res, keeping the
 * order of every other element. FHIR's JSON convention lists them first; readers expect it. */
static void stamp(json_t *res, const char *type, const char *id, int64_t version, int64_t lu_ms)
{
	char vbuf[24], ts[32];
	snprintf(vbuf, sizeof(vbuf), "%lld", (long long)version);
	mctime_format_ms(lu_ms, ts);

	json_t *meta = json_object();
	json_object_set_new(meta, "versionId", json_string(vbuf));
	json_object_set_new(meta, "lastUpdated", json_string(ts));
	json_t *old_meta = json_object_get(res, "meta");
	if (json_is_object(old_meta)) {
		const char *k;
		json_t *v;
		json_object_foreach(old_meta, k, v) {
			if (strcmp(k, "versionId") != 0 && strcmp(k, "lastUpdated") != 0)
				json_object_set(meta, k, v);
		}
	}
	json_t *n = json_object();
	json_object_set_new(n, "resourceType", json_string(type));
	json_object_set_new(n, "id", json_string(id));
	json_object_set_new(n, "meta", meta);
	const char *k;
	json_t *v;
	json_object_foreach(res, k, v) {
		if (strcmp(k, "resourceType") != 0 && strcmp(k, "id") != 0 && strcmp(k, "meta") != 0)
			json_object_set(n, k, v);
	}
	json_object_clear(res);
	json_object_update(res, n);
	json_decref(n);
}

/* ---- index rows ------------------------------------------------------------------------------
 *
 * A resource's index rows are collected first and then written with one multi-row INSERT per
 * index table (chunks of at most IDX_CHUNK rows) instead of one statement per row: each statement
 * costs the writer a prepare-cache lookup, binding, a VDBE run and its reset, whatever its size.
 * The SQL of every (table, row count) pair is built once and shared, so the prepared-statement
 * caches hold at most IDX_KINDS x IDX_CHUNK of them. rkey is bound once as $1 and every tuple
 * refers to it. Duplicates (the same value twice in one resource, even inside one statement) are
 * ignored by ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike. */

#define IDX_CHUNK 16
#define IDX_ROWS_MAX 100000   /* a resource with more index rows than this is refused (MC_ETOOBIG) */

enum idx_kind { IK_STRING, IK_TOKEN, IK_DATE, IK_REF, IK_NUMBER, IK_QUANTITY, IK_URI, IDX_KINDS };

static const struct {
	const char *head;   /* INSERT INTO table (columns) VALUES */
	const char *cols;   /* one row's values in column order: 'a' its next own parameter, 'k' the rkey ($1) */
	int nargs;          /* parameters per row besides the shared $1 (the number of 'a's) */
} idx_sql[IDX_KINDS] = {
	[IK_STRING] = {"INSERT INTO idx_string (param, norm, rkey, raw) VALUES ", "aaka", 3},
	[IK_TOKEN] = {"INSERT INTO idx_token (param, code, system, rkey, text) VALUES ", "aaaka", 4},
	[IK_DATE] = {"INSERT INTO idx_date (param, lo, hi, rkey) VALUES ", "aaak", 3},
	[IK_REF] = {"INSERT INTO idx_ref (param, ref_id, ref_type, rkey) VALUES ", "aaak", 3},
	[IK_NUMBER] = {"INSERT INTO idx_number (param, value, rkey) VALUES ", "aak", 2},
	[IK_QUANTITY] = {"INSERT INTO idx_quantity (param, value, system, code, rkey) VALUES ",
			 "aaaak", 4},
	[IK_URI] = {"INSERT INTO idx_uri (param, uri, rkey) VALUES ", "aak", 2},
};

static char *idx_stmt[IDX_KINDS][IDX_CHUNK + 1];   /* [kind][rows]: built once, never freed */
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void idx_build(void)
{
	for (int k = 0; k < IDX_KINDS; k++) {
		for (int n = 1; n <= IDX_CHUNK; n++) {
			struct buf b = BUF_INIT;
			buf_puts(&b, idx_sql[k].head);
			int p = 2;   /* the next row parameter: $2 .. */
			for (int r = 0; r < n; r++) {
				buf_puts(&b, r ? ", (" : "(");
				for (const char *col = idx_sql[k].cols; *col; col++) {
					if (col != idx_sql[k].cols)
						buf_puts(&b, ", ");
					if (*col == 'k')
						buf_puts(&b, "$1");
					else
						buf_printf(&b, "$%d", p++);
				}
				buf_putc(&b, ')');
			}
			buf_puts(&b, " ON CONFLICT DO NOTHING");
			idx_stmt[k][n] = buf_detach(&b, NULL);
		}
	}
}

/* One pending row: its arguments besides rkey (strings copied into the batch's arena). */
struct idx_pending {
	struct store_arg a[4];
};

struct idx_ctx {
	struct arena *a;
	struct idx_pending *rows[IDX_KINDS];
	size_t n[IDX_KINDS], cap[IDX_KINDS];
	size_t total;
};

static const char *nz(const char *s)
{
	return s ? s : "";
}

static struct store_arg dup_text(struct arena *a, const char *s)
{
	return s ? SA_TEXT(arena_strdup(a, s)) : SA_NULL();
}

/* Collect one index row (fhir_index_extract's callback). */
static int index_row(const struct fhir_index_row *row, void *arg)
{
	struct idx_ctx *c = arg;
	if (!row->param || row->param[0] == '\0')
		return MC_OK;
	/* _id and _lastUpdated are columns of resources, searched there */
	if (strcmp(row->param, "_id") == 0 || strcmp(row->param, "_lastUpdated") == 0)
		return MC_OK;
	struct idx_pending p;
	enum idx_kind k;
	struct arena *a = c->a;
	switch (row->type) {
	case FHIR_SP_STRING:
		if (!row->text)
			return MC_OK;
		k = IK_STRING;
		p = (struct idx_pending){{dup_text(a, row->param), dup_text(a, row->text),
					  dup_text(a, row->raw ? row->raw : row->text)}};
		break;
	case FHIR_SP_TOKEN:
		if (!row->code)
			return MC_OK;
		k = IK_TOKEN;
		p = (struct idx_pending){{dup_text(a, row->param), dup_text(a, row->code), dup_text(a, nz(row->system)),
					  dup_text(a, row->text)}};
		break;
	case FHIR_SP_DATE:
		k = IK_DATE;
		p = (struct idx_pending){{dup_text(a, row->param), SA_INT(row->lo), SA_INT(row->hi)}};
		break;
	case FHIR_SP_REFERENCE:
		if (!row->ref_id)
			return MC_OK;
		k = IK_REF;
		p = (struct idx_pending){{dup_text(a, row->param), dup_text(a, row->ref_id), dup_text(a, nz(row->ref_type))}};
		break;
	case FHIR_SP_NUMBER:
		k = IK_NUMBER;
		p = (struct idx_pending){{dup_text(a, row->param), SA_REAL(row->num)}};
		break;
	case FHIR_SP_QUANTITY:
		k = IK_QUANTITY;
		p = (struct idx_pending){{dup_text(a, row->param), SA_REAL(row->num), dup_text(a, nz(row->system)),
					  dup_text(a, nz(row->code))}};
		break;
	case FHIR_SP_URI:
		if (!row->text)
			return MC_OK;
		k = IK_URI;
		p = (struct idx_pending){{dup_text(a, row->param), dup_text(a, row->text)}};
		break;
	default:
		return MC_OK;
	}
	if (c->total >= IDX_ROWS_MAX)
		return MC_ETOOBIG;
	if (c->n[k] == c->cap[k]) {
		size_t cap = c->cap[k] ? c->cap[k] * 2 : 8;
		struct idx_pending *nr = arena_alloc(a, cap * sizeof(*nr));
		if (c->n[k])
			memcpy(nr, c->rows[k], c->n[k] * sizeof(*nr));
		c->rows[k] = nr;
		c->cap[k] = cap;
	}
	c->rows[k][c->n[k]++] = p;
	c->total++;
	return MC_OK;
}

/* Extract res's index rows and insert them for rkey. */
static int index_write(struct store_txn *t, const char *type, const json_t *res, int64_t rkey)
{
	pthread_once(&idx_once, idx_build);
	struct idx_ctx c = {.a = arena_create()};
	int rc = fhir_index_extract(type, res, index_row, &c);
	struct store_arg args[1 + IDX_CHUNK * 4];
	args[0] = SA_INT(rkey);
	for (int k = 0; k < IDX_KINDS && rc == MC_OK; k++) {
		size_t w = (size_t)idx_sql[k].nargs;
		for (size_t i = 0; i < c.n[k] && rc == MC_OK; i += IDX_CHUNK) {
			size_t n = c.n[k] - i < IDX_CHUNK ? c.n[k] - i : IDX_CHUNK;
			for (size_t r = 0; r < n; r++)
				memcpy(&args[1 + r * w], c.rows[k][i + r].a, w * sizeof(args[0]));
			rc = store_exec(t, idx_stmt[k][n], args, 1 + n * w);
		}
	}
	arena_destroy(c.a);
	return rc;
}

static int index_clear(struct store_txn *t, int64_t rkey)
{
	static const char *const del[] = {
		"DELETE FROM idx_string WHERE rkey = $1", "DELETE FROM idx_token WHERE rkey = $1",
		"DELETE FROM idx_date WHERE rkey = $1",   "DELETE FROM idx_ref WHERE rkey = $1",
		"DELETE FROM idx_number WHERE rkey = $1", "DELETE FROM idx_quantity WHERE rkey = $1",
		"DELETE FROM idx_uri WHERE rkey = $1",
	};
	struct store_arg a[] = {SA_INT(rkey)};
	for (size_t i = 0; i < NARGS(del); i++) {
		int rc = store_exec(t, del[i], a, 1);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static void meta_fill(struct fhir_meta *m, const char *type, const char *id, int64_t version, int64_t lu,
		      bool deleted, const char *pid)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->type, sizeof(m->type), "%s", type);
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->version = version;
	m->last_updated_ms = lu;
	m->deleted = deleted;
	snprintf(m->patient_id, sizeof(m->patient_id), "%s", pid ? pid : "");
}

/* The domain event of a write, in the same unit: fhir.<type>.created|updated|deleted with
 * {type, id, version} (ids only, never resource content). Keyed by the compartment owner. */
static int emit_write(struct store_txn *t, const char *what, const struct fhir_meta *m)
{
	char name[EVENTS_NAME_MAX + 1];
	snprintf(name, sizeof(name), "fhir.%s.%s", m->type, what);
	const char *pid = m->patient_id[0] ? m->patient_id : !strcmp(m->type, "Patient") ? m->id : NULL;
	json_t *payload = json_object();
	json_object_set_new(payload, "type", json_string(m->type));
	json_object_set_new(payload, "id", json_string(m->id));
	json_object_set_new(payload, "version", json_integer((json_int_t)m->version));
	return events_emit(t, name, pid, NULL, NULL, payload);
}

/* Stamp, serialize, and write version `version` of an existing or new row. rkey 0 = insert the
 * resources row. */
static int write_version(struct store_txn *t, const char *type, const char *id, json_t *res, int64_t rkey,
			 int64_t version, struct fhir_meta *out)
{
	int64_t now = mctime_now_ms();
	stamp(res, type, id, version, now);
	char pid[65] = "";
	if (!fhir_patient_of(type, res, pid))
		pid[0] = '\0';
	struct buf js = BUF_INIT;
	int rc = mcjson_dump(res, &js);
	if (rc) {
		buf_release(&js);
		return rc;
	}
	struct store_arg pid_arg = pid[0] ? SA_TEXT(pid) : SA_NULL();
	if (rkey == 0) {
		struct store_arg a[] = {SA_TEXT(type), SA_TEXT(id), SA_INT(version), SA_INT(now), pid_arg};
		struct store_rows *rows = NULL;
		rc = store_query(t,
				 "INSERT INTO resources (type, id, version, last_updated_ms, deleted, patient_id) "
				 "VALUES ($1, $2, $3, $4, 0, $5) RETURNING rkey",
				 a, NARGS(a), &rows);
		if (rc == MC_OK) {
			int st = store_rows_next(rows);
			if (st == 1)
				rkey = store_rows_int(rows, 0);
			else
				rc = st < 0 ? -st : MC_EINTERNAL;
		}
		store_rows_close(rows);
	} else {
		/* Conditional on the version read: with several writers (PostgreSQL, several processes)
		 * exactly one update of a version wins; a loser changes nothing and gets MC_EPRECOND. */
		struct store_arg a[] = {SA_INT(version), SA_INT(now), pid_arg, SA_INT(rkey), SA_INT(version - 1)};
		rc = store_exec(t,
				"UPDATE resources SET version = $1, last_updated_ms = $2, deleted = 0, patient_id = $3 "
				"WHERE rkey = $4 AND version = $5",
				a, NARGS(a));
		if (rc == MC_OK && store_changes(t) != 1)
			rc = MC_EPRECOND;
		if (rc == MC_OK)
			rc = index_clear(t, rkey);
	}
	if (rc == MC_OK) {
		struct store_arg a[] = {SA_INT(rkey), SA_INT(version), SA_INT(now), SA_TEXTN(js.data, js.len)};
		rc = store_exec(t,
				"INSERT INTO resource_versions (rkey, version, last_updated_ms, deleted, json) "
				"VALUES ($1, $2, $3, 0, $4)",
				a, NARGS(a));
	}
	buf_release(&js);
	if (rc == MC_OK && !fhir_store_bench_no_index)
		rc = index_write(t, type, res, rkey);
	struct fhir_meta m;
	if (rc == MC_OK) {
		meta_fill(&m, type, id, version, now, false, pid);
		rc = emit_write(t, version == 1 ? "created" : "updated", &m);
	}
	if (rc == MC_OK && out)
		*out = m;
	return rc;
}

int fhir_store_create(struct store_txn *t, const char *type, json_t *res, struct fhir_meta *out)
{
	char id[MCID_LEN + 1 > 65 ? MCID_LEN + 1 : 65];
	const char *given = mcjson_str(res, "id");
	if (!json_is_object(res) || !type || !fhir_type_is_resource(type))
		return MC_EINVAL;
	if (given) {
		if (!mcid_valid_fhir_id(given))
			return MC_EINVAL;
		snprintf(id, sizeof(id), "%s", given);
	} else {
		mcid_new(id);
	}
	return write_version(t, type, id, res, 0, 1, out);
}

/* The current row of type/id: MC_OK with its fields, or MC_ENOTFOUND. */
static int current_row(struct store_txn *t, const char *type, const char *id, int64_t *rkey, int64_t *version,
		       int64_t *lu, bool *deleted, char pid[65])
{
	struct store_arg a[] = {SA_TEXT(type), SA_TEXT(id)};
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT rkey, version, last_updated_ms, deleted, patient_id FROM resources "
			     "WHERE type = $1 AND id = $2",
			     a, NARGS(a), &rows);
	if (rc)
		return rc;
	int st = store_rows_next(rows);
	if (st == 1) {
		*rkey = store_rows_int(rows, 0);
		*version = store_rows_int(rows, 1);
		*lu = store_rows_int(rows, 2);
		*deleted = store_rows_int(rows, 3) != 0;
		const char *p = store_rows_null(rows, 4) ? NULL : store_rows_text(rows, 4);
		snprintf(pid, 65, "%s", p ? p : "");
		rc = MC_OK;
	} else {
		rc = st < 0 ? -st : MC_ENOTFOUND;
	}
	store_rows_close(rows);
	return rc;
}

int fhir_store_update(struct store_txn *t, const char *type, const char *id, json_t *res, int64_t if_match,
		      struct fhir_meta *out, bool *created)
{
	if (created)
		*created = false;
	if (!json_is_object(res) || !type || !id || !fhir_type_is_resource(type) || !mcid_valid_fhir_id(id))
		return MC_EINVAL;
	int64_t rkey, version, lu;
	bool deleted;
	char pid[65];
	int rc = current_row(t, type, id, &rkey, &version, &lu, &deleted, pid);
	if (rc == MC_ENOTFOUND) {
		if (if_match)
			return MC_EPRECOND;
		if (created)
			*created = true;
		return write_version(t, type, id, res, 0, 1, out);
	}
	if (rc)
		return rc;
	if (if_match && if_match != version)
		return MC_EPRECOND;
	return write_version(t, type, id, res, rkey, version + 1, out);
}

int fhir_store_delete(struct store_txn *t, const char *type, const char *id, int64_t if_match,
		      struct fhir_meta *out)
{
	if (!type || !id)
		return MC_EINVAL;
	int64_t rkey, version, lu;
	bool deleted;
	char pid[65];
	int rc = current_row(t, type, id, &rkey, &version, &lu, &deleted, pid);
	if (rc)
		return rc;
	if (deleted) {
		if (out)
			meta_fill(out, type, id, version, lu, true, pid);
		return MC_OK;
	}
	if (if_match && if_match != version)
		return MC_EPRECOND;
	int64_t now = mctime_now_ms();
	version++;
	struct store_arg a[] = {SA_INT(version), SA_INT(now), SA_INT(rkey), SA_INT(version - 1)};
	rc = store_exec(t,
			"UPDATE resources SET version = $1, last_updated_ms = $2, deleted = 1 WHERE rkey = $3 AND version = $4",
			a, NARGS(a));
	if (rc == MC_OK && store_changes(t) != 1)
		rc = MC_EPRECOND;   /* a concurrent writer got there first (see write_version) */
	if (rc == MC_OK) {
		struct store_arg b[] = {SA_INT(rkey), SA_INT(version), SA_INT(now)};
		rc = store_exec(t,
				"INSERT INTO resource_versions (rkey, version, last_updated_ms, deleted, json) "
				"VALUES ($1, $2, $3, 1, NULL)",
				b, NARGS(b));
	}
	if (rc == MC_OK)
		rc = index_clear(t, rkey);
	struct fhir_meta m;
	if (rc == MC_OK) {
		meta_fill(&m, type, id, version, now, true, pid);
		rc = emit_write(t, "deleted", &m);
	}
	if (rc == MC_OK && out)
		*out = m;
	return rc;
}

/* Copy the JSON column into the arena (NULL for a tombstone). */
static void take_json(struct store_rows *rows, int col, struct arena *a, struct fhir_stored *o)
{
	o->json = NULL;
	o->json_len = 0;
	if (store_rows_null(rows, col))
		return;
	size_t n = 0;
	const void *p = store_rows_blob(rows, col, &n);
	if (!p) {
		p = "";
		n = 0;
	}
	o->json = arena_strndup(a, p, n);
	o->json_len = n;
}

int fhir_store_read(struct store_txn *t, struct arena *a, const char *type, const char *id, int64_t version,
		    struct fhir_stored *out)
{
	memset(out, 0, sizeof(*out));
	if (!type || !id)
		return MC_EINVAL;
	struct store_rows *rows = NULL;
	int rc;
	if (version == 0) {
		struct store_arg args[] = {SA_TEXT(type), SA_TEXT(id)};
		rc = store_query(t,
				 "SELECT r.version, r.last_updated_ms, r.deleted, r.patient_id, v.json "
				 "FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND v.version = r.version "
				 "WHERE r.type = $1 AND r.id = $2",
				 args, NARGS(args), &rows);
	} else {
		struct store_arg args[] = {SA_TEXT(type), SA_TEXT(id), SA_INT(version)};
		rc = store_query(t,
				 "SELECT v.version, v.last_updated_ms, v.deleted, r.patient_id, v.json "
				 "FROM resources r JOIN resource_versions v ON v.rkey = r.rkey AND v.version = $3 "
				 "WHERE r.type = $1 AND r.id = $2",
				 args, NARGS(args), &rows);
	}
	if (rc)
		return rc;
	int st = store_rows_next(rows);
	if (st == 1) {
		const char *pid = store_rows_null(rows, 3) ? NULL : store_rows_text(rows, 3);
		meta_fill(&out->meta, type, id, store_rows_int(rows, 0), store_rows_int(rows, 1),
			  store_rows_int(rows, 2) != 0, pid);
		take_json(rows, 4, a, out);
		rc = out->meta.deleted ? MC_EGONE : MC_OK;
	} else {
		rc = st < 0 ? -st : MC_ENOTFOUND;
	}
	store_rows_close(rows);
	return rc;
}

int fhir_store_history_ex(struct store_txn *t, struct arena *a, const char *type, const char *id,
			  int64_t since_ms, int offset, int count, const struct fhir_access *acc,
			  struct fhir_stored **out, int *n, int64_t *total)
{
	*out = NULL;
	*n = 0;
	if (total)
		*total = 0;
	if (offset < 0)
		offset = 0;
	if (count < 0)
		count = 0;
	if (count > FHIR_STORE_PAGE_MAX)
		count = FHIR_STORE_PAGE_MAX;
	if (id && !type)
		return MC_EINVAL;

	struct fhir_sql q;
	fhir_sql_init(&q);
	int rc = buf_puts(&q.sql, " FROM resource_versions v JOIN resources r ON r.rkey = v.rkey WHERE 1 = 1");
	if (!rc && type) {
		rc = buf_puts(&q.sql, " AND r.type = ");
		if (!rc)
			rc = fhir_sql_arg(&q, SA_TEXT(type));
	}
	if (!rc && id) {
		rc = buf_puts(&q.sql, " AND r.id = ");
		if (!rc)
			rc = fhir_sql_arg(&q, SA_TEXT(id));
	}
	if (!rc && since_ms > 0) {
		rc = buf_puts(&q.sql, " AND v.last_updated_ms >= ");
		if (!rc)
			rc = fhir_sql_arg(&q, SA_INT(since_ms));
	}
	if (!rc && acc)
		rc = fhir_access_sql(&q, acc, type);
	if (rc)
		goto done;

	if (total) {
		struct buf cs = BUF_INIT;
		rc = buf_printf(&cs, "SELECT count(*)%s", buf_str(&q.sql));
		if (!rc)
			rc = store_query_int(t, cs.data, q.args, q.nargs, total);
		buf_release(&cs);
		if (rc)
			goto done;
	}
	if (count == 0)
		goto done;
	struct buf s = BUF_INIT;
	rc = buf_printf(&s,
			"SELECT r.type, r.id, v.version, v.last_updated_ms, v.deleted, r.patient_id, v.json%s "
			"ORDER BY v.last_updated_ms DESC, v.rkey DESC, v.version DESC LIMIT %d OFFSET %d",
			buf_str(&q.sql), count, offset);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, s.data, q.args, q.nargs, &rows);
	buf_release(&s);
	if (rc)
		goto done;
	struct fhir_stored *v = arena_zalloc(a, sizeof(*v) * (size_t)count);
	int k = 0, st = 0;
	while (k < count) {
		st = store_rows_next(rows);
		if (st != 1)
			break;
		const char *pid = store_rows_null(rows, 5) ? NULL : store_rows_text(rows, 5);
		meta_fill(&v[k].meta, store_rows_text(rows, 0), store_rows_text(rows, 1), store_rows_int(rows, 2),
			  store_rows_int(rows, 3), store_rows_int(rows, 4) != 0, pid);
		take_json(rows, 6, a, &v[k]);
		k++;
	}
	if (st < 0)
		rc = -st;
	store_rows_close(rows);
	*out = v;
	*n = k;
done:
	fhir_sql_release(&q);
	return rc;
}

int fhir_store_history(struct store_txn *t, struct arena *a, const char *type, const char *id, int64_t since_ms,
		       int offset, int count, struct fhir_stored **out, int *n, int64_t *total)
{
	return fhir_store_history_ex(t, a, type, id, since_ms, offset, count, NULL, out, n, total);
}
