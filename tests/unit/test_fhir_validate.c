/* Unit tests for fhir_validate (src/fhir/resource.c) and fhir_normalize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "fhir/resource.h"

static json_t *parse(const char *text)
{
	json_t *j = NULL;
	struct mcjson_error err;
	int rc = mcjson_parse(text, strlen(text), &j, &err);
	if (rc != MC_OK)
		fail_msg("test JSON does not parse: %s (line %d)", err.text, err.line);
	return j;
}

/* Validate text as type; return the number of issues (0 when valid). */
static size_t run(const char *type, const char *text, struct fhir_issues *is)
{
	json_t *j = parse(text);
	int rc = fhir_validate(j, type, is);
	json_decref(j);
	assert_int_equal(rc, is->n ? MC_EINVAL : MC_OK);
	return is->n;
}

static void dump(const struct fhir_issues *is)
{
	for (size_t i = 0; i < is->n; i++)
		print_message("  issue %zu: %s %s %s\n", i, is->v[i].code, is->v[i].path, is->v[i].msg);
}

static void expect_valid(const char *type, const char *text)
{
	struct fhir_issues is;
	if (run(type, text, &is)) {
		dump(&is);
		fail_msg("expected a valid %s", type);
	}
}

/* Exactly one issue, with this code and path. */
static void expect_issue(const char *type, const char *text, const char *code, const char *path)
{
	struct fhir_issues is;
	size_t n = run(type, text, &is);
	if (n != 1 || strcmp(is.v[0].code, code) != 0 || strcmp(is.v[0].path, path) != 0) {
		dump(&is);
		fail_msg("expected one issue %s at %s", code, path);
	}
}

static const char *PATIENT =
	"{\"resourceType\":\"Patient\",\"id\":\"p-1.a\",\"meta\":{\"lastUpdated\":\"2024-05-07T10:00:00.123Z\","
	"\"tag\":[{\"system\":\"http://x\",\"code\":\"t\"}]},"
	"\"identifier\":[{\"system\":\"urn:oid:1.2.36.146.595.217.0.1\",\"value\":\"12345\"}],"
	"\"active\":true,\"name\":[{\"use\":\"official\",\"family\":\"Chalmers\",\"given\":[\"Peter\",\"James\"]}],"
	"\"telecom\":[{\"system\":\"phone\",\"value\":\"(03) 5555 6473\",\"use\":\"work\",\"rank\":1}],"
	"\"gender\":\"male\",\"birthDate\":\"1974-12-25\",\"_birthDate\":{\"extension\":[{\"url\":"
	"\"http://hl7.org/fhir/StructureDefinition/patient-birthTime\",\"valueDateTime\":\"1974-12-25T14:35:45-05:00\"}]},"
	"\"deceasedBoolean\":false,\"address\":[{\"line\":[\"534 Erewhon St\"],\"city\":\"PleasantVille\","
	"\"postalCode\":\"3999\",\"period\":{\"start\":\"1974-12-25\"}}],"
	"\"maritalStatus\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus\","
	"\"code\":\"M\"}],\"text\":\"Married\"},\"multipleBirthInteger\":1,"
	"\"photo\":[{\"contentType\":\"image/png\",\"data\":\"iVBORw0K GgoA\",\"size\":0}],"
	"\"contact\":[{\"relationship\":[{\"text\":\"partner\"}],\"name\":{\"family\":\"du Marché\","
	"\"_family\":{\"extension\":[{\"url\":\"http://x/own-prefix\",\"valueString\":\"VV\"}]}}}],"
	"\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">x</div>\"}}";

static void test_valid_patient(void **state)
{
	(void)state;
	expect_valid("Patient", PATIENT);
	assert_true(fhir_type_is_resource("Patient"));
	assert_false(fhir_type_is_resource("HumanName"));
	assert_false(fhir_type_is_resource("Nope"));
}

static void test_valid_practitioner_observation(void **state)
{
	(void)state;
	expect_valid("Practitioner",
		     "{\"resourceType\":\"Practitioner\",\"id\":\"pr1\",\"active\":true,"
		     "\"name\":[{\"family\":\"Careful\",\"given\":[\"Adam\"],\"prefix\":[\"Dr\"]}],"
		     "\"qualification\":[{\"code\":{\"text\":\"MD\"},\"period\":{\"start\":\"1995\"}}]}");
	expect_valid("Observation",
		     "{\"resourceType\":\"Observation\",\"status\":\"final\",\"category\":[{\"coding\":[{"
		     "\"system\":\"http://terminology.hl7.org/CodeSystem/observation-category\",\"code\":\"vital-signs\"}]}],"
		     "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\",\"display\":\"Body Weight\"}]},"
		     "\"subject\":{\"reference\":\"Patient/example\"},\"effectiveDateTime\":\"2016-03-28\","
		     "\"valueQuantity\":{\"value\":185.50,\"unit\":\"lbs\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"[lb_av]\"},"
		     "\"referenceRange\":[{\"low\":{\"value\":1e2},\"high\":{\"value\":200}}]}");
}

