/* modules/medications/rxnorm.h — the shipped RxNorm subset (data/rxnorm/rxnorm_subset.inc) and the
 * closed vocabularies of a prescription line: routes and frequencies. Pure functions, no I/O.
 * Every returned pointer is static (lives for the whole program); nothing needs freeing. */
#ifndef MC_MODULES_MEDICATIONS_RXNORM_H
#define MC_MODULES_MEDICATIONS_RXNORM_H
#include <stdbool.h>
#include <stddef.h>

#define RXNORM_SYSTEM "http://www.nlm.nih.gov/research/umls/rxnorm"

struct rxnorm_drug {
	const char *code;   /* RxCUI, digits only */
	const char *tty;    /* "IN" or "SCD" */
	const char *name;
};

/* The drug with that RxCUI, or NULL (also for NULL/malformed codes). */
const struct rxnorm_drug *rxnorm_find(const char *code);
/* The whole table (for tests): *n entries. */
const struct rxnorm_drug *rxnorm_table(size_t *n);

/* Routes of administration: "PO" "IV" "IM" "SC" "SL" "PR" "TOP" "INH" "NAS" "OPH" "OT" "TD".
 * Returns the route's SNOMED CT code and display, or NULL when the code is not one of them. */
struct med_route {
	const char *code, *snomed, *display;
};
const struct med_route *med_route_find(const char *code);

/* Frequencies: "QD" "BID" "TID" "QID" "Q4H" "Q6H" "Q8H" "Q12H" "QHS" "QW" "PRN" "STAT".
 * per_day: administrations per day (QW: 1/7; PRN and STAT: 0 = as needed / once); frequency and
 * period/period_unit are the FHIR Timing.repeat values (0 for PRN/STAT). */
struct med_freq {
	const char *code, *display;
	int frequency;
	double period;
	const char *period_unit;   /* "d", "h", "wk" or NULL */
	bool as_needed;
};
const struct med_freq *med_freq_find(const char *code);

/* Quantities are kept in thousandths of a unit (exact integer arithmetic for the dispensing
 * budget). MC_OK and *out when v is > 0, <= 10^9 and has at most 3 decimals; else MC_EINVAL. */
int med_qty_milli(double v, long long *out);
/* The dispensing budget: quantity × (1 + refills), in thousandths. MC_EINVAL when refills is not
 * 0..99 or the product overflows the 10^12 cap. */
int med_budget_milli(long long qty_milli, long long refills, long long *out);

#endif
