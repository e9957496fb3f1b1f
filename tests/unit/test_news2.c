/* tests/unit/test_news2.c — every band edge of the NEWS2 chart (both sides), rounding, invalid
 * values, aggregation and the clinical-risk thresholds (modules/vitals/news2.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "modules/vitals/news2.h"

static void rr_edges(void **st)
{
	(void)st;
	assert_int_equal(news2_score_rr(0), 3);
	assert_int_equal(news2_score_rr(8), 3);
	assert_int_equal(news2_score_rr(9), 1);
	assert_int_equal(news2_score_rr(11), 1);
	assert_int_equal(news2_score_rr(12), 0);
	assert_int_equal(news2_score_rr(20), 0);
	assert_int_equal(news2_score_rr(21), 2);
	assert_int_equal(news2_score_rr(24), 2);
	assert_int_equal(news2_score_rr(25), 3);
	assert_int_equal(news2_score_rr(60), 3);
	/* rounding to the chart's whole numbers */
	assert_int_equal(news2_score_rr(20.4), 0);
	assert_int_equal(news2_score_rr(20.5), 2);
	assert_int_equal(news2_score_rr(8.49), 3);
	assert_int_equal(news2_score_rr(NAN), -1);
	assert_int_equal(news2_score_rr(INFINITY), -1);
}

static void spo2_scale1_edges(void **st)
{
	(void)st;
	assert_int_equal(news2_score_spo2_scale1(50), 3);
	assert_int_equal(news2_score_spo2_scale1(91), 3);
	assert_int_equal(news2_score_spo2_scale1(92), 2);
	assert_int_equal(news2_score_spo2_scale1(93), 2);
	assert_int_equal(news2_score_spo2_scale1(94), 1);
	assert_int_equal(news2_score_spo2_scale1(95), 1);
	assert_int_equal(news2_score_spo2_scale1(96), 0);
	assert_int_equal(news2_score_spo2_scale1(100), 0);
	assert_int_equal(news2_score_spo2_scale1(95.6), 0);
	assert_int_equal(news2_score_spo2_scale1(NAN), -1);
}

static void spo2_scale2_edges(void **st)
{
	(void)st;
	for (int o2 = 0; o2 <= 1; o2++) {
		assert_int_equal(news2_score_spo2_scale2(70, o2), 3);
		assert_int_equal(news2_score_spo2_scale2(83, o2), 3);
		assert_int_equal(news2_score_spo2_scale2(84, o2), 2);
		assert_int_equal(news2_score_spo2_scale2(85, o2), 2);
		assert_int_equal(news2_score_spo2_scale2(86, o2), 1);
		assert_int_equal(news2_score_spo2_scale2(87, o2), 1);
		assert_int_equal(news2_score_spo2_scale2(88, o2), 0);
		assert_int_equal(news2_score_spo2_scale2(92, o2), 0);
	}
	/* on air, >= 93 scores 0 */
	assert_int_equal(news2_score_spo2_scale2(93, false), 0);
	assert_int_equal(news2_score_spo2_scale2(97, false), 0);
	assert_int_equal(news2_score_spo2_scale2(100, false), 0);
	/* on oxygen the upper bands score */
	assert_int_equal(news2_score_spo2_scale2(93, true), 1);
	assert_int_equal(news2_score_spo2_scale2(94, true), 1);
	assert_int_equal(news2_score_spo2_scale2(95, true), 2);
	assert_int_equal(news2_score_spo2_scale2(96, true), 2);
	assert_int_equal(news2_score_spo2_scale2(97, true), 3);
	assert_int_equal(news2_score_spo2_scale2(100, true), 3);
	assert_int_equal(news2_score_spo2_scale2(NAN, true), -1);
}

static void air_oxygen(void **st)
{
	(void)st;
	assert_int_equal(news2_score_air_oxygen(false), 0);
	assert_int_equal(news2_score_air_oxygen(true), 2);
}

