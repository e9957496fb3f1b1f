/* modules/vitals/alerts.c — the alerting engine (see alerts.h for the conditions and threads) and
 * its /api/v1 routes.
 *
 * State: a fixed hash table of per-patient records (ALERTS_BUCKETS chains); bucket b is guarded by
 * stripe b % ALERTS_STRIPES, so samples of different patients rarely contend. A record is created
 * by the first sample (or setting) of a patient and lives as long as the engine (at most
 * ALERTS_PATIENTS_MAX of them: a 1,000-bed hospital uses a small fraction).
 * Rules: an array under a rwlock (samples read it, rule creation writes it).
 * Work: a bounded FIFO of raise/clear items (malloc'd; at most queue_max) drained by the thread.
 */
#include "modules/vitals/alerts.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "events/events.h"
#include "http/app.h"
#include "modules/vitals/live.h"
#include "modules/vitals/news2.h"
#include "store/store.h"

#define ALERTS_BUCKETS 8192
#define ALERTS_PATIENTS_MAX 100000
#define ALERTS_RULESTATE_MAX 16    /* threshold rules that can apply to one patient at once */
#define ALERTS_DEVICES_MAX 8       /* devices tracked per patient */
#define ALERTS_ESCALATE_BATCH 100

struct rstate {
	char rule_id[ALERTS_ID_MAX];
	bool pending, raised;
	int64_t since_ms;
};

struct cstate {   /* the NEWS2 condition */
	bool pending, raised;
	int64_t since_ms;
	enum news2_risk risk;   /* last one pushed while raised */
};

struct pstate {
	struct pstate *next;
	char patient_id[ALERTS_ID_MAX];
	char location_id[ALERTS_ID_MAX];
	bool scale2;
	struct {
		bool have, stale;
		double v;
		int64_t ts_ms, seen_ms;
	} p[VP__COUNT];
	struct {
		char id[ALERTS_ID_MAX];
		int64_t seen_ms;
		bool silent;
	} dev[ALERTS_DEVICES_MAX];
	size_t ndev;
	struct cstate news2;
	struct rstate rs[ALERTS_RULESTATE_MAX];
	size_t nrs;
};

enum work_kind { W_RAISE, W_CLEAR };

struct work {
	struct work *next;
	enum work_kind k;
	char patient_id[ALERTS_ID_MAX];
	char location_id[ALERTS_ID_MAX];
	char key[ALERTS_KEY_MAX];
	char kind[16];
	char severity[16];
	char detail[256];   /* JSON object text */
	int64_t ts_ms;
};

struct alerts {
	struct alerts_opts o;
	pthread_mutex_t stripe[ALERTS_STRIPES];
	struct pstate *bucket[ALERTS_BUCKETS];
	_Atomic size_t npatients;
	pthread_rwlock_t rules_mu;
	struct alerts_rule *rules;
	size_t nrules;
	/* work queue */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct work *q_head, *q_tail;
	size_t q_len;
	_Atomic uint64_t dropped;
	bool stop;
	bool failing;             /* the last write failed: the thread pauses before retrying */
	pthread_t thread;
	bool has_thread;
	pthread_mutex_t run_mu;   /* one drainer at a time (thread, tests, shutdown) */
	struct metric *m_raised, *m_dropped;
};

static struct alerts *g_current;
struct alerts *alerts_current(void) { return g_current; }
void alerts_set_current(struct alerts *a) { g_current = a; }

static int64_t now_ms(const struct alerts *a)
{
	return a->o.clock_ms ? a->o.clock_ms(a->o.clock_arg) : mctime_now_ms();
}

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

/* ---- the work queue ------------------------------------------------------------------------ */

/* Never blocks beyond the queue mutex. When full the item is dropped (and counted) and false is
 * returned: the caller then leaves its condition state as it was, so the next sample or tick
 * decides again — a dropped decision is delayed, never lost. A raise that is queued is announced
 * at once to opts.on_detect (provisional: the durable record follows from the engine thread). */
static bool push(struct alerts *a, enum work_kind k, const struct pstate *ps, const char *key, const char *kind,
		 const char *severity, const char *detail, int64_t ts)
{
	pthread_mutex_lock(&a->q_mu);
	if (a->q_len >= a->o.queue_max) {
		pthread_mutex_unlock(&a->q_mu);
		atomic_fetch_add(&a->dropped, 1);
		if (a->m_dropped)
			metrics_add(a->m_dropped, 1);
		return false;
	}
	pthread_mutex_unlock(&a->q_mu);
	if (k == W_RAISE && a->o.on_detect) {
		struct alerts_change c = {.alert_id = "", .patient_id = ps->patient_id, .location_id = ps->location_id,
					  .rule_key = key, .kind = kind, .severity = severity, .status = "pending",
					  .action = "detected", .ts_ms = ts};
		a->o.on_detect(&c, a->o.change_arg);
	}
	struct work *w = mc_calloc(1, sizeof(*w));
	w->k = k;
	copy_str(w->patient_id, sizeof(w->patient_id), ps->patient_id);
	copy_str(w->location_id, sizeof(w->location_id), ps->location_id);
	copy_str(w->key, sizeof(w->key), key);
	copy_str(w->kind, sizeof(w->kind), kind);
	copy_str(w->severity, sizeof(w->severity), severity);
	copy_str(w->detail, sizeof(w->detail), detail && *detail ? detail : "{}");
	w->ts_ms = ts;
	pthread_mutex_lock(&a->q_mu);
	if (a->q_tail)
		a->q_tail->next = w;
	else
		a->q_head = w;
	a->q_tail = w;
	a->q_len++;
	pthread_cond_signal(&a->q_cv);
	pthread_mutex_unlock(&a->q_mu);
	return true;
}

uint64_t alerts_dropped(const struct alerts *a) { return atomic_load(&((struct alerts *)a)->dropped); }

/* ---- per-patient state --------------------------------------------------------------------- */

/* The record for patient_id, created when create is set; the caller holds its stripe. */
static struct pstate *pstate_get(struct alerts *a, size_t b, const char *patient_id, bool create)
{
	for (struct pstate *p = a->bucket[b]; p; p = p->next)
		if (!strcmp(p->patient_id, patient_id))
			return p;
	if (!create || atomic_load(&a->npatients) >= ALERTS_PATIENTS_MAX)
		return NULL;
	struct pstate *p = mc_calloc(1, sizeof(*p));
	copy_str(p->patient_id, sizeof(p->patient_id), patient_id);
	p->next = a->bucket[b];
	a->bucket[b] = p;
	atomic_fetch_add(&a->npatients, 1);
	return p;
}

static struct rstate *rstate_get(struct pstate *ps, const char *rule_id)
{
	for (size_t i = 0; i < ps->nrs; i++)
		if (!strcmp(ps->rs[i].rule_id, rule_id))
			return &ps->rs[i];
	if (ps->nrs == ALERTS_RULESTATE_MAX)
		return NULL;
	struct rstate *r = &ps->rs[ps->nrs++];
	memset(r, 0, sizeof(*r));
	copy_str(r->rule_id, sizeof(r->rule_id), rule_id);
	return r;
}

static bool rule_applies(const struct alerts_rule *r, const struct pstate *ps)
{
	if (r->patient_id[0])
		return !strcmp(r->patient_id, ps->patient_id);
	if (r->location_id[0])
		return !strcmp(r->location_id, ps->location_id);
	return true;
}

