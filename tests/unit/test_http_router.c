/* tests/unit/test_http_router.c — path decoding, query parsing, route compilation and matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/metrics.h"
#include "http/http_int.h"

static int h_dummy(struct req *r, struct reply *rep)
{
	(void)r;
	(void)rep;
	return MC_OK;
}

static const struct route test_routes[] = {
	{"GET", "/fhir/{type}/{id}", h_dummy, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, 0, "read"},
	{"PUT", "/fhir/{type}/{id}", h_dummy, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, 1024, "update"},
	{"GET", "/fhir/{type}/_history", h_dummy, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, 0, "type history"},
	{"GET", "/fhir/metadata", h_dummy, ROUTE_FHIR | ROUTE_PUBLIC, NULL, 0, "capabilities"},
	{"GET", "/fhir/{type}", h_dummy, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, 0, "search"},
	{"POST", "/fhir/{type}", h_dummy, ROUTE_FHIR | ROUTE_PERM_BY_TYPE, NULL, 4096, "create"},
	{"GET", "/api/v1/patients/{id}/profile", h_dummy, 0, "read:patient_data", 0, "profile"},
	{"GET", "/", h_dummy, ROUTE_PUBLIC, NULL, 0, "root"},
};
static const struct route_table test_table = {test_routes, sizeof(test_routes) / sizeof(test_routes[0])};

static struct router *build(void)
{
	const struct route_table *tables[] = {&test_table, NULL};
	struct router *rt = NULL;
	char err[256];
	assert_int_equal(router_build(tables, 2, &rt, err, sizeof(err)), MC_OK);
	return rt;
}

static int decode(struct arena *a, const char *raw, char **segs, size_t *n, char **path)
{
	return http_path_decode(a, raw, strlen(raw), segs, n, path);
}

static void test_path_decode(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	char *segs[HTTP_MAX_SEGMENTS], *path;
	size_t n;
	assert_int_equal(decode(a, "/fhir/Patient/abc", segs, &n, &path), MC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(segs[1], "Patient");
	assert_string_equal(path, "/fhir/Patient/abc");
	assert_int_equal(decode(a, "/", segs, &n, &path), MC_OK);
	assert_int_equal(n, 0);
	assert_string_equal(path, "/");
	assert_int_equal(decode(a, "/a%20b/c%41", segs, &n, &path), MC_OK);
	assert_string_equal(segs[0], "a b");
	assert_string_equal(segs[1], "cA");
	assert_int_equal(decode(a, "/a/", segs, &n, &path), MC_OK);   /* one trailing slash is ignored */
	assert_int_equal(n, 1);
	assert_string_equal(path, "/a");
	assert_int_equal(decode(a, "/a//", segs, &n, &path), MC_OK);  /* but only one */
	assert_int_equal(n, 2);
	assert_string_equal(segs[1], "");
	/* traversal and smuggling */
	assert_int_equal(decode(a, "/fhir/../etc", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/%2e%2e/etc", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/.", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%2Fb", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%5cb", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%00b", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%zzb", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%4", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "/fhir/a%", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "fhir", segs, &n, &path), MC_EINVAL);
	assert_int_equal(decode(a, "", segs, &n, &path), MC_EINVAL);
	/* a '..' that is only part of a segment is a name, not traversal */
	assert_int_equal(decode(a, "/fhir/a..b", segs, &n, &path), MC_OK);
	char deep[256] = "";
	for (int i = 0; i < HTTP_MAX_SEGMENTS + 1; i++)
		memcpy(deep + 2 * i, "/x", 3);
	assert_int_equal(decode(a, deep, segs, &n, &path), MC_ENOTFOUND);
	arena_destroy(a);
}

static void test_query_parse(void **state)
{
	(void)state;
	struct arena *a = arena_create();
	struct kv *q;
	size_t n;
	assert_int_equal(http_query_parse(a, "name=Sm%C3%ADth&given=a+b&name=Jones&flag&&x=", &q, &n), MC_OK);
	assert_int_equal(n, 5);
	assert_string_equal(q[0].key, "name");
	assert_string_equal(q[0].value, "Sm\xc3\xadth");
	assert_string_equal(q[1].value, "a b");
	assert_string_equal(q[2].key, "name");
	assert_string_equal(q[2].value, "Jones");
	assert_string_equal(q[3].key, "flag");
	assert_string_equal(q[3].value, "");
	assert_string_equal(q[4].key, "x");
	assert_string_equal(q[4].value, "");
	assert_int_equal(http_query_parse(a, "", &q, &n), MC_OK);
	assert_int_equal(n, 0);
	assert_int_equal(http_query_parse(a, "a=%zz", &q, &n), MC_EINVAL);
	assert_int_equal(http_query_parse(a, "a=%00", &q, &n), MC_EINVAL);
	assert_int_equal(http_query_parse(a, "a%2=1", &q, &n), MC_EINVAL);
	/* encoded '/' is fine in a query value (references: subject=Patient%2F1) */
	assert_int_equal(http_query_parse(a, "subject=Patient%2F1", &q, &n), MC_OK);
	assert_string_equal(q[0].value, "Patient/1");
	/* count cap */
	char many[2048] = "";
	size_t len = 0;
	for (int i = 0; i < HTTP_MAX_QUERY_ARGS; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len, "a=%d&", i % 10);
	assert_int_equal(http_query_parse(a, many, &q, &n), MC_OK);
	assert_int_equal(n, HTTP_MAX_QUERY_ARGS);
	snprintf(many + len, sizeof(many) - len, "b=1");
	assert_int_equal(http_query_parse(a, many, &q, &n), MC_EINVAL);
	arena_destroy(a);
}

static enum match_result match(struct router *rt, struct arena *a, const char *method, const char *raw,
			       struct route_match *m)
{
	char *segs[HTTP_MAX_SEGMENTS], *path;
	size_t n;
	assert_int_equal(decode(a, raw, segs, &n, &path), MC_OK);
	return router_match(rt, method, segs, n, m);
}

static void test_match(void **state)
{
	(void)state;
	struct router *rt = build();
	struct arena *a = arena_create();
	struct route_match m;
	assert_int_equal(match(rt, a, "GET", "/fhir/Patient/123", &m), MATCH_OK);
	assert_string_equal(m.cr->r->summary, "read");
	assert_int_equal(m.nparams, 2);
	assert_string_equal(m.params[0].key, "type");
	assert_string_equal(m.params[0].value, "Patient");
	assert_string_equal(m.params[1].key, "id");
	assert_string_equal(m.params[1].value, "123");
	/* literal beats parameter */
	assert_int_equal(match(rt, a, "GET", "/fhir/Patient/_history", &m), MATCH_OK);
	assert_string_equal(m.cr->r->summary, "type history");
	assert_int_equal(match(rt, a, "GET", "/fhir/metadata", &m), MATCH_OK);
	assert_string_equal(m.cr->r->summary, "capabilities");
	assert_int_equal(match(rt, a, "POST", "/fhir/Observation", &m), MATCH_OK);
	assert_string_equal(m.cr->r->summary, "create");
	/* HEAD is served by GET routes */
	assert_int_equal(match(rt, a, "HEAD", "/fhir/Patient/1", &m), MATCH_OK);
	assert_string_equal(m.cr->r->method, "GET");
	/* 405 with Allow */
	assert_int_equal(match(rt, a, "DELETE", "/fhir/Patient/1", &m), MATCH_NO_METHOD);
	assert_non_null(strstr(m.allow, "GET"));
	assert_non_null(strstr(m.allow, "PUT"));
	assert_non_null(strstr(m.allow, "HEAD"));
	assert_null(strstr(m.allow, "POST"));
	assert_int_equal(match(rt, a, "POST", "/api/v1/patients/1/profile", &m), MATCH_NO_METHOD);
	assert_string_equal(m.allow, "GET, HEAD, OPTIONS");
	/* 404 */
	assert_int_equal(match(rt, a, "GET", "/fhir/Patient/1/extra/more", &m), MATCH_NO_PATH);
	assert_int_equal(match(rt, a, "GET", "/api/v1/patients/1", &m), MATCH_NO_PATH);
	assert_int_equal(match(rt, a, "GET", "/nothing", &m), MATCH_NO_PATH);
	/* an empty segment never fills a parameter */
	assert_int_equal(match(rt, a, "GET", "/fhir/Patient//", &m), MATCH_NO_PATH);
	assert_int_equal(match(rt, a, "GET", "/fhir//x", &m), MATCH_NO_PATH);
	assert_int_equal(match(rt, a, "GET", "/", &m), MATCH_OK);
	assert_string_equal(m.cr->r->summary, "root");
	/* decoded values reach the params */
	assert_int_equal(match(rt, a, "GET", "/fhir/Patient/a%20b", &m), MATCH_OK);
	assert_string_equal(m.params[1].value, "a b");
	arena_destroy(a);
	router_free(rt);
}

static const struct route bad_noperm[] = {{"GET", "/x", h_dummy, 0, NULL, 0, NULL}};
static const struct route bad_perm[] = {{"GET", "/x", h_dummy, 0, "read:everything", 0, NULL}};
static const struct route bad_bytype[] = {{"GET", "/x/{id}", h_dummy, ROUTE_PERM_BY_TYPE, NULL, 0, NULL}};
static const struct route bad_method[] = {{"FETCH", "/x", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL}};
static const struct route bad_pattern[] = {{"GET", "x", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL}};
static const struct route bad_pattern2[] = {{"GET", "/x/{id", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL}};
static const struct route bad_pattern3[] = {{"GET", "/x//y", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL}};
static const struct route bad_dup[] = {{"GET", "/x/{a}", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL},
				       {"GET", "/x/{b}", h_dummy, ROUTE_PUBLIC, NULL, 0, NULL}};
static const struct route bad_nofn[] = {{"GET", "/x", NULL, ROUTE_PUBLIC, NULL, 0, NULL}};

static void expect_rejected(const struct route *r, size_t n)
{
	struct route_table t = {r, n};
	const struct route_table *tables[] = {&t};
	struct router *rt = NULL;
	char err[256] = "";
	assert_int_equal(router_build(tables, 1, &rt, err, sizeof(err)), MC_EINVAL);
	assert_null(rt);
	assert_true(strlen(err) > 0);
}

static void test_build_rejects(void **state)
{
	(void)state;
	expect_rejected(bad_noperm, 1);
	expect_rejected(bad_perm, 1);
	expect_rejected(bad_bytype, 1);
	expect_rejected(bad_method, 1);
	expect_rejected(bad_pattern, 1);
	expect_rejected(bad_pattern2, 1);
	expect_rejected(bad_pattern3, 1);
	expect_rejected(bad_dup, 2);
	expect_rejected(bad_nofn, 1);
}

static void test_perm_compiled(void **state)
{
	(void)state;
	struct router *rt = build();
	for (size_t i = 0; i < rt->n; i++) {
		if (rt->routes[i].r->permission)
			assert_int_equal(rt->routes[i].perm, PERM_READ_PATIENT_DATA);
		else
			assert_int_equal(rt->routes[i].perm, -1);
	}
	router_free(rt);
}

static void test_cors_allowed(void **state)
{
	(void)state;
	assert_false(http_cors_allowed("", "https://a.example"));
	assert_true(http_cors_allowed("*", "https://a.example"));
	assert_false(http_cors_allowed("*", NULL));
	assert_true(http_cors_allowed("https://a.example, https://b.example", "https://b.example"));
	assert_true(http_cors_allowed("https://a.example,https://b.example", "https://a.example"));
	assert_false(http_cors_allowed("https://a.example", "https://a.example.evil"));
	assert_false(http_cors_allowed("https://a.example.evil", "https://a.example"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_decode),  cmocka_unit_test(test_query_parse),
		cmocka_unit_test(test_match),        cmocka_unit_test(test_build_rejects),
		cmocka_unit_test(test_perm_compiled), cmocka_unit_test(test_cors_allowed),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
