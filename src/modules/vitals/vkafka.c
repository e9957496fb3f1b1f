/* modules/vitals/vkafka.c — the Kafka `patient-vitals` consumer (contract in vitals_module.h and
 * docs/vitals.md "Kafka ingest").
 *
 * One thread. It polls messages without waiting while more are ready (at most VK_BATCH_MSGS
 * messages or VK_BATCH_SAMPLES samples), validates each message's samples into one batch exactly as
 * HTTP ingest does (vitals_batch_add, the message key as the only device allowed), then stores the
 * batch with the position reached in every partition in the same durable unit
 * (vitals_batch_commit -> vstore_append_at), hands it to the sinks (alerting, live push), and only
 * then commits the offsets to Kafka.
 *
 * Exactly once in the store. Kafka delivers at least once: a commit lost to a broker outage, a
 * crash between the durable write and the commit, or a rebalance redelivers messages. The stored
 * positions (table vitals_source_offset of the vitals store) are the truth: on assignment every
 * partition starts at its stored position, and any message before the stored position is skipped.
 * A redelivered message therefore never stores a sample twice, whatever Kafka's committed offset
 * says; the Kafka commit only serves lag monitoring and the first start.
 *
 * Never blocking the partition: a malformed message (not JSON, a key that is not a device id, too
 * many samples) or one whose samples are all invalid is logged without payload, counted and
 * passed over (its position still advances). Only a store failure stops progress, and then it is
 * retried with backoff: skipping would lose samples.
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "modules/vitals/vitals_int.h"
#include "modules/vitals/vitals_module.h"
#include "modules/vitals/vstore.h"

#define VK_BATCH_MSGS 2000
#define VK_BATCH_SAMPLES 50000    /* + one message's VITALS_BATCH_MAX stays within VSTORE_BATCH_MAX */
#define VK_PARTITIONS_MAX 4096
#define VK_BACKOFF_MIN_MS 100
#define VK_BACKOFF_MAX_MS 5000

struct vk {
	char *brokers;
	const char *const *extra;
	rd_kafka_t *rk;
	pthread_t th;
	atomic_bool stop;
	bool running;
	struct auth_principal who;
	struct vitals_batch *b;
	/* per partition: the stored position (-1 unknown) and the batch's pending one (-1 none) */
	int64_t *stored, *pending;
	size_t nparts;
	size_t batch_msgs;
	int64_t first_us;
	struct metric *m_msgs, *m_samples, *m_rejected, *m_skipped, *m_dups;
	_Atomic uint64_t msgs, samples, rejected, skipped, dups, batches;
};

