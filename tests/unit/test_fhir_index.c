/* Unit tests for the search-parameter tables, fhir_index_extract and fhir_patient_of. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/resource.h"
#include "fhir/search.h"

#define MAX_ROWS 128
struct row {
	enum fhir_sp_type type;
	char param[128], text[96], raw[96], system[96], code[64], ref_type[48], ref_id[128];
	int64_t lo, hi;
	double num;
	int has_ref_type;
};
struct rows {
	size_t n;
	struct row v[MAX_ROWS];
};

static void cp(char *dst, size_t n, const char *s)
{
	snprintf(dst, n, "%s", s ? s : "");
}

static int collect(const struct fhir_index_row *r, void *arg)
{
	struct rows *rs = arg;
	assert_true(rs->n < MAX_ROWS);
	struct row *o = &rs->v[rs->n++];
	memset(o, 0, sizeof *o);
	o->type = r->type;
	cp(o->param, sizeof o->param, r->param);
	cp(o->text, sizeof o->text, r->text);
	cp(o->raw, sizeof o->raw, r->raw);
	cp(o->system, sizeof o->system, r->system);
	cp(o->code, sizeof o->code, r->code);
	cp(o->ref_type, sizeof o->ref_type, r->ref_type);
	cp(o->ref_id, sizeof o->ref_id, r->ref_id);
	o->has_ref_type = r->ref_type != NULL;
	o->lo = r->lo;
	o->hi = r->hi;
	o->num = r->num;
	return 0;
}

static json_t *parse(const char *text)
{
	json_t *j = NULL;
	struct mcjson_error err;
	if (mcjson_parse(text, strlen(text), &j, &err) != MC_OK)
		fail_msg("test JSON does not parse: %s", err.text);
	return j;
}

static void extract(const char *type, const char *text, struct rows *rs)
{
	json_t *j = parse(text);
	struct fhir_issues is;
	int vrc = fhir_validate(j, type, &is);
	if (vrc != MC_OK)
		fail_msg("fixture invalid: %s %s", is.v[0].path, is.v[0].msg);
	rs->n = 0;
	assert_int_equal(fhir_index_extract(type, j, collect, rs), MC_OK);
	json_decref(j);
}

static size_t count(const struct rows *rs, const char *param)
{
	size_t k = 0;
	for (size_t i = 0; i < rs->n; i++)
		k += strcmp(rs->v[i].param, param) == 0;
	return k;
}

/* The first row of param whose field `what` equals val. */
static const struct row *find(const struct rows *rs, const char *param, const char *what, const char *val)
{
	for (size_t i = 0; i < rs->n; i++) {
		const struct row *r = &rs->v[i];
		const char *f = strcmp(what, "text") == 0 ? r->text : strcmp(what, "code") == 0 ? r->code
			: strcmp(what, "ref_id") == 0 ? r->ref_id : strcmp(what, "raw") == 0 ? r->raw : "";
		if (strcmp(r->param, param) == 0 && strcmp(f, val) == 0)
			return r;
	}
	for (size_t i = 0; i < rs->n; i++)
		print_message("  row %s t=%d text=%s code=%s sys=%s ref=%s/%s\n", rs->v[i].param, rs->v[i].type,
			      rs->v[i].text, rs->v[i].code, rs->v[i].system, rs->v[i].ref_type, rs->v[i].ref_id);
	fail_msg("no row %s %s=%s", param, what, val);
	return NULL;
}

static int64_t ms(const char *s)
{
	int64_t lo, hi;
	assert_int_equal(mctime_parse_fhir(s, &lo, &hi, NULL), MC_OK);
	return lo;
}

static const char *PATIENT =
	"{\"resourceType\":\"Patient\",\"id\":\"pat1\",\"meta\":{\"lastUpdated\":\"2024-05-07T10:00:00Z\","
	"\"tag\":[{\"system\":\"http://tags\",\"code\":\"vip\"}],\"profile\":[\"http://example.org/p\"]},"
	"\"identifier\":[{\"system\":\"http://hospital/mrn\",\"value\":\"MRN-7\"}],\"active\":true,"
	"\"name\":[{\"family\":\"Müller\",\"given\":[\"Jöhn\",\"Peter\"],\"prefix\":[\"Dr\"]},{\"text\":\"Johnny M\"}],"
	"\"telecom\":[{\"system\":\"phone\",\"value\":\"+41 44 000\"},{\"system\":\"email\",\"value\":\"j@x.org\"}],"
	"\"gender\":\"male\",\"birthDate\":\"1974-12\",\"address\":[{\"line\":[\"Bahnhofstr. 1\"],\"city\":\"Zürich\","
	"\"postalCode\":\"8001\",\"country\":\"CH\"}],"
	"\"generalPractitioner\":[{\"reference\":\"Practitioner/pr1\"},{\"reference\":\"https://other.org/fhir/Organization/o9/_history/2\"},"
	"{\"reference\":\"urn:uuid:c757873d-ec9a-4326-a141-556f43239520\"},{\"reference\":\"#local\"}]}";

