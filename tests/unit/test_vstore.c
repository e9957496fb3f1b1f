/* tests/unit/test_vstore.c — the time-chunked vitals store: codec, append/range/rollup, memory vs
 * stored parts, sealing, late samples, log replay after a "crash" (close without checkpoint),
 * retention, and bad input. Includes vstore.c to reach its statics. */
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

#include "../../src/modules/vitals/vstore.c"

struct fx {
	char dir[64], url[128];
	struct vstore *v;
};

static const struct vstore_config CFG = {.retention_days = 30, .checkpoint_ms = 0, .background = false};

static int fx_setup(void **state)
{
	log_min_level = LOG_OFF;
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_vstore.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "sqlite:%s/v.db", f->dir);
	assert_int_equal(vstore_open(f->url, &CFG, &f->v), MC_OK);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	vstore_close(f->v);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct vitals_sample S(const char *pat, enum vitals_param p, int64_t ts, double v)
{
	struct vitals_sample s = {.param = p, .value = v, .ts_ms = ts};
	snprintf(s.patient_id, sizeof(s.patient_id), "%s", pat);
	snprintf(s.device_id, sizeof(s.device_id), "dev1");
	return s;
}

/* A base time at a minute boundary near now (retention counts from now). */
static int64_t base_ms(void) { return (mctime_now_ms() / 60000 - 120) * 60000; }

static void test_codec(void **state)
{
	(void)state;
	uint8_t b[64];
	size_t n = vstore_codec_put(b, 1000, 1500, 72.5f);
	n += vstore_codec_put(b + n, 1500, 1400, 36.8f);   /* backwards in time */
	struct vstore_point p[2];
	assert_int_equal(vstore_codec_decode(b, n, 1000, 2, p), MC_OK);
	assert_int_equal(p[0].ts_ms, 1500);
	assert_int_equal(p[1].ts_ms, 1400);
	assert_true(fabs(p[0].value - 72.5) < 1e-6);
	assert_true(fabs(p[1].value - 36.8) < 1e-5);
	assert_int_equal(vstore_codec_decode(b, n - 1, 1000, 2, p), MC_EINVAL);   /* truncated */
	assert_int_equal(vstore_codec_decode(b, n, 1000, 1, p), MC_EINVAL);       /* trailing bytes */
	uint8_t bad[12];
	memset(bad, 0xff, sizeof(bad));
	assert_int_equal(vstore_codec_decode(bad, sizeof(bad), 0, 1, p), MC_EINVAL);
}