static void eval_rules(struct alerts *a, struct pstate *ps, enum vitals_param param, double v, int64_t now)
{
	pthread_rwlock_rdlock(&a->rules_mu);
	for (size_t i = 0; i < a->nrules; i++) {
		const struct alerts_rule *r = &a->rules[i];
		if (r->param != param || !rule_applies(r, ps))
			continue;
		struct rstate *st = rstate_get(ps, r->id);
		if (!st)
			continue;
		bool meets_raise = r->below ? v <= r->raise_at : v >= r->raise_at;
		bool meets_clear = r->below ? v > r->clear_at : v < r->clear_at;
		char key[ALERTS_KEY_MAX], detail[256];
		snprintf(key, sizeof(key), "rule:%s", r->id);
		snprintf(detail, sizeof(detail), "{\"rule\":\"%s\",\"code\":\"%s\",\"value\":%.6g}", r->id,
			 vitals_param_loinc(param), v);
		if (st->raised) {
			if (meets_clear && push(a, W_CLEAR, ps, key, "threshold", r->severity, detail, now))
				st->raised = st->pending = false;
			continue;
		}
		if (!meets_raise) {
			st->pending = false;
			continue;
		}
		if (!st->pending) {
			st->pending = true;
			st->since_ms = now;
		}
		if (now - st->since_ms >= r->min_seconds * 1000 &&
		    push(a, W_RAISE, ps, key, "threshold", r->severity, detail, now)) {
			st->raised = true;
			st->pending = false;
		}
	}
	pthread_rwlock_unlock(&a->rules_mu);
}

static const enum vitals_param news2_map[NEWS2__COUNT] = {
	[NEWS2_RR] = VP_RR,   [NEWS2_SPO2] = VP_SPO2,   [NEWS2_AIR_O2] = VP_O2, [NEWS2_SBP] = VP_SYS,
	[NEWS2_PULSE] = VP_HR, [NEWS2_ACVPU] = VP_ACVPU, [NEWS2_TEMP] = VP_TEMP,
};

static bool news2_param(enum vitals_param p) { return p != VP_DIA; }

static void eval_news2(struct alerts *a, struct pstate *ps, int64_t now)
{
	struct news2_input in = {.scale2 = ps->scale2};
	for (int i = 0; i < NEWS2__COUNT; i++) {
		enum vitals_param vp = news2_map[i];
		if (ps->p[vp].have && now - ps->p[vp].ts_ms <= a->o.news2_max_age_ms) {
			in.have[i] = true;
			in.value[i] = ps->p[vp].v;
		}
	}
	if (!in.have[NEWS2_RR] || !in.have[NEWS2_SPO2] || !in.have[NEWS2_SBP] || !in.have[NEWS2_PULSE])
		return;
	struct news2_result r;
	news2_compute(&in, &r);
	struct cstate *c = &ps->news2;
	bool meets_raise = r.total >= a->o.news2_raise || r.any_three;
	bool meets_clear = r.total <= a->o.news2_raise - 2 && !r.any_three;
	char detail[256];
	snprintf(detail, sizeof(detail), "{\"score\":%d,\"risk\":\"%s\",\"complete\":%s,\"scale\":%d}", r.total,
		 news2_risk_name(r.risk), r.complete ? "true" : "false", ps->scale2 ? 2 : 1);
	if (c->raised) {
		if (meets_clear) {
			if (push(a, W_CLEAR, ps, "news2", "news2", news2_risk_name(r.risk), detail, now))
				c->raised = c->pending = false;
		} else if (r.risk != c->risk && r.risk != NEWS2_RISK_LOW) {
			if (push(a, W_RAISE, ps, "news2", "news2", news2_risk_name(r.risk), detail, now))
				c->risk = r.risk;
		}
		return;
	}
	if (!meets_raise) {
		c->pending = false;
		return;
	}
	if (!c->pending) {
		c->pending = true;
		c->since_ms = now;
	}
	if (now - c->since_ms >= a->o.news2_min_ms &&
	    push(a, W_RAISE, ps, "news2", "news2", news2_risk_name(r.risk), detail, now)) {
		c->raised = true;
		c->pending = false;
		c->risk = r.risk;
	}
}

static void note_device(struct alerts *a, struct pstate *ps, const char *device_id, int64_t now)
{
	if (!device_id || !*device_id)
		return;
	for (size_t i = 0; i < ps->ndev; i++) {
		if (strcmp(ps->dev[i].id, device_id))
			continue;
		ps->dev[i].seen_ms = now;
		if (ps->dev[i].silent) {
			char key[ALERTS_KEY_MAX];
			snprintf(key, sizeof(key), "device:%s", device_id);
			if (push(a, W_CLEAR, ps, key, "disconnected", "medium", "{}", now))
				ps->dev[i].silent = false;
		}
		return;
	}
	size_t i = ps->ndev < ALERTS_DEVICES_MAX ? ps->ndev++ : 0;   /* full: forget the first */
	copy_str(ps->dev[i].id, sizeof(ps->dev[i].id), device_id);
	ps->dev[i].seen_ms = now;
	ps->dev[i].silent = false;
}

/* Track device_id for patient_id as if heard from at now (a bound device that never sends is
 * reported disconnected stale_ms later). */
static void seed_device(struct alerts *a, const char *patient_id, const char *device_id, int64_t now)
{
	if (!patient_id || !*patient_id || !device_id || !*device_id)
		return;
	size_t b = hash_id(patient_id) % ALERTS_BUCKETS;
	pthread_mutex_lock(&a->stripe[b % ALERTS_STRIPES]);
	struct pstate *ps = pstate_get(a, b, patient_id, true);
	if (ps) {
		bool known = false;
		for (size_t i = 0; i < ps->ndev && !known; i++)
			known = !strcmp(ps->dev[i].id, device_id);
		if (!known)
			note_device(a, ps, device_id, now);
	}
	pthread_mutex_unlock(&a->stripe[b % ALERTS_STRIPES]);
}

void alerts_device_bound(struct alerts *a, const char *device_id, const char *patient_id)
{
	if (a)
		seed_device(a, patient_id, device_id, now_ms(a));
}

void alerts_device_unbound(struct alerts *a, const char *device_id, const char *patient_id)
{
	if (!a || !patient_id || !*patient_id || !device_id)
		return;
	size_t b = hash_id(patient_id) % ALERTS_BUCKETS;
	pthread_mutex_lock(&a->stripe[b % ALERTS_STRIPES]);
	struct pstate *ps = pstate_get(a, b, patient_id, false);
	for (size_t i = 0; ps && i < ps->ndev; i++) {
		if (strcmp(ps->dev[i].id, device_id))
			continue;
		if (ps->dev[i].silent) {   /* unbound on purpose: its disconnected alert's condition is over */
			char key[ALERTS_KEY_MAX];
			snprintf(key, sizeof(key), "device:%s", device_id);
			push(a, W_CLEAR, ps, key, "disconnected", "medium", "{}", now_ms(a));
		}
		ps->dev[i] = ps->dev[--ps->ndev];
		break;
	}
	pthread_mutex_unlock(&a->stripe[b % ALERTS_STRIPES]);
}

void alerts_sink(const struct vitals_sample *s, size_t n, void *arg)
{
	struct alerts *a = arg;
	int64_t now = now_ms(a);
	for (size_t i = 0; i < n; i++) {
		const struct vitals_sample *x = &s[i];
		if ((unsigned)x->param >= VP__COUNT || !isfinite(x->value) || !x->patient_id[0])
			continue;
		uint32_t h = hash_id(x->patient_id);
		size_t b = h % ALERTS_BUCKETS;
		pthread_mutex_t *mu = &a->stripe[b % ALERTS_STRIPES];
		pthread_mutex_lock(mu);
		struct pstate *ps = pstate_get(a, b, x->patient_id, true);
		if (ps) {
			ps->p[x->param].have = true;
			ps->p[x->param].v = x->value;
			ps->p[x->param].ts_ms = x->ts_ms ? x->ts_ms : now;
			ps->p[x->param].seen_ms = now;
			if (ps->p[x->param].stale) {
				char key[ALERTS_KEY_MAX];
				snprintf(key, sizeof(key), "stale:%s", vitals_param_loinc(x->param));
				if (push(a, W_CLEAR, ps, key, "stale", "low", "{}", now))
					ps->p[x->param].stale = false;
			}
			note_device(a, ps, x->device_id, now);
			eval_rules(a, ps, x->param, x->value, now);
			if (news2_param(x->param))
				eval_news2(a, ps, now);
		}
		pthread_mutex_unlock(mu);
	}
}

