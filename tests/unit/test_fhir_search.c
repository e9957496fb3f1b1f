/* tests/unit/test_fhir_search.c — the search compiler and runner (fhir/search.h) over a seeded
 * temporary database: every parameter kind, prefixes, partial dates, accents, modifiers, paging,
 * sorting, access scopes, and hostile input. */
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

#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "fhir/resource.h"
#include "fhir/search.h"
#include "fhir/store.h"
#include "store/store.h"

/* One database for the whole group: the seed is read-only for every test. */
static char g_dir[64];
static struct store *g_s;
static char pid[5][65];  /* José García, John Smith, Ann Jones, Zoë Smith, Nobody (no birthDate) */
static char obs[3][65];

static const char *const patients[5] = {
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"García\",\"given\":[\"José\"]}],\"gender\":\"male\","
	"\"birthDate\":\"1980-05-01\",\"identifier\":[{\"system\":\"urn:test:mrn\",\"value\":\"A1\"}],"
	"\"address\":[{\"city\":\"Zürich\"}]}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\",\"given\":[\"John\"]}],\"gender\":\"male\","
	"\"birthDate\":\"1975-02-03\",\"identifier\":[{\"system\":\"urn:test:mrn\",\"value\":\"B2\"}]}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Jones\",\"given\":[\"Ann\"]}],\"gender\":\"female\","
	"\"birthDate\":\"1990-12-31\",\"identifier\":[{\"value\":\"C3\"}]}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\",\"given\":[\"Zoë\"]}],\"gender\":\"female\","
	"\"birthDate\":\"1980\"}",
	"{\"resourceType\":\"Patient\",\"meta\":{\"tag\":[{\"system\":\"urn:t\",\"code\":\"vip\"}]},"
	"\"name\":[{\"family\":\"Nobody\"}],\"gender\":\"unknown\"}",
};

struct wr {
	const char *type;
	json_t *res;
	struct fhir_meta meta;
};

static int u_create(struct store_txn *t, void *arg)
{
	struct wr *w = arg;
	return fhir_store_create(t, w->type, w->res, &w->meta);
}

static void create(const char *type, const char *json, char out[65])
{
	struct wr w = {.type = type};
	assert_int_equal(mcjson_parse(json, strlen(json), &w.res, NULL), MC_OK);
	assert_int_equal(store_write(g_s, u_create, &w), MC_OK);
	json_decref(w.res);
	snprintf(out, 65, "%s", w.meta.id);
}

struct ct {
	const char *pid;
	int64_t uid;
};
static int u_care(struct store_txn *t, void *arg)
{
	struct ct *c = arg;
	return auth_care_team_add(t, c->pid, c->uid, "test");
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_fhir_search.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:%s/t.db", g_dir);
	int applied;
	if (store_open(url, &g_s) != MC_OK || store_migrate(g_s, &applied) != MC_OK)
		return -1;
	for (int i = 0; i < 5; i++)
		create("Patient", patients[i], pid[i]);
	char body[600];
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"2345-7\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"effectiveDateTime\":\"2024-03-01T10:00:00Z\",\"valueQuantity\":{\"value\":5.4,\"system\":"
		 "\"http://unitsofmeasure.org\",\"code\":\"mmol/L\"}}",
		 pid[0]);
	create("Observation", body, obs[0]);
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"8867-4\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"effectiveDateTime\":\"2024-03-02\",\"valueQuantity\":{\"value\":100,\"system\":"
		 "\"http://unitsofmeasure.org\",\"code\":\"/min\"}}",
		 pid[1]);
	create("Observation", body, obs[1]);
	create("Observation",
	       "{\"resourceType\":\"Observation\",\"status\":\"preliminary\",\"code\":{\"text\":\"orphan\"}}", obs[2]);
	struct ct c = {pid[1], 42};
	if (store_write(g_s, u_care, &c) != MC_OK)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	store_close(g_s);
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/t.db%s", g_dir, sfx[i]);
		unlink(p);
	}
	rmdir(g_dir);
	return 0;
}

