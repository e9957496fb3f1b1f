/* tests/unit/test_vitals_ingest.c — the ingest scanner, validation, and whole batches against a
 * migrated main database and a vitals store: bindings, device ownership, per-sample errors, the
 * rate limit, sinks, bad input. Includes ingest.c to reach its statics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/modules/vitals/ingest.c"
#include "core/config.h"

/* ---- the scanner ---- */

static int parse(const char *s, struct vitals_raw *r, const char **why)
{
	const char *p = s;
	return vitals_parse_object(&p, s + strlen(s), r, why);
}

static void test_parse_ok(void **state)
{
	(void)state;
	struct vitals_raw r;
	const char *why = NULL;
	assert_int_equal(parse(" { \"device\":\"d1\", \"patient\":\"p-1\",\"code\":\"8867-4\",\"value\":72.5e0,"
			       "\"unit\":\"\\/min\",\"ts\":1700000000123}",
			       &r, &why),
			 MC_OK);
	assert_string_equal(r.device, "d1");
	assert_string_equal(r.patient, "p-1");
	assert_string_equal(r.unit, "/min");
	assert_true(r.value == 72.5);
	assert_int_equal(r.ts_ms, 1700000000123LL);
	assert_int_equal(r.have, F_ALL);
	assert_int_equal(parse("{\"ts\":\"2023-11-14T22:13:20.5Z\"}", &r, &why), MC_OK);
	assert_int_equal(r.ts_ms, 1700000000500LL);
	assert_int_equal(parse("{}", &r, &why), MC_OK);
	assert_int_equal(r.have, 0);
}

static void test_parse_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"[",
		"{",
		"{\"device\":\"d1\"",
		"{\"device\":\"d1\",}",
		"{\"device\":\"d1\" \"code\":\"x\"}",
		"{\"device\":\"d1\",\"device\":\"d2\"}",
		"{\"color\":\"red\"}",
		"{\"value\":01}",
		"{\"value\":1.}",
		"{\"value\":-}",
		"{\"value\":1e}",
		"{\"value\":\"72\"}",
		"{\"value\":NaN}",
		"{\"value\":1e999}",
		"{\"device\":72}",
		"{\"device\":\"a\\u0041\"}",
		"{\"device\":\"a\tb\"}",
		"{\"device\":\"unterminated}",
		"{\"ts\":1.5}",
		"{\"ts\":-1}",
		"{\"ts\":\"2023-11-14\"}",
		"{\"ts\":\"yesterday\"}",
		"{\"patient\":\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
		"{'device':'d1'}",
		"{\"value\":1 /* c */}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vitals_raw r;
		const char *why = NULL;
		if (parse(bad[i], &r, &why) != MC_EINVAL)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(why);
	}
}

/* ---- validation ---- */

static struct vitals_raw raw(const char *code, double v, const char *unit, int64_t ts)
{
	struct vitals_raw r = {.value = v, .ts_ms = ts, .have = F_ALL};
	snprintf(r.device, sizeof(r.device), "d1");
	snprintf(r.patient, sizeof(r.patient), "p1");
	snprintf(r.code, sizeof(r.code), "%s", code);
	snprintf(r.unit, sizeof(r.unit), "%s", unit);
	return r;
}

