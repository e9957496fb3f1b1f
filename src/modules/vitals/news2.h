/* modules/vitals/news2.h — National Early Warning Score 2 (Royal College of Physicians, 2017).
 *
 * Pure functions, no state, no allocation. Scores follow the NEWS2 chart exactly; the chart is
 * recorded in whole numbers (temperature to one decimal), so measured values are first rounded
 * half away from zero to that resolution (RR 20.4 -> 20 -> 0 points; temperature 35.04 -> 35.0 ->
 * 3 points). Non-finite values score as missing (news2_param_score returns -1).
 *
 * SpO2 scale 2 is for patients with hypercapnic respiratory failure (a per-patient setting made by
 * a clinician); its upper bands (93-94, 95-96, >=97) score only while the patient is on oxygen.
 */
#ifndef MC_MODULES_VITALS_NEWS2_H
#define MC_MODULES_VITALS_NEWS2_H
#include <stdbool.h>

enum news2_param {
	NEWS2_RR,        /* respiration rate, breaths/min */
	NEWS2_SPO2,      /* oxygen saturation, % (scale 1 or 2) */
	NEWS2_AIR_O2,    /* air (0) or supplemental oxygen (any flow > 0) */
	NEWS2_SBP,       /* systolic blood pressure, mmHg */
	NEWS2_PULSE,     /* beats/min */
	NEWS2_ACVPU,     /* 0 Alert, 1 new Confusion, 2 Voice, 3 Pain, 4 Unresponsive */
	NEWS2_TEMP,      /* °C */
	NEWS2__COUNT
};

enum news2_risk { NEWS2_RISK_LOW, NEWS2_RISK_LOW_MEDIUM, NEWS2_RISK_MEDIUM, NEWS2_RISK_HIGH };

int news2_score_rr(double rr);
int news2_score_spo2_scale1(double spo2);
int news2_score_spo2_scale2(double spo2, bool on_oxygen);
int news2_score_air_oxygen(bool on_oxygen);
int news2_score_sbp(double sbp);
int news2_score_pulse(double pulse);
int news2_score_acvpu(int acvpu);     /* -1 outside 0..4 */
int news2_score_temp(double temp_c);
/* Each of the above returns -1 for a non-finite value. */

/* The inputs present at one moment. have[p] false = parameter missing. */
struct news2_input {
	bool have[NEWS2__COUNT];
	double value[NEWS2__COUNT];   /* NEWS2_AIR_O2: O2 flow in L/min (0 = air) */
	bool scale2;                  /* patient uses SpO2 scale 2 */
};

struct news2_result {
	int score[NEWS2__COUNT];      /* -1 where missing or invalid */
	int total;                    /* sum of the present scores */
	bool complete;                /* all seven parameters present and valid */
	bool any_three;               /* some single parameter scored 3 */
	enum news2_risk risk;
};

void news2_compute(const struct news2_input *in, struct news2_result *out);
/* total >= 7 high; 5..6 medium; otherwise a single 3 is low-medium; else low. */
enum news2_risk news2_risk_of(int total, bool any_three);
const char *news2_risk_name(enum news2_risk r);   /* "low" "low-medium" "medium" "high" */

#endif