/* ---- helpers ---- */

struct run {
	struct arena *a;
	struct fhir_search *s;
	struct fhir_search_result res;
	const char *err;
	int rc;
};

static int u_run(struct store_txn *t, void *arg)
{
	struct run *r = arg;
	return fhir_search_run(t, r->a, r->s, &r->res);
}

/* Search type with "k=v&k=v" (values taken literally, no decoding) and scope. */
static struct run search_as(struct arena *a, const char *type, const char *q, struct fhir_access acc, bool lenient)
{
	struct kv kv[16];
	size_t n = 0;
	char *copy = arena_strdup(a, q);
	for (char *p = copy; p && *p && n < 16;) {
		char *amp = strchr(p, '&');
		if (amp)
			*amp = '\0';
		char *eq = strchr(p, '=');
		if (eq)
			*eq = '\0';
		kv[n].key = p;
		kv[n].value = eq ? eq + 1 : "";
		n++;
		p = amp ? amp + 1 : NULL;
	}
	struct fhir_search_opts o = {.access = acc, .page_max = 50, .lenient = lenient};
	struct run r = {.a = a};
	r.rc = fhir_search_compile(a, type, kv, n, &o, &r.s, &r.err);
	if (r.rc == MC_OK)
		r.rc = store_read(g_s, u_run, &r);
	return r;
}

static struct run search(struct arena *a, const char *type, const char *q)
{
	struct fhir_access all = {.scope = AUTH_SCOPE_ALL};
	return search_as(a, type, q, all, false);
}

static bool has(const struct run *r, const char *id)
{
	for (size_t i = 0; i < r->res.n; i++)
		if (!strcmp(r->res.v[i].meta.id, id))
			return true;
	return false;
}

/* Exactly the listed patients (indexes into pid, -1 terminated). */
static void expect(struct arena *a, const char *type, const char *q, const int *idx, char (*ids)[65])
{
	struct run r = search(a, type, q);
	if (r.rc != MC_OK)
		fail_msg("search %s?%s failed: %d %s", type, q, r.rc, r.err ? r.err : "");
	size_t n = 0;
	for (; idx[n] >= 0; n++) {
		if (!has(&r, ids[idx[n]]))
			fail_msg("search %s?%s: missing #%d", type, q, idx[n]);
	}
	if (r.res.n != n)
		fail_msg("search %s?%s: %zu results, expected %zu", type, q, r.res.n, n);
	assert_int_equal(r.res.total, (int64_t)n);
}

#define P(q, ...) expect(a, "Patient", q, (const int[]){__VA_ARGS__, -1}, pid)
#define NONE_P(q) expect(a, "Patient", q, (const int[]){-1}, pid)
#define O(q, ...) expect(a, "Observation", q, (const int[]){__VA_ARGS__, -1}, obs)
#define NONE_O(q) expect(a, "Observation", q, (const int[]){-1}, obs)

static void expect_einval(struct arena *a, const char *type, const char *q, const char *needle)
{
	struct run r = search(a, type, q);
	if (r.rc != MC_EINVAL)
		fail_msg("search %s?%s: rc %d, expected EINVAL", type, q, r.rc);
	assert_non_null(r.err);
	if (needle && !strstr(r.err, needle))
		fail_msg("search %s?%s: message '%s' lacks '%s'", type, q, r.err, needle);
}

/* ---- tests ---- */

static void test_string(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	P("name=jose", 0);               /* accent- and case-insensitive */
	P("given=JOSÉ", 0);
	P("family=garc", 0);             /* starts-with */
	P("family=smith", 1, 3);
	P("family=smith,jones", 1, 2, 3); /* comma = OR */
	P("family=smith&given=zoe", 3);   /* repeated = AND */
	P("family:exact=García", 0);
	NONE_P("family:exact=garcia");
	NONE_P("family:exact=Garc");
	P("family:contains=arc", 0);
	P("family:contains=MIT", 1, 3);
	NONE_P("family=arc");
	P("address-city=zurich", 0);
	P("name:missing=false", 0, 1, 2, 3, 4);
	P("address-city:missing=true", 1, 2, 3, 4);
	arena_destroy(a);
}

