/* tests/unit/test_alerts.c — the alerting engine (modules/vitals/alerts.h) on a real temporary
 * SQLite store with an injected clock and no thread: threshold hysteresis, minimum duration (a
 * single artefact never pages), de-duplication, NEWS2 raise/severity/clear and SpO2 scale 2,
 * stale-data and disconnected-device alerts, escalation, staff acknowledge/resolve with their
 * transitions, history rows, audit records and events, and a full queue that drops instead of
 * blocking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/metrics.h"
#include "modules/vitals/alerts.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char url[128];
	struct store *s;
	struct alerts *a;
	int64_t now;
	int changes;
	char last_action[32], last_status[32], last_id[ALERTS_ID_MAX], last_severity[16], last_key[ALERTS_KEY_MAX];
};

static int64_t clock_fn(void *arg) { return ((struct fx *)arg)->now; }

static void on_change(const struct alerts_change *c, void *arg)
{
	struct fx *f = arg;
	f->changes++;
	snprintf(f->last_action, sizeof(f->last_action), "%s", c->action);
	snprintf(f->last_status, sizeof(f->last_status), "%s", c->status);
	snprintf(f->last_id, sizeof(f->last_id), "%s", c->alert_id);
	snprintf(f->last_severity, sizeof(f->last_severity), "%s", c->severity);
	snprintf(f->last_key, sizeof(f->last_key), "%s", c->rule_key);
}

static int open_engine(struct fx *f, size_t queue_max)
{
	struct alerts_opts o = {
		.store = f->s,
		.escalate_ms = 60000,
		.stale_ms = 30000,
		.clock_ms = clock_fn,
		.clock_arg = f,
		.on_change = on_change,
		.change_arg = f,
		.no_thread = true,
		.queue_max = queue_max,
	};
	return alerts_create(&o, &f->a);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_alerts.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	if (store_open(f->url, &f->s) != MC_OK || store_migrate(f->s, NULL) != MC_OK)
		return -1;
	f->now = 1700000000000;
	if (open_engine(f, 0))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	alerts_destroy(f->a);
	store_close(f->s);
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/t.db%s", f->dir, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	metrics_free_all();
	return 0;
}

static void sample(struct fx *f, const char *pid, const char *dev, enum vitals_param p, double v)
{
	struct vitals_sample s = {.param = p, .value = v, .ts_ms = f->now};
	snprintf(s.patient_id, sizeof(s.patient_id), "%s", pid);
	snprintf(s.device_id, sizeof(s.device_id), "%s", dev);
	alerts_sink(&s, 1, f->a);
}

struct q1 {
	const char *sql;
	const char *arg;
	int64_t v;
};

static int q1_unit(struct store_txn *t, void *arg)
{
	struct q1 *q = arg;
	struct store_arg a[] = {SA_TEXT(q->arg)};
	return store_query_int(t, q->sql, a, q->arg ? 1 : 0, &q->v);
}

static int64_t q1(struct fx *f, const char *sql, const char *arg)
{
	struct q1 q = {.sql = sql, .arg = arg};
	assert_int_equal(store_read(f->s, q1_unit, &q), MC_OK);
	return q.v;
}

static int64_t open_alerts(struct fx *f, const char *pid)
{
	return q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND status <> 'resolved'", pid);
}

static void add_rule(struct fx *f, const char *id, enum vitals_param p, bool below, double raise, double clear,
		     int64_t min_s, const char *pid, const char *loc)
{
	struct alerts_rule r = {.param = p, .below = below, .raise_at = raise, .clear_at = clear, .min_seconds = min_s};
	snprintf(r.id, sizeof(r.id), "%s", id);
	snprintf(r.severity, sizeof(r.severity), "high");
	snprintf(r.patient_id, sizeof(r.patient_id), "%s", pid ? pid : "");
	snprintf(r.location_id, sizeof(r.location_id), "%s", loc ? loc : "");
	const char *why = NULL;
	assert_int_equal(alerts_rule_check(&r, &why), MC_OK);
	assert_int_equal(alerts_rule_add(f->a, &r), MC_OK);
}

static void threshold_hysteresis_and_min_duration(void **state)
{
	struct fx *f = *state;
	add_rule(f, "hr-high", VP_HR, false, 130, 120, 10, "p1", NULL);
	/* a single artefact: one high sample, then a normal one -> nothing */
	sample(f, "p1", "d1", VP_HR, 180);
	f->now += 1000;
	sample(f, "p1", "d1", VP_HR, 80);
	f->now += 20000;
	sample(f, "p1", "d1", VP_HR, 80);
	assert_int_equal(alerts_run_pending(f->a), 0);
	assert_int_equal(open_alerts(f, "p1"), 0);
	/* high for less than 10 s: nothing */
	sample(f, "p1", "d1", VP_HR, 140);
	f->now += 5000;
	sample(f, "p1", "d1", VP_HR, 141);
	assert_int_equal(alerts_run_pending(f->a), 0);
	/* still high at 10 s: raised once */
	f->now += 5000;
	sample(f, "p1", "d1", VP_HR, 142);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_int_equal(open_alerts(f, "p1"), 1);
	assert_string_equal(f->last_action, "raised");
	assert_string_equal(f->last_key, "rule:hr-high");
	/* hysteresis: 125 is below the raise level but above clear (120): still raised, no change */
	f->now += 1000;
	sample(f, "p1", "d1", VP_HR, 125);
	assert_int_equal(alerts_run_pending(f->a), 0);
	assert_int_equal(q1(f, "SELECT active FROM alerts WHERE patient_id = $1", "p1"), 1);
	/* 119 clears the condition (the alert stays open for staff) */
	f->now += 1000;
	sample(f, "p1", "d1", VP_HR, 119);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_action, "condition-cleared");
	assert_int_equal(q1(f, "SELECT active FROM alerts WHERE patient_id = $1", "p1"), 0);
	/* re-raise while still open: de-duplicated into the same alert ("retriggered") */
	for (int i = 0; i <= 10; i++) {
		sample(f, "p1", "d1", VP_HR, 150);
		f->now += 1000;
	}
	alerts_run_pending(f->a);
	assert_string_equal(f->last_action, "retriggered");
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1", "p1"), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alert_events WHERE alert_id = (SELECT id FROM alerts WHERE "
			       "patient_id = $1)", "p1"), 3);
	/* the rule is patient-scoped: p2 never alerts */
	for (int i = 0; i <= 11; i++) {
		sample(f, "p2", "d2", VP_HR, 150);
		f->now += 1000;
	}
	assert_int_equal(alerts_run_pending(f->a), 0);
	/* audit + event for the raise */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM audit WHERE action = 'alert-raised' AND patient_id = $1", "p1"), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM outbox WHERE name = $1", "vitals.alert.raised"), 1);
}