static void test_validate(void **state)
{
	(void)state;
	int64_t now = 1700000000000LL, ret = 30LL * 86400000;
	struct vitals_sample s;
	const char *code, *why;
	struct vitals_raw r = raw("8310-5", 98.6, "[degF]", now);
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_OK);
	assert_int_equal(s.param, VP_TEMP);
	assert_true(fabs(s.value - 37.0) < 1e-9);
	r = raw("2708-6", 97, "%", now);
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_OK);
	assert_int_equal(s.param, VP_SPO2);
	r = raw("8867-4", 72, "{beats}/min", now - 1000);
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_OK);
	r = raw("67775-7", 2, "{score}", now);
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_OK);

	struct {
		struct vitals_raw r;
		const char *code;
	} bad[] = {
		{raw("1234-5", 1, "/min", now), "UNKNOWN_CODE"},
		{raw("8867-4", 72, "%", now), "BAD_UNIT"},
		{raw("8310-5", 37, "[degF]", now), "OUT_OF_RANGE"},     /* 37 °F */
		{raw("8310-5", 98.6, "Cel", now), "OUT_OF_RANGE"},
		{raw("8867-4", -1, "/min", now), "OUT_OF_RANGE"},
		{raw("59408-5", 101, "%", now), "OUT_OF_RANGE"},
		{raw("67775-7", 1.5, "{score}", now), "OUT_OF_RANGE"},
		{raw("8867-4", 72, "/min", now + 6000), "BAD_TIMESTAMP"},
		{raw("8867-4", 72, "/min", now - ret - 1), "BAD_TIMESTAMP"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(vitals_validate(&bad[i].r, now, ret, &s, &code, &why), MC_EINVAL);
		assert_string_equal(code, bad[i].code);
	}
	r = raw("8867-4", 72, "/min", now);
	r.have &= ~(unsigned)F_UNIT;
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_EINVAL);
	assert_string_equal(code, "MISSING_FIELD");
	r = raw("8867-4", 72, "/min", now);
	snprintf(r.patient, sizeof(r.patient), "p 1");
	assert_int_equal(vitals_validate(&r, now, ret, &s, &code, &why), MC_EINVAL);
	assert_string_equal(code, "INVALID_ID");
}

/* ---- whole batches ---- */

struct fx {
	char dir[64];
	struct store *main;
	struct vstore *vs;
	struct mc_config cfg;
	struct app app;
};

static size_t sunk;
static void sink(const struct vitals_sample *s, size_t n, void *arg)
{
	(void)s;
	(void)arg;
	sunk += n;
}

static int exec_sql(struct store_txn *t, void *arg) { return store_exec(t, arg, NULL, 0); }

