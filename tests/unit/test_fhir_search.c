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
#include "fhir/gen_fhir.h"
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

/* Every type is readable with the same patient scope (ctx: the struct fhir_access). */
static int same_access(void *ctx, const char *type, struct fhir_access *out)
{
	(void)type;
	*out = *(const struct fhir_access *)ctx;
	return MC_OK;
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
	struct fhir_search_opts o = {.access = acc, .type_access = same_access, .type_access_ctx = NULL,
				     .page_max = 50, .strict = !lenient};
	o.type_access_ctx = &o.access;
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

/* ======== group 2: chains, _has, composites, includes, shaping, lenient, paging ======== */

/* Patients: 0 Robert Smith 1970 (MRN-1 typed MR), 1 Rupert Smyth 1985 (MRN-1 typed DL),
 * 2 Ann Jones 1990, 3 Zed Smith 1960. Practitioner pr0. Encounter enc0 (patient 0).
 * Observations: 0 P0 8480-6 120 (performer Patient 1 + pr0, encounter enc0, display "Systolic"),
 * 1 P1 8480-6 150 (performer pr0), 2 P0 panel with components 8480-6=130 / 8462-4=85,
 * 3 P2 1234-5 valueCodeableConcept snomed 260385009. */
static char p2[4][65], o2[4][65], pr0[65], enc0[65];

static const char *const patients2[4] = {
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\",\"given\":[\"Robert\"]}],\"birthDate\":\"1970-01-01\","
	"\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0203\","
	"\"code\":\"MR\"}]},\"system\":\"urn:mrn\",\"value\":\"MRN-1\"}]}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smyth\",\"given\":[\"Rupert\"]}],\"birthDate\":\"1985-06-01\","
	"\"identifier\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0203\","
	"\"code\":\"DL\"}]},\"system\":\"urn:dl\",\"value\":\"MRN-1\"}]}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Jones\",\"given\":[\"Ann\"]}],\"birthDate\":\"1990-01-01\"}",
	"{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\",\"given\":[\"Zed\"]}],\"birthDate\":\"1960-01-01\"}",
};

static int group2_setup(void **state)
{
	(void)state;
	snprintf(g_dir, sizeof(g_dir), "/tmp/test_fhir_search2.XXXXXX");
	if (!mkdtemp(g_dir))
		return -1;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:%s/t.db", g_dir);
	int applied;
	if (store_open(url, &g_s) != MC_OK || store_migrate(g_s, &applied) != MC_OK)
		return -1;
	for (int i = 0; i < 4; i++)
		create("Patient", patients2[i], p2[i]);
	create("Practitioner", "{\"resourceType\":\"Practitioner\",\"name\":[{\"family\":\"Welby\"}]}", pr0);
	char body[1200];
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		 "\"subject\":{\"reference\":\"Patient/%s\"}}", p2[0]);
	create("Encounter", body, enc0);
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"8480-6\",\"display\":\"Systolic blood pressure\"}]},"
		 "\"subject\":{\"reference\":\"Patient/%s\"},\"encounter\":{\"reference\":\"Encounter/%s\"},"
		 "\"performer\":[{\"reference\":\"Patient/%s\"},{\"reference\":\"Practitioner/%s\"}],"
		 "\"effectiveDateTime\":\"2024-01-01\",\"valueQuantity\":{\"value\":120,\"system\":"
		 "\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}",
		 p2[0], enc0, p2[1], pr0);
	create("Observation", body, o2[0]);
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"8480-6\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"performer\":[{\"reference\":\"Practitioner/%s\"}],"
		 "\"effectiveDateTime\":\"2024-02-01\",\"valueQuantity\":{\"value\":150,\"system\":"
		 "\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}",
		 p2[1], pr0);
	create("Observation", body, o2[1]);
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"85354-9\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
		 "\"valueQuantity\":{\"value\":130,\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}},"
		 "{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},"
		 "\"valueQuantity\":{\"value\":85,\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}]}",
		 p2[0]);
	create("Observation", body, o2[2]);
	snprintf(body, sizeof(body),
		 "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		 "\"http://loinc.org\",\"code\":\"1234-5\"}]},\"subject\":{\"reference\":\"Patient/%s\"},"
		 "\"valueCodeableConcept\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"260385009\"}]}}",
		 p2[2]);
	create("Observation", body, o2[3]);
	return 0;
}

