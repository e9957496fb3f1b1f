/* modules/vitals/alerts.h — vitals alerting: per-patient state fed by every sample, NEWS2,
 * threshold rules with hysteresis and minimum duration, stale-data and device-disconnected alerts,
 * and the alert lifecycle (raised -> escalated -> acknowledged -> resolved) persisted in the main
 * database (tables alerts, alert_events; sql/<backend>/0013_alerts.sql).
 *
 * Threads. alerts_sink() is a vitals sink (vitals.h): it runs on the ingest thread, updates the
 * per-patient state under one of ALERTS_STRIPES mutexes (chosen by patient id) and pushes alert
 * work (raise, clear) onto a bounded queue; it never waits for the database. When the queue is full
 * the work item is dropped and counted (medcore_alerts_dropped_total) — ingest is never blocked — and
 * the condition's state is left as it was, so the next sample (or tick) decides again: a decision is
 * delayed by a full queue, never lost.
 * The engine's own thread takes the queue, writes each change as one durable unit (store_write: the
 * alert row, its history row, the audit record and the vitals.alert.* event commit together), then
 * calls opts.on_change (the live hub) after the commit. Once a second the thread also runs
 * alerts_tick(): stale parameters, silent devices, escalation of unacknowledged alerts.
 *
 * Conditions (all on the engine's clock, opts.clock_ms, the arrival time of samples):
 *   threshold rule  direction "above": holds while value >= raise_at; once raised it clears only when
 *                   value < clear_at (clear_at <= raise_at: hysteresis). "below" mirrors it.
 *                   Raised only when a sample still meeting raise_at arrives min_seconds or more after
 *                   the first one that met it; any sample not meeting it restarts the wait, so a single
 *                   artefact never pages. min_seconds = 0 raises on the first sample.
 *   NEWS2 (key "news2") recomputed whenever one of its parameters arrives, from the latest value of
 *                   each parameter measured no more than opts.news2_max_age_ms ago (missing ones score
 *                   nothing; at least RR, SpO2, systolic BP and pulse are required). Holds while total
 *                   >= opts.news2_raise or a single parameter scores 3; clears when total <=
 *                   news2_raise - 2 with no single 3. Severity = the clinical risk name; a change of
 *                   risk while raised updates the open alert's severity.
 *   stale (key "stale:<LOINC>")  a parameter had samples but none for opts.stale_ms while the
 *                   patient's device is still sending others; clears on the next sample.
 *   disconnected (key "device:<device id>") a device bound to the patient (or that sent samples for
 *                   the patient) has sent nothing for opts.stale_ms; clears on its next sample or
 *                   when it is unbound. The engine is seeded at start with every bound device (table
 *                   vitals_device) as if heard from then, and told of later binds/unbinds
 *                   (alerts_device_bound/unbound).
 * De-duplication: one open alert per (patient, rule key) — the partial unique index of table alerts;
 * a raise while one is open updates it (severity, "retriggered") instead of opening another.
 * Escalation: an alert still "open" opts.escalate_ms after it was raised becomes "escalated".
 *
 * Ward: a patient's location is the one in table alert_patient_settings (set with
 * alerts_patient_settings_put / PUT /api/v1/vitals/patients/{id}/alert-settings). Rules scoped to
 * a location apply to the patients placed there.
 */
#ifndef MC_MODULES_VITALS_ALERTS_H
#define MC_MODULES_VITALS_ALERTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/route.h"
#include "modules/vitals/vitals.h"

struct store;
struct store_txn;
struct auth_principal;

#define ALERTS_STRIPES 64
#define ALERTS_KEY_MAX 96          /* bytes of a rule key, NUL included */
#define ALERTS_RULES_MAX 256       /* threshold rules loaded at once */
#define ALERTS_NOTE_MAX 2000       /* bytes of a staff note */
#define ALERTS_ID_MAX 65

/* One alert state change, after it is durable. Strings are borrowed for the call. */
struct alerts_change {
	const char *alert_id;
	const char *patient_id;
	const char *location_id;   /* "" when none */
	const char *rule_key;
	const char *kind;          /* "news2" "threshold" "stale" "disconnected" */
	const char *severity;      /* "low" "low-medium" "medium" "high" */
	const char *status;        /* "open" "escalated" "acknowledged" "resolved" */
	const char *action;        /* "raised" "retriggered" "severity" "confirmed" "condition-cleared"
	                              "escalated" "acknowledged" "resolved"; "detected" (on_detect only) */
	int64_t ts_ms;
};
typedef void alerts_change_fn(const struct alerts_change *c, void *arg);

typedef int64_t alerts_clock_fn(void *arg);   /* wall clock, ms */

struct alerts_opts {
	struct store *store;            /* required; borrowed, must outlive the engine */
	int64_t escalate_ms;            /* 0 = never escalate */
	int64_t stale_ms;               /* 0 = no stale / disconnected alerts */
	int64_t news2_max_age_ms;       /* 0 = 15 minutes */
	int news2_raise;                /* 0 = 5 */
	int64_t news2_min_ms;           /* minimum duration of the NEWS2 condition */
	alerts_clock_fn *clock_ms;      /* NULL = mctime_now_ms */
	void *clock_arg;
	alerts_change_fn *on_change;    /* may be NULL; runs on the engine thread (or the caller of
	                                   alerts_run_pending / the HTTP worker for staff actions) */
	void *change_arg;
	alerts_change_fn *on_detect;    /* may be NULL; gets change_arg. Called on the ingest thread (under
	                                   the patient's stripe lock: must not block or call the engine)
	                                   the moment a raise is decided, before it is durable: action
	                                   "detected", status "pending", alert_id "". Exactly one durable
	                                   on_change for the same (patient, rule key) follows: "raised",
	                                   "retriggered", "severity" or "confirmed" (an open alert already
	                                   said so), with the id. A write that fails because the store is
	                                   unavailable is retried until it succeeds (or the engine stops). */
	size_t queue_max;               /* 0 = 65536 work items */
	bool no_thread;                 /* tests: nothing runs until alerts_run_pending/alerts_tick */
};