static void sbp_edges(void **st)
{
	(void)st;
	assert_int_equal(news2_score_sbp(40), 3);
	assert_int_equal(news2_score_sbp(90), 3);
	assert_int_equal(news2_score_sbp(91), 2);
	assert_int_equal(news2_score_sbp(100), 2);
	assert_int_equal(news2_score_sbp(101), 1);
	assert_int_equal(news2_score_sbp(110), 1);
	assert_int_equal(news2_score_sbp(111), 0);
	assert_int_equal(news2_score_sbp(219), 0);
	assert_int_equal(news2_score_sbp(220), 3);
	assert_int_equal(news2_score_sbp(280), 3);
	assert_int_equal(news2_score_sbp(-INFINITY), -1);
}

static void pulse_edges(void **st)
{
	(void)st;
	assert_int_equal(news2_score_pulse(20), 3);
	assert_int_equal(news2_score_pulse(40), 3);
	assert_int_equal(news2_score_pulse(41), 1);
	assert_int_equal(news2_score_pulse(50), 1);
	assert_int_equal(news2_score_pulse(51), 0);
	assert_int_equal(news2_score_pulse(90), 0);
	assert_int_equal(news2_score_pulse(91), 1);
	assert_int_equal(news2_score_pulse(110), 1);
	assert_int_equal(news2_score_pulse(111), 2);
	assert_int_equal(news2_score_pulse(130), 2);
	assert_int_equal(news2_score_pulse(131), 3);
	assert_int_equal(news2_score_pulse(220), 3);
}

static void acvpu_scores(void **st)
{
	(void)st;
	assert_int_equal(news2_score_acvpu(0), 0);
	assert_int_equal(news2_score_acvpu(1), 3);   /* new confusion */
	assert_int_equal(news2_score_acvpu(2), 3);
	assert_int_equal(news2_score_acvpu(3), 3);
	assert_int_equal(news2_score_acvpu(4), 3);
	assert_int_equal(news2_score_acvpu(-1), -1);
	assert_int_equal(news2_score_acvpu(5), -1);
}

static void temp_edges(void **st)
{
	(void)st;
	assert_int_equal(news2_score_temp(30.0), 3);
	assert_int_equal(news2_score_temp(35.0), 3);
	assert_int_equal(news2_score_temp(35.1), 1);
	assert_int_equal(news2_score_temp(36.0), 1);
	assert_int_equal(news2_score_temp(36.1), 0);
	assert_int_equal(news2_score_temp(38.0), 0);
	assert_int_equal(news2_score_temp(38.1), 1);
	assert_int_equal(news2_score_temp(39.0), 1);
	assert_int_equal(news2_score_temp(39.1), 2);
	assert_int_equal(news2_score_temp(42.0), 2);
	/* one-decimal rounding */
	assert_int_equal(news2_score_temp(35.04), 3);
	assert_int_equal(news2_score_temp(35.05), 1);
	assert_int_equal(news2_score_temp(38.04), 0);
	assert_int_equal(news2_score_temp(NAN), -1);
}

static void set(struct news2_input *in, enum news2_param p, double v)
{
	in->have[p] = true;
	in->value[p] = v;
}

static void normal(struct news2_input *in)
{
	*in = (struct news2_input){0};
	set(in, NEWS2_RR, 16);
	set(in, NEWS2_SPO2, 98);
	set(in, NEWS2_AIR_O2, 0);
	set(in, NEWS2_SBP, 120);
	set(in, NEWS2_PULSE, 70);
	set(in, NEWS2_ACVPU, 0);
	set(in, NEWS2_TEMP, 37.0);
}