static void below_rule_and_ward_scope(void **state)
{
	struct fx *f = *state;
	add_rule(f, "spo2-low", VP_SPO2, true, 88, 92, 0, NULL, "ward-a");
	alerts_patient_settings_apply(f->a, "p3", false, "ward-a");
	char loc[ALERTS_ID_MAX];
	alerts_patient_location(f->a, "p3", loc);
	assert_string_equal(loc, "ward-a");
	sample(f, "p4", "d4", VP_SPO2, 80);   /* not in the ward */
	assert_int_equal(alerts_run_pending(f->a), 0);
	sample(f, "p3", "d3", VP_SPO2, 88);   /* min 0: the first sample raises */
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE location_id = $1", "ward-a"), 1);
	sample(f, "p3", "d3", VP_SPO2, 91);   /* inside the hysteresis band */
	assert_int_equal(alerts_run_pending(f->a), 0);
	sample(f, "p3", "d3", VP_SPO2, 93);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_action, "condition-cleared");
}

static void rule_check_rejects(void **state)
{
	(void)state;
	struct alerts_rule r = {.param = VP_HR, .raise_at = 100, .clear_at = 110};
	snprintf(r.severity, sizeof(r.severity), "high");
	const char *why = NULL;
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);   /* clear above raise for "above" */
	assert_non_null(why);
	r.clear_at = 90;
	assert_int_equal(alerts_rule_check(&r, &why), MC_OK);
	r.below = true;
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);
	r.below = false;
	snprintf(r.severity, sizeof(r.severity), "urgent");
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);
	snprintf(r.severity, sizeof(r.severity), "low");
	r.min_seconds = -1;
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);
	r.min_seconds = 0;
	snprintf(r.patient_id, sizeof(r.patient_id), "p");
	snprintf(r.location_id, sizeof(r.location_id), "l");
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);
	r.location_id[0] = '\0';
	r.param = VP__COUNT;
	assert_int_equal(alerts_rule_check(&r, &why), MC_EINVAL);
}