void alerts_patient_settings_apply(struct alerts *a, const char *patient_id, bool scale2, const char *location_id)
{
	size_t b = hash_id(patient_id) % ALERTS_BUCKETS;
	pthread_mutex_lock(&a->stripe[b % ALERTS_STRIPES]);
	struct pstate *ps = pstate_get(a, b, patient_id, true);
	if (ps) {
		ps->scale2 = scale2;
		copy_str(ps->location_id, sizeof(ps->location_id), location_id);
	}
	pthread_mutex_unlock(&a->stripe[b % ALERTS_STRIPES]);
}

void alerts_patient_location(struct alerts *a, const char *patient_id, char out[ALERTS_ID_MAX])
{
	out[0] = '\0';
	if (!a || !patient_id)
		return;
	size_t b = hash_id(patient_id) % ALERTS_BUCKETS;
	pthread_mutex_lock(&a->stripe[b % ALERTS_STRIPES]);
	struct pstate *ps = pstate_get(a, b, patient_id, false);
	if (ps)
		copy_str(out, ALERTS_ID_MAX, ps->location_id);
	pthread_mutex_unlock(&a->stripe[b % ALERTS_STRIPES]);
}

/* ---- rules --------------------------------------------------------------------------------- */

static bool severity_valid(const char *s)
{
	return !strcmp(s, "low") || !strcmp(s, "low-medium") || !strcmp(s, "medium") || !strcmp(s, "high");
}

int alerts_rule_check(const struct alerts_rule *r, const char **why)
{
	const char *w = NULL;
	if ((unsigned)r->param >= VP__COUNT)
		w = "code: not a supported vitals parameter";
	else if (!isfinite(r->raise_at) || !isfinite(r->clear_at))
		w = "raiseAt and clearAt must be numbers";
	else if (!r->below && r->clear_at > r->raise_at)
		w = "clearAt must not be above raiseAt for direction above";
	else if (r->below && r->clear_at < r->raise_at)
		w = "clearAt must not be below raiseAt for direction below";
	else if (r->min_seconds < 0 || r->min_seconds > 86400)
		w = "minSeconds must be 0..86400";
	else if (!severity_valid(r->severity))
		w = "severity must be low, low-medium, medium or high";
	else if (r->patient_id[0] && r->location_id[0])
		w = "a rule is scoped to a patient or to a location, not both";
	else if ((r->patient_id[0] && !mcid_valid_fhir_id(r->patient_id)) ||
		 (r->location_id[0] && !mcid_valid_fhir_id(r->location_id)))
		w = "patientId and locationId must be FHIR ids";
	if (why)
		*why = w;
	return w ? MC_EINVAL : MC_OK;
}

int alerts_rule_add(struct alerts *a, const struct alerts_rule *r)
{
	int rc = MC_OK;
	pthread_rwlock_wrlock(&a->rules_mu);
	if (a->nrules >= ALERTS_RULES_MAX)
		rc = MC_ETOOBIG;
	else
		a->rules[a->nrules++] = *r;
	pthread_rwlock_unlock(&a->rules_mu);
	return rc;
}

int alerts_rule_store(struct store_txn *t, struct alerts_rule *r, int64_t user_id, int64_t now)
{
	mcid_new(r->id);
	struct store_arg args[] = {
		SA_TEXT(r->id),
		r->patient_id[0] ? SA_TEXT(r->patient_id) : SA_NULL(),
		r->location_id[0] ? SA_TEXT(r->location_id) : SA_NULL(),
		SA_TEXT(vitals_param_loinc(r->param)),
		SA_TEXT(r->below ? "below" : "above"),
		SA_REAL(r->raise_at),
		SA_REAL(r->clear_at),
		SA_INT(r->min_seconds),
		SA_TEXT(r->severity),
		SA_INT(user_id),
		SA_INT(now),
	};
	return store_exec(t,
			  "INSERT INTO alert_rules (id, patient_id, location_id, param, direction, raise_at, clear_at, "
			  "min_seconds, severity, active, created_by, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
			  "$9, 1, $10, $11)",
			  args, 11);
}

int alerts_patient_settings_store(struct store_txn *t, const char *patient_id, bool scale2,
				  const char *location_id, int64_t now)
{
	struct store_arg args[] = {SA_TEXT(patient_id), SA_INT(scale2 ? 1 : 0),
				   location_id && *location_id ? SA_TEXT(location_id) : SA_NULL(), SA_INT(now)};
	return store_exec(t,
			  "INSERT INTO alert_patient_settings (patient_id, spo2_scale2, location_id, updated_ms) "
			  "VALUES ($1, $2, $3, $4) ON CONFLICT (patient_id) DO UPDATE SET spo2_scale2 = excluded.spo2_scale2, "
			  "location_id = excluded.location_id, updated_ms = excluded.updated_ms",
			  args, 4);
}

static int load_unit(struct store_txn *t, void *arg)
{
	struct alerts *a = arg;
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT id, patient_id, location_id, param, direction, raise_at, clear_at, min_seconds, "
			     "severity FROM alert_rules WHERE active = 1 ORDER BY created_ms, id",
			     NULL, 0, &rows);
	if (rc)
		return rc;
	while ((rc = store_rows_next(rows)) == 1 && a->nrules < ALERTS_RULES_MAX) {
		struct alerts_rule r = {0};
		copy_str(r.id, sizeof(r.id), store_rows_text(rows, 0));
		copy_str(r.patient_id, sizeof(r.patient_id), store_rows_text(rows, 1));
		copy_str(r.location_id, sizeof(r.location_id), store_rows_text(rows, 2));
		if (vitals_param_from_loinc(store_rows_text(rows, 3), &r.param))
			continue;
		const char *dir = store_rows_text(rows, 4);
		r.below = dir && !strcmp(dir, "below");
		r.raise_at = store_rows_real(rows, 5);
		r.clear_at = store_rows_real(rows, 6);
		r.min_seconds = store_rows_int(rows, 7);
		copy_str(r.severity, sizeof(r.severity), store_rows_text(rows, 8));
		a->rules[a->nrules++] = r;
	}
	store_rows_close(rows);
	if (rc < 0)
		return -rc;
	rc = store_query(t, "SELECT patient_id, spo2_scale2, location_id FROM alert_patient_settings", NULL, 0, &rows);
	if (rc)
		return rc;
	while ((rc = store_rows_next(rows)) == 1)
		alerts_patient_settings_apply(a, store_rows_text(rows, 0), store_rows_int(rows, 1) != 0,
					      store_rows_text(rows, 2));
	store_rows_close(rows);
	if (rc < 0)
		return -rc;
	/* Every bound device is expected to send from now on: after a restart a monitor that stays
	 * silent is reported disconnected, not only the ones heard from since start. */
	rc = store_query(t, "SELECT device_id, patient_id FROM vitals_device WHERE patient_id IS NOT NULL", NULL, 0,
			 &rows);
	if (rc)
		return rc;
	int64_t now = now_ms(a);
	while ((rc = store_rows_next(rows)) == 1)
		seed_device(a, store_rows_text(rows, 1), store_rows_text(rows, 0), now);
	store_rows_close(rows);
	return rc < 0 ? -rc : MC_OK;
}

/* ---- persistence of changes ---------------------------------------------------------------- */