static void test_token(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	P("gender=female", 2, 3);
	P("gender:not=female", 0, 1, 4);
	P("gender=female,unknown", 2, 3, 4);
	P("identifier=urn:test:mrn|A1", 0);
	P("identifier=A1", 0);
	NONE_P("identifier=|A1");        /* |code: no system */
	P("identifier=|C3", 2);
	P("identifier=urn:test:mrn|", 0, 1);
	NONE_P("identifier=urn:other|A1");
	O("code=http://loinc.org|2345-7", 0);
	O("code=8867-4", 1);
	arena_destroy(a);
}

static void test_date(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	P("birthdate=1980", 0, 3);           /* 1980-05-01 and the whole year 1980 lie inside 1980 */
	P("birthdate=1980-05", 0);
	P("birthdate=1980-05-01", 0);
	P("birthdate=eq1980-05-01", 0);
	P("birthdate=lt1980-06", 0, 1, 3);   /* 1980 (a year) starts before June */
	P("birthdate=lt1980", 1);
	P("birthdate=gt1980", 2);
	P("birthdate=ge1980", 0, 2, 3);
	P("birthdate=le1980", 0, 1, 3);
	P("birthdate=sa1980", 2);
	P("birthdate=eb1980", 1);
	P("birthdate=ne1980", 1, 2);
	P("birthdate=ge1975&birthdate=lt1981", 0, 1, 3);
	P("birthdate=1975,1990", 1, 2);
	P("birthdate:missing=true", 4);
	O("date=2024-03", 0, 1);
	O("date=gt2024-03-01T12:00:00Z", 1);
	O("date=2024-03-01", 0);
	P("_lastUpdated=gt2000-01-01", 0, 1, 2, 3, 4);
	NONE_P("_lastUpdated=lt2000");
	expect_einval(a, "Patient", "birthdate=1980-13", "birthdate");
	expect_einval(a, "Patient", "birthdate=xx1980", "birthdate");
	expect_einval(a, "Patient", "birthdate=yesterday", "birthdate");
	expect_einval(a, "Patient", "birthdate=2023-02-29", "birthdate");
	arena_destroy(a);
}

static void test_reference_number_quantity(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	char q[200];
	snprintf(q, sizeof(q), "subject=Patient/%s", pid[0]);
	O(q, 0);
	snprintf(q, sizeof(q), "subject=%s", pid[1]);
	O(q, 1);
	snprintf(q, sizeof(q), "subject:Patient=%s", pid[1]);
	O(q, 1);
	snprintf(q, sizeof(q), "patient=%s,%s", pid[0], pid[1]);
	O(q, 0, 1);
	snprintf(q, sizeof(q), "subject=Group/%s", pid[0]);
	NONE_O(q);
	O("subject:missing=true", 2);
	O("value-quantity=5.4", 0);
	O("value-quantity=5.40", 0);        /* precision: [5.395, 5.405) */
	NONE_O("value-quantity=5.5");
	O("value-quantity=gt5", 0, 1);
	O("value-quantity=lt10", 0);
	O("value-quantity=ge100", 1);
	O("value-quantity=5.4|http://unitsofmeasure.org|mmol/L", 0);
	O("value-quantity=5.4||mmol/L", 0);
	NONE_O("value-quantity=5.4||mg");
	O("value-quantity=ap100", 1);
	expect_einval(a, "Observation", "value-quantity=abc", "value-quantity");
	expect_einval(a, "Observation", "subject=Nope/1", "subject");
	arena_destroy(a);
}