static void test_patient(void **state)
{
	(void)state;
	struct rows rs;
	extract("Patient", PATIENT, &rs);
	/* string: HumanName parts, normalized, with the original text kept */
	const struct row *r = find(&rs, "family", "text", "muller");
	assert_int_equal(r->type, FHIR_SP_STRING);
	assert_string_equal(r->raw, "Müller");
	assert_int_equal(count(&rs, "family"), 1);
	find(&rs, "given", "text", "john");
	find(&rs, "given", "text", "peter");
	assert_int_equal(count(&rs, "given"), 2);
	find(&rs, "name", "text", "dr");
	find(&rs, "name", "text", "johnny m");
	assert_int_equal(count(&rs, "name"), 5);
	find(&rs, "address-city", "text", "zurich");
	find(&rs, "address", "text", "bahnhofstr. 1");
	find(&rs, "address-postalcode", "text", "8001");
	/* token */
	r = find(&rs, "identifier", "code", "MRN-7");
	assert_int_equal(r->type, FHIR_SP_TOKEN);
	assert_string_equal(r->system, "http://hospital/mrn");
	r = find(&rs, "gender", "code", "male");
	assert_string_equal(r->system, "");
	find(&rs, "active", "code", "true");
	find(&rs, "phone", "code", "+41 44 000");
	assert_int_equal(count(&rs, "phone"), 1);
	find(&rs, "email", "code", "j@x.org");
	assert_int_equal(count(&rs, "email"), 1);
	assert_int_equal(count(&rs, "telecom"), 2);
	/* date: partial birthDate covers the month */
	r = find(&rs, "birthdate", "code", "");
	assert_int_equal(r->type, FHIR_SP_DATE);
	assert_true(r->lo == ms("1974-12-01"));
	assert_true(r->hi == ms("1975-01-01"));
	/* reference: relative, absolute (split), urn (not split); local refs are skipped */
	r = find(&rs, "general-practitioner", "ref_id", "pr1");
	assert_string_equal(r->ref_type, "Practitioner");
	r = find(&rs, "general-practitioner", "ref_id", "https://other.org/fhir/Organization/o9/_history/2");
	assert_string_equal(r->ref_type, "Organization");
	r = find(&rs, "general-practitioner", "ref_id", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520");
	assert_false(r->has_ref_type);
	assert_int_equal(count(&rs, "general-practitioner"), 3);
	/* the parameters every resource has */
	find(&rs, "_id", "code", "pat1");
	r = find(&rs, "_lastUpdated", "code", "");
	assert_true(r->lo == ms("2024-05-07T10:00:00Z") && r->hi == r->lo + 1000);
	r = find(&rs, "_tag", "code", "vip");
	assert_string_equal(r->system, "http://tags");
	r = find(&rs, "_profile", "text", "http://example.org/p");
	assert_int_equal(r->type, FHIR_SP_URI);
	/* Patient is its own compartment */
	char pid[65];
	json_t *j = parse(PATIENT);
	assert_true(fhir_patient_of("Patient", j, pid));
	assert_string_equal(pid, "pat1");
	json_decref(j);
}

static void test_practitioner(void **state)
{
	(void)state;
	struct rows rs;
	extract("Practitioner",
		"{\"resourceType\":\"Practitioner\",\"id\":\"pr1\",\"name\":[{\"family\":\"Careful\",\"given\":[\"Adam\"]}],"
		"\"telecom\":[{\"system\":\"email\",\"value\":\"adam@x.org\"}],"
		"\"qualification\":[{\"code\":{\"text\":\"MD\"}}],\"communication\":[{\"coding\":[{\"system\":\"urn:ietf:bcp:47\","
		"\"code\":\"de\",\"display\":\"Deutsch\"}]}]}",
		&rs);
	find(&rs, "family", "text", "careful");
	find(&rs, "given", "text", "adam");
	find(&rs, "email", "code", "adam@x.org");
	const struct row *r = find(&rs, "communication", "code", "de");
	assert_string_equal(r->system, "urn:ietf:bcp:47");
	assert_string_equal(r->text, "deutsch");
	char pid[65];
	json_t *j = parse("{\"resourceType\":\"Practitioner\",\"id\":\"pr1\"}");
	assert_false(fhir_patient_of("Practitioner", j, pid));
	json_decref(j);
}

static const char *OBS =
	"{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
	"\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\",\"display\":\"Body Weight\"},"
	"{\"system\":\"http://snomed.info/sct\",\"code\":\"27113001\"}],\"text\":\"Weight\"},"
	"\"subject\":{\"reference\":\"Patient/pat1\"},\"encounter\":{\"reference\":\"Encounter/e1\"},"
	"\"effectivePeriod\":{\"start\":\"2016-03-28T09:00:00Z\"},"
	"\"valueQuantity\":{\"value\":72.50,\"unit\":\"kg\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"kg\"},"
	"\"performer\":[{\"reference\":\"Practitioner/pr1\"}]}";

static void test_observation(void **state)
{
	(void)state;
	struct rows rs;
	extract("Observation", OBS, &rs);
	const struct row *r = find(&rs, "code", "code", "29463-7");
	assert_string_equal(r->system, "http://loinc.org");
	assert_string_equal(r->text, "body weight");
	r = find(&rs, "code", "code", "27113001");
	assert_string_equal(r->text, "weight");   /* no display: the concept's text */
	assert_int_equal(count(&rs, "code"), 2);
	r = find(&rs, "subject", "ref_id", "pat1");
	assert_string_equal(r->ref_type, "Patient");
	r = find(&rs, "patient", "ref_id", "pat1");   /* subject.where(resolve() is Patient) */
	assert_int_equal(r->type, FHIR_SP_REFERENCE);
	r = find(&rs, "value-quantity", "code", "kg");
	assert_int_equal(r->type, FHIR_SP_QUANTITY);
	assert_true(r->num > 72.49 && r->num < 72.51);
	assert_string_equal(r->system, "http://unitsofmeasure.org");
	r = find(&rs, "date", "code", "");   /* Observation.effective: the Period variant */
	assert_true(r->lo == ms("2016-03-28T09:00:00Z"));
	assert_true(r->hi == INT64_MAX);
	assert_int_equal(count(&rs, "value-concept"), 0);
	find(&rs, "status", "code", "final");

	char pid[65];
	json_t *j = parse(OBS);
	assert_true(fhir_patient_of("Observation", j, pid));
	assert_string_equal(pid, "pat1");
	json_decref(j);
	/* subject is a Group: not in a patient compartment; absolute refs never count */
	j = parse("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		  "\"subject\":{\"reference\":\"Group/g1\"},\"performer\":[{\"reference\":\"http://x.org/Patient/p9\"}]}");
	assert_false(fhir_patient_of("Observation", j, pid));
	json_decref(j);
	/* performer (another compartment param) is used when the subject is missing */
	j = parse("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
		  "\"performer\":[{\"reference\":\"Practitioner/x\"},{\"reference\":\"Patient/p2/_history/3\"}]}");
	assert_true(fhir_patient_of("Observation", j, pid));
	assert_string_equal(pid, "p2");
	json_decref(j);
}

static void test_encounter_and_more(void **state)
{
	(void)state;
	char pid[65];
	json_t *j = parse("{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
			  "\"subject\":{\"reference\":\"Patient/pe\"},\"period\":{\"start\":\"2024-01-01\",\"end\":\"2024-01-02\"}}");
	assert_true(fhir_patient_of("Encounter", j, pid));
	assert_string_equal(pid, "pe");
	struct rows rs;
	rs.n = 0;
	assert_int_equal(fhir_index_extract("Encounter", j, collect, &rs), MC_OK);
	const struct row *r = find(&rs, "date", "code", "");
	assert_true(r->lo == ms("2024-01-01") && r->hi == ms("2024-01-03"));
	find(&rs, "class", "code", "AMB");
	json_decref(j);
	j = parse("{\"resourceType\":\"Patient\",\"id\":\"bad id\"}");
	assert_false(fhir_patient_of("Patient", j, pid));
	json_decref(j);
	j = parse("{\"resourceType\":\"Organization\",\"name\":\"Acme\"}");
	assert_false(fhir_patient_of("Organization", j, pid));
	assert_int_equal(fhir_index_extract("Nope", j, collect, &rs), MC_EINVAL);
	json_decref(j);
	/* Observation value as string / CodeableConcept.text; Condition onset as Age */
	extract("Condition", "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/c\"},"
		"\"onsetAge\":{\"value\":52,\"unit\":\"a\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"a\"}}", &rs);
	r = find(&rs, "onset-age", "code", "a");
	assert_true(r->num == 52);
}

/* Extraction must not trust its input to be valid: wrong shapes yield no rows, never a crash. */
static void test_unvalidated_input(void **state)
{
	(void)state;
	struct rows rs;
	json_t *j = parse("{\"resourceType\":\"Patient\",\"id\":7,\"name\":\"Smith\",\"birthDate\":19740101,"
			  "\"telecom\":[{\"system\":\"phone\",\"value\":5},null,[[\"x\"]]],\"gender\":{\"a\":1},"
			  "\"generalPractitioner\":[{\"reference\":\"\"},{\"reference\":\"/\"},{\"reference\":\"Patient/\"},"
			  "{\"reference\":\"Nope/1\"},{\"reference\":\"Practitioner/a b\"},{\"reference\":12}],"
			  "\"meta\":{\"lastUpdated\":\"yesterday\",\"tag\":[{\"code\":1.5}]},"
			  "\"address\":[{\"city\":\"\"}]}");
	rs.n = 0;
	assert_int_equal(fhir_index_extract("Patient", j, collect, &rs), MC_OK);
	for (size_t i = 0; i < rs.n; i++)
		print_message("  unexpected row %s\n", rs.v[i].param);
	assert_int_equal(rs.n, 0);
	char pid[65];
	assert_false(fhir_patient_of("Patient", j, pid));
	json_decref(j);
	j = parse("[1,2]");
	assert_int_equal(fhir_index_extract("Patient", j, collect, &rs), MC_EINVAL);
	assert_false(fhir_patient_of("Observation", j, pid));
	json_decref(j);
}

static int stop_cb(const struct fhir_index_row *r, void *arg)
{
	(void)r;
	(*(int *)arg)++;
	return 42;
}

static void test_tables(void **state)
{
	(void)state;
	const struct fhir_sp *sp = fhir_sp_find("Patient", "family");
	assert_non_null(sp);
	assert_int_equal(fhir_sp_type(sp), FHIR_SP_STRING);
	assert_string_equal(fhir_sp_code(sp), "family");
	assert_true(strlen(fhir_sp_documentation(sp)) > 0);
	assert_non_null(fhir_sp_find("Patient", "_id"));
	assert_non_null(fhir_sp_find("Patient", "_lastUpdated"));
	assert_non_null(fhir_sp_find("Bundle", "_id"));
	assert_non_null(fhir_sp_find("Patient", "_text"));
	assert_null(fhir_sp_find("Bundle", "_text"));   /* Bundle is not a DomainResource */
	assert_null(fhir_sp_find("Patient", "nope"));
	assert_null(fhir_sp_find("Nope", "_id"));
	assert_int_equal(fhir_sp_type(fhir_sp_find("Observation", "code-value-quantity")), FHIR_SP_COMPOSITE);
	const char *const *types = fhir_resource_types();
	size_t n = 0;
	for (; types[n]; n++)
		if (n > 0)
			assert_true(strcmp(types[n - 1], types[n]) < 0);
	assert_int_equal(n, 146);
	/* a non-zero callback result stops extraction and is returned */
	json_t *j = parse(PATIENT);
	int calls = 0;
	assert_int_equal(fhir_index_extract("Patient", j, stop_cb, &calls), 42);
	assert_int_equal(calls, 1);
	json_decref(j);
}

static void count_cb(const struct fhir_sp *sp, void *arg)
{
	(void)sp;
	(*(int *)arg)++;
}

static void test_each(void **state)
{
	(void)state;
	int n = 0;
	fhir_sp_each("Patient", count_cb, &n);
	assert_true(n > 25);
	n = 0;
	fhir_sp_each("Nope", count_cb, &n);
	assert_int_equal(n, 0);
}

/* ---- composite, phonetic, :of-type rows ---- */

static const struct row *find_param(const struct rows *rs, const char *param, double num)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->v[i].param, param) == 0 && rs->v[i].num == num)
			return &rs->v[i];
	return NULL;
}

