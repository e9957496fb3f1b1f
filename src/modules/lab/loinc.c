/* modules/lab/loinc.c — the compiled-in LOINC subset and the computed interpretation. */
#include "modules/lab/loinc.h"

#include <math.h>
#include <string.h>

static const struct loinc_test tests[] = {
#define LN(code, name, unit, lo, hi, clo, chi) {code, name, unit, lo, hi, clo, chi},
#include "../../../data/loinc/loinc_subset.inc"
#undef LN
};

const struct loinc_test *loinc_table(size_t *n)
{
	*n = sizeof(tests) / sizeof(tests[0]);
	return tests;
}

const struct loinc_test *loinc_find(const char *code)
{
	if (!code || strlen(code) > 16)
		return NULL;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!strcmp(tests[i].code, code))
			return &tests[i];
	return NULL;
}

enum lab_flag loinc_interpret(const struct loinc_test *t, double v)
{
	/* NAN limits compare false, so an open side never flags */
	if (v < t->crit_low)
		return LAB_LL;
	if (v > t->crit_high)
		return LAB_HH;
	if (v < t->low)
		return LAB_L;
	if (v > t->high)
		return LAB_H;
	return LAB_N;
}

const char *lab_flag_code(enum lab_flag f)
{
	static const char *const c[] = {"N", "L", "H", "LL", "HH"};
	return (unsigned)f <= LAB_HH ? c[f] : "N";
}

const char *lab_flag_display(enum lab_flag f)
{
	static const char *const d[] = {"Normal", "Low", "High", "Critical low", "Critical high"};
	return (unsigned)f <= LAB_HH ? d[f] : "Normal";
}