static int fx_setup(void **state)
{
	log_min_level = LOG_OFF;
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_vingest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	char url[128];
	snprintf(url, sizeof(url), "sqlite:%s/main.db", f->dir);
	assert_int_equal(store_open(url, &f->main), MC_OK);
	int applied;
	assert_int_equal(store_migrate(f->main, &applied), MC_OK);
	snprintf(url, sizeof(url), "sqlite:%s/main.db-vitals.db", f->dir);
	struct vstore_config vc = {.retention_days = 30};
	assert_int_equal(vstore_open(url, &vc, &f->vs), MC_OK);
	config_defaults(&f->cfg);
	f->cfg.vitals_device_rate = 10;
	f->cfg.vitals_device_burst = 20;
	f->app.cfg = &f->cfg;
	f->app.store = f->main;
	assert_int_equal(vitals_module_start_with(&f->app, f->vs), MC_OK);
	static const char *const sql[] = {
		"INSERT INTO users(id, username, password_hash, role, active, created_ms) VALUES(77, 'mon1', 'x', 'device', 1, 0)",
		"INSERT INTO users(id, username, password_hash, role, active, created_ms) VALUES(78, 'mon2', 'x', 'device', 1, 0)",
		"INSERT INTO vitals_device(device_id, identifier, patient_id, user_id, created_ms) VALUES('d1', 'S1', 'p1', 77, 0)",
		"INSERT INTO vitals_device(device_id, identifier, patient_id, user_id, created_ms) VALUES('d2', 'S2', 'p2', 78, 0)",
		"INSERT INTO vitals_device(device_id, identifier, patient_id, created_ms) VALUES('d3', 'S3', NULL, 0)",
	};
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
		assert_int_equal(store_write(f->main, exec_sql, (void *)sql[i]), MC_OK);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	vitals_module_stop();
	vstore_close(f->vs);
	store_close(f->main);
	config_release(&f->cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct auth_principal who(enum auth_role role, int64_t uid)
{
	struct auth_principal p = {.user_id = uid, .role = role, .perms = auth_role_perms(role)};
	snprintf(p.username, sizeof(p.username), "u%lld", (long long)uid);
	return p;
}

static char *line(char *out, size_t n, const char *dev, const char *pat, const char *code, double v, const char *unit,
		  int64_t ts)
{
	snprintf(out, n, "{\"device\":\"%s\",\"patient\":\"%s\",\"code\":\"%s\",\"value\":%g,\"unit\":\"%s\",\"ts\":%lld}",
		 dev, pat, code, v, unit, (long long)ts);
	return out;
}

static json_t *err_at(json_t *rep, size_t i) { return json_array_get(json_object_get(rep, "errors"), i); }

static void test_batch_mixed(void **state)
{
	(void)state;
	int64_t now = mctime_now_ms();
	char l[6][256], body[2048];
	line(l[0], 256, "d1", "p1", "8867-4", 72, "/min", now);
	line(l[1], 256, "d1", "p2", "8867-4", 72, "/min", now);       /* d1 is bound to p1 */
	line(l[2], 256, "d3", "p1", "8867-4", 72, "/min", now);       /* unbound */
	line(l[3], 256, "d1", "p1", "8867-4", 72, "%", now);          /* wrong unit */
	line(l[4], 256, "d1", "p1", "8310-5", 100.4, "[degF]", now);  /* converted */
	snprintf(body, sizeof(body), "%s\n%s\n\n%s\n{\"device\":\"d1\",\n%s\n%s\n", l[0], l[1], l[2], l[3], l[4]);
	struct auth_principal p = who(ROLE_INTEGRATION, 5);
	json_t *rep = NULL;
	sunk = 0;
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), true, &rep), MC_OK);
	assert_int_equal(json_integer_value(json_object_get(rep, "accepted")), 2);
	assert_int_equal(json_integer_value(json_object_get(rep, "rejected")), 4);
	assert_int_equal(json_integer_value(json_object_get(err_at(rep, 0), "index")), 1);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 0), "code")), "DEVICE_NOT_BOUND");
	assert_int_equal(json_integer_value(json_object_get(err_at(rep, 1), "index")), 2);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 2), "code")), "INVALID_JSON");
	assert_int_equal(json_integer_value(json_object_get(err_at(rep, 2), "index")), 3);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 3), "code")), "BAD_UNIT");
	json_decref(rep);
	assert_int_equal(sunk, 2);
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(vitals_g.vs, "p1", VP_TEMP, now - 1000, now + 1000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 1);
	assert_true(fabs(pts[0].value - 38.0) < 1e-4);
	free(pts);
}

static void test_batch_json_array(void **state)
{
	(void)state;
	int64_t now = mctime_now_ms();
	char a[256], b[256], body[1024];
	line(a, 256, "d2", "p2", "9279-1", 18, "/min", now);
	line(b, 256, "d2", "p2", "59408-5", 94, "%", now);
	snprintf(body, sizeof(body), " [ %s ,\n %s ] ", a, b);
	struct auth_principal p = who(ROLE_INTEGRATION, 5);
	json_t *rep = NULL;
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), false, &rep), MC_OK);
	assert_int_equal(json_integer_value(json_object_get(rep, "accepted")), 2);
	json_decref(rep);
	/* malformed arrays fail as a whole, nothing stored */
	static const char *const bad[] = {"", "{}", "[", "[{}", "[{},]", "[] x", "[{\"x\":1}]", "[1]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rep = (json_t *)1;
		int rc = vitals_ingest_batch(&p, bad[i], strlen(bad[i]), false, &rep);
		if (rc != MC_EINVAL)
			fail_msg("'%s' gave %d", bad[i], rc);
		assert_null(rep);
	}
	/* an empty array and a blank NDJSON body are empty batches */
	assert_int_equal(vitals_ingest_batch(&p, "[]", 2, false, &rep), MC_EINVAL);
	assert_int_equal(vitals_ingest_batch(&p, "\n\n", 2, true, &rep), MC_EINVAL);
}