static void test_composite_rows(void **state)
{
	(void)state;
	struct rows rs;
	extract("Observation",
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		"\"http://loinc.org\",\"code\":\"85354-9\"}]},\"component\":[{\"code\":{\"coding\":[{\"system\":"
		"\"http://loinc.org\",\"code\":\"8480-6\"}]},\"valueQuantity\":{\"value\":130,\"unit\":\"mmHg\","
		"\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}},{\"code\":{\"coding\":[{\"system\":"
		"\"http://loinc.org\",\"code\":\"8462-4\"}]},\"valueQuantity\":{\"value\":85,\"system\":"
		"\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}]}",
		&rs);
	/* each component's code is paired with its own value only; one row per coding */
	const struct row *r = find_param(&rs, "component-code-value-quantity$8480-6|http://loinc.org", 130);
	assert_non_null(r);
	assert_int_equal(r->type, FHIR_SP_QUANTITY);
	assert_string_equal(r->code, "mm[Hg]");
	assert_string_equal(r->system, "http://unitsofmeasure.org");
	assert_non_null(find_param(&rs, "component-code-value-quantity$8462-4|http://loinc.org", 85));
	assert_null(find_param(&rs, "component-code-value-quantity$8480-6|http://loinc.org", 85));
	assert_null(find_param(&rs, "component-code-value-quantity$8462-4|http://loinc.org", 130));
	assert_int_equal(count(&rs, "component-code-value-quantity$8480-6|http://loinc.org"), 1);
	/* combo-* are searched as the union of X and component-X: never indexed */
	for (size_t i = 0; i < rs.n; i++)
		assert_true(strncmp(rs.v[i].param, "combo-", 6) != 0);
	assert_int_equal(count(&rs, "code-value-quantity$85354-9|http://loinc.org"), 0);
	find(&rs, "component-code", "code", "8462-4");

	extract("Observation",
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"code\":\"x1\"}]},"
		"\"valueCodeableConcept\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"260385009\"}]}}",
		&rs);
	/* a coding without system: "$x1|" */
	r = find(&rs, "code-value-concept$x1|", "code", "260385009");
	assert_string_equal(r->system, "http://snomed.info/sct");
	assert_int_equal(r->type, FHIR_SP_TOKEN);
	assert_int_equal(count(&rs, "code-value-concept$x1|"), 1);
	assert_int_equal(count(&rs, "code-value-quantity$x1|"), 0);

	char key[32];
	assert_true(fhir_composite_key(key, sizeof key, "c", "s", "v"));
	assert_string_equal(key, "c$v|s");
	const char *parts[2];
	assert_true(fhir_search_combo_of("Observation", "combo-code-value-quantity", parts));
	assert_string_equal(parts[1], "component-code-value-quantity");
	assert_false(fhir_search_combo_of("Patient", "combo-code", parts));
	assert_false(fhir_search_combo_of("Observation", "code", parts));
	assert_false(fhir_composite_key(key, 4, "code", "s", "v"));
}