static int history(struct store_txn *t, const char *alert_id, int64_t ts, const char *action, int64_t user_id,
		   const char *note)
{
	struct store_arg args[] = {SA_TEXT(alert_id), SA_INT(ts), SA_TEXT(action), SA_INT(user_id), SA_TEXT(note)};
	return store_exec(t,
			  "INSERT INTO alert_events (alert_id, seq, ts_ms, action, user_id, note) VALUES ($1, "
			  "(SELECT COALESCE(MAX(seq), 0) + 1 FROM alert_events WHERE alert_id = $1), $2, $3, $4, $5)",
			  args, 5);
}

static int emit(struct store_txn *t, const char *name, const struct alerts_change *c)
{
	json_t *payload = json_pack("{s:s,s:s,s:s,s:s,s:s}", "alertId", c->alert_id, "ruleKey", c->rule_key, "kind",
				    c->kind, "severity", c->severity, "status", c->status);
	return events_emit(t, name, c->patient_id, "alert", c->alert_id, payload);
}

static int audit_system(struct store_txn *t, const char *action, const struct alerts_change *c, int outcome)
{
	struct audit_rec rec = {
		.ts_ms = c->ts_ms,
		.username = "system",
		.role = "system",
		.action = action,
		.resource_type = "alert",
		.resource_id = c->alert_id,
		.patient_id = c->patient_id,
		.outcome = outcome,
	};
	return audit_append(t, &rec);
}

/* What a unit decided, for on_change after the commit. */
struct change_out {
	bool changed;
	char alert_id[ALERTS_ID_MAX], status[16], action[24], severity[16], kind[16], rule_key[ALERTS_KEY_MAX];
	char location_id[ALERTS_ID_MAX];
	char patient_id[ALERTS_ID_MAX];
	int64_t ts_ms;
};

static void change_of(const struct change_out *o, struct alerts_change *c)
{
	*c = (struct alerts_change){
		.alert_id = o->alert_id,
		.patient_id = o->patient_id,
		.location_id = o->location_id,
		.rule_key = o->rule_key,
		.kind = o->kind,
		.severity = o->severity,
		.status = o->status,
		.action = o->action,
		.ts_ms = o->ts_ms,
	};
}

struct work_unit {
	const struct work *w;
	struct change_out out;
};

static int work_raise(struct store_txn *t, const struct work *w, struct change_out *o)
{
	struct store_arg key[] = {SA_TEXT(w->patient_id), SA_TEXT(w->key)};
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT id, severity, status, active FROM alerts WHERE patient_id = $1 AND rule_key = $2 "
			     "AND status IN ('open', 'escalated', 'acknowledged')",
			     key, 2, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	copy_str(o->patient_id, sizeof(o->patient_id), w->patient_id);
	copy_str(o->rule_key, sizeof(o->rule_key), w->key);
	copy_str(o->kind, sizeof(o->kind), w->kind);
	copy_str(o->location_id, sizeof(o->location_id), w->location_id);
	o->ts_ms = w->ts_ms;
	if (step == 1) {   /* de-duplicated: update the open alert */
		copy_str(o->alert_id, sizeof(o->alert_id), store_rows_text(rows, 0));
		const char *sev = store_rows_text(rows, 1);
		copy_str(o->status, sizeof(o->status), store_rows_text(rows, 2));
		bool active = store_rows_int(rows, 3) != 0;
		bool sev_changed = !sev || strcmp(sev, w->severity);
		store_rows_close(rows);
		if (!sev_changed && active) {
			/* nothing new: still reported once ("confirmed"), so the provisional "detected"
			 * announcement always gets its durable follow-up with the alert id */
			copy_str(o->action, sizeof(o->action), "confirmed");
			copy_str(o->severity, sizeof(o->severity), w->severity);
			o->changed = true;
			return MC_OK;
		}
		copy_str(o->action, sizeof(o->action), sev_changed ? "severity" : "retriggered");
		copy_str(o->severity, sizeof(o->severity), w->severity);
		struct store_arg up[] = {SA_TEXT(o->alert_id), SA_TEXT(w->severity), SA_INT(w->ts_ms), SA_TEXT(w->detail)};
		rc = store_exec(t, "UPDATE alerts SET severity = $2, active = 1, updated_ms = $3, detail = $4 WHERE id = $1",
				up, 4);
		rc = rc ? rc : history(t, o->alert_id, w->ts_ms, o->action, 0, NULL);
		o->changed = rc == MC_OK;
		return rc;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	mcid_new(o->alert_id);
	copy_str(o->status, sizeof(o->status), "open");
	copy_str(o->action, sizeof(o->action), "raised");
	copy_str(o->severity, sizeof(o->severity), w->severity);
	struct store_arg ins[] = {SA_TEXT(o->alert_id), SA_TEXT(w->patient_id), SA_TEXT(w->key), SA_TEXT(w->kind),
				  SA_TEXT(w->severity), w->location_id[0] ? SA_TEXT(w->location_id) : SA_NULL(),
				  SA_TEXT(w->detail), SA_INT(w->ts_ms)};
	rc = store_exec(t,
			"INSERT INTO alerts (id, patient_id, rule_key, kind, severity, status, location_id, detail, "
			"raised_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $8)",
			ins, 8);
	rc = rc ? rc : history(t, o->alert_id, w->ts_ms, "raised", 0, NULL);
	struct alerts_change c;
	change_of(o, &c);
	rc = rc ? rc : audit_system(t, "alert-raised", &c, 201);
	rc = rc ? rc : emit(t, "vitals.alert.raised", &c);
	o->changed = rc == MC_OK;
	return rc;
}

static int work_clear(struct store_txn *t, const struct work *w, struct change_out *o)
{
	struct store_arg key[] = {SA_TEXT(w->patient_id), SA_TEXT(w->key)};
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT id, severity, status FROM alerts WHERE patient_id = $1 AND rule_key = $2 "
			     "AND status IN ('open', 'escalated', 'acknowledged') AND active = 1",
			     key, 2, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step != 1) {
		store_rows_close(rows);
		return step < 0 ? -step : MC_OK;
	}
	copy_str(o->alert_id, sizeof(o->alert_id), store_rows_text(rows, 0));
	copy_str(o->severity, sizeof(o->severity), store_rows_text(rows, 1));
	copy_str(o->status, sizeof(o->status), store_rows_text(rows, 2));
	store_rows_close(rows);
	copy_str(o->patient_id, sizeof(o->patient_id), w->patient_id);
	copy_str(o->rule_key, sizeof(o->rule_key), w->key);
	copy_str(o->kind, sizeof(o->kind), w->kind);
	copy_str(o->location_id, sizeof(o->location_id), w->location_id);
	copy_str(o->action, sizeof(o->action), "condition-cleared");
	o->ts_ms = w->ts_ms;
	struct store_arg up[] = {SA_TEXT(o->alert_id), SA_INT(w->ts_ms)};
	rc = store_exec(t, "UPDATE alerts SET active = 0, updated_ms = $2 WHERE id = $1", up, 2);
	rc = rc ? rc : history(t, o->alert_id, w->ts_ms, "condition-cleared", 0, NULL);
	o->changed = rc == MC_OK;
	return rc;
}

static int work_unit_fn(struct store_txn *t, void *arg)
{
	struct work_unit *u = arg;
	return u->w->k == W_RAISE ? work_raise(t, u->w, &u->out) : work_clear(t, u->w, &u->out);
}

static void notify(struct alerts *a, const struct change_out *o)
{
	if (!o->changed || !a->o.on_change)
		return;
	struct alerts_change c;
	change_of(o, &c);
	a->o.on_change(&c, a->o.change_arg);
}