#define P2(q, ...) expect(a, "Patient", q, (const int[]){__VA_ARGS__, -1}, p2)
#define NONE_P2(q) expect(a, "Patient", q, (const int[]){-1}, p2)
#define O2(q, ...) expect(a, "Observation", q, (const int[]){__VA_ARGS__, -1}, o2)
#define NONE_O2(q) expect(a, "Observation", q, (const int[]){-1}, o2)

static void test_chains_and_has(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	O2("subject:Patient.name=smyth", 1);
	O2("subject:Patient.family=smith", 0, 2);
	O2("patient.birthdate=lt1980", 0, 2);
	O2("subject.name=jones", 3);                  /* targets with 'name' all take strings */
	O2("subject:Patient.name:exact=Smyth", 1);
	NONE_O2("subject:Patient.name:exact=smyth");
	O2("performer:Patient.name=rupert", 0);
	char q[200];
	snprintf(q, sizeof(q), "subject:Patient._id=%s", p2[2]);
	O2(q, 3);
	O2("subject:Patient.name=smith&code=85354-9", 2);
	O2("subject:Patient.identifier=urn:mrn|MRN-1&code=8480-6", 0);   /* the chain drives */
	O2("code=8480-6&subject:Patient.identifier=urn:mrn|MRN-1", 0);   /* the chain probes */
	O2("code=8480-6&patient.birthdate=ge1980", 1);
	P2("_has:Observation:patient:code=1234-5", 2);
	P2("_has:Observation:subject:code=8480-6", 0, 1);
	P2("_has:Observation:subject:value-quantity=gt140", 1);
	NONE_P2("_has:Observation:subject:code=nope");
	P2("_has:Observation:subject:code=8480-6&family=smyth", 1);
	expect_einval(a, "Observation", "subject:Patient.name.family=x", "subject");
	expect_einval(a, "Observation", "subject:Nope.name=x", "subject");
	expect_einval(a, "Patient", "_has:Observation=x", "_has");
	expect_einval(a, "Patient", "_has:Nope:subject:code=x", "_has");
	expect_einval(a, "Patient", "_has:Observation:subject:_has:Encounter:subject:status=x", "_has");
	expect_einval(a, "Observation", "subject:Patient.birthdate=notadate", "birthdate");
	expect_einval(a, "Observation", "status.name=x", "status");   /* not a reference */
	arena_destroy(a);
}

static void test_composite_and_tokens(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	O2("code-value-quantity=http://loinc.org|8480-6$gt130", 1);
	O2("code-value-quantity=8480-6$lt130", 0);
	O2("code-value-quantity=8480-6$120|http://unitsofmeasure.org|mm[Hg]", 0);
	NONE_O2("code-value-quantity=8480-6$120||mg");
	O2("code-value-quantity=http://loinc.org|$gt100", 0, 1);
	NONE_O2("code-value-quantity=http://other|8480-6$gt100");
	O2("code-value-quantity=8480-6$lt130,1234-5$1", 0);
	O2("component-code-value-quantity=8480-6$130", 2);
	NONE_O2("component-code-value-quantity=8462-4$130");   /* the 130 belongs to 8480-6 */
	O2("component-code-value-quantity=8462-4$85", 2);
	O2("combo-code-value-quantity=8480-6$ge130", 1, 2);
	O2("combo-code=8462-4", 2);                      /* combo = X ∪ component-X */
	O2("combo-code=http://loinc.org|8480-6", 0, 1, 2);
	O2("combo-value-quantity=85", 2);
	O2("_sort=-combo-value-quantity&combo-value-quantity=ge120", 1, 2, 0);
	O2("code-value-concept=1234-5$http://snomed.info/sct|260385009", 3);
	O2("code-value-concept=1234-5$260385009", 3);
	NONE_O2("code-value-concept=1234-5$other");
	expect_einval(a, "Observation", "code-value-quantity=8480-6", "code-value-quantity");
	expect_einval(a, "Observation", "code-value-quantity=8480-6$abc", "code-value-quantity");
	expect_einval(a, "Observation", "code-value-quantity:missing=true", "code-value-quantity");
	/* :text on the display, :of-type on identifiers */
	O2("code:text=systolic", 0);
	O2("code:text=SYSTOLIC blood", 0);
	NONE_O2("code:text=blood");
	P2("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-1", 0);
	P2("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|DL|MRN-1", 1);
	NONE_P2("identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-2");
	P2("identifier=MRN-1", 0, 1);
	expect_einval(a, "Patient", "identifier:of-type=MR|MRN-1", "identifier");
	/* phonetic: Soundex */
	P2("phonetic=smith", 0, 1, 3);
	P2("phonetic=SMYTHE", 0, 1, 3);
	P2("phonetic=robert", 0, 1);   /* Robert and Rupert are both R163 */
	P2("phonetic=jonez", 2);
	expect_einval(a, "Patient", "phonetic=123", "phonetic");
	arena_destroy(a);
}

