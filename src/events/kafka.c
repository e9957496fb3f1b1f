/* events/kafka.c — the outbox→Kafka bridge and the Kafka worker loop (events/kafka.h).
 *
 * Delivery reports are matched to the batch that produced them by an opaque of
 * (batch generation << 32 | index): a report for a message of an older batch (one that timed out of
 * its flush) is ignored, since that batch's outcome was already decided — the events are
 * republished, which consumers absorb.
 */
#include "events/kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "store/store.h"

#define BRIDGE_FLUSH_MS 30000          /* a batch waits at most this for its delivery reports */
#define BRIDGE_MSG_TIMEOUT_MS "15000"  /* message.timeout.ms: a report (error) comes by then */

struct events_bridge {
	struct events_consumer consumer;
	char *brokers;
	const char *const *extra;
	rd_kafka_t *rk;
	uint32_t gen;           /* batch generation */
	int *status;            /* per event of the current batch: 1 pending, 0 delivered, <0 error */
	size_t status_cap, pending;
};

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		struct buf b = BUF_INIT;
		buf_json_str(&b, err);
		LOGE("events: kafka configuration rejected", "\"property\":\"%s\",\"detail\":%s", k, buf_str(&b));
		buf_release(&b);
		return MC_EINVAL;
	}
	return MC_OK;
}

