/* tests/unit/test_vitals_kafka.c — Kafka `patient-vitals` ingest (vitals_kafka_start, vkafka.c)
 * against librdkafka's in-process mock cluster (3 brokers, 4 partitions), a migrated main database
 * (device bindings) and a real vitals store:
 *   - N samples produced (NDJSON batches, single objects, a JSON array) arrive in the store exactly
 *     once and reach the sinks; invalid samples and malformed messages are skipped without
 *     blocking their partition;
 *   - every broker down mid-stream, then up: nothing lost, nothing stored twice; then a consumer
 *     restarted under a group with no committed offsets at all (the worst redelivery) stores
 *     nothing again, because the positions stored with the samples are the truth;
 *   - bad configuration, start before the module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "http/app.h"
#include "modules/vitals/vitals_module.h"
#include "modules/vitals/vstore.h"
#include "store/store.h"

#define NPAT 5

struct fx {
	char dir[64];
	struct store *main;
	struct vstore *vs;
	struct mc_config cfg;
	struct app app;
	rd_kafka_t *mrk;
	rd_kafka_mock_cluster_t *mc;
	const char *brokers;
	rd_kafka_t *prod;
	int64_t t0;
};

static _Atomic uint64_t sunk;
static bool sink_added;

static void count_sink(const struct vitals_sample *s, size_t n, void *arg)
{
	(void)s;
	(void)arg;
	sunk += n;
}

static int exec_sql(struct store_txn *t, void *arg) { return store_exec(t, arg, NULL, 0); }

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_vkafka.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:%s/main.db", f->dir);
	int applied;
	if (store_open(url, &f->main) || store_migrate(f->main, &applied))
		return -1;
	snprintf(url, sizeof(url), "sqlite:%s/main.db-vitals.db", f->dir);
	struct vstore_config vc = {.retention_days = 30};
	if (vstore_open(url, &vc, &f->vs))
		return -1;
	config_defaults(&f->cfg);
	f->app.cfg = &f->cfg;
	f->app.store = f->main;
	if (vitals_module_start_with(&f->app, f->vs))
		return -1;
	for (int i = 0; i < NPAT; i++) {
		char sql[256];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO vitals_device(device_id, identifier, patient_id, created_ms) VALUES('dev%d', 'K%d', 'pat%d', 0)",
			 i, i, i);
		if (store_write(f->main, exec_sql, sql))
			return -1;
	}
	if (store_write(f->main, exec_sql,
			"INSERT INTO vitals_device(device_id, identifier, patient_id, created_ms) VALUES('loose', 'KL', NULL, 0)"))
		return -1;
	if (!sink_added) {
		vitals_sink_add(count_sink, NULL);
		sink_added = true;
	}
	sunk = 0;
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	f->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!f->mrk)
		return -1;
	f->mc = rd_kafka_mock_cluster_new(f->mrk, 3);
	if (!f->mc)
		return -1;
	rd_kafka_mock_topic_create(f->mc, VITALS_TOPIC, 4, 3);
	f->brokers = rd_kafka_mock_cluster_bootstraps(f->mc);
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", f->brokers, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
	rd_kafka_conf_set(conf, "linger.ms", "2", err, sizeof(err));
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	f->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!f->prod)
		return -1;
	f->t0 = mctime_now_ms() - 600000;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vitals_kafka_stop();
	vitals_module_stop();
	rd_kafka_flush(f->prod, 5000);
	rd_kafka_destroy(f->prod);
	vstore_close(f->vs);
	store_close(f->main);
	config_release(&f->cfg);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->mrk);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

/* Sample number i: patient i % NPAT, heart rate, a distinct timestamp. */
static int sample_line(char *out, size_t n, const struct fx *f, int i, const char *device_override)
{
	char dev[16];
	snprintf(dev, sizeof(dev), "dev%d", i % NPAT);
	return snprintf(out, n, "{\"device\":\"%s\",\"patient\":\"pat%d\",\"code\":\"8867-4\",\"value\":%d,\"unit\":\"/min\",\"ts\":%lld}\n",
			device_override ? device_override : dev, i % NPAT, 60 + i % 50, (long long)(f->t0 + i));
}