static void aggregate_and_risk(void **st)
{
	(void)st;
	struct news2_input in;
	struct news2_result r;
	normal(&in);
	news2_compute(&in, &r);
	assert_true(r.complete);
	assert_int_equal(r.total, 0);
	assert_int_equal(r.risk, NEWS2_RISK_LOW);

	/* a single 3 (new confusion) with total 3: low-medium */
	set(&in, NEWS2_ACVPU, 1);
	news2_compute(&in, &r);
	assert_int_equal(r.total, 3);
	assert_true(r.any_three);
	assert_int_equal(r.risk, NEWS2_RISK_LOW_MEDIUM);

	/* total 4 without any 3: low */
	normal(&in);
	set(&in, NEWS2_RR, 22);     /* 2 */
	set(&in, NEWS2_PULSE, 115); /* 2 */
	news2_compute(&in, &r);
	assert_int_equal(r.total, 4);
	assert_int_equal(r.risk, NEWS2_RISK_LOW);
	/* 5: medium */
	set(&in, NEWS2_TEMP, 38.5); /* 1 */
	news2_compute(&in, &r);
	assert_int_equal(r.total, 5);
	assert_int_equal(r.risk, NEWS2_RISK_MEDIUM);
	/* 6: medium; 7: high */
	set(&in, NEWS2_SBP, 105);   /* 1 */
	news2_compute(&in, &r);
	assert_int_equal(r.total, 6);
	assert_int_equal(r.risk, NEWS2_RISK_MEDIUM);
	set(&in, NEWS2_SPO2, 95);   /* 1 */
	news2_compute(&in, &r);
	assert_int_equal(r.total, 7);
	assert_int_equal(r.risk, NEWS2_RISK_HIGH);

	/* oxygen adds 2 and switches scale 2's upper bands on */
	normal(&in);
	in.scale2 = true;
	set(&in, NEWS2_SPO2, 97);
	news2_compute(&in, &r);
	assert_int_equal(r.total, 0);
	set(&in, NEWS2_AIR_O2, 2.0);
	news2_compute(&in, &r);
	assert_int_equal(r.score[NEWS2_AIR_O2], 2);
	assert_int_equal(r.score[NEWS2_SPO2], 3);
	assert_int_equal(r.total, 5);
	assert_int_equal(r.risk, NEWS2_RISK_MEDIUM);
	/* scale 1 for the same patient would score 0 for 97 % */
	in.scale2 = false;
	news2_compute(&in, &r);
	assert_int_equal(r.score[NEWS2_SPO2], 0);

	/* missing parameters: incomplete, partial total */
	in = (struct news2_input){0};
	set(&in, NEWS2_RR, 30);
	news2_compute(&in, &r);
	assert_false(r.complete);
	assert_int_equal(r.total, 3);
	assert_int_equal(r.score[NEWS2_PULSE], -1);
	/* invalid values count as missing */
	set(&in, NEWS2_ACVPU, 9);
	set(&in, NEWS2_AIR_O2, -1);
	news2_compute(&in, &r);
	assert_int_equal(r.score[NEWS2_ACVPU], -1);
	assert_int_equal(r.score[NEWS2_AIR_O2], -1);
	assert_int_equal(r.total, 3);
}

static void risk_table(void **st)
{
	(void)st;
	assert_int_equal(news2_risk_of(0, false), NEWS2_RISK_LOW);
	assert_int_equal(news2_risk_of(4, false), NEWS2_RISK_LOW);
	assert_int_equal(news2_risk_of(3, true), NEWS2_RISK_LOW_MEDIUM);
	assert_int_equal(news2_risk_of(4, true), NEWS2_RISK_LOW_MEDIUM);
	assert_int_equal(news2_risk_of(5, false), NEWS2_RISK_MEDIUM);
	assert_int_equal(news2_risk_of(5, true), NEWS2_RISK_MEDIUM);
	assert_int_equal(news2_risk_of(6, true), NEWS2_RISK_MEDIUM);
	assert_int_equal(news2_risk_of(7, false), NEWS2_RISK_HIGH);
	assert_int_equal(news2_risk_of(20, true), NEWS2_RISK_HIGH);
	assert_string_equal(news2_risk_name(NEWS2_RISK_LOW_MEDIUM), "low-medium");
	assert_string_equal(news2_risk_name(NEWS2_RISK_HIGH), "high");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rr_edges),       cmocka_unit_test(spo2_scale1_edges), cmocka_unit_test(spo2_scale2_edges),
		cmocka_unit_test(air_oxygen),     cmocka_unit_test(sbp_edges),         cmocka_unit_test(pulse_edges),
		cmocka_unit_test(acvpu_scores),   cmocka_unit_test(temp_edges),        cmocka_unit_test(aggregate_and_risk),
		cmocka_unit_test(risk_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