static void normal_obs(struct fx *f, const char *pid)
{
	sample(f, pid, "m1", VP_RR, 16);
	sample(f, pid, "m1", VP_SPO2, 97);
	sample(f, pid, "m1", VP_SYS, 120);
	sample(f, pid, "m1", VP_HR, 70);
	sample(f, pid, "m1", VP_TEMP, 37.0);
	sample(f, pid, "m1", VP_ACVPU, 0);
	sample(f, pid, "m1", VP_O2, 0);
}

static void news2_raise_severity_clear(void **state)
{
	struct fx *f = *state;
	normal_obs(f, "n1");
	assert_int_equal(alerts_run_pending(f->a), 0);
	/* deteriorate: RR 22 (2) + HR 115 (2) + temp 38.5 (1) = 5 -> medium */
	sample(f, "n1", "m1", VP_RR, 22);
	sample(f, "n1", "m1", VP_HR, 115);
	assert_int_equal(alerts_run_pending(f->a), 0);   /* 4: low */
	sample(f, "n1", "m1", VP_TEMP, 38.5);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_key, "news2");
	assert_string_equal(f->last_severity, "medium");
	/* worse: SBP 95 (2) -> 7 high: same alert, severity updated */
	sample(f, "n1", "m1", VP_SYS, 95);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_action, "severity");
	assert_string_equal(f->last_severity, "high");
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1", "n1"), 1);
	/* improve to 4 (hysteresis: clear needs <= 3) -> still raised */
	sample(f, "n1", "m1", VP_SYS, 120);
	sample(f, "n1", "m1", VP_TEMP, 37.0);
	alerts_run_pending(f->a);
	assert_int_equal(q1(f, "SELECT active FROM alerts WHERE patient_id = $1", "n1"), 1);
	sample(f, "n1", "m1", VP_HR, 70);   /* 2 */
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_action, "condition-cleared");
	/* a single 3 (new confusion) with total 3 raises again: low-medium, into the same open alert */
	sample(f, "n1", "m1", VP_RR, 16);
	sample(f, "n1", "m1", VP_ACVPU, 1);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_severity, "low-medium");
	/* values older than 15 minutes do not count: only fresh RR/SpO2/SBP/HR... */
	f->now += 16 * 60 * 1000;
	sample(f, "n1", "m1", VP_HR, 70);   /* the rest are stale: NEWS2 not computed, nothing changes */
	assert_int_equal(alerts_run_pending(f->a), 0);
}

static void news2_scale2(void **state)
{
	struct fx *f = *state;
	alerts_patient_settings_apply(f->a, "c1", true, NULL);
	normal_obs(f, "c1");
	sample(f, "c1", "m1", VP_SPO2, 90);   /* scale 2: 0 points (scale 1 would be 3) */
	assert_int_equal(alerts_run_pending(f->a), 0);
	sample(f, "c1", "m1", VP_O2, 2);      /* oxygen: 2 points; 90 % still 0 on scale 2 */
	assert_int_equal(alerts_run_pending(f->a), 0);
	sample(f, "c1", "m1", VP_SPO2, 97);   /* >= 97 on oxygen: 3 -> a single 3 */
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_key, "news2");
	assert_string_equal(f->last_severity, "medium");   /* 2 + 3 = 5 */
}

static void stale_and_disconnected(void **state)
{
	struct fx *f = *state;
	sample(f, "s1", "m1", VP_HR, 70);
	sample(f, "s1", "m1", VP_TEMP, 37);
	f->now += 20000;
	sample(f, "s1", "m1", VP_HR, 71);   /* temp stops arriving; HR continues */
	f->now += 15000;
	alerts_tick(f->a);                  /* temp 35 s old, device alive (HR 15 s ago) */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'stale'", "s1"), 1);
	assert_string_equal(f->last_key, "stale:8310-5");
	sample(f, "s1", "m1", VP_TEMP, 37);
	alerts_run_pending(f->a);
	assert_string_equal(f->last_action, "condition-cleared");
	/* the device goes silent: one disconnected alert, not one per parameter */
	f->now += 31000;
	alerts_tick(f->a);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'disconnected'", "s1"), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'stale'", "s1"), 1);
	f->now += 5000;
	alerts_tick(f->a);   /* no duplicate */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'disconnected'", "s1"), 1);
	sample(f, "s1", "m1", VP_HR, 70);
	alerts_run_pending(f->a);
	assert_string_equal(f->last_action, "condition-cleared");
	assert_string_equal(f->last_key, "device:m1");
}

static int exec_unit(struct store_txn *t, void *arg) { return store_exec(t, arg, NULL, 0); }

