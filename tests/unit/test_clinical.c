/* tests/unit/test_clinical.c — the clinical module's pure parts: the ICD-10-CM subset (table order,
 * code shape, normalization, lookup, search ranking) and the SOAP <-> Composition mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "fhir/resource.h"
#include "modules/clinical/icd10.h"
#include "modules/clinical/soap.h"

static void test_table_sorted_unique_shaped(void **state)
{
	(void)state;
	assert_true(icd10_count() >= 300);
	for (size_t i = 0; i < icd10_count(); i++) {
		const struct icd10_entry *e = icd10_at(i);
		assert_true(icd10_shape_ok(e->code));
		assert_true(strlen(e->title) > 2);
		if (i)
			assert_true(strcmp(icd10_at(i - 1)->code, e->code) < 0);
		assert_ptr_equal(icd10_lookup(e->code), e);
	}
	assert_null(icd10_at(icd10_count()));
}

static void test_shape(void **state)
{
	(void)state;
	static const char *good[] = {"I10", "E11.9", "J06.9", "S72.001A", "M1A.9XX0", "C4A.9", "Z3A.00", "F32.A", "A0B"};
	static const char *bad[] = {"", "I1", "U07.1", "I10.", "E11.99999", "e11.9", "E11-9", "11.9", "EE1.9", "E1C",
				    "E11.U", "E11..9", "E119", "E11.9 "};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(icd10_shape_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(icd10_shape_ok(bad[i]));
	assert_false(icd10_shape_ok(NULL));
}

static void test_normalize_lookup(void **state)
{
	(void)state;
	char c[ICD10_CODE_MAX];
	assert_int_equal(icd10_normalize(" e119 ", c), MC_OK);
	assert_string_equal(c, "E11.9");
	assert_int_equal(icd10_normalize("i10", c), MC_OK);
	assert_string_equal(c, "I10");
	assert_int_equal(icd10_normalize("s72001a", c), MC_OK);
	assert_string_equal(c, "S72.001A");
	assert_int_equal(icd10_normalize("J18.9", c), MC_OK);
	assert_string_equal(icd10_lookup(c)->title, "Pneumonia, unspecified organism");
	assert_string_equal(icd10_lookup("I10")->title, "Essential (primary) hypertension");
	assert_string_equal(icd10_lookup("N39.0")->title, "Urinary tract infection, site not specified");
	assert_int_equal(icd10_normalize("u071", c), MC_EINVAL);
	assert_string_equal(c, "");
	assert_int_equal(icd10_normalize("E11.9.1", c), MC_EINVAL);
	assert_int_equal(icd10_normalize("E1", c), MC_EINVAL);
	assert_int_equal(icd10_normalize("E11.123456", c), MC_EINVAL);
	assert_int_equal(icd10_normalize(NULL, c), MC_EINVAL);
	assert_null(icd10_lookup("E11.99"));   /* well shaped, not in the subset */
	assert_null(icd10_lookup(NULL));
}

static void test_search_ranking(void **state)
{
	(void)state;
	const struct icd10_entry *h[ICD10_RESULTS_MAX];
	/* exact code first, then longer codes of the same prefix */
	size_t n = icd10_search("e11.9", h, 10);
	assert_true(n >= 1);
	assert_string_equal(h[0]->code, "E11.9");
	n = icd10_search("E11", h, 50);
	assert_true(n >= 10);
	for (size_t i = 0; i < n; i++)
		assert_true(!strncmp(h[i]->code, "E11", 3));
	for (size_t i = 1; i < n; i++)
		assert_true(strlen(h[i - 1]->code) <= strlen(h[i]->code));
	/* dot optional */
	n = icd10_search("J189", h, 5);
	assert_true(n >= 1);
	assert_string_equal(h[0]->code, "J18.9");
	/* word prefixes, any order, case-insensitive; all words must match */
	n = icd10_search("DIAB typ 2", h, 50);
	assert_true(n >= 5);
	for (size_t i = 0; i < n; i++)
		assert_non_null(strstr(h[i]->title, "Type 2 diabetes"));
	/* a title that starts with the word ranks above one that only contains it */
	n = icd10_search("pneumonia", h, 50);
	assert_true(n >= 3);
	assert_true(!strncmp(h[0]->title, "Pneumonia", 9));
	bool seen_viral = false;
	for (size_t i = 0; i < n; i++)
		seen_viral = seen_viral || !strcmp(h[i]->code, "J12.9");
	assert_true(seen_viral);
	/* hypertension: the essential one is listed */
	n = icd10_search("hypertension", h, 50);
	bool i10 = false;
	for (size_t i = 0; i < n; i++)
		i10 = i10 || !strcmp(h[i]->code, "I10");
	assert_true(i10);
	/* limits and nothing-matches */
	assert_int_equal(icd10_search("pain", h, 3), 3);
	assert_int_equal(icd10_search("zzzz qqqq", h, 10), 0);
	assert_int_equal(icd10_search("", h, 10), 0);
	assert_int_equal(icd10_search("   ", h, 10), 0);
	assert_int_equal(icd10_search(NULL, h, 10), 0);
	char big[ICD10_QUERY_MAX + 2];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(icd10_search(big, h, 10), 0);
	/* max is capped */
	assert_true(icd10_search("a", h, 1000) <= ICD10_RESULTS_MAX);
}