static bool inc_has(const struct run *r, const char *id)
{
	for (size_t i = 0; i < r->res.ninc; i++)
		if (!strcmp(r->res.inc[i].meta.id, id))
			return true;
	return false;
}

static int deny_observation(void *ctx, const char *type, struct fhir_access *out)
{
	const struct fhir_access *base = ctx;
	if (!strcmp(type, "Observation"))
		return MC_EFORBIDDEN;
	*out = *base;
	return MC_OK;
}

static struct run search_opts(struct arena *a, const char *type, const char *q, const struct fhir_search_opts *o)
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
	struct run r = {.a = a};
	r.rc = fhir_search_compile(a, type, kv, n, o, &r.s, &r.err);
	if (r.rc == MC_OK)
		r.rc = store_read(g_s, u_run, &r);
	return r;
}

static void test_includes_and_access(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct fhir_access all = {.scope = AUTH_SCOPE_ALL};
	char q[300];
	struct run r = search(a, "Observation", "code=8480-6&_include=Observation:subject");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 2);
	assert_int_equal(r.res.ninc, 2);
	assert_true(inc_has(&r, p2[0]) && inc_has(&r, p2[1]));
	r = search(a, "Observation", "code=8480-6&_include=Observation:performer:Practitioner");
	assert_int_equal(r.res.ninc, 1);
	assert_true(inc_has(&r, pr0));
	r = search(a, "Observation", "code=8480-6&_include=*");
	assert_int_equal(r.rc, MC_OK);
	assert_true(inc_has(&r, p2[0]) && inc_has(&r, p2[1]) && inc_has(&r, pr0) && inc_has(&r, enc0));
	assert_int_equal(r.res.ninc, 4);   /* each once */
	snprintf(q, sizeof(q), "_id=%s&_revinclude=Observation:subject", p2[0]);
	r = search(a, "Patient", q);
	assert_int_equal(r.res.ninc, 2);
	assert_true(inc_has(&r, o2[0]) && inc_has(&r, o2[2]));
	/* :iterate: Observations of the patient, then their encounters */
	snprintf(q, sizeof(q), "_id=%s&_revinclude=Observation:subject&_include:iterate=Observation:encounter", p2[0]);
	r = search(a, "Patient", q);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.ninc, 3);
	assert_true(inc_has(&r, enc0));
	/* without :iterate the source type must be the searched one */
	snprintf(q, sizeof(q), "_id=%s&_include=Observation:encounter", p2[0]);
	expect_einval(a, "Patient", q, "_include");
	expect_einval(a, "Observation", "_include=Observation", "_include");
	expect_einval(a, "Observation", "_include=Nope:subject", "_include");

	/* ACCESS: a patient (own scope P0) never sees another patient's resources through includes */
	struct fhir_access own = {.scope = AUTH_SCOPE_OWN, .patient_id = p2[0]};
	r = search_as(a, "Observation", "_include=Observation:performer", own, false);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 2);                      /* O0 and O2 */
	assert_false(inc_has(&r, p2[1]));                  /* O0's performer Patient 1: hidden */
	assert_true(inc_has(&r, pr0));                     /* Practitioner: not patient data */
	r = search_as(a, "Practitioner", "_revinclude=Observation:performer", own, false);
	assert_int_equal(r.res.n, 1);
	assert_true(inc_has(&r, o2[0]));
	assert_false(inc_has(&r, o2[1]));                  /* Patient 1's Observation: hidden */
	r = search_as(a, "Practitioner", "_revinclude=Observation:performer", all, false);
	assert_true(inc_has(&r, o2[0]) && inc_has(&r, o2[1]));
	/* chains and _has do not look into resources the caller may not read */
	r = search_as(a, "Observation", "performer:Patient.name=rupert", own, false);
	assert_int_equal(r.res.n, 0);
	r = search_as(a, "Observation", "performer:Patient.name=rupert", all, false);
	assert_int_equal(r.res.n, 1);
	r = search_as(a, "Practitioner", "_has:Observation:performer:value-quantity=150", own, false);
	assert_int_equal(r.res.n, 0);
	r = search_as(a, "Practitioner", "_has:Observation:performer:value-quantity=150", all, false);
	assert_int_equal(r.res.n, 1);
	struct fhir_access care = {.scope = AUTH_SCOPE_CARE, .user_id = 777};
	r = search_as(a, "Practitioner", "_revinclude=Observation:performer", care, false);
	assert_int_equal(r.res.n, 1);
	assert_int_equal(r.res.ninc, 0);
	/* a type the caller may not read at all (RBAC) contributes nothing */
	struct fhir_search_opts o = {.access = all, .type_access = deny_observation, .type_access_ctx = &all,
				     .page_max = 50};
	r = search_opts(a, "Practitioner", "_revinclude=Observation:performer", &o);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 1);
	assert_int_equal(r.res.ninc, 0);
	r = search_opts(a, "Practitioner", "_has:Observation:performer:code=8480-6", &o);
	assert_int_equal(r.res.n, 0);
	r = search_opts(a, "Encounter", "_revinclude=Observation:encounter", &o);
	assert_int_equal(r.res.ninc, 0);
	/* no callback: other types are refused (fail closed), the searched type is fine */
	struct fhir_search_opts bare = {.access = all, .page_max = 50};
	r = search_opts(a, "Observation", "code=8480-6&_include=Observation:subject", &bare);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 2);
	assert_int_equal(r.res.ninc, 0);
	r = search_opts(a, "Observation", "subject:Patient.name=smyth", &bare);
	assert_int_equal(r.res.n, 0);
	arena_destroy(a);
}

