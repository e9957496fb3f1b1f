/* tests/unit/test_patients_profile.c — profile <-> FHIR Patient mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "modules/patients/profile.h"

static json_t *parse(const char *s)
{
	json_t *j = NULL;
	assert_int_equal(mcjson_parse(s, strlen(s), &j, NULL), MC_OK);
	return j;
}

static void test_apply_and_read_back(void **state)
{
	(void)state;
	json_t *pat = parse("{\"resourceType\":\"Patient\"}");
	json_t *in = parse("{\"firstName\":\"Zoë\",\"lastName\":\"Müller\",\"birthDate\":\"1980-02-29\","
			   "\"gender\":\"female\",\"phone\":\"+1 555 0100\",\"email\":\"z@example.org\","
			   "\"address\":{\"line\":\"1 Main St\",\"city\":\"Springfield\",\"country\":\"US\"},"
			   "\"identifiers\":[{\"system\":\"urn:ssn\",\"value\":\"123\"}],"
			   "\"emergencyContact\":{\"name\":\"Max Müller\",\"relationship\":\"spouse\",\"phone\":\"555\"}}");
	struct profile_error pe;
	assert_int_equal(profile_apply(pat, in, NULL, &pe), MC_OK);
	json_t *p = profile_from_patient(pat, "urn:medcore:mrn");
	assert_string_equal(mcjson_str(p, "firstName"), "Zoë");
	assert_string_equal(mcjson_str(p, "lastName"), "Müller");
	assert_string_equal(mcjson_str(p, "phone"), "+1 555 0100");
	assert_string_equal(mcjson_str(p, "email"), "z@example.org");
	assert_string_equal(mcjson_str(json_object_get(p, "address"), "city"), "Springfield");
	assert_string_equal(mcjson_str(json_object_get(p, "emergencyContact"), "relationship"), "spouse");
	assert_int_equal(json_array_size(json_object_get(p, "identifiers")), 1);
	json_decref(p);

	/* null removes; other elements stay */
	json_object_set_new(pat, "extension", json_pack("[{s:s,s:s}]", "url", "http://x", "valueString", "kept"));
	json_t *edit = parse("{\"email\":null,\"address\":null,\"lastName\":\"Mueller\"}");
	assert_int_equal(profile_apply(pat, edit, NULL, &pe), MC_OK);
	assert_null(json_object_get(pat, "address"));
	assert_non_null(json_object_get(pat, "extension"));
	p = profile_from_patient(pat, "urn:medcore:mrn");
	assert_true(json_is_null(json_object_get(p, "email")));
	assert_string_equal(mcjson_str(p, "lastName"), "Mueller");
	json_decref(p);
	json_decref(edit);
	json_decref(in);
	json_decref(pat);
}

static void test_bad_input(void **state)
{
	(void)state;
	static const char *bad[] = {
		"{\"nickname\":\"x\"}",                       /* unknown field */
		"{\"firstName\":42}",                         /* wrong type */
		"{\"firstName\":\"\"}",                       /* empty */
		"{\"address\":{\"planet\":\"Mars\"}}",        /* unknown address field */
		"{\"identifiers\":[{\"system\":\"urn:medcore:mrn\",\"value\":\"MRN1\"}]}", /* MRN is server-owned */
		"{\"identifiers\":[{\"value\":\"1\"}]}",      /* missing system */
		"{\"active\":\"yes\"}",
		"[1,2]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *pat = parse("{\"resourceType\":\"Patient\"}");
		json_t *in = parse(bad[i]);
		struct profile_error pe;
		assert_int_equal(profile_apply(pat, in, NULL, &pe), MC_EINVAL);
		assert_true(strlen(pe.msg) > 0);
		json_decref(in);
		json_decref(pat);
	}
}

static void test_mrn_kept_on_identifier_edit(void **state)
{
	(void)state;
	json_t *pat = parse("{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:medcore:mrn\","
			    "\"value\":\"MRN00000007\"},{\"system\":\"urn:x\",\"value\":\"a\"}]}");
	json_t *in = parse("{\"identifiers\":[{\"system\":\"urn:y\",\"value\":\"b\"}]}");
	struct profile_error pe;
	assert_int_equal(profile_apply(pat, in, NULL, &pe), MC_OK);
	assert_string_equal(profile_identifier(pat, "urn:medcore:mrn"), "MRN00000007");
	assert_string_equal(profile_identifier(pat, "urn:y"), "b");
	assert_null(profile_identifier(pat, "urn:x"));
	json_decref(in);
	json_decref(pat);
}

static void test_phone_digits(void **state)
{
	(void)state;
	char out[32];
	profile_phone_digits("+1 (555) 010-2000", out, sizeof(out));
	assert_string_equal(out, "15550102000");
	profile_phone_digits(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_and_read_back),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_mrn_kept_on_identifier_edit),
		cmocka_unit_test(test_phone_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