struct alerts;

/* Loads rules and patient settings from the store, starts the thread (unless no_thread).
 * MC_EINVAL without a store. *out is freed with alerts_destroy (which stops the thread after the
 * queued work is written). */
int alerts_create(const struct alerts_opts *opts, struct alerts **out);
void alerts_destroy(struct alerts *a);

/* The vitals sink (arg = the engine). */
void alerts_sink(const struct vitals_sample *s, size_t n, void *arg);
/* Write every queued work item now, on this thread. Returns how many were written. */
size_t alerts_run_pending(struct alerts *a);
/* Stale/disconnected checks and escalation at the engine clock's now (queued work is written
 * first). The thread calls it every second. */
void alerts_tick(struct alerts *a);
/* Work items dropped because the queue was full. */
uint64_t alerts_dropped(const struct alerts *a);

/* A device was bound to / unbound from a patient (after the commit). Bound: tracked as heard from
 * now. Unbound: no longer tracked; an open disconnected alert's condition clears. a may be NULL. */
void alerts_device_bound(struct alerts *a, const char *device_id, const char *patient_id);
void alerts_device_unbound(struct alerts *a, const char *device_id, const char *patient_id);

/* Rules ------------------------------------------------------------------------------------- */
struct alerts_rule {
	char id[ALERTS_ID_MAX];
	char patient_id[ALERTS_ID_MAX];   /* "" = not patient-scoped */
	char location_id[ALERTS_ID_MAX];  /* "" = not ward-scoped; both "" = every patient */
	enum vitals_param param;
	bool below;                       /* false: alert when value >= raise_at */
	double raise_at, clear_at;        /* above: clear_at <= raise_at; below: clear_at >= raise_at */
	int64_t min_seconds;              /* 0..86400 */
	char severity[16];                /* low, low-medium, medium, high */
};
/* Check a rule's consistency: MC_OK or MC_EINVAL with a client-safe reason in *why. */
int alerts_rule_check(const struct alerts_rule *r, const char **why);
/* Add a rule to the running engine (after it is stored). MC_ETOOBIG past ALERTS_RULES_MAX. */
int alerts_rule_add(struct alerts *a, const struct alerts_rule *r);
/* Inside a write unit: insert the rule (r->id is filled with a new id). */
int alerts_rule_store(struct store_txn *t, struct alerts_rule *r, int64_t user_id, int64_t now_ms);

/* Per-patient settings: SpO2 scale 2 and ward. location may be NULL/"" (none). */
int alerts_patient_settings_store(struct store_txn *t, const char *patient_id, bool scale2,
				  const char *location_id, int64_t now_ms);
void alerts_patient_settings_apply(struct alerts *a, const char *patient_id, bool scale2, const char *location_id);
/* The ward the engine has for a patient (copied into out, "" when none). */
void alerts_patient_location(struct alerts *a, const char *patient_id, char out[ALERTS_ID_MAX]);

/* Staff actions (inside a write unit). Loads the alert (MC_ENOTFOUND), sets *patient_id_out (may
 * be NULL; for the caller's audit record, also on MC_EFORBIDDEN), checks the principal may write the
 * patient's clinical data (MC_EFORBIDDEN), checks the transition (MC_ECONFLICT: acknowledge needs
 * open or escalated, resolve anything not yet resolved), then updates the row and writes the
 * history row and the vitals.alert.acknowledged/.resolved event. The audit record is the caller's
 * (req_write appends it in the same unit). note may be NULL (<= ALERTS_NOTE_MAX bytes). */
struct alerts_action_result {
	char alert_id[ALERTS_ID_MAX], patient_id[ALERTS_ID_MAX], location_id[ALERTS_ID_MAX];
	char rule_key[ALERTS_KEY_MAX], kind[16], severity[16], status[16], action[16];
	int64_t ts_ms;
};
int alerts_staff_action(struct store_txn *t, const struct auth_principal *who, const char *alert_id,
			bool resolve, const char *note, int64_t now_ms, struct alerts_action_result *out);
void alerts_result_change(const struct alerts_action_result *r, struct alerts_change *c);

/* Called after a staff action (acknowledge/resolve) commits, on the HTTP worker (live push). */
void alerts_staff_hook_set(alerts_change_fn *fn, void *arg);

/* The running engine of `serve` (NULL when none); set by vitals_alerting_start. */
struct alerts *alerts_current(void);
void alerts_set_current(struct alerts *a);

/* Routes: GET /api/v1/alerts, POST /api/v1/alerts/{id}/acknowledge|resolve, GET/POST
 * /api/v1/alert-rules, PUT /api/v1/vitals/patients/{id}/alert-settings. */
extern const struct route_table alerts_routes;

#endif