/* A device bound before the engine starts and never heard from is reported disconnected (seeded
 * from vitals_device); one bound at run time too; unbinding clears the alert's condition and stops
 * tracking it. */
static void bound_devices_seeded(void **state)
{
	struct fx *f = *state;
	assert_int_equal(store_write(f->s, exec_unit,
				     "INSERT INTO vitals_device(device_id, identifier, patient_id, created_ms) "
				     "VALUES('quiet1', 'Q1', 'b1', 0)"),
			 MC_OK);
	assert_int_equal(store_write(f->s, exec_unit,
				     "INSERT INTO vitals_device(device_id, identifier, patient_id, created_ms) "
				     "VALUES('spare', 'Q2', NULL, 0)"),
			 MC_OK);
	alerts_destroy(f->a);   /* restart: the engine reads the bindings */
	assert_int_equal(open_engine(f, 0), MC_OK);
	alerts_device_bound(f->a, "quiet2", "b2");   /* bound while running */
	alerts_device_bound(NULL, "x", "y");          /* no engine: ignored */
	f->now += 10000;
	alerts_tick(f->a);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE kind = $1", "disconnected"), 0);   /* grace */
	f->now += 25000;
	alerts_tick(f->a);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'disconnected'", "b1"), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'disconnected'", "b2"), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE kind = $1", "disconnected"), 2);   /* not 'spare' */
	alerts_device_unbound(f->a, "quiet1", "b1");
	alerts_run_pending(f->a);
	assert_string_equal(f->last_action, "condition-cleared");
	assert_string_equal(f->last_key, "device:quiet1");
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE rule_key = $1 AND active = 1", "device:quiet1"), 0);
	alerts_device_unbound(f->a, "nope", "b1");   /* unknown: nothing */
	alerts_device_unbound(f->a, "quiet1", "nobody");
	f->now += 60000;
	alerts_tick(f->a);   /* quiet1 is no longer tracked: no new alert */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE rule_key = $1", "device:quiet1"), 1);
}

struct act {
	struct auth_principal who;
	const char *id;
	bool resolve;
	int64_t now;
	struct alerts_action_result res;
};

static int act_unit(struct store_txn *t, void *arg)
{
	struct act *x = arg;
	return alerts_staff_action(t, &x->who, x->id, x->resolve, "seen", x->now, &x->res);
}

static int staff(struct fx *f, const char *id, bool resolve, enum auth_role role)
{
	struct act x = {.id = id, .resolve = resolve, .now = f->now};
	x.who.user_id = 7;
	x.who.role = role;
	x.who.perms = auth_role_perms(role);
	snprintf(x.who.username, sizeof(x.who.username), "u");
	return store_write(f->s, act_unit, &x);
}

static void escalation_ack_resolve(void **state)
{
	struct fx *f = *state;
	add_rule(f, "rr", VP_RR, false, 30, 25, 0, NULL, NULL);
	sample(f, "e1", "m1", VP_RR, 35);
	assert_int_equal(alerts_run_pending(f->a), 1);
	char id[ALERTS_ID_MAX];
	snprintf(id, sizeof(id), "%s", f->last_id);
	f->now += 59000;
	alerts_tick(f->a);
	assert_string_equal(f->last_action, "raised");   /* not yet */
	f->now += 2000;
	alerts_tick(f->a);
	assert_string_equal(f->last_action, "escalated");
	assert_int_equal(q1(f, "SELECT escalation FROM alerts WHERE id = $1", id), 1);
	f->now += 120000;
	alerts_tick(f->a);   /* escalates once only */
	assert_int_equal(q1(f, "SELECT escalation FROM alerts WHERE id = $1", id), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM audit WHERE action = 'alert-escalated' AND resource_id = $1", id), 1);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM outbox WHERE name = 'vitals.alert.escalated' AND payload LIKE '%' || $1 || '%'", id), 1);
	/* meanwhile the silent device raised its own alert, which escalates on its own schedule */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alerts WHERE patient_id = $1 AND kind = 'disconnected'", "e1"), 1);

	/* admins have no clinical access; unknown ids are 404; the integration account may act */
	assert_int_equal(staff(f, id, false, ROLE_ADMIN), MC_EFORBIDDEN);
	assert_int_equal(staff(f, "nope", false, ROLE_INTEGRATION), MC_ENOTFOUND);
	assert_int_equal(staff(f, id, true, ROLE_INTEGRATION) == MC_OK ? 0 : 1, 0);   /* resolve from escalated */
	assert_int_equal(staff(f, id, true, ROLE_INTEGRATION), MC_ECONFLICT);         /* already resolved */
	assert_int_equal(staff(f, id, false, ROLE_INTEGRATION), MC_ECONFLICT);        /* ack of resolved */
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM outbox WHERE name = $1", "vitals.alert.resolved"), 1);

	/* a new raise after resolution opens a new alert; acknowledge it, then resolve */
	sample(f, "e1", "m1", VP_RR, 20);
	sample(f, "e1", "m1", VP_RR, 40);
	alerts_run_pending(f->a);
	assert_string_equal(f->last_action, "raised");
	assert_string_not_equal(f->last_id, id);
	snprintf(id, sizeof(id), "%s", f->last_id);
	assert_int_equal(staff(f, id, false, ROLE_INTEGRATION), MC_OK);
	assert_int_equal(staff(f, id, false, ROLE_INTEGRATION), MC_ECONFLICT);
	f->now += 600000;
	alerts_tick(f->a);   /* acknowledged alerts do not escalate */
	assert_int_equal(q1(f, "SELECT escalation FROM alerts WHERE id = $1", id), 0);
	assert_int_equal(staff(f, id, true, ROLE_INTEGRATION), MC_OK);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alert_events WHERE alert_id = $1", id), 3);
	assert_int_equal(q1(f, "SELECT COUNT(*) FROM alert_events WHERE alert_id = $1 AND note = 'seen'", id), 2);
}

