/* tests/unit/test_meds_rxnorm.c — the RxNorm subset, routes, frequencies, the dispensing budget
 * arithmetic, and the medications/lab/dashboard route tables (every route declares a permission). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "core/err.h"
#include "modules/dashboard/dashboard.h"
#include "modules/lab/lab.h"
#include "modules/medications/medications.h"
#include "modules/medications/rxnorm.h"

static void test_table_well_formed(void **state)
{
	(void)state;
	size_t n;
	const struct rxnorm_drug *t = rxnorm_table(&n);
	assert_true(n >= 150);
	for (size_t i = 0; i < n; i++) {
		assert_non_null(t[i].code);
		assert_true(strlen(t[i].code) >= 2 && strlen(t[i].code) <= 8);
		for (const char *p = t[i].code; *p; p++)
			assert_true(isdigit((unsigned char)*p));
		assert_true(!strcmp(t[i].tty, "IN") || !strcmp(t[i].tty, "SCD"));
		assert_true(strlen(t[i].name) > 2);
		for (size_t j = 0; j < i; j++) {
			assert_string_not_equal(t[i].code, t[j].code);   /* unique codes */
			assert_string_not_equal(t[i].name, t[j].name);   /* and names */
		}
	}
}

static void test_find(void **state)
{
	(void)state;
	const struct rxnorm_drug *d = rxnorm_find("29046");
	assert_non_null(d);
	assert_string_equal(d->name, "lisinopril");
	assert_string_equal(rxnorm_find("197361")->tty, "SCD");
	assert_null(rxnorm_find("999999999"));
	assert_null(rxnorm_find(""));
	assert_null(rxnorm_find(NULL));
	assert_null(rxnorm_find("29046 "));
	assert_null(rxnorm_find("2904"));
	assert_null(rxnorm_find("1234567890123456789"));
}

static void test_routes_and_frequencies(void **state)
{
	(void)state;
	static const char *const routes[] = {"PO", "IV", "IM", "SC"};
	for (size_t i = 0; i < 4; i++)
		assert_non_null(med_route_find(routes[i]));
	assert_string_equal(med_route_find("PO")->snomed, "26643006");
	assert_null(med_route_find("po"));
	assert_null(med_route_find("ORAL"));
	assert_null(med_route_find(NULL));
	static const char *const freqs[] = {"QD", "BID", "TID", "QID", "Q4H", "Q6H", "Q8H", "PRN"};
	for (size_t i = 0; i < 8; i++)
		assert_non_null(med_freq_find(freqs[i]));
	assert_int_equal(med_freq_find("TID")->frequency, 3);
	assert_string_equal(med_freq_find("Q6H")->period_unit, "h");
	assert_true(med_freq_find("PRN")->as_needed);
	assert_false(med_freq_find("BID")->as_needed);
	assert_null(med_freq_find("bid"));
	assert_null(med_freq_find("Q5H"));
}

static void test_quantities(void **state)
{
	(void)state;
	long long m;
	assert_int_equal(med_qty_milli(30, &m), MC_OK);
	assert_int_equal(m, 30000);
	assert_int_equal(med_qty_milli(2.5, &m), MC_OK);
	assert_int_equal(m, 2500);
	assert_int_equal(med_qty_milli(0.001, &m), MC_OK);
	assert_int_equal(m, 1);
	assert_int_equal(med_qty_milli(0, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(-5, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(0.0001, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(1.2345, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(NAN, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(INFINITY, &m), MC_EINVAL);
	assert_int_equal(med_qty_milli(2e9, &m), MC_EINVAL);
	long long b;
	assert_int_equal(med_budget_milli(30000, 2, &b), MC_OK);
	assert_int_equal(b, 90000);
	assert_int_equal(med_budget_milli(30000, 0, &b), MC_OK);
	assert_int_equal(b, 30000);
	assert_int_equal(med_budget_milli(30000, -1, &b), MC_EINVAL);
	assert_int_equal(med_budget_milli(30000, 100, &b), MC_EINVAL);
	assert_int_equal(med_budget_milli(0, 1, &b), MC_EINVAL);
	assert_int_equal(med_budget_milli(1000000000000LL, 99, &b), MC_OK);   /* the caps never overflow */
	assert_true(b > 0);
}

static void check_table(const struct route_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct route *r = &t->routes[i];
		assert_non_null(r->permission);            /* none is public */
		assert_true(r->flags & ROUTE_PHI);         /* all touch patient data: audited */
		assert_false(r->flags & ROUTE_PUBLIC);
		bool write = strcmp(r->method, "GET") != 0;
		assert_int_equal(write, (r->flags & ROUTE_WRITE) != 0);
		assert_true(!strncmp(r->pattern, "/api/v1/", 8));
		assert_non_null(r->summary);
	}
}

static void test_route_tables(void **state)
{
	(void)state;
	check_table(&medications_routes);
	check_table(&lab_routes);
	check_table(&dashboard_routes);
	/* dispensing is the pharmacist's: the only role holding manage:inventory */
	bool found = false;
	for (size_t i = 0; i < medications_routes.n; i++)
		if (strstr(medications_routes.routes[i].pattern, "/dispense")) {
			found = true;
			assert_string_equal(medications_routes.routes[i].permission, "manage:inventory");
		}
	assert_true(found);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_well_formed),
		cmocka_unit_test(test_find),
		cmocka_unit_test(test_routes_and_frequencies),
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_route_tables),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
