/* tests/unit/test_fhir_store.c — the versioned resource store (fhir/store.h) on a temporary SQLite
 * database: versions, tombstones, If-Match, history order, index rows replaced on update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "fhir/resource.h"
#include "fhir/search.h"
#include "fhir/store.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char url[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_fhir_store.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	int applied = 0;
	if (store_open(f->url, &f->s) != MC_OK || store_migrate(f->s, &applied) != MC_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/t.db%s", f->dir, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static json_t *parse(const char *s)
{
	json_t *j = NULL;
	assert_int_equal(mcjson_parse(s, strlen(s), &j, NULL), MC_OK);
	return j;
}

/* ---- units of work ---- */

struct op {
	const char *type, *id;
	json_t *res;
	int64_t if_match, version;
	struct fhir_meta meta;
	bool created;
	struct arena *a;
	struct fhir_stored st;
	struct fhir_stored *hist;
	int n;
	int64_t total;
	const char *sql;
	struct store_arg args[4];
	size_t nargs;
	int64_t count;
};

static int u_create(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return fhir_store_create(t, o->type, o->res, &o->meta);
}
static int u_update(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return fhir_store_update(t, o->type, o->id, o->res, o->if_match, &o->meta, &o->created);
}
static int u_delete(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return fhir_store_delete(t, o->type, o->id, o->if_match, &o->meta);
}
static int u_read(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return fhir_store_read(t, o->a, o->type, o->id, o->version, &o->st);
}
static int u_hist(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return fhir_store_history(t, o->a, o->type, o->id, 0, 0, 50, &o->hist, &o->n, &o->total);
}
static int u_count(struct store_txn *t, void *arg)
{
	struct op *o = arg;
	return store_query_int(t, o->sql, o->args, o->nargs, &o->count);
}

static int64_t count_sql(struct fx *f, const char *sql, const char *a1, const char *a2)
{
	struct op o = {.sql = sql};
	if (a1)
		o.args[o.nargs++] = SA_TEXT(a1);
	if (a2)
		o.args[o.nargs++] = SA_TEXT(a2);
	assert_int_equal(store_read(f->s, u_count, &o), MC_OK);
	return o.count;
}

static const char *PATIENT =
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"García\",\"given\":[\"José\"]}],"
	"\"gender\":\"male\",\"birthDate\":\"1980-05-01\","
	"\"identifier\":[{\"system\":\"urn:test:mrn\",\"value\":\"A1\"}]}";

static void create_patient(struct fx *f, struct fhir_meta *m)
{
	struct op o = {.type = "Patient", .res = parse(PATIENT)};
	assert_int_equal(store_write(f->s, u_create, &o), MC_OK);
	*m = o.meta;
	json_decref(o.res);
}

static void test_create_read(void **state)
{
	struct fx *f = *state;
	struct fhir_meta m;
	create_patient(f, &m);
	assert_int_equal(m.version, 1);
	assert_int_equal(strlen(m.id), 36);
	assert_string_equal(m.type, "Patient");
	assert_string_equal(m.patient_id, m.id); /* a Patient is its own compartment */
	assert_false(m.deleted);

	struct op r = {.type = "Patient", .id = m.id, .a = arena_create()};
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);
	assert_non_null(r.st.json);
	assert_int_equal(r.st.meta.version, 1);
	assert_int_equal(r.st.meta.last_updated_ms, m.last_updated_ms);
	/* id and meta stamped, first in the object */
	assert_non_null(strstr(r.st.json, "{\"resourceType\":\"Patient\",\"id\":\""));
	assert_non_null(strstr(r.st.json, "\"meta\":{\"versionId\":\"1\",\"lastUpdated\":\""));
	assert_int_equal(strlen(r.st.json), r.st.json_len);
	json_t *back = parse(r.st.json);
	assert_string_equal(mcjson_str(back, "id"), m.id);
	json_decref(back);

	/* absent */
	struct op x = {.type = "Patient", .id = "nope", .a = r.a};
	assert_int_equal(store_read(f->s, u_read, &x), MC_ENOTFOUND);
	x.type = "Observation";
	x.id = m.id;
	assert_int_equal(store_read(f->s, u_read, &x), MC_ENOTFOUND);
	arena_destroy(r.a);
}

static void test_decimal_and_patient_of(void **state)
{
	struct fx *f = *state;
	struct fhir_meta pm;
	create_patient(f, &pm);
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		 "\"subject\":{\"reference\":\"Patient/%s\"},\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg\"}}",
		 pm.id);
	struct op o = {.type = "Observation", .res = parse(body)};
	assert_int_equal(store_write(f->s, u_create, &o), MC_OK);
	json_decref(o.res);
	assert_string_equal(o.meta.patient_id, pm.id);
	struct op r = {.type = "Observation", .id = o.meta.id, .a = arena_create()};
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);
	assert_non_null(strstr(r.st.json, "\"value\":1.50"));
	assert_string_equal(r.st.meta.patient_id, pm.id);
	arena_destroy(r.a);
}

