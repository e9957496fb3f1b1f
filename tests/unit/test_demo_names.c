/* tests/unit/test_demo_names.c — the demo data generator: PRNG, ASCII folding, NPI check digits,
 * determinism and FHIR validity of the generated Practitioners and Patients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "cli/demo_names.h"
#include "core/err.h"
#include "core/mctime.h"
#include "fhir/resource.h"

static void test_rng_deterministic_and_bounded(void **state)
{
	(void)state;
	struct demo_rng a, b, c;
	demo_rng_seed(&a, 42);
	demo_rng_seed(&b, 42);
	demo_rng_seed(&c, 43);
	int same = 0;
	for (int i = 0; i < 1000; i++) {
		uint64_t x = demo_rng_next(&a);
		assert_int_equal(x, demo_rng_next(&b));
		same += x == demo_rng_next(&c);
	}
	assert_int_equal(same, 0);
	/* below(n) stays in range and reaches both ends */
	unsigned seen[7] = {0};
	for (int i = 0; i < 7000; i++) {
		uint32_t v = demo_rng_below(&a, 7);
		assert_true(v < 7);
		seen[v]++;
	}
	for (int i = 0; i < 7; i++)
		assert_true(seen[i] > 700 && seen[i] < 1300);
	assert_int_equal(demo_rng_below(&a, 0), 0);
	assert_int_equal(demo_rng_below(&a, 1), 0);
}

static void test_ascii_fold(void **state)
{
	(void)state;
	static const char *const cases[][2] = {
		{"José", "jose"}, {"Zoë", "zoe"}, {"Müller", "muller"}, {"Ólafsdóttir", "olafsdottir"},
		{"Groß", "gross"}, {"Nguyễn", "nguyen"}, {"Đặng", "dang"}, {"Hương", "huong"},
		{"O'Brien", "obrien"}, {"Al-Sayed", "alsayed"}, {"Dvořáková", "dvorakova"},
		{"Łukasz", "lukasz"}, {"Yılmaz", "yilmaz"}, {"Ødegård", "odegard"}, {"Sōta", "sota"},
		{"Þóra", "thora"}, {"Æsa", "aesa"}, {"", ""}, {"abc123", "abc123"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = demo_ascii_fold(cases[i][0], out, sizeof(out));
		assert_string_equal(out, cases[i][1]);
		assert_int_equal(n, strlen(cases[i][1]));
	}
	/* truncation always NUL-terminates */
	assert_int_equal(demo_ascii_fold("Jürgen", out, 4), 3);
	assert_string_equal(out, "jur");
	assert_int_equal(demo_ascii_fold("Jürgen", out, 1), 0);
	assert_string_equal(out, "");
	assert_int_equal(demo_ascii_fold("abc", out, 0), 0);
	/* invalid and truncated UTF-8, symbols and NULL are dropped, never over-read */
	assert_int_equal(demo_ascii_fold("a\xff\xfe" "b\xc3", out, sizeof(out)), 2);
	assert_string_equal(out, "ab");
	demo_ascii_fold("\xe1\xbb", out, sizeof(out));
	assert_string_equal(out, "");
	demo_ascii_fold("x\xf0\x9f\x98\x80y", out, sizeof(out));   /* an emoji */
	assert_string_equal(out, "xy");
	demo_ascii_fold(NULL, out, sizeof(out));
	assert_string_equal(out, "");
}

static void test_npi(void **state)
{
	(void)state;
	assert_true(demo_npi_valid("1234567893"));   /* the CMS documentation's example */
	assert_false(demo_npi_valid("1234567890"));
	assert_false(demo_npi_valid("123456789"));
	assert_false(demo_npi_valid("12345678931"));
	assert_false(demo_npi_valid("12345678a3"));
	assert_false(demo_npi_valid(""));
	assert_false(demo_npi_valid(NULL));
	char npi[11];
	demo_npi_make(123456789, npi);
	assert_string_equal(npi, "1234567893");
	for (uint32_t b = 100000000; b < 100000000 + 200; b++) {
		demo_npi_make(b * 7, npi);
		assert_int_equal(strlen(npi), 10);
		assert_true(demo_npi_valid(npi));
	}
	demo_npi_make(5, npi);   /* out-of-range base is mapped into range */
	assert_true(demo_npi_valid(npi));
}

static void assert_valid(const json_t *res, const char *type)
{
	struct fhir_issues iss;
	int rc = fhir_validate(res, type, &iss);
	if (rc) {
		for (size_t i = 0; i < iss.n; i++)
			print_error("%s: %s\n", iss.v[i].path, iss.v[i].msg);
	}
	assert_int_equal(rc, MC_OK);
}

static void test_practitioners_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < DEMO_PRACTITIONERS; i++) {
		json_t *p = demo_practitioner_new(i);
		assert_non_null(p);
		assert_valid(p, "Practitioner");
		json_t *id = json_array_get(json_object_get(p, "identifier"), 0);
		assert_string_equal(json_string_value(json_object_get(id, "system")), DEMO_NPI_SYSTEM);
		assert_true(demo_npi_valid(json_string_value(json_object_get(id, "value"))));
		assert_non_null(json_object_get(p, "qualification"));
		json_decref(p);
	}
	assert_null(demo_practitioner_new(DEMO_PRACTITIONERS));
}

