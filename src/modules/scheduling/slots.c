/* modules/scheduling/slots.c — see slots.h. */
#include "modules/scheduling/slots.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mctime.h"

int sched_weekday(int64_t ms)
{
	int64_t days = ms >= 0 ? ms / SCHED_DAY_MS : -((-ms + SCHED_DAY_MS - 1) / SCHED_DAY_MS);
	/* 1970-01-01 was a Thursday (ISO 4) */
	int64_t w = (days + 3) % 7;
	if (w < 0)
		w += 7;
	return (int)w + 1;
}

int sched_template_check(const struct sched_template *t, const char **why)
{
	const char *w = NULL;
	if (t->weekday < 1 || t->weekday > 7)
		w = "weekday must be 1 (Monday) to 7 (Sunday)";
	else if (t->start_min < 0 || t->end_min > 1440 || t->start_min >= t->end_min)
		w = "end must be after start, within one day";
	else if (t->slot_min < SCHED_SLOT_MIN_MIN || t->slot_min > SCHED_SLOT_MAX_MIN)
		w = "slotMinutes must be from 5 to 480";
	else if (t->slot_min > t->end_min - t->start_min)
		w = "slotMinutes is longer than the block";
	if (why)
		*why = w;
	return w ? MC_EINVAL : MC_OK;
}

int sched_templates_check(const struct sched_template *t, size_t n, size_t *bad, const char **why)
{
	for (size_t i = 0; i < n; i++) {
		if (sched_template_check(&t[i], why)) {
			*bad = i;
			return MC_EINVAL;
		}
		for (size_t j = 0; j < i; j++) {
			if (t[j].weekday == t[i].weekday &&
			    sched_overlaps(t[i].start_min, t[i].end_min, t[j].start_min, t[j].end_min)) {
				*bad = i;
				if (why)
					*why = "overlaps another block on the same weekday";
				return MC_EINVAL;
			}
		}
	}
	return MC_OK;
}

static int gen_cmp(const void *a, const void *b)
{
	const struct sched_gen *x = a, *y = b;
	return x->start_ms < y->start_ms ? -1 : x->start_ms > y->start_ms;
}

int sched_generate(const struct sched_template *t, size_t nt, const struct sched_range *exc, size_t ne,
		   int64_t from_ms, int64_t to_ms, struct sched_gen *out, size_t cap, size_t *n)
{
	*n = 0;
	if (to_ms <= from_ms)
		return MC_OK;
	int64_t d0 = from_ms / SCHED_DAY_MS - 1, d1 = to_ms / SCHED_DAY_MS + 1;
	for (int64_t d = d0; d <= d1; d++) {
		int64_t day = d * SCHED_DAY_MS;
		int wd = sched_weekday(day);
		for (size_t k = 0; k < nt; k++) {
			if (t[k].weekday != wd || t[k].slot_min <= 0)
				continue;
			for (int m = t[k].start_min; m + t[k].slot_min <= t[k].end_min; m += t[k].slot_min) {
				int64_t s = day + m * SCHED_MIN_MS, e = s + t[k].slot_min * SCHED_MIN_MS;
				if (s < from_ms || e > to_ms)
					continue;
				bool blocked = false;
				for (size_t x = 0; x < ne && !blocked; x++)
					blocked = sched_overlaps(s, e, exc[x].start_ms, exc[x].end_ms);
				if (blocked)
					continue;
				if (*n >= cap)
					return MC_ETOOBIG;
				out[(*n)++] = (struct sched_gen){s, e, k};
			}
		}
	}
	qsort(out, *n, sizeof(*out), gen_cmp);
	return MC_OK;
}

int sched_parse_hhmm(const char *s, int *min)
{
	if (!s || strlen(s) != 5 || s[2] != ':')
		return MC_EINVAL;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return MC_EINVAL;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	if (h > 24 || m > 59 || (h == 24 && m))
		return MC_EINVAL;
	*min = h * 60 + m;
	return MC_OK;
}

int sched_parse_instant(const char *s, int64_t *ms)
{
	int64_t lo, hi;
	enum mctime_prec p;
	if (!s || strlen(s) > 40 || mctime_parse_fhir(s, &lo, &hi, &p) || p < MCT_MINUTE)
		return MC_EINVAL;
	*ms = lo;
	return MC_OK;
}