static void test_update_versions_if_match(void **state)
{
	struct fx *f = *state;
	struct fhir_meta m;
	create_patient(f, &m);

	/* stale If-Match: nothing changes */
	struct op u = {.type = "Patient", .id = m.id, .if_match = 7,
		       .res = parse("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Other\"}]}")};
	assert_int_equal(store_write(f->s, u_update, &u), MC_EPRECOND);
	/* matching If-Match: version 2 */
	u.if_match = 1;
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);
	assert_false(u.created);
	assert_int_equal(u.meta.version, 2);
	assert_string_equal(mcjson_str(u.res, "id"), m.id);
	/* the same If-Match again is now stale */
	assert_int_equal(store_write(f->s, u_update, &u), MC_EPRECOND);
	/* unconditional: version 3 */
	u.if_match = 0;
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);
	assert_int_equal(u.meta.version, 3);
	json_decref(u.res);

	struct op r = {.type = "Patient", .id = m.id, .a = arena_create()};
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);
	assert_int_equal(r.st.meta.version, 3);
	assert_non_null(strstr(r.st.json, "\"versionId\":\"3\""));
	r.version = 1;
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);
	assert_non_null(strstr(r.st.json, "Garc"));
	r.version = 9;
	assert_int_equal(store_read(f->s, u_read, &r), MC_ENOTFOUND);
	arena_destroy(r.a);

	/* update of an absent id creates it with that id; with If-Match it is a failed precondition */
	struct op c = {.type = "Patient", .id = "client-chosen-1", .if_match = 1,
		       .res = parse("{\"resourceType\":\"Patient\",\"id\":\"client-chosen-1\"}")};
	assert_int_equal(store_write(f->s, u_update, &c), MC_EPRECOND);
	c.if_match = 0;
	assert_int_equal(store_write(f->s, u_update, &c), MC_OK);
	assert_true(c.created);
	assert_int_equal(c.meta.version, 1);
	assert_string_equal(c.meta.id, "client-chosen-1");
	json_decref(c.res);
	/* bad id */
	struct op bad = {.type = "Patient", .id = "bad id!", .res = parse("{\"resourceType\":\"Patient\"}")};
	assert_int_equal(store_write(f->s, u_update, &bad), MC_EINVAL);
	json_decref(bad.res);
}

static void test_index_rows_replaced(void **state)
{
	struct fx *f = *state;
	struct fhir_meta m;
	create_patient(f, &m);
	const char *q = "SELECT count(*) FROM idx_string s JOIN resources r ON r.rkey = s.rkey "
			"WHERE r.id = $1 AND s.param = 'family' AND s.norm = $2";
	assert_int_equal(count_sql(f, q, m.id, "garcia"), 1);
	struct op u = {.type = "Patient", .id = m.id,
		       .res = parse("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\"}]}")};
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);
	json_decref(u.res);
	assert_int_equal(count_sql(f, q, m.id, "garcia"), 0);
	assert_int_equal(count_sql(f, q, m.id, "smith"), 1);
	/* the old birthDate and identifier are gone too */
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_date d JOIN resources r ON r.rkey = d.rkey WHERE r.id = $1",
				   m.id, NULL),
			 0);
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_token d JOIN resources r ON r.rkey = d.rkey "
				   "WHERE r.id = $1 AND d.param = 'identifier'",
				   m.id, NULL),
			 0);
}

/* Index rows go in as multi-row INSERTs in chunks (fhir/store.c IDX_CHUNK = 16): 40 identifiers make
 * 40 token rows over three chunks, and a value repeated inside one resource is stored once. */
static void test_index_rows_many_and_duplicates(void **state)
{
	struct fx *f = *state;
	json_t *p = parse("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Dup\"},{\"family\":\"Dup\"}]}");
	json_t *ids = json_array();
	for (int i = 0; i < 40; i++) {
		char v[16];
		snprintf(v, sizeof(v), "V%02d", i);
		json_array_append_new(ids, json_pack("{s:s, s:s}", "system", "urn:test:many", "value", v));
	}
	json_array_append_new(ids, json_pack("{s:s, s:s}", "system", "urn:test:many", "value", "V07"));   /* dup */
	json_object_set_new(p, "identifier", ids);
	struct op o = {.type = "Patient", .res = p};
	assert_int_equal(store_write(f->s, u_create, &o), MC_OK);
	json_decref(p);
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_token d JOIN resources r ON r.rkey = d.rkey "
				   "WHERE r.id = $1 AND d.param = 'identifier' AND d.system = 'urn:test:many'",
				   o.meta.id, NULL),
			 40);
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_token d JOIN resources r ON r.rkey = d.rkey "
				   "WHERE r.id = $1 AND d.param = 'identifier' AND d.code = $2",
				   o.meta.id, "V39"),
			 1);
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_string s JOIN resources r ON r.rkey = s.rkey "
				   "WHERE r.id = $1 AND s.param = 'family' AND s.norm = $2",
				   o.meta.id, "dup"),
			 1);
	/* an update replaces all of them */
	struct op u = {.type = "Patient", .id = o.meta.id,
		       .res = parse("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Dup\"}]}")};
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);
	json_decref(u.res);
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_token d JOIN resources r ON r.rkey = d.rkey "
				   "WHERE r.id = $1 AND d.param = 'identifier'",
				   o.meta.id, NULL),
			 0);
}

