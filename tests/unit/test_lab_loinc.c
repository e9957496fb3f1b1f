/* tests/unit/test_lab_loinc.c — the LOINC subset and the computed interpretation; the result
 * status transitions of modules/lab/lab.c (included to reach its statics). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/modules/lab/lab.c"

static void test_table_well_formed(void **state)
{
	(void)state;
	size_t n;
	const struct loinc_test *t = loinc_table(&n);
	assert_true(n >= 100);
	for (size_t i = 0; i < n; i++) {
		/* LOINC: digits, '-', one check digit */
		const char *dash = strchr(t[i].code, '-');
		assert_non_null(dash);
		assert_int_equal(strlen(dash), 2);
		assert_true(strlen(t[i].unit) >= 1);
		assert_true(strlen(t[i].name) > 3);
		assert_false(isnan(t[i].low) && isnan(t[i].high));         /* some range */
		if (!isnan(t[i].low) && !isnan(t[i].high))
			assert_true(t[i].low < t[i].high);
		if (!isnan(t[i].crit_low))
			assert_true(isnan(t[i].low) || t[i].crit_low < t[i].low);   /* critical is beyond normal */
		if (!isnan(t[i].crit_high))
			assert_true(isnan(t[i].high) || t[i].crit_high > t[i].high);
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(t[i].code, t[j].code);
	}
}

static void test_potassium(void **state)
{
	(void)state;
	const struct loinc_test *k = loinc_find("2823-3");
	assert_non_null(k);
	assert_string_equal(k->unit, "mmol/L");
	assert_int_equal(loinc_interpret(k, 4.0), LAB_N);
	assert_int_equal(loinc_interpret(k, 3.5), LAB_N);     /* on the limit: inside */
	assert_int_equal(loinc_interpret(k, 5.1), LAB_N);
	assert_int_equal(loinc_interpret(k, 3.2), LAB_L);
	assert_int_equal(loinc_interpret(k, 5.5), LAB_H);
	assert_int_equal(loinc_interpret(k, 2.8), LAB_L);     /* critical is strictly beyond */
	assert_int_equal(loinc_interpret(k, 2.7), LAB_LL);
	assert_int_equal(loinc_interpret(k, 6.2), LAB_H);
	assert_int_equal(loinc_interpret(k, 6.5), LAB_HH);
	assert_string_equal(lab_flag_code(LAB_HH), "HH");
	assert_string_equal(lab_flag_code(LAB_LL), "LL");
	assert_true(lab_flag_critical(LAB_HH));
	assert_false(lab_flag_critical(LAB_H));
}

static void test_open_ranges(void **state)
{
	(void)state;
	const struct loinc_test *hdl = loinc_find("2085-9");   /* low bound only */
	assert_int_equal(loinc_interpret(hdl, 30), LAB_L);
	assert_int_equal(loinc_interpret(hdl, 300), LAB_N);
	const struct loinc_test *ldl = loinc_find("13457-7");  /* high bound only */
	assert_int_equal(loinc_interpret(ldl, 0), LAB_N);
	assert_int_equal(loinc_interpret(ldl, 160), LAB_H);
	const struct loinc_test *trop = loinc_find("10839-9"); /* no critical limits */
	assert_int_equal(loinc_interpret(trop, 1e6), LAB_H);
	assert_null(loinc_find("0000-0"));
	assert_null(loinc_find(NULL));
	assert_null(loinc_find("2823-3 "));
}

static void test_status_steps(void **state)
{
	(void)state;
	assert_true(status_step_ok("", "preliminary"));
	assert_true(status_step_ok("", "final"));
	assert_false(status_step_ok("", "amended"));
	assert_true(status_step_ok("preliminary", "preliminary"));
	assert_true(status_step_ok("preliminary", "final"));
	assert_false(status_step_ok("final", "preliminary"));
	assert_false(status_step_ok("final", "final"));
	assert_true(status_step_ok("final", "amended"));
	assert_true(status_step_ok("amended", "amended"));
	assert_false(status_step_ok("amended", "final"));
}

static void test_decimal_text(void **state)
{
	(void)state;
	static const double v[] = {3.5, 136, 0.04, 1.005, 7.35, 10};
	static const char *const want[] = {"3.5", "136", "0.04", "1.005", "7.35", "10"};
	for (size_t i = 0; i < 6; i++) {
		json_t *d = dec(v[i]);
		assert_string_equal(mcjson_decimal_text(d), want[i]);
		json_decref(d);
	}
	json_t *m = minutes(90000);
	assert_string_equal(mcjson_decimal_text(m), "1.5");
	json_decref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_well_formed),
		cmocka_unit_test(test_potassium),
		cmocka_unit_test(test_open_ranges),
		cmocka_unit_test(test_status_steps),
		cmocka_unit_test(test_decimal_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