static void test_append_range_rollup(void **state)
{
	struct fx *f = *state;
	int64_t t0 = base_ms();
	/* 3 minutes of 1 Hz heart rate for p1, one temp sample for p2 */
	struct vitals_sample s[181];
	for (int i = 0; i < 180; i++)
		s[i] = S("p1", VP_HR, t0 + i * 1000, 60 + (i % 60));
	s[180] = S("p2", VP_TEMP, t0 + 5000, 37.2);
	assert_int_equal(vstore_append(f->v, s, 181), MC_OK);

	struct vstore_point *pts;
	size_t n;
	/* from memory (no checkpoint yet) */
	assert_int_equal(vstore_range(f->v, "p1", VP_HR, t0 + 10000, t0 + 69000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 60);
	assert_int_equal(pts[0].ts_ms, t0 + 10000);
	assert_int_equal(pts[59].ts_ms, t0 + 69000);
	assert_true(fabs(pts[0].value - 70) < 1e-6);
	free(pts);
	/* another patient and another parameter do not leak in */
	assert_int_equal(vstore_range(f->v, "p1", VP_TEMP, t0, t0 + 600000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 0);
	assert_null(pts);

	/* checkpoint: the same answers from the database */
	assert_int_equal(vstore_checkpoint(f->v), MC_OK);
	struct vstore_stats st;
	vstore_stats(f->v, &st);
	assert_int_equal(st.parts_in_memory, 0);   /* minutes long over: evicted */
	assert_true(st.parts_written >= 4);
	assert_int_equal(vstore_range(f->v, "p1", VP_HR, t0, t0 + 179999, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 180);
	for (size_t i = 1; i < n; i++)
		assert_true(pts[i - 1].ts_ms < pts[i].ts_ms);
	free(pts);
	/* limit */
	assert_int_equal(vstore_range(f->v, "p1", VP_HR, t0, t0 + 179999, 100, &pts, &n), MC_ETOOBIG);

	struct vstore_bucket *b;
	assert_int_equal(vstore_rollup(f->v, "p1", VP_HR, t0, t0 + 180000, 60000, 0, &b, &n), MC_OK);
	assert_int_equal(n, 3);
	assert_int_equal(b[0].t0_ms, t0);
	assert_int_equal(b[0].count, 60);
	assert_true(fabs(b[0].min - 60) < 1e-9 && fabs(b[0].max - 119) < 1e-9);
	assert_true(fabs(b[0].mean - 89.5) < 1e-9);
	free(b);
	assert_int_equal(vstore_rollup(f->v, "p1", VP_HR, t0 - 3600000, t0 + 3600000, 3600000, 0, &b, &n), MC_OK);
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += b[i].count;
	assert_int_equal(total, 180);
	free(b);
	assert_int_equal(vstore_rollup(f->v, "p1", VP_HR, t0, t0 + 1, 1000, 0, &b, &n), MC_EINVAL);
}

static void test_late_and_sealed(void **state)
{
	struct fx *f = *state;
	int64_t t0 = base_ms();
	struct vitals_sample *s = calloc(VSTORE_PART_MAX + 10, sizeof(*s));
	for (int i = 0; i < VSTORE_PART_MAX + 10; i++)   /* > one part in one minute: sealed, new part */
		s[i] = S("p1", VP_SPO2, t0 + i * 50, 95);
	assert_int_equal(vstore_append(f->v, s, VSTORE_PART_MAX + 10), MC_OK);
	assert_int_equal(vstore_checkpoint(f->v), MC_OK);
	/* a late sample for that minute after it was written and evicted: a new part */
	struct vitals_sample late = S("p1", VP_SPO2, t0 + 59999, 91);
	assert_int_equal(vstore_append(f->v, &late, 1), MC_OK);
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(f->v, "p1", VP_SPO2, t0, t0 + 59999, 0, &pts, &n), MC_OK);
	assert_int_equal(n, VSTORE_PART_MAX + 10 + 1);
	assert_int_equal(pts[n - 1].ts_ms, t0 + 59999);
	free(pts);
	assert_int_equal(vstore_checkpoint(f->v), MC_OK);
	int64_t parts = 0;
	struct store_arg a[1] = {SA_TEXT("p1")};
	(void)a;
	struct vstore_bucket *b;
	assert_int_equal(vstore_rollup(f->v, "p1", VP_SPO2, t0, t0, 60000, 0, &b, &n), MC_OK);
	assert_int_equal(n, 1);
	assert_int_equal(b[0].count, VSTORE_PART_MAX + 11);
	assert_true(fabs(b[0].min - 91) < 1e-9);
	free(b);
	(void)parts;
	free(s);
}

/* Close without the final checkpoint (as kill -9 would): the log brings everything back, once. */
static void test_replay(void **state)
{
	struct fx *f = *state;
	int64_t t0 = base_ms();
	struct vitals_sample s[3] = {S("p1", VP_RR, t0, 14), S("p1", VP_RR, t0 + 1000, 15), S("p9", VP_SYS, t0, 120)};
	assert_int_equal(vstore_append(f->v, s, 2), MC_OK);
	assert_int_equal(vstore_checkpoint(f->v), MC_OK);
	assert_int_equal(vstore_append(f->v, s + 2, 1), MC_OK);
	struct vitals_sample more = S("p1", VP_RR, t0 + 2000, 16);   /* same minute as a stored part */
	assert_int_equal(vstore_append(f->v, &more, 1), MC_OK);
	/* simulate a crash: drop memory without checkpointing */
	f->v->nparts = 0;
	for (size_t b = 0; b < f->v->nbuckets; b++)
		for (struct series *se = f->v->buckets[b]; se; se = se->next) {
			for (size_t i = 0; i < se->nparts; i++)
				part_free(se->parts[i]);
			se->nparts = 0;
		}
	vstore_close(f->v);
	assert_int_equal(vstore_open(f->url, &CFG, &f->v), MC_OK);
	struct vstore_stats st;
	vstore_stats(f->v, &st);
	assert_int_equal(st.replayed, 2);
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(f->v, "p1", VP_RR, t0, t0 + 60000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 3);
	assert_int_equal(pts[2].ts_ms, t0 + 2000);
	free(pts);
	assert_int_equal(vstore_range(f->v, "p9", VP_SYS, t0, t0 + 60000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 1);
	free(pts);
	/* a clean close and reopen replays nothing */
	vstore_close(f->v);
	assert_int_equal(vstore_open(f->url, &CFG, &f->v), MC_OK);
	vstore_stats(f->v, &st);
	assert_int_equal(st.replayed, 0);
	assert_int_equal(vstore_range(f->v, "p1", VP_RR, t0, t0 + 60000, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 3);
	free(pts);
}

static void test_retention(void **state)
{
	struct fx *f = *state;
	int64_t t0 = base_ms();
	struct vitals_sample s = S("p1", VP_HR, t0, 70);
	assert_int_equal(vstore_append(f->v, &s, 1), MC_OK);
	assert_int_equal(vstore_checkpoint(f->v), MC_OK);
	int64_t del = -1;
	assert_int_equal(vstore_retention_run(f->v, mctime_now_ms(), &del), MC_OK);
	assert_int_equal(del, 0);
	assert_int_equal(vstore_retention_run(f->v, t0 + 31LL * 86400000, &del), MC_OK);
	assert_int_equal(del, 1);
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(f->v, "p1", VP_HR, t0 - 1, t0 + 1, 0, &pts, &n), MC_OK);
	assert_int_equal(n, 0);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;
	struct vitals_sample s = S("p1", VP_HR, base_ms(), 70);
	assert_int_equal(vstore_append(f->v, &s, 0), MC_EINVAL);
	assert_int_equal(vstore_append(f->v, NULL, 1), MC_EINVAL);
	s.param = VP__COUNT;
	assert_int_equal(vstore_append(f->v, &s, 1), MC_EINVAL);
	s = S("bad id!", VP_HR, base_ms(), 70);
	assert_int_equal(vstore_append(f->v, &s, 1), MC_EINVAL);
	struct vstore_point *pts;
	size_t n;
	assert_int_equal(vstore_range(f->v, "p1", VP_HR, 10, 5, 0, &pts, &n), MC_EINVAL);
	/* corrupt log records are rejected by the decoder */
	struct vitals_sample *out;
	uint8_t junk[5] = {5, 200, 1, 2, 3};
	assert_int_equal(log_decode(junk, sizeof(junk), &out, &n), MC_EINVAL);
	struct vstore *v2;
	struct vstore_config bad = CFG;
	bad.retention_days = 0;
	assert_int_equal(vstore_open(f->url, &bad, &v2), MC_EINVAL);
}

static void test_log_roundtrip(void **state)
{
	(void)state;
	struct vitals_sample s[4] = {S("a", VP_HR, 1000, 60), S("b", VP_HR, 900, 61), S("a", VP_O2, 2000, 2),
				     S("c", VP_ACVPU, 5, 1)};
	struct logrec r = {0};
	log_encode(s, 4, &r);
	struct vitals_sample *o;
	size_t n;
	assert_int_equal(log_decode(r.p, r.len, &o, &n), MC_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(o[i].patient_id, s[i].patient_id);
		assert_int_equal(o[i].param, s[i].param);
		assert_int_equal(o[i].ts_ms, s[i].ts_ms);
		assert_true(fabs(o[i].value - s[i].value) < 1e-6);
	}
	free(o);
	assert_int_equal(log_decode(r.p, r.len - 1, &o, &n), MC_EINVAL);
	free(r.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_log_roundtrip),
		cmocka_unit_test_setup_teardown(test_append_range_rollup, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_late_and_sealed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_replay, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_retention, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