static struct vk g_vk;
static pthread_mutex_t g_vk_mu = PTHREAD_MUTEX_INITIALIZER;   /* start/stop */

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(conf, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		struct buf b = BUF_INIT;
		buf_json_str(&b, err);
		LOGE("vitals: kafka configuration rejected", "\"property\":\"%s\",\"detail\":%s", k, buf_str(&b));
		buf_release(&b);
		return MC_EINVAL;
	}
	return MC_OK;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *msg)
{
	(void)rk;
	struct buf b = BUF_INIT;
	buf_json_str(&b, msg);
	if (level <= 3)
		LOGE("vitals: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	else if (level <= 4)
		LOGW("vitals: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	else
		LOGD("vitals: kafka", "\"facility\":\"%s\",\"detail\":%s", fac, buf_str(&b));
	buf_release(&b);
}

static void parts_need(struct vk *k, int32_t p)
{
	if ((size_t)p < k->nparts)
		return;
	size_t n = (size_t)p + 1;
	k->stored = mc_realloc(k->stored, n * sizeof(*k->stored));
	k->pending = mc_realloc(k->pending, n * sizeof(*k->pending));
	for (size_t i = k->nparts; i < n; i++)
		k->stored[i] = k->pending[i] = -1;
	k->nparts = n;
}

/* Store the batch and its positions (retrying while the store fails), then commit to Kafka.
 * false only when asked to stop while the store was failing: nothing was committed, the
 * messages come again on the next start. */
static bool flush(struct vk *k)
{
	if (!k->batch_msgs)
		return true;
	struct vstore_srcpos *pos = mc_calloc(k->nparts ? k->nparts : 1, sizeof(*pos));
	size_t npos = 0;
	for (size_t i = 0; i < k->nparts; i++)
		if (k->pending[i] >= 0) {
			snprintf(pos[npos].source, sizeof(pos[npos].source), "%s", VITALS_TOPIC);
			pos[npos].partition = (int32_t)i;
			pos[npos].next_offset = k->pending[i];
			npos++;
		}
	int64_t backoff = VK_BACKOFF_MIN_MS;
	int rc;
	while ((rc = vitals_batch_commit(k->b, pos, npos)) != MC_OK) {
		LOGW("vitals: kafka batch not stored; retrying", "\"code\":\"%s\",\"samples\":%zu", mc_code_name(rc),
		     vitals_batch_samples(k->b));
		if (atomic_load(&k->stop)) {
			free(pos);
			return false;
		}
		sleep_ms(backoff);
		backoff = backoff * 2 > VK_BACKOFF_MAX_MS ? VK_BACKOFF_MAX_MS : backoff * 2;
	}
	size_t n = vitals_batch_samples(k->b);
	atomic_fetch_add(&k->samples, n);
	atomic_fetch_add(&k->batches, 1);
	if (k->m_samples)
		metrics_add(k->m_samples, (int64_t)n);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)npos);
	for (size_t i = 0; i < npos; i++) {
		k->stored[pos[i].partition] = pos[i].next_offset;
		k->pending[pos[i].partition] = -1;
		rd_kafka_topic_partition_list_add(l, VITALS_TOPIC, pos[i].partition)->offset = pos[i].next_offset;
	}
	/* async: a commit lost to an outage only means a redelivery, which the stored positions absorb */
	rd_kafka_commit(k->rk, l, 1);
	rd_kafka_topic_partition_list_destroy(l);
	free(pos);
	vitals_batch_reset(k->b);
	k->batch_msgs = 0;
	return true;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
			 void *opaque)
{
	struct vk *k = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		for (int i = 0; i < parts->cnt; i++) {
			rd_kafka_topic_partition_t *p = &parts->elems[i];
			if (p->partition < 0 || p->partition >= VK_PARTITIONS_MAX)
				continue;
			parts_need(k, p->partition);
			int64_t next = -1, backoff = VK_BACKOFF_MIN_MS;
			int rc;
			while ((rc = vstore_srcpos_get(vitals_g.vs, VITALS_TOPIC, p->partition, &next)) != MC_OK &&
			       rc != MC_ENOTFOUND && !atomic_load(&k->stop)) {
				LOGW("vitals: stored kafka position unreadable; retrying", "\"code\":\"%s\"", mc_code_name(rc));
				sleep_ms(backoff);
				backoff = backoff * 2 > VK_BACKOFF_MAX_MS ? VK_BACKOFF_MAX_MS : backoff * 2;
			}
			k->stored[p->partition] = rc == MC_OK ? next : -1;
			if (rc == MC_OK)
				p->offset = next;   /* resume exactly after what is stored */
		}
		rd_kafka_assign(rk, parts);
	} else {
		flush(k);   /* what is in hand is stored and committed before the partitions go */
		for (size_t i = 0; i < k->nparts; i++)
			k->stored[i] = k->pending[i] = -1;
		rd_kafka_assign(rk, NULL);
	}
}

static void skip_log(const rd_kafka_message_t *m, const char *why)
{
	LOGW("vitals: kafka message skipped", "\"partition\":%d,\"offset\":%lld,\"reason\":\"%s\"", (int)m->partition,
	     (long long)m->offset, why);
}