static void test_device_principal(void **state)
{
	(void)state;
	int64_t now = mctime_now_ms();
	char a[256], b[256], body[1024];
	line(a, 256, "d1", "p1", "8867-4", 70, "/min", now);
	line(b, 256, "d2", "p2", "8867-4", 70, "/min", now);   /* another device's stream */
	snprintf(body, sizeof(body), "%s\n%s\n", a, b);
	struct auth_principal p = who(ROLE_DEVICE, 77);
	json_t *rep = NULL;
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), true, &rep), MC_OK);
	assert_int_equal(json_integer_value(json_object_get(rep, "accepted")), 1);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 0), "code")), "NOT_YOUR_DEVICE");
	json_decref(rep);
	/* a device user linked to no device posts nothing */
	struct auth_principal q = who(ROLE_DEVICE, 999);
	assert_int_equal(vitals_ingest_batch(&q, a, strlen(a), true, &rep), MC_EUNPROC);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 0), "code")), "NOT_YOUR_DEVICE");
	json_decref(rep);
	/* rebinding is seen after the cache is told */
	assert_int_equal(store_write(vitals_g.app->store, exec_sql,
				     (void *)"UPDATE vitals_device SET patient_id = 'p9' WHERE device_id = 'd1'"),
			 MC_OK);
	vitals_binding_forget("d1");
	assert_int_equal(vitals_ingest_batch(&p, a, strlen(a), true, &rep), MC_EUNPROC);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 0), "code")), "DEVICE_NOT_BOUND");
	json_decref(rep);
	/* clinicians need the patient in their care */
	line(a, 256, "d2", "p2", "8867-4", 70, "/min", now);
	struct auth_principal n = who(ROLE_NURSE, 55);
	assert_int_equal(vitals_ingest_batch(&n, a, strlen(a), true, &rep), MC_EUNPROC);
	assert_string_equal(json_string_value(json_object_get(err_at(rep, 0), "code")), "FORBIDDEN");
	json_decref(rep);
}

static void test_rate_limit(void **state)
{
	(void)state;
	int64_t now = mctime_now_ms();
	char body[8192], l[256];
	size_t off = 0;
	for (int i = 0; i < 15; i++) {
		line(l, sizeof(l), "d2", "p2", "8867-4", 70, "/min", now - i);
		off += (size_t)snprintf(body + off, sizeof(body) - off, "%s\n", l);
	}
	struct auth_principal p = who(ROLE_INTEGRATION, 5);
	json_t *rep = NULL;
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), true, &rep), MC_OK);   /* burst 20 */
	json_decref(rep);
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), true, &rep), MC_ERATE);  /* 5 left */
	assert_null(rep);
	/* nothing of the refused batch was stored */
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(vitals_g.vs, "p2", VP_HR, now - 100, now, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 15);
	free(pts);
	usleep(1100 * 1000);   /* 10/s refills 11 */
	assert_int_equal(vitals_ingest_batch(&p, body, strlen(body), true, &rep), MC_OK);
	json_decref(rep);
}

static void test_not_started(void **state)
{
	(void)state;
	struct auth_principal p = who(ROLE_INTEGRATION, 5);
	json_t *rep = NULL;
	assert_int_equal(vitals_ingest_batch(&p, "[]", 2, false, &rep), MC_EUNAVAIL);
	assert_int_equal(vitals_sink_add(NULL, NULL), MC_EINVAL);
}

int main(void)
{
	assert_int_equal(vitals_sink_add(sink, NULL), MC_OK);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_validate),
		cmocka_unit_test(test_not_started),
		cmocka_unit_test_setup_teardown(test_batch_mixed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_batch_json_array, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_device_principal, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_rate_limit, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