static void test_unknown_and_type_errors(void **state)
{
	(void)state;
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"foo\":1}", "structure", "Patient.foo");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"_foo\":{}}", "structure", "Patient._foo");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"x\",\"nick\":\"y\"}]}",
		     "structure", "Patient.name[0].nick");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"active\":\"yes\"}", "structure", "Patient.active");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"active\":1}", "structure", "Patient.active");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":{\"family\":\"x\"}}", "structure", "Patient.name");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"gender\":[\"male\"]}", "structure", "Patient.gender");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"maritalStatus\":\"M\"}", "structure",
		     "Patient.maritalStatus");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":12}]}", "structure",
		     "Patient.name[0].family");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":1.5}]}", "structure",
		     "Patient.name[0].family");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"gender\":null}", "structure", "Patient.gender");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",null]}]}", "structure",
		     "Patient.name[0].given[1]");
	struct fhir_issues is;
	assert_int_equal(run("Patient", "[1]", &is), 1);
	assert_string_equal(is.v[0].code, "structure");
	assert_int_equal(run("Nope", "{\"resourceType\":\"Nope\"}", &is), 1);
	assert_string_equal(is.v[0].code, "invalid");
	assert_int_equal(run("HumanName", "{\"family\":\"x\"}", &is), 1);
}

static void test_primitive_formats(void **state)
{
	(void)state;
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"a\",\"\"]}]}", "value",
		     "Patient.name[0].given[1]");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"gender\":\"mal\"}", "value", "Patient.gender");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"id\":\"a b\"}", "value", "Patient.id");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"id\":\"x123456789x123456789x123456789x123456789"
		     "x123456789x123456789x12345\"}", "value", "Patient.id");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"2023-02-29\"}", "value", "Patient.birthDate");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"2023-13\"}", "value", "Patient.birthDate");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"0000\"}", "value", "Patient.birthDate");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"2020-01-01T10:00:00Z\"}", "value",
		     "Patient.birthDate");
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"2024-02-29\"}");
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"birthDate\":\"2024\"}");
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-03-01T23:59:60.5+14:00\"}");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-03-01T10:00:00\"}", "value",
		     "Patient.deceasedDateTime");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-03-01T10:00Z\"}", "value",
		     "Patient.deceasedDateTime");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2024-03T10:00:00Z\"}", "value",
		     "Patient.deceasedDateTime");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"meta\":{\"lastUpdated\":\"2024-01-01\"}}", "value",
		     "Patient.meta.lastUpdated");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"language\":\"en  US\"}", "value", "Patient.language");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"implicitRules\":\"http://a b\"}", "value",
		     "Patient.implicitRules");
	/* a uri holding a malformed oid is still a valid uri */
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:oid:1.02\",\"value\":\"x\"}]}");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"photo\":[{\"data\":\"abc\"}]}", "value",
		     "Patient.photo[0].data");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"photo\":[{\"size\":-1}]}", "value",
		     "Patient.photo[0].size");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"multipleBirthInteger\":2.0}", "value",
		     "Patient.multipleBirthInteger");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"multipleBirthInteger\":2147483648}", "value",
		     "Patient.multipleBirthInteger");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"multipleBirthInteger\":\"2\"}", "structure",
		     "Patient.multipleBirthInteger");
	expect_issue("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueQuantity\":{\"value\":\"1.5\"}}", "structure", "Observation.valueQuantity.value");
	expect_issue("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueTime\":\"25:00:00\"}", "value", "Observation.valueTime");
	expect_valid("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueTime\":\"23:59:59.999\",\"component\":[{\"code\":{\"text\":\"y\"},\"valueInteger\":-5}]}");
	expect_valid("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		     "\"valueQuantity\":{\"value\":-0.000120E+5}}");
	/* oid and uuid types */
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"http://x\",\"valueOid\":\"urn:oid:1.2.3\"},"
		     "{\"url\":\"http://x\",\"valueUuid\":\"urn:uuid:c757873d-ec9a-4326-a141-556f43239520\"}]}");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"http://x\",\"valueOid\":\"urn:oid:1.02\"}]}",
		     "value", "Patient.extension[0].valueOid");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"extension\":[{\"url\":\"http://x\",\"valueUuid\":"
		     "\"urn:uuid:C757873D-ec9a-4326-a141-556f43239520\"}]}", "value", "Patient.extension[0].valueUuid");
}