size_t alerts_run_pending(struct alerts *a)
{
	size_t done = 0;
	pthread_mutex_lock(&a->run_mu);
	for (;;) {
		pthread_mutex_lock(&a->q_mu);
		struct work *w = a->q_head;
		if (w) {
			a->q_head = w->next;
			if (!a->q_head)
				a->q_tail = NULL;
			a->q_len--;
		}
		pthread_mutex_unlock(&a->q_mu);
		if (!w)
			break;
		struct work_unit u = {.w = w};
		int rc = store_write(a->o.store, work_unit_fn, &u);
		if (rc && rc != MC_EUNAVAIL && rc != MC_ETIMEOUT) {
			/* not transient (a bug or corrupt row): retrying would stall every later alert */
			LOGE("alerts: change not written", "\"code\":\"%s\",\"key\":\"%s\"", mc_code_name(rc), w->kind);
			free(w);
			done++;
			continue;
		}
		if (rc) {
			/* the store is unavailable: never dropped; back to the head of the queue, tried
			 * again after a pause (the thread waits 200 ms while failing) */
			LOGE("alerts: change not written; retrying", "\"code\":\"%s\",\"key\":\"%s\"", mc_code_name(rc),
			     w->kind);
			pthread_mutex_lock(&a->q_mu);
			w->next = a->q_head;
			a->q_head = w;
			if (!a->q_tail)
				a->q_tail = w;
			a->q_len++;
			a->failing = true;
			pthread_mutex_unlock(&a->q_mu);
			break;
		}
		{
			pthread_mutex_lock(&a->q_mu);
			a->failing = false;
			pthread_mutex_unlock(&a->q_mu);
			if (w->k == W_RAISE && u.out.changed && a->m_raised && !strcmp(u.out.action, "raised"))
				metrics_add(a->m_raised, 1);
			notify(a, &u.out);
		}
		free(w);
		done++;
	}
	pthread_mutex_unlock(&a->run_mu);
	return done;
}

/* ---- tick: stale data, silent devices, escalation ------------------------------------------- */

static void tick_state(struct alerts *a, int64_t now)
{
	if (a->o.stale_ms <= 0)
		return;
	for (size_t b = 0; b < ALERTS_BUCKETS; b++) {
		if (!a->bucket[b])   /* racy peek: a bucket filled meanwhile is seen next second */
			continue;
		pthread_mutex_t *mu = &a->stripe[b % ALERTS_STRIPES];
		pthread_mutex_lock(mu);
		for (struct pstate *ps = a->bucket[b]; ps; ps = ps->next) {
			bool device_alive = false;
			for (size_t i = 0; i < ps->ndev; i++) {
				if (now - ps->dev[i].seen_ms < a->o.stale_ms) {
					device_alive = true;
					continue;
				}
				if (!ps->dev[i].silent) {
					char key[ALERTS_KEY_MAX], detail[160];
					snprintf(key, sizeof(key), "device:%s", ps->dev[i].id);
					snprintf(detail, sizeof(detail), "{\"device\":\"%s\"}", ps->dev[i].id);
					if (push(a, W_RAISE, ps, key, "disconnected", "medium", detail, now))
						ps->dev[i].silent = true;
				}
			}
			if (!device_alive)
				continue;   /* a silent device is the alert; not one per parameter as well */
			for (int p = 0; p < VP__COUNT; p++) {
				if (!ps->p[p].have || ps->p[p].stale || now - ps->p[p].seen_ms < a->o.stale_ms)
					continue;
				char key[ALERTS_KEY_MAX], detail[96];
				snprintf(key, sizeof(key), "stale:%s", vitals_param_loinc((enum vitals_param)p));
				snprintf(detail, sizeof(detail), "{\"code\":\"%s\"}", vitals_param_loinc((enum vitals_param)p));
				if (push(a, W_RAISE, ps, key, "stale", "low", detail, now))
					ps->p[p].stale = true;
			}
		}
		pthread_mutex_unlock(mu);
	}
}

struct esc_find {
	int64_t before;
	char ids[ALERTS_ESCALATE_BATCH][ALERTS_ID_MAX];
	size_t n;
};

static int esc_find_unit(struct store_txn *t, void *arg)
{
	struct esc_find *f = arg;
	struct store_arg args[] = {SA_INT(f->before), SA_INT(ALERTS_ESCALATE_BATCH)};
	struct store_rows *rows = NULL;
	int rc = store_query(t, "SELECT id FROM alerts WHERE status = 'open' AND raised_ms <= $1 ORDER BY raised_ms LIMIT $2",
			     args, 2, &rows);
	if (rc)
		return rc;
	while ((rc = store_rows_next(rows)) == 1 && f->n < ALERTS_ESCALATE_BATCH)
		copy_str(f->ids[f->n++], ALERTS_ID_MAX, store_rows_text(rows, 0));
	store_rows_close(rows);
	return rc < 0 ? -rc : MC_OK;
}

struct esc_unit {
	const char *id;
	int64_t now;
	struct change_out out;
};

static int esc_unit_fn(struct store_txn *t, void *arg)
{
	struct esc_unit *u = arg;
	struct change_out *o = &u->out;
	struct store_arg args[] = {SA_TEXT(u->id), SA_INT(u->now)};
	int rc = store_exec(t, "UPDATE alerts SET status = 'escalated', escalation = escalation + 1, updated_ms = $2 "
			       "WHERE id = $1 AND status = 'open'",
			    args, 2);
	if (rc || store_changes(t) != 1)
		return rc;
	struct store_rows *rows = NULL;
	rc = store_query(t, "SELECT patient_id, rule_key, kind, severity, location_id FROM alerts WHERE id = $1", args, 1,
			 &rows);
	if (rc)
		return rc;
	if (store_rows_next(rows) == 1) {
		copy_str(o->patient_id, sizeof(o->patient_id), store_rows_text(rows, 0));
		copy_str(o->rule_key, sizeof(o->rule_key), store_rows_text(rows, 1));
		copy_str(o->kind, sizeof(o->kind), store_rows_text(rows, 2));
		copy_str(o->severity, sizeof(o->severity), store_rows_text(rows, 3));
		copy_str(o->location_id, sizeof(o->location_id), store_rows_text(rows, 4));
	}
	store_rows_close(rows);
	copy_str(o->alert_id, sizeof(o->alert_id), u->id);
	copy_str(o->status, sizeof(o->status), "escalated");
	copy_str(o->action, sizeof(o->action), "escalated");
	o->ts_ms = u->now;
	rc = history(t, u->id, u->now, "escalated", 0, NULL);
	struct alerts_change c;
	change_of(o, &c);
	rc = rc ? rc : audit_system(t, "alert-escalated", &c, 200);
	rc = rc ? rc : emit(t, "vitals.alert.escalated", &c);
	o->changed = rc == MC_OK;
	return rc;
}

static void tick_escalate(struct alerts *a, int64_t now)
{
	if (a->o.escalate_ms <= 0)
		return;
	struct esc_find *f = mc_calloc(1, sizeof(*f));
	f->before = now - a->o.escalate_ms;
	if (store_read(a->o.store, esc_find_unit, f) == MC_OK) {
		for (size_t i = 0; i < f->n; i++) {
			struct esc_unit u = {.id = f->ids[i], .now = now};
			int rc = store_write(a->o.store, esc_unit_fn, &u);
			if (rc)
				LOGE("alerts: escalation not written", "\"code\":\"%s\"", mc_code_name(rc));
			else
				notify(a, &u.out);
		}
	}
	free(f);
}

void alerts_tick(struct alerts *a)
{
	int64_t now = now_ms(a);
	tick_state(a, now);
	alerts_run_pending(a);
	tick_escalate(a, now);
}