static int rule_store_unit(struct store_txn *t, void *arg)
{
	struct alerts_rule *r = arg;
	int rc = alerts_rule_store(t, r, 1, 1);
	return rc ? rc : alerts_patient_settings_store(t, "k1", false, "icu", 1);
}

static void rules_and_settings_persist(void **state)
{
	struct fx *f = *state;
	struct alerts_rule r = {.param = VP_SYS, .below = true, .raise_at = 90, .clear_at = 100};
	snprintf(r.severity, sizeof(r.severity), "high");
	snprintf(r.location_id, sizeof(r.location_id), "icu");
	/* stored through a unit, then a new engine loads rule and settings */
	assert_int_equal(store_write(f->s, rule_store_unit, &r), MC_OK);
	alerts_destroy(f->a);
	assert_int_equal(open_engine(f, 0), MC_OK);
	char loc[ALERTS_ID_MAX];
	alerts_patient_location(f->a, "k1", loc);
	assert_string_equal(loc, "icu");
	sample(f, "k1", "m1", VP_SYS, 85);
	assert_int_equal(alerts_run_pending(f->a), 1);
	assert_string_equal(f->last_severity, "high");
}

static void full_queue_drops(void **state)
{
	struct fx *f = *state;
	alerts_destroy(f->a);
	assert_int_equal(open_engine(f, 2), MC_OK);
	add_rule(f, "hr", VP_HR, false, 100, 90, 0, NULL, NULL);
	for (int i = 0; i < 5; i++) {
		char pid[16];
		snprintf(pid, sizeof(pid), "q%d", i);
		sample(f, pid, "m", VP_HR, 150);
	}
	assert_int_equal(alerts_dropped(f->a), 3);
	assert_int_equal(alerts_run_pending(f->a), 2);
}

static void bad_samples_ignored(void **state)
{
	struct fx *f = *state;
	add_rule(f, "hr", VP_HR, false, 100, 90, 0, NULL, NULL);
	struct vitals_sample s[3] = {{.param = VP_HR, .value = 150}, {.param = VP__COUNT, .value = 150},
				     {.param = VP_HR, .value = 0.0 / 0.0}};
	snprintf(s[1].patient_id, sizeof(s[1].patient_id), "x");
	snprintf(s[2].patient_id, sizeof(s[2].patient_id), "x");
	alerts_sink(s, 3, f->a);   /* no patient id, bad param, NaN */
	assert_int_equal(alerts_run_pending(f->a), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(threshold_hysteresis_and_min_duration, setup, teardown),
		cmocka_unit_test_setup_teardown(below_rule_and_ward_scope, setup, teardown),
		cmocka_unit_test(rule_check_rejects),
		cmocka_unit_test_setup_teardown(news2_raise_severity_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(news2_scale2, setup, teardown),
		cmocka_unit_test_setup_teardown(stale_and_disconnected, setup, teardown),
		cmocka_unit_test_setup_teardown(bound_devices_seeded, setup, teardown),
		cmocka_unit_test_setup_teardown(escalation_ack_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(rules_and_settings_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(full_queue_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_samples_ignored, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