/* The Bundle of a search as parsed JSON (caller decrefs). */
static json_t *bundle_of(struct arena *a, const struct run *r)
{
	struct buf b = BUF_INIT;
	assert_int_equal(fhir_search_bundle(&b, a, "http://x/fhir", r->s, &r->res), MC_OK);
	json_t *j = NULL;
	assert_int_equal(mcjson_parse(b.data, b.len, &j, NULL), MC_OK);
	buf_release(&b);
	return j;
}

static bool subsetted(const json_t *res)
{
	const json_t *tags = json_object_get(json_object_get(res, "meta"), "tag");
	size_t i;
	const json_t *t;
	json_array_foreach(tags, i, t) {
		if (!strcmp(mcjson_str(t, "code") ? mcjson_str(t, "code") : "", "SUBSETTED"))
			return true;
	}
	return false;
}

static void test_summary_elements_lenient(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	char q[200];
	snprintf(q, sizeof(q), "_id=%s&_elements=birthDate", p2[0]);
	struct run r = search(a, "Patient", q);
	assert_int_equal(r.rc, MC_OK);
	json_t *b = bundle_of(a, &r);
	json_t *res = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
	assert_non_null(json_object_get(res, "birthDate"));
	assert_non_null(json_object_get(res, "id"));
	assert_null(json_object_get(res, "name"));
	assert_true(subsetted(res));
	json_decref(b);
	/* mandatory elements stay (Observation.status, code); choice names select valueX */
	snprintf(q, sizeof(q), "_id=%s&_elements=value", o2[0]);
	r = search(a, "Observation", q);
	b = bundle_of(a, &r);
	res = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
	assert_non_null(json_object_get(res, "valueQuantity"));
	assert_non_null(json_object_get(res, "status"));
	assert_non_null(json_object_get(res, "code"));
	assert_null(json_object_get(res, "subject"));
	assert_true(subsetted(res));
	json_decref(b);
	snprintf(q, sizeof(q), "_id=%s&_summary=true", o2[0]);
	r = search(a, "Observation", q);
	b = bundle_of(a, &r);
	res = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
	assert_non_null(json_object_get(res, "status"));
	assert_null(json_object_get(res, "valueQuantity"));
	assert_true(subsetted(res));
	json_decref(b);
	snprintf(q, sizeof(q), "_id=%s&_summary=data", o2[0]);
	r = search(a, "Observation", q);
	b = bundle_of(a, &r);
	res = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
	assert_non_null(json_object_get(res, "valueQuantity"));
	json_decref(b);
	expect_einval(a, "Patient", "_summary=maybe", "_summary");
	expect_einval(a, "Patient", "_elements=na'me", "_elements");

	/* lenient (the default): unknown parameters ignored and reported as an outcome entry */
	struct fhir_access all = {.scope = AUTH_SCOPE_ALL};
	r = search_as(a, "Patient", "foo=bar&family=jones&family:sounds=x&_content=x", all, true);
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 1);
	assert_int_equal(r.s->nignored, 3);
	assert_string_equal(r.s->canon_query, "family=jones");
	b = bundle_of(a, &r);
	json_t *entries = json_object_get(b, "entry");
	json_t *last = json_array_get(entries, json_array_size(entries) - 1);
	assert_string_equal(mcjson_str(json_object_get(last, "search"), "mode"), "outcome");
	json_t *oo = json_object_get(last, "resource");
	assert_string_equal(mcjson_str(oo, "resourceType"), "OperationOutcome");
	assert_int_equal(json_array_size(json_object_get(oo, "issue")), 3);
	assert_string_equal(mcjson_str(json_array_get(json_object_get(oo, "issue"), 0), "severity"), "warning");
	assert_non_null(strstr(mcjson_str(json_array_get(json_object_get(oo, "issue"), 0), "diagnostics"), "foo"));
	json_decref(b);
	/* strict: 400 naming it */
	expect_einval(a, "Patient", "foo=bar&family=jones", "foo");
	/* included resources have mode include */
	r = search(a, "Observation", "code=1234-5&_include=Observation:subject");
	b = bundle_of(a, &r);
	entries = json_object_get(b, "entry");
	assert_int_equal(json_array_size(entries), 2);
	assert_string_equal(mcjson_str(json_object_get(json_array_get(entries, 0), "search"), "mode"), "match");
	assert_string_equal(mcjson_str(json_object_get(json_array_get(entries, 1), "search"), "mode"), "include");
	json_decref(b);
	arena_destroy(a);
}