static int conf_extra(rd_kafka_conf_t *conf, const char *const *extra)
{
	for (size_t i = 0; extra && extra[i] && extra[i + 1]; i += 2)
		if (conf_set(conf, extra[i], extra[i + 1]))
			return MC_EINVAL;
	return MC_OK;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
	(void)rk;
	struct buf b = BUF_INIT;
	buf_json_str(&b, msg);
	if (level <= 3)
		LOGE("events: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	else if (level <= 4)
		LOGW("events: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	else
		LOGD("events: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	buf_release(&b);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct events_bridge *b = opaque;
	uint64_t tag = (uint64_t)(uintptr_t)m->_private;
	uint32_t gen = (uint32_t)(tag >> 32);
	size_t i = (size_t)(tag & 0xffffffffu);
	if (gen != b->gen || i >= b->status_cap || b->status[i] != 1)
		return;
	b->status[i] = m->err ? -1 : 0;
	b->pending--;
}

static int producer_new(struct events_bridge *b)
{
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = conf_set(conf, "bootstrap.servers", b->brokers);
	rc = rc ? rc : conf_set(conf, "enable.idempotence", "true");
	rc = rc ? rc : conf_set(conf, "acks", "all");
	rc = rc ? rc : conf_set(conf, "linger.ms", "5");
	rc = rc ? rc : conf_set(conf, "message.timeout.ms", BRIDGE_MSG_TIMEOUT_MS);
	rc = rc ? rc : conf_set(conf, "queue.buffering.max.messages", "200000");
	rc = rc ? rc : conf_extra(conf, b->extra);
	if (rc) {
		rd_kafka_conf_destroy(conf);
		return rc;
	}
	rd_kafka_conf_set_opaque(conf, b);
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!b->rk) {
		rd_kafka_conf_destroy(conf);
		LOGE("events: cannot create the kafka producer", "\"component\":\"%s\"", "events");
		return MC_EINVAL;
	}
	return MC_OK;
}

static int bridge_batch(const struct events_event *evs, size_t n, size_t *done, void *arg)
{
	struct events_bridge *b = arg;
	*done = 0;
	if (!b->rk && producer_new(b))
		return MC_EUNAVAIL;
	if (n > b->status_cap) {
		b->status = mc_realloc(b->status, n * sizeof(*b->status));
		b->status_cap = n;
	}
	b->gen++;
	b->pending = 0;
	struct buf v = BUF_INIT;
	size_t produced = 0;
	int rc = MC_OK;
	for (size_t i = 0; i < n; i++) {
		buf_reset(&v);
		if (events_event_to_json(&evs[i], &v)) {
			rc = MC_EINTERNAL;
			break;
		}
		b->status[i] = 1;
		rd_kafka_resp_err_t err;
		for (;;) {
			err = rd_kafka_producev(b->rk, RD_KAFKA_V_TOPIC(EVENTS_TOPIC),
						RD_KAFKA_V_KEY(evs[i].key, strlen(evs[i].key)),
						RD_KAFKA_V_VALUE(v.data, v.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						RD_KAFKA_V_OPAQUE((void *)(uintptr_t)(((uint64_t)b->gen << 32) | i)),
						RD_KAFKA_V_END);
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(b->rk, 20);
		}
		if (err) {
			b->status[i] = -1;
			LOGW("events: kafka produce failed", "\"error\":\"%s\",\"seq\":%lld", rd_kafka_err2name(err),
			     (long long)evs[i].seq);
			rc = MC_EUNAVAIL;
			break;
		}
		b->pending++;
		produced++;
	}
	buf_release(&v);
	rd_kafka_flush(b->rk, BRIDGE_FLUSH_MS);
	size_t ok = 0;
	while (ok < produced && b->status[ok] == 0)
		ok++;
	*done = ok;
	if (ok < n && rc == MC_OK)
		rc = MC_EUNAVAIL;
	b->gen++;   /* late reports of this batch are ignored from now on */
	char ferr[256];
	if (rd_kafka_fatal_error(b->rk, ferr, sizeof(ferr))) {
		/* An idempotent producer in a fatal state cannot continue: start a new one. */
		LOGE("events: kafka producer fatal error; recreating it", "\"component\":\"%s\"", "events");
		rd_kafka_destroy(b->rk);
		b->rk = NULL;
	}
	return rc;
}

int events_bridge_create(const char *brokers, const char *const *extra, struct events_bridge **out)
{
	*out = NULL;
	if (!brokers || !brokers[0])
		return MC_EINVAL;
	struct events_bridge *b = mc_calloc(1, sizeof(*b));
	b->brokers = mc_strdup(brokers);
	b->extra = extra;
	b->consumer.name = "kafka_bridge";
	b->consumer.batch = bridge_batch;
	b->consumer.arg = b;
	int rc = producer_new(b);
	if (rc) {
		free(b->brokers);
		free(b);
		return rc;
	}
	*out = b;
	return MC_OK;
}

const struct events_consumer *events_bridge_consumer(struct events_bridge *b) { return &b->consumer; }

void events_bridge_free(struct events_bridge *b)
{
	if (!b)
		return;
	if (b->rk) {
		rd_kafka_flush(b->rk, 5000);
		rd_kafka_destroy(b->rk);
	}
	free(b->status);
	free(b->brokers);
	free(b);
}

/* ---- the worker loop ------------------------------------------------------------------------- */

struct apply_ctx {
	const struct events_consumer *c;
	struct events_event *ev;
};

static int unit_apply(struct store_txn *t, void *arg)
{
	struct apply_ctx *x = arg;
	x->ev->txn = t;
	int rc = x->c->fn(x->ev, x->c->arg);
	x->ev->txn = NULL;
	return rc;
}

static int apply_one(struct store *s, const struct events_consumer *c, struct events_event *ev)
{
	if (c->flags & EVENTS_TXN) {
		struct apply_ctx x = {c, ev};
		return s ? store_write(s, unit_apply, &x) : MC_EINTERNAL;
	}
	if (c->batch) {
		size_t done = 0;
		return c->batch(ev, 1, &done, c->arg);
	}
	return c->fn(ev, c->arg);
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int events_kafka_consume(struct store *s, const char *brokers, const struct events_consumer *c,
			 const char *const *extra, atomic_bool *stop)
{
	if (!brokers || !brokers[0] || events_consumer_check(c))
		return MC_EINVAL;
	char group[EVENTS_CONSUMER_NAME_MAX + 16], err[256];
	snprintf(group, sizeof(group), "medcore-%s", c->name);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = conf_set(conf, "bootstrap.servers", brokers);
	rc = rc ? rc : conf_set(conf, "group.id", group);
	rc = rc ? rc : conf_set(conf, "enable.auto.commit", "false");
	rc = rc ? rc : conf_set(conf, "auto.offset.reset", "earliest");
	rc = rc ? rc : conf_extra(conf, extra);
	if (rc) {
		rd_kafka_conf_destroy(conf);
		return rc;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		rd_kafka_conf_destroy(conf);
		LOGE("events: cannot create the kafka consumer", "\"consumer\":\"%s\"", c->name);
		return MC_EINVAL;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, EVENTS_TOPIC, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (kerr) {
		LOGE("events: kafka subscribe failed", "\"consumer\":\"%s\",\"error\":\"%s\"", c->name,
		     rd_kafka_err2name(kerr));
		rd_kafka_destroy(rk);
		return MC_EUNAVAIL;
	}
	LOGI("events: worker consuming", "\"consumer\":\"%s\",\"group\":\"%s\"", c->name, group);
	while (!atomic_load(stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				LOGW("events: kafka consumer error", "\"consumer\":\"%s\",\"error\":\"%s\"", c->name,
				     rd_kafka_err2name(m->err));
			rd_kafka_message_destroy(m);
			continue;
		}
		struct events_event ev;
		json_t *holder = NULL;
		if (events_event_parse(m->payload, m->len, &ev, &holder)) {
			/* Not an event envelope: skip it (commit), never block the partition on it. */
			LOGW("events: skipping a malformed message", "\"consumer\":\"%s\",\"offset\":%lld", c->name,
			     (long long)m->offset);
			rd_kafka_commit_message(rk, m, 1);
			rd_kafka_message_destroy(m);
			continue;
		}
		int64_t backoff = EVENTS_BACKOFF_MIN_MS;
		bool applied = false;
		while (!atomic_load(stop)) {
			int arc = apply_one(s, c, &ev);
			if (arc == MC_OK) {
				applied = true;
				break;
			}
			LOGW("events: consumer failed; retrying", "\"consumer\":\"%s\",\"code\":\"%s\",\"seq\":%lld",
			     c->name, mc_code_name(arc), (long long)ev.seq);
			sleep_ms(backoff);
			backoff = backoff * 2 > EVENTS_BACKOFF_MAX_MS ? EVENTS_BACKOFF_MAX_MS : backoff * 2;
		}
		/* The offset is committed only once the effect is durable; async: order is kept per
		 * partition, and a lost commit means a redelivery the consumer absorbs. */
		if (applied)
			rd_kafka_commit_message(rk, m, 1);
		json_decref(holder);
		rd_kafka_message_destroy(m);
	}
	rd_kafka_commit(rk, NULL, 0);   /* flush pending async commits (an error here only means redelivery) */
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return MC_OK;
}
