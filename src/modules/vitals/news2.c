/* modules/vitals/news2.c — the NEWS2 chart (see news2.h for the rounding contract). */
#include "modules/vitals/news2.h"

#include <math.h>

/* Whole-number resolution of the chart; -1 marks an unusable value. */
static bool whole(double v, long *out)
{
	if (!isfinite(v) || fabs(v) > 1e6)
		return false;
	*out = lround(v);
	return true;
}

int news2_score_rr(double rr)
{
	long v;
	if (!whole(rr, &v))
		return -1;
	if (v <= 8)
		return 3;
	if (v <= 11)
		return 1;
	if (v <= 20)
		return 0;
	if (v <= 24)
		return 2;
	return 3;
}

int news2_score_spo2_scale1(double spo2)
{
	long v;
	if (!whole(spo2, &v))
		return -1;
	if (v <= 91)
		return 3;
	if (v <= 93)
		return 2;
	if (v <= 95)
		return 1;
	return 0;
}

int news2_score_spo2_scale2(double spo2, bool on_oxygen)
{
	long v;
	if (!whole(spo2, &v))
		return -1;
	if (v <= 83)
		return 3;
	if (v <= 85)
		return 2;
	if (v <= 87)
		return 1;
	if (v <= 92 || !on_oxygen)
		return 0;   /* 88-92, and >= 93 on air */
	if (v <= 94)
		return 1;
	if (v <= 96)
		return 2;
	return 3;
}

int news2_score_air_oxygen(bool on_oxygen) { return on_oxygen ? 2 : 0; }

int news2_score_sbp(double sbp)
{
	long v;
	if (!whole(sbp, &v))
		return -1;
	if (v <= 90)
		return 3;
	if (v <= 100)
		return 2;
	if (v <= 110)
		return 1;
	if (v <= 219)
		return 0;
	return 3;
}

int news2_score_pulse(double pulse)
{
	long v;
	if (!whole(pulse, &v))
		return -1;
	if (v <= 40)
		return 3;
	if (v <= 50)
		return 1;
	if (v <= 90)
		return 0;
	if (v <= 110)
		return 1;
	if (v <= 130)
		return 2;
	return 3;
}

int news2_score_acvpu(int acvpu)
{
	if (acvpu < 0 || acvpu > 4)
		return -1;
	return acvpu == 0 ? 0 : 3;
}

int news2_score_temp(double temp_c)
{
	long tenths;
	if (!whole(temp_c * 10.0, &tenths))
		return -1;
	if (tenths <= 350)
		return 3;
	if (tenths <= 360)
		return 1;
	if (tenths <= 380)
		return 0;
	if (tenths <= 390)
		return 1;
	return 2;
}

enum news2_risk news2_risk_of(int total, bool any_three)
{
	if (total >= 7)
		return NEWS2_RISK_HIGH;
	if (total >= 5)
		return NEWS2_RISK_MEDIUM;
	return any_three ? NEWS2_RISK_LOW_MEDIUM : NEWS2_RISK_LOW;
}

const char *news2_risk_name(enum news2_risk r)
{
	switch (r) {
	case NEWS2_RISK_LOW_MEDIUM:
		return "low-medium";
	case NEWS2_RISK_MEDIUM:
		return "medium";
	case NEWS2_RISK_HIGH:
		return "high";
	default:
		return "low";
	}
}

void news2_compute(const struct news2_input *in, struct news2_result *out)
{
	bool on_o2 = in->have[NEWS2_AIR_O2] && isfinite(in->value[NEWS2_AIR_O2]) && in->value[NEWS2_AIR_O2] > 0;
	out->total = 0;
	out->complete = true;
	out->any_three = false;
	for (int p = 0; p < NEWS2__COUNT; p++) {
		int s = -1;
		double v = in->value[p];
		if (in->have[p]) {
			switch ((enum news2_param)p) {
			case NEWS2_RR: s = news2_score_rr(v); break;
			case NEWS2_SPO2: s = in->scale2 ? news2_score_spo2_scale2(v, on_o2) : news2_score_spo2_scale1(v); break;
			case NEWS2_AIR_O2: s = isfinite(v) && v >= 0 ? news2_score_air_oxygen(v > 0) : -1; break;
			case NEWS2_SBP: s = news2_score_sbp(v); break;
			case NEWS2_PULSE: s = news2_score_pulse(v); break;
			case NEWS2_ACVPU: s = isfinite(v) ? news2_score_acvpu((int)lround(v)) : -1; break;
			case NEWS2_TEMP: s = news2_score_temp(v); break;
			default: break;
			}
		}
		out->score[p] = s;
		if (s < 0) {
			out->complete = false;
			continue;
		}
		out->total += s;
		if (s == 3)
			out->any_three = true;
	}
	out->risk = news2_risk_of(out->total, out->any_three);
}