static void test_sort_keys(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct run r = search(a, "Patient", "_sort=family,-birthdate");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.n, 4);
	assert_string_equal(r.res.v[0].meta.id, p2[2]);   /* jones */
	assert_string_equal(r.res.v[1].meta.id, p2[0]);   /* smith 1970 */
	assert_string_equal(r.res.v[2].meta.id, p2[3]);   /* smith 1960 */
	assert_string_equal(r.res.v[3].meta.id, p2[1]);   /* smyth */
	r = search(a, "Patient", "_sort=family,birthdate");
	assert_string_equal(r.res.v[1].meta.id, p2[3]);
	assert_string_equal(r.res.v[2].meta.id, p2[0]);
	r = search(a, "Observation", "_sort=-value-quantity&value-quantity:missing=false");
	assert_int_equal(r.res.n, 2);
	assert_string_equal(r.res.v[0].meta.id, o2[1]);
	r = search(a, "Observation", "_sort=subject,-date");
	assert_int_equal(r.rc, MC_OK);
	expect_einval(a, "Observation", "_sort=code-value-quantity", "code-value-quantity");
	arena_destroy(a);
}

/* Keyset/snapshot paging: creates between pages neither shift pages nor change the total. */
static void test_paging_consistent(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct run r = search(a, "Patient", "_count=1");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.total, 4);
	assert_true(r.res.more);
	int64_t snap = r.res.snapshot, cursor = r.res.last_rkey;
	assert_true(snap > 0 && cursor > 0);
	char seen[8][65];
	size_t ns = 0;
	snprintf(seen[ns++], 65, "%s", r.res.v[0].meta.id);
	char extra[3][65];
	for (int page = 1; page < 8; page++) {
		/* a concurrent writer adds a patient (and deletes nothing) before each page */
		if (page <= 3)
			create("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Aaron\"}]}", extra[page - 1]);
		char q[160];
		snprintf(q, sizeof(q), "_count=1&_snapshot=%lld&_cursor=%lld&_offset=%d", (long long)snap,
			 (long long)cursor, page);
		r = search(a, "Patient", q);
		assert_int_equal(r.rc, MC_OK);
		assert_int_equal(r.res.total, 4);
		if (r.res.n == 0)
			break;
		assert_true(ns < 8);
		snprintf(seen[ns++], 65, "%s", r.res.v[0].meta.id);
		cursor = r.res.last_rkey;
		if (!r.res.more)
			break;
	}
	assert_int_equal(ns, 4);
	for (size_t i = 0; i < ns; i++) {
		for (size_t k = 0; k < 3; k++)
			assert_string_not_equal(seen[i], extra[k]);
		for (size_t k = i + 1; k < ns; k++)
			assert_string_not_equal(seen[i], seen[k]);
	}
	/* a sorted search pages by offset within the snapshot */
	char q[160];
	snprintf(q, sizeof(q), "_sort=family&_count=2&_snapshot=%lld&_offset=0", (long long)snap);
	r = search(a, "Patient", q);
	assert_int_equal(r.res.total, 4);
	assert_string_equal(r.res.v[0].meta.id, p2[2]);   /* the Aarons are after the snapshot */
	/* the links carry the bound and the cursor */
	r = search(a, "Patient", "_count=1&family=smith");
	json_t *b = bundle_of(a, &r);
	json_t *links = json_object_get(b, "link");
	bool next = false;
	for (size_t i = 0; i < json_array_size(links); i++) {
		json_t *l = json_array_get(links, i);
		if (!strcmp(mcjson_str(l, "relation"), "next")) {
			next = true;
			assert_non_null(strstr(mcjson_str(l, "url"), "_snapshot="));
			assert_non_null(strstr(mcjson_str(l, "url"), "_cursor="));
			assert_non_null(strstr(mcjson_str(l, "url"), "family=smith"));
		}
	}
	assert_true(next);
	json_decref(b);
	expect_einval(a, "Patient", "_cursor=abc", "_cursor");
	expect_einval(a, "Patient", "_snapshot=-1", "_snapshot");
	arena_destroy(a);
}

