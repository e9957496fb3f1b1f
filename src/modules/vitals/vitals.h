/* modules/vitals/vitals.h — live vitals: the sample type shared by ingest, storage, alerting and
 * live push (DESIGN §5).
 *
 * Pipeline: ingest (HTTP NDJSON/JSON batch, WebSocket, Kafka `patient-vitals`) validates samples
 * into struct vitals_sample, appends them durably to the vitals store (its own SQLite file and
 * writer, time chunks), and once durable hands each accepted batch to every registered sink:
 * the alerting engine (per-patient state, thresholds, NEWS2) and the live hub (subscribers).
 * Sinks run on the ingest thread: they must be fast and never block (queue and return).
 */
#ifndef MC_MODULES_VITALS_H
#define MC_MODULES_VITALS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The supported parameters (LOINC), in a fixed order used for arrays of per-parameter state. */
#define VITALS_PARAMS(X)                                                    \
	X(HR,    "8867-4",  "/min",   "heart rate")                         \
	X(RR,    "9279-1",  "/min",   "respiratory rate")                   \
	X(SPO2,  "59408-5", "%",      "oxygen saturation (pulse oximetry)") \
	X(SYS,   "8480-6",  "mm[Hg]", "systolic blood pressure")            \
	X(DIA,   "8462-4",  "mm[Hg]", "diastolic blood pressure")           \
	X(TEMP,  "8310-5",  "Cel",    "body temperature")                   \
	X(ACVPU, "67775-7", "{score}","level of consciousness (0 A,1 C,2 V,3 P,4 U)") \
	X(O2,    "3151-8",  "L/min",  "supplemental oxygen flow (0 = air)")

enum vitals_param {
#define VITALS_X_ENUM(n, loinc, ucum, text) VP_##n,
	VITALS_PARAMS(VITALS_X_ENUM)
#undef VITALS_X_ENUM
	VP__COUNT
};

/* One validated sample, in canonical units (°F converted to Cel, SpO2 2708-6 mapped to 59408-5). */
struct vitals_sample {
	char patient_id[65];
	char device_id[65];
	enum vitals_param param;
	double value;
	int64_t ts_ms;          /* when measured */
	int64_t received_us;    /* monotonic time the server received it (latency measurements) */
};

/* A consumer of accepted, durable samples. fn must not block. */
typedef void vitals_sink_fn(const struct vitals_sample *s, size_t n, void *arg);
int vitals_sink_add(vitals_sink_fn *fn, void *arg);   /* at start-up only; MC_ETOOBIG past 8 sinks */
void vitals_sinks_publish(const struct vitals_sample *s, size_t n);

const char *vitals_param_loinc(enum vitals_param p);
const char *vitals_param_unit(enum vitals_param p);
int vitals_param_from_loinc(const char *loinc, enum vitals_param *out);   /* MC_OK / MC_EINVAL */

#endif