static void test_ids_and_specials(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	char q[200];
	snprintf(q, sizeof(q), "_id=%s", pid[2]);
	P(q, 2);
	snprintf(q, sizeof(q), "_id=%s,%s&gender=male", pid[2], pid[1]);
	P(q, 1);
	struct run r = search(a, "Patient", "_summary=count&family=smith");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.total, 2);
	assert_int_equal(r.res.n, 0);
	r = search(a, "Patient", "_total=none&family=smith");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.total, -1);
	assert_int_equal(r.res.n, 2);
	P("_tag=urn:t|vip", 4);
	P("_tag:not=vip", 0, 1, 2, 3);
	expect_einval(a, "Patient", "_content=smith", "_content");
	expect_einval(a, "Patient", "_text=smith", "_text");
	/* empty value ignored */
	P("family=", 0, 1, 2, 3, 4);
	arena_destroy(a);
}

static void test_paging_and_sort(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct run r = search(a, "Patient", "_count=2&_sort=family");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.total, 5);
	assert_int_equal(r.res.n, 2);
	assert_true(r.res.more);
	assert_string_equal(r.res.v[0].meta.id, pid[0]); /* garcia < jones < nobody < smith */
	assert_string_equal(r.res.v[1].meta.id, pid[2]);
	assert_string_equal(r.s->canon_query, "_sort=family");
	/* follow the pages to the end */
	size_t seen = 0;
	for (int off = 0; off < 10; off += 2) {
		char q[64];
		snprintf(q, sizeof(q), "_count=2&_offset=%d", off);
		r = search(a, "Patient", q);
		assert_int_equal(r.rc, MC_OK);
		seen += r.res.n;
		if (!r.res.more)
			break;
	}
	assert_int_equal(seen, 5);
	r = search(a, "Patient", "_sort=-birthdate&birthdate:missing=false");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 4);
	assert_string_equal(r.res.v[0].meta.id, pid[2]); /* 1990 */
	assert_string_equal(r.res.v[3].meta.id, pid[1]); /* 1975 */
	r = search(a, "Patient", "_sort=birthdate&birthdate:missing=false");
	assert_string_equal(r.res.v[0].meta.id, pid[1]);
	r = search(a, "Patient", "_sort=_lastUpdated");
	assert_int_equal(r.rc, MC_OK);
	for (size_t i = 1; i < r.res.n; i++)
		assert_true(r.res.v[i - 1].meta.last_updated_ms <= r.res.v[i].meta.last_updated_ms);
	r = search(a, "Patient", "_sort=-_id");
	for (size_t i = 1; i < r.res.n; i++)
		assert_true(strcmp(r.res.v[i - 1].meta.id, r.res.v[i].meta.id) > 0);
	/* _count capped by page_max (50) and 0 = count only */
	r = search(a, "Patient", "_count=100000");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.s->count, 50);
	r = search(a, "Patient", "_count=0");
	assert_int_equal(r.res.n, 0);
	assert_int_equal(r.res.total, 5);
	expect_einval(a, "Patient", "_count=-1", "_count");
	expect_einval(a, "Patient", "_count=abc", "_count");
	expect_einval(a, "Patient", "_sort=nosuch", "nosuch");
	arena_destroy(a);
}

