/* tests/unit/test_fhir_bundle.c — the pure parts of transaction processing (fhir/bundle.h):
 * processing order (R4 §3.1.0.11.2), urn:uuid reference rewriting, and HTTP-date parsing for
 * conditional reads (fhir/conditional.h). The HTTP behaviour is in
 * tests/integration/test_fhir_bundle.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/json.h"
#include "fhir/bundle.h"
#include "fhir/conditional.h"

static json_t *J(const char *s)
{
	json_t *j = NULL;
	struct mcjson_error e;
	if (mcjson_parse(s, strlen(s), &j, &e))
		fail_msg("bad test JSON: %s (%s)", s, e.text);
	return j;
}

static void test_order(void **state)
{
	(void)state;
	const char *m[] = {"GET", "PUT", "POST", "DELETE", "PATCH", "POST", "DELETE", "OPTIONS", "GET", "POST"};
	const char *t[] = {"Patient", "Observation", "Observation", "Patient", "Patient",
			   "Patient", "Encounter", "Patient", "Observation", "Encounter"};
	size_t order[10];
	fhir_bundle_order(m, t, 10, order);
	/* DELETEs (3, 6), Patient POSTs (5), other POSTs in request order (2, 9), PUT/PATCH (1, 4),
	 * GETs (0, 8), unknown methods last (7) */
	const size_t want[10] = {3, 6, 5, 2, 9, 1, 4, 0, 8, 7};
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(order[i], want[i]);
	assert_int_equal(fhir_bundle_pass("DELETE", NULL), 0);
	assert_int_equal(fhir_bundle_pass("POST", "Patient"), 1);
	assert_int_equal(fhir_bundle_pass("POST", NULL), 2);
	assert_int_equal(fhir_bundle_pass("PATCH", "X"), 3);
	assert_int_equal(fhir_bundle_pass("HEAD", "X"), 4);
	assert_int_equal(fhir_bundle_pass("TRACE", "X"), -1);
	assert_int_equal(fhir_bundle_pass(NULL, "X"), -1);
	fhir_bundle_order(m, NULL, 0, order);   /* empty is fine */
}

static const char *const FROM[] = {"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
				   "urn:uuid:88f151c0-a954-468a-88bf-4d0d8b7f1f10"};
static const char *const TO[] = {"Patient/p1", "Practitioner/d1"};

static void test_rewrite(void **state)
{
	(void)state;
	struct fhir_urn_map m = {2, FROM, TO};
	json_t *obs = J("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			"\"subject\":{\"reference\":\"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a\"},"
			"\"performer\":[{\"reference\":\"Organization/o1\"},"
			"{\"reference\":\"urn:uuid:88f151c0-a954-468a-88bf-4d0d8b7f1f10\",\"display\":\"Dr\"}],"
			"\"valueQuantity\":{\"value\":1.50},"
			"\"extension\":[{\"url\":\"x\",\"valueReference\":{\"reference\":"
			"\"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a\"}}],"
			"\"note\":[{\"text\":\"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a\"}]}");
	size_t n = 99;
	char bad[128] = "";
	assert_int_equal(fhir_bundle_rewrite_refs(obs, &m, true, "Bundle.entry[1].resource", bad, sizeof(bad), &n),
			 MC_OK);
	assert_int_equal(n, 3);
	assert_string_equal(mcjson_str(json_object_get(obs, "subject"), "reference"), "Patient/p1");
	json_t *perf = json_object_get(obs, "performer");
	assert_string_equal(mcjson_str(json_array_get(perf, 0), "reference"), "Organization/o1");
	assert_string_equal(mcjson_str(json_array_get(perf, 1), "reference"), "Practitioner/d1");
	assert_string_equal(mcjson_str(json_array_get(perf, 1), "display"), "Dr");
	json_t *ext = json_array_get(json_object_get(obs, "extension"), 0);
	assert_string_equal(mcjson_str(json_object_get(ext, "valueReference"), "reference"), "Patient/p1");
	/* only "reference" members are references: free text is left alone */
	assert_string_equal(mcjson_str(json_array_get(json_object_get(obs, "note"), 0), "text"), FROM[0]);
	/* decimals keep their lexeme */
	struct buf b = BUF_INIT;
	assert_int_equal(mcjson_dump(obs, &b), MC_OK);
	assert_non_null(strstr(buf_str(&b), "\"value\":1.50"));
	buf_release(&b);
	json_decref(obs);
}

static void test_rewrite_unresolved(void **state)
{
	(void)state;
	struct fhir_urn_map m = {1, FROM, TO};
	json_t *r = J("{\"resourceType\":\"Encounter\",\"participant\":[{\"individual\":{\"reference\":\"Patient/x\"}},"
		      "{\"individual\":{\"reference\":\"urn:uuid:00000000-0000-4000-8000-000000000000\"}}]}");
	char bad[128] = "";
	assert_int_equal(fhir_bundle_rewrite_refs(r, &m, true, "Bundle.entry[4].resource", bad, sizeof(bad), NULL),
			 MC_EINVAL);
	assert_string_equal(bad, "Bundle.entry[4].resource.participant[1].individual.reference");
	/* not strict (batch): left alone */
	size_t n = 7;
	assert_int_equal(fhir_bundle_rewrite_refs(r, &m, false, NULL, NULL, 0, &n), MC_OK);
	assert_int_equal(n, 0);
	json_decref(r);
	json_t *o = J("{\"a\":{\"reference\":\"urn:oid:1.2.3\"}}");
	assert_int_equal(fhir_bundle_rewrite_refs(o, &m, true, "", bad, sizeof(bad), NULL), MC_EINVAL);
	assert_string_equal(bad, ".a.reference");
	json_decref(o);
	/* an empty map and no references */
	struct fhir_urn_map none = {0, NULL, NULL};
	json_t *p = J("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"X\"}]}");
	assert_int_equal(fhir_bundle_rewrite_refs(p, &none, true, "P", bad, sizeof(bad), &n), MC_OK);
	assert_int_equal(n, 0);
	json_decref(p);
}

static void test_http_date(void **state)
{
	(void)state;
	int64_t ms = 0;
	assert_int_equal(fhir_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &ms), MC_OK);
	assert_int_equal(ms, (int64_t)784111777 * 1000);
	assert_int_equal(fhir_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &ms), MC_OK);
	assert_int_equal(ms, (int64_t)784111777 * 1000);
	assert_int_equal(fhir_http_date_parse("Sun Nov  6 08:49:37 1994", &ms), MC_OK);
	assert_int_equal(ms, (int64_t)784111777 * 1000);
	static const char *const bad[] = {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 CET", "Sun, 06 Foo 1994 08:49:37 GMT",
					  "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
					  "Sun, 06 Nov 1994 08:49:37 GMT trailing", "2024-01-01T00:00:00Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fhir_http_date_parse(bad[i], &ms) == MC_OK)
			fail_msg("accepted bad date '%s'", bad[i]);
	assert_int_equal(fhir_http_date_parse(NULL, &ms), MC_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_rewrite_unresolved),
		cmocka_unit_test(test_http_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