static json_t *parse(const char *s)
{
	json_t *j = NULL;
	assert_int_equal(mcjson_parse(s, strlen(s), &j, NULL), MC_OK);
	return j;
}

static void test_soap_roundtrip(void **state)
{
	(void)state;
	json_t *body = parse("{\"subjective\":\"a <b> & \\\"c\\\"\\nline 2\",\"objective\":\"T 37.1\","
			     "\"assessment\":\"&amp; stays literal\",\"plan\":\"\"}");
	struct soap_note n;
	const char *field = NULL;
	assert_int_equal(soap_parse(body, false, &n, &field), MC_OK);
	struct soap_author a = {42, "dr.x", "prac-1"};
	json_t *c = soap_to_composition(&n, "pat-1", "enc-1", &a, "2024-01-02T03:04:05Z");
	struct fhir_issues is;
	assert_int_equal(fhir_validate(c, "Composition", &is), MC_OK);
	assert_string_equal(mcjson_str(c, "status"), "preliminary");
	json_t *secs = json_object_get(c, "section");
	assert_int_equal(json_array_size(secs), 4);
	const char *div = mcjson_str(json_object_get(json_array_get(secs, 0), "text"), "div");
	assert_non_null(strstr(div, "a &lt;b&gt; &amp; &quot;c&quot;"));
	assert_int_equal(soap_author_user(c), 42);
	assert_string_equal(mcjson_str(json_array_get(json_object_get(c, "author"), 0), "reference"),
			    "Practitioner/prac-1");
	struct soap_note back;
	assert_int_equal(soap_from_composition(c, &back), MC_OK);
	assert_string_equal(back.text[SOAP_S], "a <b> & \"c\"\nline 2");
	assert_string_equal(back.text[SOAP_A], "&amp; stays literal");
	assert_string_equal(back.text[SOAP_P], "");
	soap_note_free(&back);

	/* partial edit keeps other sections */
	json_t *edit = parse("{\"plan\":\"new plan\"}");
	struct soap_note e;
	assert_int_equal(soap_parse(edit, true, &e, &field), MC_OK);
	assert_null(e.text[SOAP_S]);
	soap_apply(c, &e);
	assert_int_equal(soap_from_composition(c, &back), MC_OK);
	assert_string_equal(back.text[SOAP_P], "new plan");
	assert_string_equal(back.text[SOAP_O], "T 37.1");
	soap_note_free(&back);

	json_t *v = soap_view(c);
	assert_string_equal(mcjson_str(v, "patient"), "pat-1");
	assert_string_equal(mcjson_str(v, "encounter"), "enc-1");
	assert_string_equal(mcjson_str(v, "plan"), "new plan");
	json_decref(v);

	/* a section that is not ours is refused */
	json_object_set_new(json_object_get(json_array_get(secs, 1), "text"), "div", json_string("<p>x</p>"));
	assert_int_equal(soap_from_composition(c, &back), MC_EINVAL);
	json_decref(edit);
	json_decref(c);
	json_decref(body);
}

static void test_soap_bad_input(void **state)
{
	(void)state;
	struct soap_note n;
	const char *field = NULL;
	static const char *bad[] = {"{}", "{\"subjective\":\"\"}", "{\"objective\":5}", "{\"plan\":[\"x\"]}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = parse(bad[i]);
		assert_int_equal(soap_parse(b, false, &n, &field), MC_EINVAL);
		json_decref(b);
	}
	json_t *b = parse("{\"objective\":5}");
	assert_int_equal(soap_parse(b, true, &n, &field), MC_EINVAL);
	assert_string_equal(field, "objective");
	json_decref(b);
	char *big = malloc(SOAP_TEXT_MAX + 2);
	memset(big, 'x', SOAP_TEXT_MAX + 1);
	big[SOAP_TEXT_MAX + 1] = '\0';
	b = json_pack("{s:s}", "plan", big);
	assert_int_equal(soap_parse(b, false, &n, &field), MC_EINVAL);
	json_decref(b);
	free(big);
	/* unescape refuses foreign markup and unknown entities */
	assert_null(soap_undiv("<p>x</p>"));
	assert_null(soap_undiv("<div xmlns=\"http://www.w3.org/1999/xhtml\">&nbsp;</div>"));
	assert_null(soap_undiv(NULL));
	char *s = soap_undiv("<div xmlns=\"http://www.w3.org/1999/xhtml\">&lt;ok&gt;</div>");
	assert_string_equal(s, "<ok>");
	free(s);
	/* no author identifier -> 0 */
	json_t *c = parse("{\"author\":[{\"display\":\"x\"}]}");
	assert_int_equal(soap_author_user(c), 0);
	json_decref(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_sorted_unique_shaped),
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_normalize_lookup),
		cmocka_unit_test(test_search_ranking),
		cmocka_unit_test(test_soap_roundtrip),
		cmocka_unit_test(test_soap_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