static void *alerts_main(void *arg)
{
	struct alerts *a = arg;
	int64_t next_tick = mctime_mono_us() + 1000000;
	pthread_mutex_lock(&a->q_mu);
	while (!a->stop) {
		if (!a->q_head || a->failing) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&a->q_cv, &a->q_mu, &ts);
		}
		pthread_mutex_unlock(&a->q_mu);
		alerts_run_pending(a);
		if (mctime_mono_us() >= next_tick) {
			alerts_tick(a);
			next_tick = mctime_mono_us() + 1000000;
		}
		pthread_mutex_lock(&a->q_mu);
	}
	pthread_mutex_unlock(&a->q_mu);
	return NULL;
}

int alerts_create(const struct alerts_opts *opts, struct alerts **out)
{
	*out = NULL;
	if (!opts || !opts->store)
		return MC_EINVAL;
	struct alerts *a = mc_calloc(1, sizeof(*a));
	a->o = *opts;
	if (!a->o.news2_max_age_ms)
		a->o.news2_max_age_ms = 15 * 60 * 1000;
	if (!a->o.news2_raise)
		a->o.news2_raise = 5;
	if (!a->o.queue_max)
		a->o.queue_max = 65536;
	for (size_t i = 0; i < ALERTS_STRIPES; i++)
		pthread_mutex_init(&a->stripe[i], NULL);
	pthread_rwlock_init(&a->rules_mu, NULL);
	pthread_mutex_init(&a->q_mu, NULL);
	pthread_cond_init(&a->q_cv, NULL);
	pthread_mutex_init(&a->run_mu, NULL);
	a->rules = mc_calloc(ALERTS_RULES_MAX, sizeof(*a->rules));
	a->m_raised = metrics_counter("medcore_alerts_raised_total", "vitals alerts raised", NULL);
	a->m_dropped = metrics_counter("medcore_alerts_dropped_total", "alert work items dropped (queue full)", NULL);
	int rc = store_read(a->o.store, load_unit, a);
	if (rc) {
		alerts_destroy(a);
		return rc;
	}
	if (!a->o.no_thread) {
		if (pthread_create(&a->thread, NULL, alerts_main, a)) {
			alerts_destroy(a);
			return MC_EUNAVAIL;
		}
		a->has_thread = true;
	}
	*out = a;
	return MC_OK;
}

void alerts_destroy(struct alerts *a)
{
	if (!a)
		return;
	if (a->has_thread) {
		pthread_mutex_lock(&a->q_mu);
		a->stop = true;
		pthread_cond_broadcast(&a->q_cv);
		pthread_mutex_unlock(&a->q_mu);
		pthread_join(a->thread, NULL);
	}
	alerts_run_pending(a);
	for (struct work *w = a->q_head; w;) {   /* the store kept failing: logged above */
		struct work *nx = w->next;
		free(w);
		w = nx;
	}
	for (size_t b = 0; b < ALERTS_BUCKETS; b++) {
		struct pstate *p = a->bucket[b];
		while (p) {
			struct pstate *n = p->next;
			free(p);
			p = n;
		}
	}
	for (size_t i = 0; i < ALERTS_STRIPES; i++)
		pthread_mutex_destroy(&a->stripe[i]);
	pthread_rwlock_destroy(&a->rules_mu);
	pthread_mutex_destroy(&a->q_mu);
	pthread_cond_destroy(&a->q_cv);
	pthread_mutex_destroy(&a->run_mu);
	free(a->rules);
	if (g_current == a)
		g_current = NULL;
	free(a);
}

/* ---- staff actions ------------------------------------------------------------------------- */

int alerts_staff_action(struct store_txn *t, const struct auth_principal *who, const char *alert_id,
			bool resolve, const char *note, int64_t now, struct alerts_action_result *out)
{
	memset(out, 0, sizeof(*out));
	if (note && strlen(note) > ALERTS_NOTE_MAX)
		return MC_EINVAL;
	struct store_arg id[] = {SA_TEXT(alert_id)};
	struct store_rows *rows = NULL;
	int rc = store_query(t, "SELECT patient_id, rule_key, kind, severity, status, location_id FROM alerts WHERE id = $1",
			     id, 1, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step != 1) {
		store_rows_close(rows);
		return step < 0 ? -step : MC_ENOTFOUND;
	}
	copy_str(out->alert_id, sizeof(out->alert_id), alert_id);
	copy_str(out->patient_id, sizeof(out->patient_id), store_rows_text(rows, 0));
	copy_str(out->rule_key, sizeof(out->rule_key), store_rows_text(rows, 1));
	copy_str(out->kind, sizeof(out->kind), store_rows_text(rows, 2));
	copy_str(out->severity, sizeof(out->severity), store_rows_text(rows, 3));
	copy_str(out->status, sizeof(out->status), store_rows_text(rows, 4));
	copy_str(out->location_id, sizeof(out->location_id), store_rows_text(rows, 5));
	store_rows_close(rows);
	rc = auth_patient_access(t, who, out->patient_id, AUTH_CLINICAL_WRITE, NULL);
	if (rc)
		return rc;
	bool open = !strcmp(out->status, "open") || !strcmp(out->status, "escalated");
	if (resolve ? !strcmp(out->status, "resolved") : !open)
		return MC_ECONFLICT;
	const char *status = resolve ? "resolved" : "acknowledged";
	struct store_arg up[] = {SA_TEXT(alert_id), SA_TEXT(status), SA_INT(now), SA_INT(who->user_id)};
	rc = store_exec(t,
			resolve ? "UPDATE alerts SET status = $2, updated_ms = $3, resolved_by = $4, resolved_ms = $3 WHERE id = $1"
				: "UPDATE alerts SET status = $2, updated_ms = $3, ack_by = $4, ack_ms = $3 WHERE id = $1",
			up, 4);
	rc = rc ? rc : history(t, alert_id, now, status, who->user_id, note);
	copy_str(out->status, sizeof(out->status), status);
	copy_str(out->action, sizeof(out->action), status);
	out->ts_ms = now;
	struct alerts_change c;
	alerts_result_change(out, &c);
	rc = rc ? rc : emit(t, resolve ? "vitals.alert.resolved" : "vitals.alert.acknowledged", &c);
	return rc;
}

void alerts_result_change(const struct alerts_action_result *r, struct alerts_change *c)
{
	*c = (struct alerts_change){
		.alert_id = r->alert_id,
		.patient_id = r->patient_id,
		.location_id = r->location_id,
		.rule_key = r->rule_key,
		.kind = r->kind,
		.severity = r->severity,
		.status = r->status,
		.action = r->action,
		.ts_ms = r->ts_ms,
	};
}

/* ---- routes -------------------------------------------------------------------------------- */

static void json_free_cb(void *p) { json_decref(p); }

struct action_ctx {
	struct req *r;
	const char *id;
	bool resolve;
	const char *note;
	struct alerts_action_result res;
};

static int action_unit(struct store_txn *t, void *arg)
{
	struct action_ctx *x = arg;
	int rc = alerts_staff_action(t, x->r->who, x->id, x->resolve, x->note, mctime_now_ms(), &x->res);
	if (x->res.patient_id[0])
		x->r->audit.patient_id = arena_strdup(x->r->arena, x->res.patient_id);
	return rc;
}

static json_t *change_json(const struct alerts_change *c)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:I}", "id", c->alert_id, "patientId", c->patient_id, "ruleKey",
			 c->rule_key, "kind", c->kind, "severity", c->severity, "status", c->status, "locationId",
			 c->location_id && *c->location_id ? c->location_id : NULL, "updatedMs", (json_int_t)c->ts_ms);
}

/* Live push hook for staff actions (set by live.c). */
static alerts_change_fn *g_staff_hook;
static void *g_staff_hook_arg;
void alerts_staff_hook_set(alerts_change_fn *fn, void *arg)
{
	g_staff_hook = fn;
	g_staff_hook_arg = arg;
}

