/* modules/medications/rxnorm.c — the compiled-in RxNorm subset and the route/frequency tables. */
#include "modules/medications/rxnorm.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

static const struct rxnorm_drug drugs[] = {
#define RX(code, tty, name) {code, tty, name},
#include "../../../data/rxnorm/rxnorm_subset.inc"
#undef RX
};

const struct rxnorm_drug *rxnorm_table(size_t *n)
{
	*n = sizeof(drugs) / sizeof(drugs[0]);
	return drugs;
}

const struct rxnorm_drug *rxnorm_find(const char *code)
{
	if (!code || !*code || strlen(code) > 12)
		return NULL;
	/* ~250 entries: a linear scan costs less than one database round trip */
	for (size_t i = 0; i < sizeof(drugs) / sizeof(drugs[0]); i++)
		if (!strcmp(drugs[i].code, code))
			return &drugs[i];
	return NULL;
}

static const struct med_route routes[] = {
	{"PO", "26643006", "Oral route"},
	{"IV", "47625008", "Intravenous route"},
	{"IM", "78421000", "Intramuscular route"},
	{"SC", "34206005", "Subcutaneous route"},
	{"SL", "37839007", "Sublingual route"},
	{"PR", "37161004", "Rectal route"},
	{"TOP", "6064005", "Topical route"},
	{"INH", "447694001", "Respiratory tract route"},
	{"NAS", "46713006", "Nasal route"},
	{"OPH", "54485002", "Ophthalmic route"},
	{"OT", "10547007", "Otic route"},
	{"TD", "45890007", "Transdermal route"},
};

const struct med_route *med_route_find(const char *code)
{
	for (size_t i = 0; code && i < sizeof(routes) / sizeof(routes[0]); i++)
		if (!strcmp(routes[i].code, code))
			return &routes[i];
	return NULL;
}

static const struct med_freq freqs[] = {
	{"QD", "once daily", 1, 1, "d", false},
	{"BID", "twice daily", 2, 1, "d", false},
	{"TID", "three times daily", 3, 1, "d", false},
	{"QID", "four times daily", 4, 1, "d", false},
	{"Q4H", "every 4 hours", 1, 4, "h", false},
	{"Q6H", "every 6 hours", 1, 6, "h", false},
	{"Q8H", "every 8 hours", 1, 8, "h", false},
	{"Q12H", "every 12 hours", 1, 12, "h", false},
	{"QHS", "at bedtime", 1, 1, "d", false},
	{"QW", "once weekly", 1, 1, "wk", false},
	{"PRN", "as needed", 0, 0, NULL, true},
	{"STAT", "immediately, once", 0, 0, NULL, false},
};

const struct med_freq *med_freq_find(const char *code)
{
	for (size_t i = 0; code && i < sizeof(freqs) / sizeof(freqs[0]); i++)
		if (!strcmp(freqs[i].code, code))
			return &freqs[i];
	return NULL;
}

int med_qty_milli(double v, long long *out)
{
	if (!isfinite(v) || v <= 0 || v > 1e9)
		return MC_EINVAL;
	double m = v * 1000.0;
	double r = nearbyint(m);
	if (r < 1 || fabs(m - r) > 1e-6 * (r > 1 ? r : 1))
		return MC_EINVAL;
	*out = (long long)r;
	return MC_OK;
}

int med_budget_milli(long long qty_milli, long long refills, long long *out)
{
	if (qty_milli <= 0 || refills < 0 || refills > 99)
		return MC_EINVAL;
	/* qty_milli <= 10^12 (10^9 units), × 100 stays far below INT64_MAX */
	*out = qty_milli * (1 + refills);
	return MC_OK;
}