/* Many Groups in one unit (one fsync), for the total bound. */
static int u_groups(struct store_txn *t, void *arg)
{
	int n = *(int *)arg;
	for (int i = 0; i < n; i++) {
		json_t *g = json_pack("{s:s, s:s, s:b}", "resourceType", "Group", "type", i % 2 ? "animal" : "person",
				      "actual", 1);
		struct fhir_meta m;
		int rc = fhir_store_create(t, "Group", g, &m);
		json_decref(g);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static void test_total_bound(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	int n = FHIR_TOTAL_BOUND + 2;
	assert_int_equal(store_write(g_s, u_groups, &n), MC_OK);
	/* default: exact up to the bound, none past it; accurate always; none never */
	struct run r = search(a, "Group", "_count=5");
	assert_int_equal(r.rc, MC_OK);
	assert_int_equal(r.res.total, -1);
	assert_int_equal(r.res.n, 5);
	assert_true(r.res.more);
	r = search(a, "Group", "_count=5&_total=accurate");
	assert_int_equal(r.res.total, FHIR_TOTAL_BOUND + 2);
	r = search(a, "Group", "_count=5&type=animal");
	assert_int_equal(r.res.total, (FHIR_TOTAL_BOUND + 2) / 2);
	r = search(a, "Group", "_count=5&type=animal&_total=none");
	assert_int_equal(r.res.total, -1);
	r = search(a, "Group", "_summary=count");
	assert_int_equal(r.res.total, FHIR_TOTAL_BOUND + 2);
	arena_destroy(a);
}

static void test_coverage(void **state)
{
	(void)state;
	size_t ok = 0, all = 0;
	double cov = fhir_search_coverage(&ok, &all);
	print_message("R4 search parameter coverage: %.2f%% (%zu of %zu supported end to end)\n", cov * 100.0, ok, all);
	assert_int_equal(all, 1709);
	assert_true(cov > 0.95);
	/* composites are listed; what the generator could not translate is not */
	assert_true(fhir_search_param_supported(fhir_sp_find("Observation", "code-value-quantity")));
	assert_true(fhir_search_param_supported(fhir_sp_find("Observation", "phonetic") ? fhir_sp_find("Observation", "phonetic")
												 : fhir_sp_find("Patient", "phonetic")));
	assert_false(fhir_search_param_supported(fhir_sp_find("Location", "near")));
	assert_false(fhir_search_param_supported(fhir_sp_find("Patient", "_content")));
	assert_false(fhir_search_param_supported(fhir_sp_find("MolecularSequence", "chromosome-window-coordinate")));
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
	const struct CMUnitTest tests2[] = {
		cmocka_unit_test(test_chains_and_has),
		cmocka_unit_test(test_composite_and_tokens),
		cmocka_unit_test(test_includes_and_access),
		cmocka_unit_test(test_summary_elements_lenient),
		cmocka_unit_test(test_sort_keys),
		cmocka_unit_test(test_paging_consistent),
		cmocka_unit_test(test_total_bound),
		cmocka_unit_test(test_coverage),
	};
	int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	return failed + cmocka_run_group_tests(tests2, group2_setup, group_teardown);
}
