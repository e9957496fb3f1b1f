/* tests/unit/test_scheduling.c — slot generation (templates x exceptions, UTC) and overlap logic
 * (src/modules/scheduling/slots.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mctime.h"
#include "modules/scheduling/slots.h"

static int64_t at(const char *s)
{
	int64_t ms;
	assert_int_equal(sched_parse_instant(s, &ms), MC_OK);
	return ms;
}

static void test_overlap(void **state)
{
	(void)state;
	assert_true(sched_overlaps(0, 10, 5, 15));
	assert_true(sched_overlaps(5, 15, 0, 10));
	assert_true(sched_overlaps(0, 10, 2, 3));   /* contained */
	assert_true(sched_overlaps(2, 3, 0, 10));
	assert_false(sched_overlaps(0, 10, 10, 20)); /* touching is not overlapping */
	assert_false(sched_overlaps(10, 20, 0, 10));
	assert_false(sched_overlaps(0, 10, 11, 20));
	assert_true(sched_overlaps(0, 10, 0, 10));
}

static void test_weekday(void **state)
{
	(void)state;
	assert_int_equal(sched_weekday(0), 4);                          /* 1970-01-01 Thursday */
	assert_int_equal(sched_weekday(at("2026-03-02T00:00:00Z")), 1); /* Monday */
	assert_int_equal(sched_weekday(at("2026-03-08T23:59:00Z")), 7); /* Sunday */
	assert_int_equal(sched_weekday(at("1969-12-31T12:00:00Z")), 3); /* before the epoch: Wednesday */
	/* the DST change in Europe (2026-03-29) changes nothing in UTC */
	assert_int_equal(sched_weekday(at("2026-03-29T01:30:00Z")), 7);
}

static void test_hhmm_and_instant(void **state)
{
	(void)state;
	int m;
	assert_int_equal(sched_parse_hhmm("09:30", &m), MC_OK);
	assert_int_equal(m, 570);
	assert_int_equal(sched_parse_hhmm("24:00", &m), MC_OK);
	assert_int_equal(m, 1440);
	const char *bad[] = {"24:01", "9:30", "09:60", "0930", "ab:cd", "", "09:30:00", NULL};
	for (int i = 0; bad[i]; i++)
		assert_int_equal(sched_parse_hhmm(bad[i], &m), MC_EINVAL);
	assert_int_equal(sched_parse_hhmm(NULL, &m), MC_EINVAL);
	int64_t ms;
	assert_int_equal(sched_parse_instant("2026-03-02T09:00:00+01:00", &ms), MC_OK);
	assert_int_equal(ms, at("2026-03-02T08:00:00Z"));
	assert_int_equal(sched_parse_instant("2026-03-02", &ms), MC_EINVAL);   /* a date is not an instant */
	assert_int_equal(sched_parse_instant("2026-02-30T09:00:00Z", &ms), MC_EINVAL);
	assert_int_equal(sched_parse_instant("yesterday", &ms), MC_EINVAL);
	assert_int_equal(sched_parse_instant(NULL, &ms), MC_EINVAL);
}

static void test_template_checks(void **state)
{
	(void)state;
	const char *why;
	struct sched_template ok = {1, 540, 720, 15, ""};
	assert_int_equal(sched_template_check(&ok, &why), MC_OK);
	struct sched_template bad[] = {
		{0, 540, 720, 15, ""}, {8, 540, 720, 15, ""},  {1, 720, 540, 15, ""}, {1, 540, 540, 15, ""},
		{1, 540, 1441, 15, ""}, {1, 540, 720, 4, ""}, {1, 540, 720, 481, ""}, {1, 540, 560, 30, ""},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(sched_template_check(&bad[i], &why), MC_EINVAL);
		assert_non_null(why);
	}
	struct sched_template set[] = {{1, 540, 720, 15, ""}, {2, 540, 720, 15, ""}, {1, 700, 800, 20, ""}};
	size_t bi = 99;
	assert_int_equal(sched_templates_check(set, 2, &bi, &why), MC_OK);
	assert_int_equal(sched_templates_check(set, 3, &bi, &why), MC_EINVAL);
	assert_int_equal(bi, 2);
	/* back-to-back blocks on one day are fine */
	struct sched_template adj[] = {{1, 540, 720, 15, ""}, {1, 720, 780, 30, ""}};
	assert_int_equal(sched_templates_check(adj, 2, &bi, &why), MC_OK);
}