static int alert_action(struct req *r, struct reply *rep, bool resolve)
{
	const char *id = req_param(r, "id");
	if (!id || !mcid_valid_fhir_id(id))
		return req_fail(r, MC_ENOTFOUND, "no such alert", NULL, NULL);
	const char *note = NULL;
	if (r->body_len) {
		json_t *j = NULL;
		int rc = req_json(r, &j);
		if (rc)
			return rc;
		if (!json_is_object(j))
			return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
		json_t *n = json_object_get(j, "note");
		if (n && !json_is_string(n))
			return req_fail(r, MC_EINVAL, "note: must be a string", NULL, json_pack("{s:s}", "field", "note"));
		note = n ? json_string_value(n) : NULL;
		if (note && strlen(note) > ALERTS_NOTE_MAX)
			return req_fail(r, MC_EINVAL, "note: too long", NULL, json_pack("{s:s}", "field", "note"));
	}
	r->audit.action = resolve ? "alert-resolve" : "alert-acknowledge";
	r->audit.resource_type = "alert";
	r->audit.resource_id = id;
	struct action_ctx x = {.r = r, .id = id, .resolve = resolve, .note = note};
	int rc = req_write(r, action_unit, &x);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such alert", NULL, NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc == MC_ECONFLICT)
		return req_fail(r, rc, resolve ? "the alert is already resolved" : "the alert is not open", NULL,
				json_pack("{s:s}", "status", x.res.status));
	if (rc)
		return rc;
	struct alerts_change c;
	alerts_result_change(&x.res, &c);
	if (g_staff_hook)
		g_staff_hook(&c, g_staff_hook_arg);
	return reply_api(rep, r, 200, change_json(&c), NULL);
}

static int route_ack(struct req *r, struct reply *rep) { return alert_action(r, rep, false); }
static int route_resolve(struct req *r, struct reply *rep) { return alert_action(r, rep, true); }

struct list_ctx {
	struct req *r;
	const char *ward, *status, *patient;
	int limit;
	json_t *out;
};

static int list_unit(struct store_txn *t, void *arg)
{
	struct list_ctx *x = arg;
	const struct auth_principal *who = x->r->who;
	struct buf q = BUF_INIT;
	struct store_arg args[8];
	size_t n = 0;
	buf_puts(&q, "SELECT id, patient_id, rule_key, kind, severity, status, location_id, detail, raised_ms, updated_ms, "
		     "escalation, active FROM alerts WHERE 1 = 1");
	if (x->ward) {
		args[n++] = SA_TEXT(x->ward);
		buf_printf(&q, " AND location_id = $%zu", n);
	}
	if (x->status) {
		if (!strcmp(x->status, "active")) {
			buf_puts(&q, " AND status IN ('open', 'escalated', 'acknowledged')");
		} else {
			args[n++] = SA_TEXT(x->status);
			buf_printf(&q, " AND status = $%zu", n);
		}
	}
	if (x->patient) {
		args[n++] = SA_TEXT(x->patient);
		buf_printf(&q, " AND patient_id = $%zu", n);
	}
	switch (auth_patient_scope(who, AUTH_CLINICAL_READ)) {
	case AUTH_SCOPE_ALL:
		break;
	case AUTH_SCOPE_NONE:
		buf_release(&q);
		return MC_EFORBIDDEN;
	case AUTH_SCOPE_OWN:
		args[n++] = SA_TEXT(who->patient_id);
		buf_printf(&q, " AND patient_id = $%zu", n);
		break;
	case AUTH_SCOPE_CARE: {
		args[n++] = SA_INT(who->user_id);
		args[n++] = SA_INT(mctime_now_ms());
		buf_puts(&q, " AND ");
		buf_printf(&q, AUTH_CARE_SQL, "patient_id", (int)n - 1, (int)n, "patient_id", (int)n - 1, (int)n);
		break;
	}
	}
	args[n++] = SA_INT(x->limit);
	buf_printf(&q, " ORDER BY raised_ms DESC, id LIMIT $%zu", n);
	struct store_rows *rows = NULL;
	int rc = store_query(t, buf_str(&q), args, n, &rows);
	buf_release(&q);
	if (rc)
		return rc;
	while ((rc = store_rows_next(rows)) == 1) {
		json_t *detail = json_loads(store_rows_text(rows, 7) ? store_rows_text(rows, 7) : "{}", 0, NULL);
		const char *loc = store_rows_text(rows, 6);
		json_array_append_new(
			x->out, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s?,s:o,s:I,s:I,s:I,s:b}", "id", store_rows_text(rows, 0),
					  "patientId", store_rows_text(rows, 1), "ruleKey", store_rows_text(rows, 2), "kind",
					  store_rows_text(rows, 3), "severity", store_rows_text(rows, 4), "status",
					  store_rows_text(rows, 5), "locationId", loc, "detail",
					  detail ? detail : json_object(), "raisedMs", (json_int_t)store_rows_int(rows, 8),
					  "updatedMs", (json_int_t)store_rows_int(rows, 9), "escalation",
					  (json_int_t)store_rows_int(rows, 10), "conditionActive",
					  store_rows_int(rows, 11) != 0));
	}
	store_rows_close(rows);
	return rc < 0 ? -rc : MC_OK;
}

static bool status_valid(const char *s)
{
	return !strcmp(s, "open") || !strcmp(s, "escalated") || !strcmp(s, "acknowledged") || !strcmp(s, "resolved") ||
	       !strcmp(s, "active");
}

static int route_list(struct req *r, struct reply *rep)
{
	struct list_ctx x = {.r = r, .ward = req_query(r, "ward"), .status = req_query(r, "status"),
			     .patient = req_query(r, "patient"), .limit = 100};
	if (x.ward && !mcid_valid_fhir_id(x.ward))
		return req_fail(r, MC_EINVAL, "ward: must be a Location id", NULL, json_pack("{s:s}", "field", "ward"));
	if (x.patient && !mcid_valid_fhir_id(x.patient))
		return req_fail(r, MC_EINVAL, "patient: must be a Patient id", NULL, json_pack("{s:s}", "field", "patient"));
	if (x.status && !status_valid(x.status))
		return req_fail(r, MC_EINVAL, "status: must be open, escalated, acknowledged, resolved or active", NULL,
				json_pack("{s:s}", "field", "status"));
	const char *lim = req_query(r, "limit");
	if (lim) {
		char *end;
		long v = strtol(lim, &end, 10);
		if (*end || v < 1 || v > 1000)
			return req_fail(r, MC_EINVAL, "limit: must be 1..1000", NULL, json_pack("{s:s}", "field", "limit"));
		x.limit = (int)v;
	}
	r->audit.action = "search";
	r->audit.resource_type = "alert";
	r->audit.patient_id = x.patient;
	x.out = json_array();
	arena_defer(r->arena, json_free_cb, x.out);
	int rc = store_read(r->app->store, list_unit, &x);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this role may not read alerts", NULL, NULL);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(x.out), NULL);
}

/* POST /api/v1/alert-rules {code, direction, raiseAt, clearAt, minSeconds, severity, patientId |
 * locationId} */
struct rule_ctx {
	struct req *r;
	struct alerts_rule rule;
};

static int rule_unit(struct store_txn *t, void *arg)
{
	struct rule_ctx *x = arg;
	if (x->rule.patient_id[0]) {
		int rc = auth_patient_access(t, x->r->who, x->rule.patient_id, AUTH_CLINICAL_WRITE, NULL);
		if (rc)
			return rc;
	}
	return alerts_rule_store(t, &x->rule, x->r->who->user_id, mctime_now_ms());
}