static void test_phonetic(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"Robert", "R163"}, {"Rupert", "R163"}, {"Ashcraft", "A261"}, {"Tymczak", "T522"},
		{"Pfister", "P236"}, {"Honeyman", "H555"}, {"Smith", "S530"}, {"Smyth", "S530"},
		{"Müller", "M460"}, {"Lee", "L000"}, {"O'Brien", "O165"},
	};
	char out[FHIR_PHONETIC_LEN];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_true(fhir_phonetic(cases[i][0], out));
		if (strcmp(out, cases[i][1]) != 0)
			fail_msg("soundex(%s) = %s, expected %s", cases[i][0], out, cases[i][1]);
	}
	assert_false(fhir_phonetic("", out));
	assert_false(fhir_phonetic("1234 -", out));
	struct rows rs;
	extract("Patient", PATIENT, &rs);
	/* family + each given, compact codes; prefix and text are not sounded out */
	assert_int_equal(count(&rs, "phonetic"), 3);
	find(&rs, "phonetic", "text", "M460");
	find(&rs, "phonetic", "text", "J500");
	find(&rs, "phonetic", "text", "P360");
}

static void test_of_type_rows(void **state)
{
	(void)state;
	struct rows rs;
	extract("Patient",
		"{\"resourceType\":\"Patient\",\"identifier\":[{\"type\":{\"coding\":[{\"system\":"
		"\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\"}]},\"system\":\"urn:mrn\","
		"\"value\":\"M-1\"},{\"system\":\"urn:x\",\"value\":\"plain\"}]}",
		&rs);
	const struct row *r = find(&rs, "identifier:of-type", "code", "M-1");
	assert_string_equal(r->system, "http://terminology.hl7.org/CodeSystem/v2-0203|MR");
	assert_int_equal(count(&rs, "identifier:of-type"), 1);
	find(&rs, "identifier", "code", "M-1");
	find(&rs, "identifier", "code", "plain");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patient),
		cmocka_unit_test(test_practitioner),
		cmocka_unit_test(test_observation),
		cmocka_unit_test(test_encounter_and_more),
		cmocka_unit_test(test_unvalidated_input),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_each),
		cmocka_unit_test(test_composite_rows),
		cmocka_unit_test(test_phonetic),
		cmocka_unit_test(test_of_type_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