static void test_generate_week(void **state)
{
	(void)state;
	/* Monday 09:00-12:00 x 30 min, Wednesday 14:00-15:00 x 20 min */
	struct sched_template t[] = {{1, 540, 720, 30, "loc1"}, {3, 840, 900, 20, ""}};
	struct sched_gen out[64];
	size_t n;
	int64_t from = at("2026-03-02T00:00:00Z"), to = at("2026-03-09T00:00:00Z");
	assert_int_equal(sched_generate(t, 2, NULL, 0, from, to, out, 64, &n), MC_OK);
	assert_int_equal(n, 6 + 3);
	assert_int_equal(out[0].start_ms, at("2026-03-02T09:00:00Z"));
	assert_int_equal(out[0].end_ms, at("2026-03-02T09:30:00Z"));
	assert_int_equal(out[0].tmpl, 0);
	assert_int_equal(out[5].start_ms, at("2026-03-02T11:30:00Z"));
	assert_int_equal(out[6].start_ms, at("2026-03-04T14:00:00Z"));
	assert_int_equal(out[8].end_ms, at("2026-03-04T15:00:00Z"));
	assert_int_equal(out[8].tmpl, 1);
	for (size_t i = 1; i < n; i++)
		assert_true(out[i - 1].end_ms <= out[i].start_ms);   /* sorted, no overlaps */
	/* two weeks: twice as many, across the European DST switch: still 09:00 UTC */
	assert_int_equal(sched_generate(t, 2, NULL, 0, at("2026-03-23T00:00:00Z"), at("2026-04-06T00:00:00Z"), out, 64, &n),
			 MC_OK);
	assert_int_equal(n, 18);
	assert_int_equal(out[9].start_ms, at("2026-03-30T09:00:00Z"));
}

static void test_generate_window_edges(void **state)
{
	(void)state;
	struct sched_template t[] = {{1, 540, 600, 15, ""}};
	struct sched_gen out[16];
	size_t n;
	/* from in the middle of a slot: that slot is not offered; to cuts the last one */
	assert_int_equal(sched_generate(t, 1, NULL, 0, at("2026-03-02T09:05:00Z"), at("2026-03-02T09:50:00Z"), out, 16, &n),
			 MC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].start_ms, at("2026-03-02T09:15:00Z"));
	assert_int_equal(out[1].start_ms, at("2026-03-02T09:30:00Z"));
	/* empty and inverted ranges */
	assert_int_equal(sched_generate(t, 1, NULL, 0, 100, 100, out, 16, &n), MC_OK);
	assert_int_equal(n, 0);
	assert_int_equal(sched_generate(t, 1, NULL, 0, 200, 100, out, 16, &n), MC_OK);
	assert_int_equal(n, 0);
	/* a block that does not divide evenly: the remainder is not a slot */
	struct sched_template odd[] = {{1, 540, 590, 20, ""}};
	assert_int_equal(sched_generate(odd, 1, NULL, 0, at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z"), out, 16, &n),
			 MC_OK);
	assert_int_equal(n, 2);
	assert_int_equal(out[1].end_ms, at("2026-03-02T09:40:00Z"));
}

static void test_generate_exceptions(void **state)
{
	(void)state;
	struct sched_template t[] = {{1, 540, 720, 30, ""}, {2, 540, 720, 30, ""}};
	struct sched_gen out[64];
	size_t n;
	int64_t from = at("2026-03-02T00:00:00Z"), to = at("2026-03-04T00:00:00Z");
	/* leave the whole Monday; a partial exception 10:15-10:45 on Tuesday removes 10:00 and 10:30 */
	struct sched_range exc[] = {{at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z")},
				    {at("2026-03-03T10:15:00Z"), at("2026-03-03T10:45:00Z")}};
	assert_int_equal(sched_generate(t, 2, exc, 2, from, to, out, 64, &n), MC_OK);
	assert_int_equal(n, 4);
	assert_int_equal(out[0].start_ms, at("2026-03-03T09:00:00Z"));
	assert_int_equal(out[1].start_ms, at("2026-03-03T09:30:00Z"));
	assert_int_equal(out[2].start_ms, at("2026-03-03T11:00:00Z"));
	assert_int_equal(out[3].start_ms, at("2026-03-03T11:30:00Z"));
	/* an exception touching a slot's end does not remove it */
	struct sched_range touch[] = {{at("2026-03-03T09:30:00Z"), at("2026-03-03T09:30:00Z") + 1}};
	assert_int_equal(sched_generate(t, 2, touch, 1, at("2026-03-03T00:00:00Z"), to, out, 64, &n), MC_OK);
	assert_int_equal(n, 5);
	assert_int_equal(out[0].start_ms, at("2026-03-03T09:00:00Z"));
	assert_int_equal(out[1].start_ms, at("2026-03-03T10:00:00Z"));
}

static void test_generate_cap(void **state)
{
	(void)state;
	struct sched_template t[] = {{1, 0, 1440, 5, ""}};   /* 288 slots a Monday */
	struct sched_gen out[100];
	size_t n;
	assert_int_equal(sched_generate(t, 1, NULL, 0, at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z"), out, 100, &n),
			 MC_ETOOBIG);
	struct sched_gen *big = malloc(sizeof(*big) * 288);
	assert_int_equal(sched_generate(t, 1, NULL, 0, at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z"), big, 288, &n),
			 MC_OK);
	assert_int_equal(n, 288);
	assert_int_equal(big[287].end_ms, at("2026-03-03T00:00:00Z"));
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlap),          cmocka_unit_test(test_weekday),
		cmocka_unit_test(test_hhmm_and_instant), cmocka_unit_test(test_template_checks),
		cmocka_unit_test(test_generate_week),    cmocka_unit_test(test_generate_window_edges),
		cmocka_unit_test(test_generate_exceptions), cmocka_unit_test(test_generate_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
