/* modules/scheduling/slots.h — pure scheduling arithmetic: weekly templates x exceptions -> slots,
 * interval overlap, time parsing. No I/O; unit-tested in tests/unit/test_scheduling.c.
 *
 * All times are UTC milliseconds since the epoch (DST-free by construction: a template's
 * "09:00" is 09:00 UTC every week). Intervals are half-open [start, end).
 */
#ifndef MC_MODULES_SCHEDULING_SLOTS_H
#define MC_MODULES_SCHEDULING_SLOTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCHED_DAY_MS 86400000LL
#define SCHED_MIN_MS 60000LL
#define SCHED_SLOT_MIN_MIN 5          /* shortest slot, minutes */
#define SCHED_SLOT_MAX_MIN 480        /* longest slot, minutes */
#define SCHED_TEMPLATES_MAX 64        /* templates per practitioner */
#define SCHED_EXCEPTIONS_MAX 512      /* exceptions considered per generation */
#define SCHED_HORIZON_MAX_WEEKS 26
#define SCHED_SLOTS_MAX 20000         /* slots generated per practitioner and horizon */

/* One weekly availability block: every ISO weekday (1 = Monday .. 7 = Sunday) from start_min to
 * end_min (minutes after 00:00 UTC, end_min <= 1440) cut into slot_min slots. */
struct sched_template {
	int weekday;
	int start_min, end_min, slot_min;
	char location[65];   /* Location id, "" when none */
};

struct sched_range {
	int64_t start_ms, end_ms;
};

/* A generated slot; tmpl is the index of the template it came from. */
struct sched_gen {
	int64_t start_ms, end_ms;
	size_t tmpl;
};

/* Half-open overlap: [a0,a1) and [b0,b1) share at least one instant. */
static inline bool sched_overlaps(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
	return a0 < b1 && b0 < a1;
}

/* ISO weekday (1 = Monday .. 7 = Sunday) of the UTC day holding ms. */
int sched_weekday(int64_t ms);

/* One template's own rules: weekday 1..7, 0 <= start < end <= 1440, slot_min within
 * [SCHED_SLOT_MIN_MIN, SCHED_SLOT_MAX_MIN] and at most end - start. MC_OK or MC_EINVAL with a
 * client-safe reason in *why. */
int sched_template_check(const struct sched_template *t, const char **why);
/* A set: every template valid and no two on the same weekday overlapping. On MC_EINVAL *bad is
 * the index of the offending template. */
int sched_templates_check(const struct sched_template *t, size_t n, size_t *bad, const char **why);

/* The slots of templates t[0..nt) whose whole interval lies in [from_ms, to_ms) and does not
 * overlap any exception exc[0..ne), sorted by start. out has room for cap entries; MC_ETOOBIG
 * when more would be produced (nothing useful in out then). *n receives the count. */
int sched_generate(const struct sched_template *t, size_t nt, const struct sched_range *exc, size_t ne,
		   int64_t from_ms, int64_t to_ms, struct sched_gen *out, size_t cap, size_t *n);

/* "HH:MM" (00:00..24:00) into minutes after midnight. MC_OK / MC_EINVAL. */
int sched_parse_hhmm(const char *s, int *min);
/* A FHIR dateTime/instant with at least minutes ("2026-03-02T09:00:00Z"; no zone = UTC) into ms.
 * Dates without a time are MC_EINVAL (a booking needs an instant). */
int sched_parse_instant(const char *s, int64_t *ms);

#endif