/* Take one message into the batch. false: stop was requested while the store was failing. */
static bool take(struct vk *k, const rd_kafka_message_t *m)
{
	int32_t part = m->partition;
	if (part < 0 || part >= VK_PARTITIONS_MAX)
		return true;
	parts_need(k, part);
	if (k->stored[part] >= 0 && m->offset < k->stored[part]) {
		atomic_fetch_add(&k->dups, 1);   /* stored before: redelivered */
		if (k->m_dups)
			metrics_add(k->m_dups, 1);
		return true;
	}
	atomic_fetch_add(&k->msgs, 1);
	if (k->m_msgs)
		metrics_add(k->m_msgs, 1);
	char key[65];
	bool key_ok = m->key && m->key_len > 0 && m->key_len < sizeof(key);
	if (key_ok) {
		memcpy(key, m->key, m->key_len);
		key[m->key_len] = '\0';
		key_ok = mcid_valid_fhir_id(key);
	}
	if (!key_ok) {
		skip_log(m, "the key must be the device id");
		atomic_fetch_add(&k->skipped, 1);
		if (k->m_skipped)
			metrics_add(k->m_skipped, 1);
	} else {
		size_t acc = 0, rej = 0;
		int64_t backoff = VK_BACKOFF_MIN_MS;
		int rc;
		while ((rc = vitals_batch_add(k->b, m->payload, m->len, VB_AUTO, key, &acc, &rej)) != MC_OK &&
		       rc != MC_EINVAL && rc != MC_ETOOBIG) {
			LOGW("vitals: kafka message not validated (store); retrying", "\"code\":\"%s\"", mc_code_name(rc));
			if (atomic_load(&k->stop))
				return false;
			sleep_ms(backoff);
			backoff = backoff * 2 > VK_BACKOFF_MAX_MS ? VK_BACKOFF_MAX_MS : backoff * 2;
		}
		if (rc) {
			skip_log(m, rc == MC_ETOOBIG ? "too many samples" : "not a sample, a JSON array or NDJSON");
			atomic_fetch_add(&k->skipped, 1);
			if (k->m_skipped)
				metrics_add(k->m_skipped, 1);
		} else if (rej) {
			atomic_fetch_add(&k->rejected, rej);
			if (k->m_rejected)
				metrics_add(k->m_rejected, (int64_t)rej);
			const char *code = vitals_batch_first_reject(k->b);
			LOGW("vitals: kafka samples rejected",
			     "\"partition\":%d,\"offset\":%lld,\"accepted\":%zu,\"rejected\":%zu,\"first\":\"%s\"",
			     (int)part, (long long)m->offset, acc, rej, code ? code : "");
		}
	}
	k->pending[part] = m->offset + 1;
	if (!k->batch_msgs++)
		k->first_us = mctime_mono_us();
	return true;
}

static void *vk_main(void *arg)
{
	struct vk *k = arg;
	while (!atomic_load(&k->stop)) {
		/* wait only when nothing is in hand; otherwise take what is ready and store it */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, k->batch_msgs ? 0 : 100);
		if (!m) {
			flush(k);
			continue;
		}
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				LOGW("vitals: kafka consumer error", "\"error\":\"%s\"", rd_kafka_err2name(m->err));
			rd_kafka_message_destroy(m);
			flush(k);
			continue;
		}
		bool ok = take(k, m);
		rd_kafka_message_destroy(m);
		if (!ok)
			break;
		if (k->batch_msgs >= VK_BATCH_MSGS || vitals_batch_samples(k->b) >= VK_BATCH_SAMPLES)
			flush(k);
	}
	if (k->batch_msgs)
		flush(k);   /* what validated is stored (or, when the store is down, redelivered later) */
	rd_kafka_commit(k->rk, NULL, 0);
	rd_kafka_consumer_close(k->rk);
	return NULL;
}

