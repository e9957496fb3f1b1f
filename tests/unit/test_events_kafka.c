/* tests/unit/test_events_kafka.c — the outbox→Kafka bridge and the Kafka worker loop (events/kafka.h)
 * against librdkafka's in-process mock cluster (3 brokers), with a real SQLite store:
 *   - publish N events, consume them all, in order per key;
 *   - brokers down mid-stream: the bridge's checkpoint stops, nothing is lost; after recovery every
 *     event is delivered and none is applied twice to an idempotent consumer's effect;
 *   - bridge throughput (printed).
 * The mock cluster keeps only ~5 MB per partition, so volumes stay small (DESIGN §7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "events/events.h"
#include "events/kafka.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char url[128];
	struct store *s;
	rd_kafka_t *mrk;                /* owns the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	const char *brokers;
};

static int unit_mk(struct store_txn *t, void *arg)
{
	(void)arg;
	/* The idempotent effect: one row per seq (INSERT OR IGNORE semantics via ON CONFLICT) plus a
	 * count of how many times it was newly applied; order checks use last_seq per key. */
	int rc = store_exec(t, "CREATE TABLE applied (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, applied_n INTEGER NOT NULL)",
			    NULL, 0);
	return rc ? rc : store_exec(t, "CREATE TABLE last_per_key (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, bad INTEGER NOT NULL DEFAULT 0)", NULL, 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_events_kafka.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	if (store_open(f->url, &f->s) != MC_OK || store_migrate(f->s, NULL) != MC_OK ||
	    store_write(f->s, unit_mk, NULL) != MC_OK)
		return -1;
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
	f->mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!f->mrk)
		return -1;
	f->mc = rd_kafka_mock_cluster_new(f->mrk, 3);
	if (!f->mc)
		return -1;
	rd_kafka_mock_topic_create(f->mc, EVENTS_TOPIC, 4, 3);
	f->brokers = rd_kafka_mock_cluster_bootstraps(f->mc);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->mrk);
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[160];
		snprintf(p, sizeof(p), "%s/t.db%s", f->dir, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

struct emit_n {
	int from, n, keys;
};

static int unit_emit_n(struct store_txn *t, void *arg)
{
	struct emit_n *e = arg;
	for (int i = e->from; i < e->from + e->n; i++) {
		char pid[32];
		snprintf(pid, sizeof(pid), "patient-%d", i % e->keys);
		json_t *pl = json_object();
		json_object_set_new(pl, "i", json_integer(i));
		int rc = events_emit(t, "test.event", pid, NULL, NULL, pl);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static void emit_n(struct store *s, int from, int n, int keys)
{
	for (int done = 0; done < n; done += 1000) {
		struct emit_n e = {from + done, n - done < 1000 ? n - done : 1000, keys};
		assert_int_equal(store_write(s, unit_emit_n, &e), MC_OK);
	}
}

static int64_t count_sql(struct store *s, const char *sql);

struct cnt {
	const char *sql;
	int64_t n;
};

static int unit_count(struct store_txn *t, void *arg)
{
	struct cnt *c = arg;
	return store_query_int(t, c->sql, NULL, 0, &c->n);
}

static int64_t count_sql(struct store *s, const char *sql)
{
	struct cnt c = {sql, -1};
	assert_int_equal(store_read(s, unit_count, &c), MC_OK);
	return c.n;
}

static _Atomic long g_calls;

/* The worker-side consumer: applies each event at most once (keyed by seq) and flags a key whose
 * first-time applications go backwards in seq (an ordering violation). */
static int apply_fn(const struct events_event *ev, void *arg)
{
	(void)arg;
	g_calls++;
	struct store_arg a[] = {SA_INT(ev->seq), SA_TEXT(ev->key)};
	int rc = store_exec(ev->txn, "INSERT INTO applied (seq, key, applied_n) VALUES ($1, $2, 1) "
				     "ON CONFLICT (seq) DO NOTHING", a, 2);
	if (rc || store_changes(ev->txn) == 0)
		return rc;   /* already applied: nothing to do (idempotent) */
	return store_exec(ev->txn,
			  "INSERT INTO last_per_key (key, seq) VALUES ($2, $1) ON CONFLICT (key) DO UPDATE SET "
			  "bad = bad + (CASE WHEN excluded.seq < last_per_key.seq THEN 1 ELSE 0 END), "
			  "seq = MAX(seq, excluded.seq)",
			  a, 2);
}

static const struct events_consumer apply_consumer = {.name = "applier", .fn = apply_fn, .flags = EVENTS_TXN};

static const char *const fast_conf[] = {"topic.metadata.refresh.interval.ms", "1000", NULL};
static const char *const consumer_conf[] = {"session.timeout.ms", "6000", "heartbeat.interval.ms", "500",
					    "topic.metadata.refresh.interval.ms", "1000", NULL};

struct worker {
	struct fx *f;
	atomic_bool stop;
	int rc;
	pthread_t th;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->rc = events_kafka_consume(w->f->s, w->f->brokers, &apply_consumer, consumer_conf, &w->stop);
	return NULL;
}

static void wait_applied(struct store *s, int64_t want, int64_t timeout_ms)
{
	int64_t until = mctime_now_ms() + timeout_ms;
	while (count_sql(s, "SELECT COUNT(*) FROM applied") < want && mctime_now_ms() < until)
		usleep(50000);
}

static void test_publish_consume_in_order(void **state)
{
	struct fx *f = *state;
	enum { N = 3000 };
	emit_n(f->s, 0, N, 17);
	struct events_bridge *b;
	assert_int_equal(events_bridge_create(f->brokers, fast_conf, &b), MC_OK);
	int64_t n = 0, ck = 0;
	assert_int_equal(events_catch_up(f->s, events_bridge_consumer(b), &n), MC_OK);
	assert_int_equal(n, N);
	assert_int_equal(events_checkpoint(f->s, "kafka_bridge", &ck), MC_OK);
	assert_int_equal(ck, N);

	struct worker w = {.f = f};
	assert_int_equal(pthread_create(&w.th, NULL, worker_main, &w), 0);
	wait_applied(f->s, N, 60000);
	atomic_store(&w.stop, true);
	pthread_join(w.th, NULL);
	assert_int_equal(w.rc, MC_OK);
	assert_int_equal(count_sql(f->s, "SELECT COUNT(*) FROM applied"), N);
	assert_int_equal(count_sql(f->s, "SELECT COALESCE(SUM(bad), 0) FROM last_per_key"), 0);   /* in order per key */
	assert_int_equal(count_sql(f->s, "SELECT COUNT(*) FROM last_per_key"), 17);
	events_bridge_free(b);
	/* Bad configuration fails closed. */
	assert_int_equal(events_bridge_create("", NULL, &b), MC_EINVAL);
	static const char *const bad[] = {"no.such.property", "1", NULL};
	assert_int_equal(events_bridge_create(f->brokers, bad, &b), MC_EINVAL);
}

static void test_broker_down_mid_stream(void **state)
{
	struct fx *f = *state;
	static const char *const short_timeout[] = {"message.timeout.ms", "1500", "topic.metadata.refresh.interval.ms",
						    "500", "reconnect.backoff.max.ms", "200", NULL};
	struct events_bridge *b;
	assert_int_equal(events_bridge_create(f->brokers, short_timeout, &b), MC_OK);
	const struct events_consumer *list[] = {events_bridge_consumer(b)};
	struct events_dispatcher *d;
	assert_int_equal(events_dispatcher_start(f->s, list, 1, &d), MC_OK);
	g_calls = 0;
	struct worker w = {.f = f};
	assert_int_equal(pthread_create(&w.th, NULL, worker_main, &w), 0);

	emit_n(f->s, 0, 500, 11);
	assert_int_equal(events_dispatcher_wait(d, 500, 30000), MC_OK);
	/* Every broker goes down; events keep coming; the bridge cannot deliver them. */
	assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
	emit_n(f->s, 500, 700, 11);
	usleep(2500 * 1000);   /* longer than message.timeout.ms: delivery reports fail */
	int64_t ck;
	assert_int_equal(events_checkpoint(f->s, "kafka_bridge", &ck), MC_OK);
	assert_true(ck < 1200);   /* the outbox keeps what Kafka did not acknowledge */
	assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
	emit_n(f->s, 1200, 300, 11);
	assert_int_equal(events_dispatcher_wait(d, 1500, 60000), MC_OK);
	wait_applied(f->s, 1500, 60000);
	atomic_store(&w.stop, true);
	pthread_join(w.th, NULL);
	events_dispatcher_stop(d);
	events_bridge_free(b);
	printf("# broker down/up: bridge checkpoint was %lld of 1200 while down; consumer calls %ld for 1500 events\n",
	       (long long)ck, (long)g_calls);
	assert_int_equal(count_sql(f->s, "SELECT COUNT(*) FROM applied"), 1500);               /* every event */
	assert_int_equal(count_sql(f->s, "SELECT COUNT(*) FROM applied WHERE applied_n <> 1"), 0);   /* once */
	assert_int_equal(count_sql(f->s, "SELECT MIN(seq) FROM applied"), 1);
	assert_int_equal(count_sql(f->s, "SELECT MAX(seq) FROM applied"), 1500);
	assert_int_equal(count_sql(f->s, "SELECT COALESCE(SUM(bad), 0) FROM last_per_key"), 0);
}

static void test_bridge_throughput(void **state)
{
	struct fx *f = *state;
	enum { N = 30000 };
	emit_n(f->s, 0, N, 1000);
	struct events_bridge *b;
	assert_int_equal(events_bridge_create(f->brokers, fast_conf, &b), MC_OK);
	int64_t t0 = mctime_mono_us(), n = 0;
	assert_int_equal(events_catch_up(f->s, events_bridge_consumer(b), &n), MC_OK);
	double s = (double)(mctime_mono_us() - t0) / 1e6;
	assert_int_equal(n, N);
	printf("# bridge throughput to the mock cluster: %d events in %.3f s = %.0f events/s (outbox read, envelope, "
	       "idempotent produce, delivery reports, checkpoint)\n",
	       N, s, N / s);
	events_bridge_free(b);
}

static void test_consume_bad_args(void **state)
{
	struct fx *f = *state;
	atomic_bool stop = true;
	assert_int_equal(events_kafka_consume(f->s, "", &apply_consumer, NULL, &stop), MC_EINVAL);
	struct events_consumer bad = apply_consumer;
	bad.name = "Bad Name";
	assert_int_equal(events_kafka_consume(f->s, f->brokers, &bad, NULL, &stop), MC_EINVAL);
}

int main(void)
{
	log_min_level = LOG_OFF;     /* broker-down periods log connection errors by design */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_consume_bad_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish_consume_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broker_down_mid_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_throughput, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