static void test_delete_tombstone_history(void **state)
{
	struct fx *f = *state;
	struct fhir_meta m;
	create_patient(f, &m);
	struct op u = {.type = "Patient", .id = m.id,
		       .res = parse("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Two\"}]}")};
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);

	struct op d = {.type = "Patient", .id = m.id, .if_match = 1};
	assert_int_equal(store_write(f->s, u_delete, &d), MC_EPRECOND);
	d.if_match = 2;
	assert_int_equal(store_write(f->s, u_delete, &d), MC_OK);
	assert_int_equal(d.meta.version, 3);
	assert_true(d.meta.deleted);
	/* idempotent: no new version */
	d.if_match = 0;
	assert_int_equal(store_write(f->s, u_delete, &d), MC_OK);
	assert_int_equal(d.meta.version, 3);
	/* absent */
	struct op d2 = {.type = "Patient", .id = "nobody"};
	assert_int_equal(store_write(f->s, u_delete, &d2), MC_ENOTFOUND);

	struct op r = {.type = "Patient", .id = m.id, .a = arena_create()};
	assert_int_equal(store_read(f->s, u_read, &r), MC_EGONE);
	assert_true(r.st.meta.deleted);
	assert_int_equal(r.st.meta.version, 3);
	assert_null(r.st.json);
	r.version = 3;
	assert_int_equal(store_read(f->s, u_read, &r), MC_EGONE);
	r.version = 2;
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);
	assert_non_null(strstr(r.st.json, "\"Two\""));

	/* index rows of deleted resources are gone */
	assert_int_equal(count_sql(f,
				   "SELECT count(*) FROM idx_string s JOIN resources r ON r.rkey = s.rkey WHERE r.id = $1",
				   m.id, NULL),
			 0);

	/* history: newest first, tombstone included */
	struct op h = {.type = "Patient", .id = m.id, .a = r.a};
	assert_int_equal(store_read(f->s, u_hist, &h), MC_OK);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.total, 3);
	assert_int_equal(h.hist[0].meta.version, 3);
	assert_true(h.hist[0].meta.deleted);
	assert_null(h.hist[0].json);
	assert_int_equal(h.hist[1].meta.version, 2);
	assert_int_equal(h.hist[2].meta.version, 1);
	assert_non_null(strstr(h.hist[2].json, "Garc"));

	/* revive: an update of a deleted resource is a new live version */
	u.if_match = 0;
	assert_int_equal(store_write(f->s, u_update, &u), MC_OK);
	assert_int_equal(u.meta.version, 4);
	json_decref(u.res);
	r.version = 0;
	assert_int_equal(store_read(f->s, u_read, &r), MC_OK);

	/* type history counts every version of every Patient; system history too */
	struct op th = {.type = "Patient", .a = r.a};
	assert_int_equal(store_read(f->s, u_hist, &th), MC_OK);
	assert_int_equal(th.total, 4);
	struct op sh = {.a = r.a};
	assert_int_equal(store_read(f->s, u_hist, &sh), MC_OK);
	assert_int_equal(sh.total, 4);
	for (int i = 1; i < sh.n; i++)
		assert_true(sh.hist[i - 1].meta.last_updated_ms >= sh.hist[i].meta.last_updated_ms);
	arena_destroy(r.a);
}

static void test_create_rejects(void **state)
{
	struct fx *f = *state;
	struct op o = {.type = "NotAType", .res = parse("{\"resourceType\":\"NotAType\"}")};
	assert_int_equal(store_write(f->s, u_create, &o), MC_EINVAL);
	json_decref(o.res);
	/* duplicate explicit id is a conflict */
	struct op a = {.type = "Patient", .res = parse("{\"resourceType\":\"Patient\",\"id\":\"dup-1\"}")};
	assert_int_equal(store_write(f->s, u_create, &a), MC_OK);
	json_decref(a.res);
	a.res = parse("{\"resourceType\":\"Patient\",\"id\":\"dup-1\"}");
	assert_int_equal(store_write(f->s, u_create, &a), MC_ECONFLICT);
	json_decref(a.res);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_min_level = LOG_OFF;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decimal_and_patient_of, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_versions_if_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rows_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rows_many_and_duplicates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_tombstone_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rejects, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