int vitals_kafka_start(const char *brokers, const char *const *extra)
{
	if (!brokers || !brokers[0])
		return MC_EINVAL;
	pthread_mutex_lock(&g_vk_mu);
	struct vk *k = &g_vk;
	if (k->running) {
		pthread_mutex_unlock(&g_vk_mu);
		return MC_OK;
	}
	if (!vitals_g.vs || !vitals_g.app) {
		pthread_mutex_unlock(&g_vk_mu);
		return MC_EUNAVAIL;
	}
	memset(k, 0, sizeof(*k));
	k->who.role = ROLE_INTEGRATION;
	k->who.perms = auth_role_perms(ROLE_INTEGRATION);
	snprintf(k->who.username, sizeof(k->who.username), "kafka:%s", VITALS_TOPIC);
	char err[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = conf_set(conf, "bootstrap.servers", brokers);
	rc = rc ? rc : conf_set(conf, "group.id", VITALS_KAFKA_GROUP);
	rc = rc ? rc : conf_set(conf, "enable.auto.commit", "false");
	rc = rc ? rc : conf_set(conf, "enable.auto.offset.store", "false");
	rc = rc ? rc : conf_set(conf, "auto.offset.reset", "earliest");
	for (size_t i = 0; !rc && extra && extra[i] && extra[i + 1]; i += 2)
		rc = conf_set(conf, extra[i], extra[i + 1]);
	if (rc) {
		rd_kafka_conf_destroy(conf);
		pthread_mutex_unlock(&g_vk_mu);
		return rc;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_opaque(conf, k);
	k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!k->rk) {
		rd_kafka_conf_destroy(conf);
		pthread_mutex_unlock(&g_vk_mu);
		LOGE("vitals: cannot create the kafka consumer", "\"topic\":\"%s\"", VITALS_TOPIC);
		return MC_EINVAL;
	}
	rd_kafka_poll_set_consumer(k->rk);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, VITALS_TOPIC, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t kerr = rd_kafka_subscribe(k->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	k->b = kerr ? NULL : vitals_batch_new(&k->who);
	if (kerr || !k->b) {
		LOGE("vitals: kafka consumer not started", "\"error\":\"%s\"", kerr ? rd_kafka_err2name(kerr) : "store");
		rd_kafka_destroy(k->rk);
		k->rk = NULL;
		pthread_mutex_unlock(&g_vk_mu);
		return MC_EUNAVAIL;
	}
	k->m_msgs = metrics_counter("medcore_vitals_kafka_messages_total", "patient-vitals messages taken", NULL);
	k->m_samples = metrics_counter("medcore_vitals_kafka_samples_total", "samples stored from Kafka", NULL);
	k->m_rejected = metrics_counter("medcore_vitals_kafka_rejected_total", "invalid samples skipped (Kafka)", NULL);
	k->m_skipped = metrics_counter("medcore_vitals_kafka_skipped_messages_total", "malformed messages skipped", NULL);
	k->m_dups = metrics_counter("medcore_vitals_kafka_redelivered_total", "redelivered messages skipped", NULL);
	if (pthread_create(&k->th, NULL, vk_main, k)) {
		vitals_batch_free(k->b);
		rd_kafka_destroy(k->rk);
		memset(k, 0, sizeof(*k));
		pthread_mutex_unlock(&g_vk_mu);
		return MC_EUNAVAIL;
	}
	k->running = true;
	LOGI("vitals: kafka consumer started", "\"topic\":\"%s\",\"group\":\"%s\"", VITALS_TOPIC, VITALS_KAFKA_GROUP);
	pthread_mutex_unlock(&g_vk_mu);
	return MC_OK;
}

void vitals_kafka_stop(void)
{
	pthread_mutex_lock(&g_vk_mu);
	struct vk *k = &g_vk;
	if (!k->running) {
		pthread_mutex_unlock(&g_vk_mu);
		return;
	}
	atomic_store(&k->stop, true);
	pthread_join(k->th, NULL);
	rd_kafka_destroy(k->rk);
	vitals_batch_free(k->b);
	free(k->stored);
	free(k->pending);
	struct vitals_kafka_stats last = {atomic_load(&k->msgs), atomic_load(&k->samples), atomic_load(&k->rejected),
					  atomic_load(&k->skipped), atomic_load(&k->dups), atomic_load(&k->batches)};
	memset(k, 0, sizeof(*k));
	atomic_store(&k->msgs, last.messages);
	atomic_store(&k->samples, last.samples);
	atomic_store(&k->rejected, last.rejected);
	atomic_store(&k->skipped, last.skipped);
	atomic_store(&k->dups, last.redelivered);
	atomic_store(&k->batches, last.batches);
	LOGI("vitals: kafka consumer stopped", "\"messages\":%llu,\"samples\":%llu", (unsigned long long)last.messages,
	     (unsigned long long)last.samples);
	pthread_mutex_unlock(&g_vk_mu);
}

void vitals_kafka_stats(struct vitals_kafka_stats *out)
{
	struct vk *k = &g_vk;
	out->messages = atomic_load(&k->msgs);
	out->samples = atomic_load(&k->samples);
	out->rejected = atomic_load(&k->rejected);
	out->skipped = atomic_load(&k->skipped);
	out->redelivered = atomic_load(&k->dups);
	out->batches = atomic_load(&k->batches);
}