static bool has_family(json_t *p, const char *want)
{
	json_t *n = json_array_get(json_object_get(p, "name"), 0);
	const char *f = json_string_value(json_object_get(n, "family"));
	return f && !strcmp(f, want);
}

static bool has_given(json_t *p, const char *want)
{
	json_t *n = json_array_get(json_object_get(p, "name"), 0);
	const char *g = json_string_value(json_array_get(json_object_get(n, "given"), 0));
	return g && !strcmp(g, want);
}

static void test_patients_valid_and_diverse(void **state)
{
	(void)state;
	const char *gp[] = {"01a20db6-4f75-7a58-a58b-e7185d8b9028", "prac-2"};
	bool muller = false, jose = false, zoe = false, olafsdottir = false;
	int genders[4] = {0};
	for (uint64_t i = 0; i < 6000; i++) {
		json_t *p = demo_patient_new(42, i, gp, 2);
		assert_non_null(p);
		if (i < 1500)
			assert_valid(p, "Patient");
		const char *g = json_string_value(json_object_get(p, "gender"));
		genders[!strcmp(g, "male") ? 0 : !strcmp(g, "female") ? 1 : !strcmp(g, "other") ? 2 : 3]++;
		const char *bd = json_string_value(json_object_get(p, "birthDate"));
		int64_t lo, hi;
		assert_int_equal(mctime_parse_fhir(bd, &lo, &hi, NULL), MC_OK);   /* a real date */
		assert_true(strcmp(bd, "1930-01-01") >= 0 && strcmp(bd, "2024-12-31") <= 0);
		json_t *addr = json_array_get(json_object_get(p, "address"), 0);
		assert_non_null(json_object_get(addr, "city"));
		assert_non_null(json_object_get(addr, "postalCode"));
		assert_int_equal(strlen(json_string_value(json_object_get(addr, "country"))), 2);
		json_t *tel;
		size_t k;
		json_array_foreach(json_object_get(p, "telecom"), k, tel) {
			const char *v = json_string_value(json_object_get(tel, "value"));
			for (const char *c = v; *c; c++)
				assert_true((unsigned char)*c < 0x80);   /* phones and e-mails are ASCII */
		}
		assert_null(json_object_get(p, "id"));
		muller |= has_family(p, "Müller");
		olafsdottir |= has_family(p, "Ólafsdóttir");
		jose |= has_given(p, "José");
		zoe |= has_given(p, "Zoë");
		json_decref(p);
	}
	assert_true(muller && olafsdottir && jose && zoe);
	assert_true(genders[0] > 2600 && genders[1] > 2600 && genders[2] > 30 && genders[3] > 3);
}

static void test_patients_deterministic(void **state)
{
	(void)state;
	for (uint64_t i = 0; i < 50; i++) {
		json_t *a = demo_patient_new(7, i, NULL, 0);
		json_t *b = demo_patient_new(7, i, NULL, 0);
		json_t *c = demo_patient_new(8, i, NULL, 0);
		json_t *d = demo_patient_new(7, i + 1, NULL, 0);
		assert_true(json_equal(a, b));
		assert_false(json_equal(a, c));
		assert_false(json_equal(a, d));
		assert_null(json_object_get(a, "generalPractitioner"));
		json_decref(a);
		json_decref(b);
		json_decref(c);
		json_decref(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng_deterministic_and_bounded),
		cmocka_unit_test(test_ascii_fold),
		cmocka_unit_test(test_npi),
		cmocka_unit_test(test_practitioners_valid),
		cmocka_unit_test(test_patients_valid_and_diverse),
		cmocka_unit_test(test_patients_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