static const char *jstr(json_t *j, const char *k)
{
	json_t *v = json_object_get(j, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int route_rule_create(struct req *r, struct reply *rep)
{
	json_t *j = NULL;
	int rc = req_json(r, &j);
	if (rc)
		return rc;
	if (!json_is_object(j))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	struct rule_ctx x = {.r = r};
	struct alerts_rule *ru = &x.rule;
	const char *code = jstr(j, "code"), *dir = jstr(j, "direction"), *sev = jstr(j, "severity");
	const char *pid = jstr(j, "patientId"), *loc = jstr(j, "locationId");
	json_t *ra = json_object_get(j, "raiseAt"), *cl = json_object_get(j, "clearAt"), *ms = json_object_get(j, "minSeconds");
	if (!code || vitals_param_from_loinc(code, &ru->param))
		return req_fail(r, MC_EINVAL, "code: must be a supported LOINC code", NULL, json_pack("{s:s}", "field", "code"));
	if (!dir || (strcmp(dir, "above") && strcmp(dir, "below")))
		return req_fail(r, MC_EINVAL, "direction: must be above or below", NULL,
				json_pack("{s:s}", "field", "direction"));
	if (!mcjson_is_number(ra) || !mcjson_is_number(cl))
		return req_fail(r, MC_EINVAL, "raiseAt and clearAt must be numbers", NULL, NULL);
	if (ms && !json_is_integer(ms))
		return req_fail(r, MC_EINVAL, "minSeconds: must be an integer", NULL, json_pack("{s:s}", "field", "minSeconds"));
	if ((pid && strlen(pid) >= ALERTS_ID_MAX) || (loc && strlen(loc) >= ALERTS_ID_MAX) || (sev && strlen(sev) >= 16))
		return req_fail(r, MC_EINVAL, "patientId, locationId or severity too long", NULL, NULL);
	ru->below = !strcmp(dir, "below");
	ru->raise_at = mcjson_number_value(ra);
	ru->clear_at = mcjson_number_value(cl);
	ru->min_seconds = ms ? (int64_t)json_integer_value(ms) : 0;
	copy_str(ru->severity, sizeof(ru->severity), sev ? sev : "medium");
	copy_str(ru->patient_id, sizeof(ru->patient_id), pid);
	copy_str(ru->location_id, sizeof(ru->location_id), loc);
	const char *why = NULL;
	if (alerts_rule_check(ru, &why))
		return req_fail(r, MC_EINVAL, why, NULL, NULL);
	r->audit.action = "create";
	r->audit.resource_type = "alert-rule";
	r->audit.patient_id = ru->patient_id[0] ? ru->patient_id : NULL;
	rc = req_write(r, rule_unit, &x);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc)
		return rc;
	struct alerts *a = alerts_current();
	if (a && alerts_rule_add(a, ru))
		LOGW("alerts: rule stored but the engine is full", "\"max\":%d", ALERTS_RULES_MAX);
	return reply_api(rep, r, 201,
			 json_pack("{s:s,s:s,s:s,s:f,s:f,s:I,s:s,s:s?,s:s?}", "id", ru->id, "code", code, "direction", dir,
				   "raiseAt", ru->raise_at, "clearAt", ru->clear_at, "minSeconds", (json_int_t)ru->min_seconds,
				   "severity", ru->severity, "patientId", pid, "locationId", loc),
			 NULL);
}

static int route_rule_list(struct req *r, struct reply *rep)
{
	struct alerts *a = alerts_current();
	json_t *out = json_array();
	if (a) {
		pthread_rwlock_rdlock(&a->rules_mu);
		for (size_t i = 0; i < a->nrules; i++) {
			const struct alerts_rule *ru = &a->rules[i];
			json_array_append_new(
				out, json_pack("{s:s,s:s,s:s,s:f,s:f,s:I,s:s,s:s?,s:s?}", "id", ru->id, "code",
					       vitals_param_loinc(ru->param), "direction", ru->below ? "below" : "above",
					       "raiseAt", ru->raise_at, "clearAt", ru->clear_at, "minSeconds",
					       (json_int_t)ru->min_seconds, "severity", ru->severity, "patientId",
					       ru->patient_id[0] ? ru->patient_id : NULL, "locationId",
					       ru->location_id[0] ? ru->location_id : NULL));
		}
		pthread_rwlock_unlock(&a->rules_mu);
	}
	return reply_api(rep, r, 200, out, NULL);
}

/* PUT /api/v1/vitals/patients/{id}/alert-settings {spo2Scale: 1|2, locationId?} */
struct settings_ctx {
	struct req *r;
	const char *pid, *loc;
	bool scale2;
};

static int settings_unit(struct store_txn *t, void *arg)
{
	struct settings_ctx *x = arg;
	int rc = auth_patient_access(t, x->r->who, x->pid, AUTH_CLINICAL_WRITE, NULL);
	return rc ? rc : alerts_patient_settings_store(t, x->pid, x->scale2, x->loc, mctime_now_ms());
}

static int route_settings(struct req *r, struct reply *rep)
{
	const char *pid = req_param(r, "id");
	if (!pid || !mcid_valid_fhir_id(pid))
		return req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
	json_t *j = NULL;
	int rc = req_json(r, &j);
	if (rc)
		return rc;
	if (!json_is_object(j))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	json_t *sc = json_object_get(j, "spo2Scale"), *lo = json_object_get(j, "locationId");
	if (sc && (!json_is_integer(sc) || (json_integer_value(sc) != 1 && json_integer_value(sc) != 2)))
		return req_fail(r, MC_EINVAL, "spo2Scale: must be 1 or 2", NULL, json_pack("{s:s}", "field", "spo2Scale"));
	if (lo && !json_is_null(lo) && (!json_is_string(lo) || !mcid_valid_fhir_id(json_string_value(lo))))
		return req_fail(r, MC_EINVAL, "locationId: must be a Location id or null", NULL,
				json_pack("{s:s}", "field", "locationId"));
	struct settings_ctx x = {.r = r, .pid = pid, .scale2 = sc && json_integer_value(sc) == 2,
				 .loc = json_is_string(lo) ? json_string_value(lo) : NULL};
	r->audit.action = "update";
	r->audit.resource_type = "alert-settings";
	r->audit.resource_id = pid;
	r->audit.patient_id = pid;
	rc = req_write(r, settings_unit, &x);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	if (rc)
		return rc;
	if (alerts_current())
		alerts_patient_settings_apply(alerts_current(), pid, x.scale2, x.loc);
	live_membership_changed();   /* ward subscriptions pick up the new location */
	return reply_api(rep, r, 200, json_pack("{s:s,s:i,s:s?}", "patientId", pid, "spo2Scale", x.scale2 ? 2 : 1,
						"locationId", x.loc),
			 NULL);
}

static const struct route routes[] = {
	{"GET", "/api/v1/alerts", route_list, ROUTE_PHI, "read:patient_data", 0,
	 "List vitals alerts (?ward=&status=&patient=&limit=)"},
	{"POST", "/api/v1/alerts/{id}/acknowledge", route_ack, ROUTE_WRITE | ROUTE_PHI, "write:patient_data", 8192,
	 "Acknowledge an alert {note}"},
	{"POST", "/api/v1/alerts/{id}/resolve", route_resolve, ROUTE_WRITE | ROUTE_PHI, "write:patient_data", 8192,
	 "Resolve an alert {note}"},
	{"GET", "/api/v1/alert-rules", route_rule_list, 0, "read:patient_data", 0, "List threshold alert rules"},
	{"POST", "/api/v1/alert-rules", route_rule_create, ROUTE_WRITE | ROUTE_PHI, "write:patient_data", 4096,
	 "Create a threshold alert rule (patient or ward scope, hysteresis, minimum duration)"},
	{"PUT", "/api/v1/vitals/patients/{id}/alert-settings", route_settings, ROUTE_WRITE | ROUTE_PHI,
	 "write:patient_data", 4096, "Set a patient's SpO2 scale (1 or 2) and ward for alerting"},
};

const struct route_table alerts_routes = {routes, sizeof(routes) / sizeof(routes[0])};
