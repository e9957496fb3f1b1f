/* modules/lab/loinc.h — the shipped LOINC subset (data/loinc/loinc_subset.inc): name, UCUM unit,
 * reference interval and critical limits per test, and the interpretation computed from them.
 * Pure functions; returned pointers are static. */
#ifndef MC_MODULES_LAB_LOINC_H
#define MC_MODULES_LAB_LOINC_H
#include <stdbool.h>
#include <stddef.h>

#define LOINC_SYSTEM "http://loinc.org"
#define UCUM_SYSTEM "http://unitsofmeasure.org"
#define INTERP_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

struct loinc_test {
	const char *code, *name, *unit;   /* unit: UCUM code results must carry */
	double low, high;                 /* reference interval; NAN = open on that side */
	double crit_low, crit_high;       /* critical limits; NAN = none */
};

const struct loinc_test *loinc_find(const char *code);   /* NULL when not in the subset */
const struct loinc_test *loinc_table(size_t *n);

enum lab_flag { LAB_N, LAB_L, LAB_H, LAB_LL, LAB_HH };
/* The interpretation of value v for test t: LL below crit_low, HH above crit_high, L below low,
 * H above high (all strict: a value on a limit is inside), else N. Never from the client. */
enum lab_flag loinc_interpret(const struct loinc_test *t, double v);
const char *lab_flag_code(enum lab_flag f);      /* "N" "L" "H" "LL" "HH" */
const char *lab_flag_display(enum lab_flag f);   /* "Normal" "Low" ... */
static inline bool lab_flag_critical(enum lab_flag f) { return f == LAB_LL || f == LAB_HH; }

#endif