static void produce(struct fx *f, const char *key, const char *val, size_t len)
{
	rd_kafka_resp_err_t err;
	do {
		err = rd_kafka_producev(f->prod, RD_KAFKA_V_TOPIC(VITALS_TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
					RD_KAFKA_V_VALUE((void *)val, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(f->prod, 10);
	} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
	assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Samples [from, from + n) in NDJSON messages of per samples, keyed by device: one message per
 * device and chunk, so every message names one device. */
static void produce_range(struct fx *f, int from, int n, int per)
{
	for (int d = 0; d < NPAT; d++) {
		char key[16];
		snprintf(key, sizeof(key), "dev%d", d);
		char body[16384];
		size_t len = 0;
		int in = 0;
		for (int i = from; i < from + n; i++) {
			if (i % NPAT != d)
				continue;
			len += (size_t)sample_line(body + len, sizeof(body) - len, f, i, NULL);
			if (++in == per) {
				produce(f, key, body, len);
				len = 0;
				in = 0;
			}
		}
		if (len)
			produce(f, key, body, len);
	}
	rd_kafka_poll(f->prod, 0);
}

/* Points stored for all patients (heart rate) and whether any (patient, ts) appears twice. */
static size_t stored(struct fx *f, bool *dup)
{
	size_t total = 0;
	*dup = false;
	for (int p = 0; p < NPAT; p++) {
		char pid[16];
		snprintf(pid, sizeof(pid), "pat%d", p);
		struct vstore_point *pts = NULL;
		size_t n = 0;
		assert_int_equal(vstore_range(f->vs, pid, VP_HR, f->t0 - 1, f->t0 + 10000000, 0, &pts, &n), MC_OK);
		for (size_t i = 1; i < n; i++)
			if (pts[i].ts_ms == pts[i - 1].ts_ms)
				*dup = true;
		total += n;
		free(pts);
	}
	return total;
}

static size_t wait_stored(struct fx *f, size_t want, int64_t timeout_ms, bool *dup)
{
	int64_t until = mctime_now_ms() + timeout_ms;
	size_t n;
	while ((n = stored(f, dup)) < want && mctime_now_ms() < until)
		usleep(50000);
	return n;
}

static const char *const fast[] = {"session.timeout.ms", "6000", "heartbeat.interval.ms", "500",
				   "topic.metadata.refresh.interval.ms", "1000", "reconnect.backoff.max.ms", "200",
				   "log_level", "0", NULL};

static void test_exactly_once_and_bad_messages(void **state)
{
	struct fx *f = *state;
	enum { N = 2000 };
	produce_range(f, 0, N, 37);
	/* one sample object spread over lines; a JSON array of two */
	char one[512], arr[1024], a1[256], a2[256];
	int k = N;
	snprintf(one, sizeof(one),
		 "{\n  \"device\": \"dev0\",\n  \"patient\": \"pat0\",\n  \"code\": \"8867-4\",\n  \"value\": 61,\n"
		 "  \"unit\": \"/min\",\n  \"ts\": %lld\n}\n",
		 (long long)(f->t0 + k));
	produce(f, "dev0", one, strlen(one));
	sample_line(a1, sizeof(a1), f, k + NPAT, NULL);
	sample_line(a2, sizeof(a2), f, k + 2 * NPAT, NULL);
	snprintf(arr, sizeof(arr), "[%.*s,\n%.*s]", (int)strlen(a1) - 1, a1, (int)strlen(a2) - 1, a2);
	produce(f, "dev0", arr, strlen(arr));
	/* bad: not JSON; a key that is not a device id; another device's sample under this key; a
	 * device not bound; an invalid value — none of them blocks what follows */
	produce(f, "dev1", "this is not json", 16);
	char bad[512];
	int bl = sample_line(bad, sizeof(bad), f, 1, NULL);
	produce(f, "not a device!", bad, (size_t)bl);
	bl = sample_line(bad, sizeof(bad), f, 2, "dev1");   /* patient pat2 under key dev1 */
	produce(f, "dev1", bad, (size_t)bl);
	bl = sample_line(bad, sizeof(bad), f, 3, "loose");
	produce(f, "loose", bad, (size_t)bl);
	produce(f, "dev4", "{\"device\":\"dev4\",\"patient\":\"pat4\",\"code\":\"8867-4\",\"value\":999,\"unit\":\"/min\",\"ts\":1}",
		strlen("{\"device\":\"dev4\",\"patient\":\"pat4\",\"code\":\"8867-4\",\"value\":999,\"unit\":\"/min\",\"ts\":1}"));
	produce_range(f, N + 100, 100, 10);   /* after the bad ones, same partitions */
	assert_int_equal(rd_kafka_flush(f->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);

	assert_int_equal(vitals_kafka_start(f->brokers, fast), MC_OK);
	assert_int_equal(vitals_kafka_start(f->brokers, fast), MC_OK);   /* already running */
	size_t want = N + 3 + 100;
	bool dup;
	size_t got = wait_stored(f, want, 30000, &dup);
	usleep(500000);   /* nothing more must come */
	got = stored(f, &dup);
	vitals_kafka_stop();
	struct vitals_kafka_stats st;
	vitals_kafka_stats(&st);
	printf("# kafka ingest: %zu stored of %zu; messages %llu, rejected samples %llu, skipped messages %llu, "
	       "batches %llu\n",
	       got, want, (unsigned long long)st.messages, (unsigned long long)st.rejected,
	       (unsigned long long)st.skipped, (unsigned long long)st.batches);
	assert_int_equal(got, want);
	assert_false(dup);
	assert_int_equal(sunk, want);
	assert_int_equal(st.samples, want);
	assert_int_equal(st.rejected, 4);   /* the not-JSON line, mismatch, not bound, out of range */
	assert_int_equal(st.skipped, 1);    /* the bad key */
	vitals_kafka_stop();                /* idempotent */

	/* Restart under a group that never committed anything: Kafka redelivers every message from
	 * the start; the stored positions make the consumer skip them all. */
	static const char *const fresh_group[] = {"session.timeout.ms", "6000", "heartbeat.interval.ms", "500",
						  "log_level", "0", "group.id", "medcore-vitals-other", NULL};
	assert_int_equal(vitals_kafka_start(f->brokers, fresh_group), MC_OK);
	produce_range(f, N + 300, 50, 10);   /* and something new */
	rd_kafka_flush(f->prod, 10000);
	got = wait_stored(f, want + 50, 30000, &dup);
	usleep(500000);
	got = stored(f, &dup);
	vitals_kafka_stop();
	assert_int_equal(got, want + 50);
	assert_false(dup);
	int64_t next = -1, sum = 0;
	for (int32_t p = 0; p < 4; p++)
		if (vstore_srcpos_get(f->vs, VITALS_TOPIC, p, &next) == MC_OK)
			sum += next;
	assert_int_equal(sum, (int64_t)st.messages + 5 /* the second run's */);
	assert_int_equal(vstore_srcpos_get(f->vs, "no-such-topic", 0, &next), MC_ENOTFOUND);
}

static void test_broker_down_mid_stream(void **state)
{
	struct fx *f = *state;
	assert_int_equal(vitals_kafka_start(f->brokers, fast), MC_OK);
	produce_range(f, 0, 1000, 20);
	rd_kafka_flush(f->prod, 10000);
	bool dup;
	assert_int_equal(wait_stored(f, 1000, 30000, &dup), 1000);
	/* every broker goes down; the producer keeps buffering; the consumer's commits fail */
	assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
	produce_range(f, 1000, 1000, 20);
	usleep(1500000);
	size_t during = stored(f, &dup);
	/* the consumer is restarted while the brokers are down: its last commits are lost */
	vitals_kafka_stop();
	assert_int_equal(vitals_kafka_start(f->brokers, fast), MC_OK);
	assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
	produce_range(f, 2000, 500, 20);
	assert_int_equal(rd_kafka_flush(f->prod, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
	size_t got = wait_stored(f, 2500, 60000, &dup);
	usleep(500000);
	got = stored(f, &dup);
	vitals_kafka_stop();
	struct vitals_kafka_stats st;
	vitals_kafka_stats(&st);
	printf("# broker down/up: %zu stored while down, %zu of 2500 after; redelivered-and-skipped %llu\n", during, got,
	       (unsigned long long)st.redelivered);
	assert_int_equal(got, 2500);
	assert_false(dup);
}

static void test_bad_config(void **state)
{
	struct fx *f = *state;
	assert_int_equal(vitals_kafka_start("", NULL), MC_EINVAL);
	assert_int_equal(vitals_kafka_start(NULL, NULL), MC_EINVAL);
	static const char *const bad[] = {"no.such.property", "1", NULL};
	assert_int_equal(vitals_kafka_start(f->brokers, bad), MC_EINVAL);
	vitals_module_stop();
	assert_int_equal(vitals_kafka_start(f->brokers, fast), MC_EUNAVAIL);   /* module not started */
	vitals_kafka_stop();
	/* vstore_append_at's argument checks */
	struct vstore_srcpos p = {.partition = 0, .next_offset = 1};
	assert_int_equal(vstore_append_at(f->vs, NULL, 0, &p, 1), MC_EINVAL);   /* empty source name */
	assert_int_equal(vstore_append_at(f->vs, NULL, 0, NULL, 0), MC_EINVAL);
	snprintf(p.source, sizeof(p.source), "t");
	p.next_offset = -1;
	assert_int_equal(vstore_append_at(f->vs, NULL, 0, &p, 1), MC_EINVAL);
	p.next_offset = 7;
	assert_int_equal(vstore_append_at(f->vs, NULL, 0, &p, 1), MC_OK);
	p.next_offset = 3;   /* never backwards */
	assert_int_equal(vstore_append_at(f->vs, NULL, 0, &p, 1), MC_OK);
	int64_t next = 0;
	assert_int_equal(vstore_srcpos_get(f->vs, "t", 0, &next), MC_OK);
	assert_int_equal(next, 7);
}

int main(void)
{
	log_min_level = LOG_OFF;   /* broker-down periods and bad messages log by design */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exactly_once_and_bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_down_mid_stream, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