static void test_hostile_and_unknown(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	/* injection attempts are only bound values: no error, no match, database intact */
	NONE_P("family=' OR 1=1 --");
	NONE_P("family=x'); DROP TABLE resources; --");
	NONE_P("identifier=a|b' OR '1'='1");
	NONE_P("_id=' OR 1=1 --");
	NONE_P("family:exact=\" OR \"\"=\"");
	P("family=smith", 1, 3);
	expect_einval(a, "Patient", "foo=bar", "foo");
	expect_einval(a, "Patient", "family:sounds=x", "family");
	expect_einval(a, "Patient", "gender:exact=x", "gender");
	expect_einval(a, "Patient", "birthdate:missing=maybe", "birthdate");
	expect_einval(a, "Patient", "x' OR 1=1 --=1", "Unknown search parameter");
	expect_einval(a, "Patient", "_format=xml", "_format");
	/* lenient handling ignores unknown parameters only */
	struct fhir_access all = {.scope = AUTH_SCOPE_ALL};
	struct run r = search_as(a, "Patient", "foo=bar&family=jones", all, true);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 1);
	r = search_as(a, "Patient", "birthdate=bad", all, true);
	assert_int_equal(r.rc, MC_EINVAL);
	/* too many values */
	char big[2000] = "family=";
	size_t bl = strlen(big);
	for (int i = 0; i < 30; i++) {
		big[bl++] = 'a';
		big[bl++] = ',';
	}
	big[bl] = '\0';
	expect_einval(a, "Patient", big, "family");
	/* not a resource type */
	struct fhir_search *s = NULL;
	const char *err = NULL;
	assert_int_equal(fhir_search_compile(a, "HumanName", NULL, 0, NULL, &s, &err), MC_EINVAL);
	arena_destroy(a);
}

static void test_scopes(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct fhir_access own = {.scope = AUTH_SCOPE_OWN, .patient_id = pid[0]};
	struct run r = search_as(a, "Patient", "", own, false);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 1);
	assert_string_equal(r.res.v[0].meta.id, pid[0]);
	r = search_as(a, "Observation", "", own, false);
	assert_int_equal(r.res.n, 1); /* own Observation; the patient-less one is hidden */
	assert_string_equal(r.res.v[0].meta.id, obs[0]);
	struct fhir_access none = {.scope = AUTH_SCOPE_NONE};
	r = search_as(a, "Patient", "", none, false);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 0);
	assert_int_equal(r.res.total, 0);
	struct fhir_access care = {.scope = AUTH_SCOPE_CARE, .user_id = 42};
	r = search_as(a, "Patient", "", care, false);
	assert_int_equal(r.res.n, 1);
	assert_string_equal(r.res.v[0].meta.id, pid[1]);
	r = search_as(a, "Observation", "", care, false);
	assert_int_equal(r.res.n, 1);
	assert_string_equal(r.res.v[0].meta.id, obs[1]);
	care.user_id = 43;
	r = search_as(a, "Patient", "family=smith", care, false);
	assert_int_equal(r.res.n, 0);
	/* types outside the patient compartment are not narrowed */
	assert_false(fhir_type_in_patient_compartment("Practitioner"));
	assert_true(fhir_type_in_patient_compartment("Observation"));
	r = search_as(a, "Practitioner", "", none, false);
	assert_int_equal(r.rc, MC_OK);
	arena_destroy(a);
}

static void test_form_parse(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct kv *kv;
	size_t n;
	const char *body = "family=Smith&given=J%C3%B3+x&&flag&birthdate=ge1980";
	assert_int_equal(fhir_form_parse(a, body, strlen(body), 10, &kv, &n), MC_OK);
	assert_int_equal(n, 4);
	assert_string_equal(kv[1].value, "J\xc3\xb3 x");
	assert_string_equal(kv[2].key, "flag");
	assert_string_equal(kv[2].value, "");
	assert_int_equal(fhir_form_parse(a, "a=%4", 4, 10, &kv, &n), MC_EINVAL);
	assert_int_equal(fhir_form_parse(a, "a=%00", 5, 10, &kv, &n), MC_EINVAL);
	assert_int_equal(fhir_form_parse(a, "a=1&b=2&c=3", 11, 2, &kv, &n), MC_ETOOBIG);
	struct buf b = BUF_INIT;
	fhir_url_encode(&b, "a b&c=d/é");
	assert_string_equal(buf_str(&b), "a%20b%26c%3Dd/%C3%A9");
	buf_release(&b);
	arena_destroy(a);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_min_level = LOG_OFF;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_string),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_date),
		cmocka_unit_test(test_reference_number_quantity),
		cmocka_unit_test(test_ids_and_specials),
		cmocka_unit_test(test_paging_and_sort),
		cmocka_unit_test(test_hostile_and_unknown),
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_form_parse),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