static void test_structure_rules(void **state)
{
	(void)state;
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"deceasedBoolean\":true,\"deceasedDateTime\":\"2020\"}",
		     "structure", "Patient.deceasedDateTime");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"maritalStatus\":{}}", "structure", "Patient.maritalStatus");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"name\":[]}", "structure", "Patient.name");
	expect_issue("Patient", "{\"resourceType\":\"Practitioner\"}", "invalid", "Patient.resourceType");
	expect_issue("Patient", "{\"id\":\"x\"}", "required", "Patient");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"link\":[{\"type\":\"seealso\"}]}", "required",
		     "Patient.link[0].other");
	struct fhir_issues is;
	/* fhir.schema.json marks only complex elements required (a primitive may come as `_x` alone):
	 * Observation.code is required there, Observation.status is not */
	assert_int_equal(run("Observation", "{\"resourceType\":\"Observation\",\"status\":\"final\"}", &is), 1);
	assert_string_equal(is.v[0].code, "required");
	assert_string_equal(is.v[0].path, "Observation.code");
	/* primitive extension siblings, with nulls keeping array positions aligned */
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"A\",null],"
		     "\"_given\":[null,{\"extension\":[{\"url\":\"http://x\",\"valueCode\":\"x\"}]}]}]}");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"_name\":{\"id\":\"x\"}}", "structure", "Patient._name");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"_gender\":{\"foo\":1}}", "structure",
		     "Patient._gender.foo");
	/* a required primitive given only through its extension sibling counts as present */
	expect_valid("Observation", "{\"resourceType\":\"Observation\",\"_status\":{\"extension\":[{\"url\":\"http://x\","
		     "\"valueString\":\"s\"}]},\"code\":{\"text\":\"x\"}}");
	expect_valid("Bundle", "{\"resourceType\":\"Bundle\",\"_type\":{\"id\":\"t\"}}");
}

static void test_contained(void **state)
{
	(void)state;
	expect_valid("Patient", "{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"pr\","
		     "\"gender\":\"female\"},{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"Acme\"}],"
		     "\"generalPractitioner\":[{\"reference\":\"#pr\"}]}");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"Practitioner\","
		     "\"gender\":\"f\"}]}", "value", "Patient.contained[0].gender");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"contained\":[{\"id\":\"x\"}]}", "required",
		     "Patient.contained[0]");
	expect_issue("Patient", "{\"resourceType\":\"Patient\",\"contained\":[{\"resourceType\":\"HumanName\"}]}", "invalid",
		     "Patient.contained[0]");
	expect_issue("Bundle", "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":"
		     "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":{\"resourceType\":"
		     "\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"display\":7}}}]}}]}",
		     "structure", "Bundle.entry[0].resource.entry[0].resource.subject.display");
}

static void test_limits(void **state)
{
	(void)state;
	struct fhir_issues is;
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "{\"resourceType\":\"Patient\"");
	for (int i = 0; i < 40; i++)
		buf_printf(&b, ",\"bad%d\":1", i);
	buf_puts(&b, "}");
	assert_int_equal(run("Patient", buf_str(&b), &is), FHIR_MAX_ISSUES);
	buf_release(&b);
	/* deep extension chains are cut, not followed until the stack runs out */
	buf_init(&b, 0);
	buf_puts(&b, "{\"resourceType\":\"Patient\",\"extension\":[");
	for (int i = 0; i < 200; i++)
		buf_puts(&b, "{\"url\":\"http://x\",\"extension\":[");
	buf_puts(&b, "{\"url\":\"http://x\",\"valueCode\":\"x\"}");
	for (int i = 0; i < 200; i++)
		buf_puts(&b, "]}");
	buf_puts(&b, "]}");
	assert_int_equal(run("Patient", buf_str(&b), &is), 1);
	assert_string_equal(is.v[0].msg, "nested too deeply");
	buf_release(&b);
	/* long unknown keys are cut in the path */
	char big[600];
	memset(big, 'k', 300);
	snprintf(big + 300, sizeof big - 300, "%s", "");
	char doc[800];
	snprintf(doc, sizeof doc, "{\"resourceType\":\"Patient\",\"%s\":1}", big);
	assert_int_equal(run("Patient", doc, &is), 1);
	assert_true(strlen(is.v[0].path) <= 8 + 64);
}

static void test_normalize(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(fhir_normalize("Jöhn ÉLODIE", out, sizeof out), MC_OK);
	assert_string_equal(out, "john elodie");
	assert_int_equal(fhir_normalize("  Straße\t\n Æsir  Øre Łódź ŒUVRE  ", out, sizeof out), MC_OK);
	assert_string_equal(out, "strasse aesir ore lodz oeuvre");
	assert_int_equal(fhir_normalize("Дмитрий ×2 日本", out, sizeof out), MC_OK);
	assert_string_equal(out, "Дмитрий ×2 日本");
	assert_int_equal(fhir_normalize("a\xff\xc3", out, sizeof out), MC_OK);   /* stray bytes pass */
	assert_string_equal(out, "a\xff\xc3");
	char small[5];
	assert_int_equal(fhir_normalize("Müller", small, sizeof small), MC_ETOOBIG);
	assert_string_equal(small, "mull");
	assert_int_equal(fhir_normalize("", out, sizeof out), MC_OK);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_patient),
		cmocka_unit_test(test_valid_practitioner_observation),
		cmocka_unit_test(test_unknown_and_type_errors),
		cmocka_unit_test(test_primitive_formats),
		cmocka_unit_test(test_structure_rules),
		cmocka_unit_test(test_contained),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_normalize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
