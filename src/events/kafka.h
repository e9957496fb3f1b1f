/* events/kafka.h — the Kafka side of the events engine (librdkafka): the outbox→Kafka bridge and
 * the worker loop that runs a consumer from Kafka instead of in-process (DESIGN §3).
 *
 * Bridge. A batch consumer named "kafka_bridge" for the dispatcher: it publishes each outbox event to
 * EVENTS_TOPIC with key = the event's key (the patient id when there is one, so one patient's events
 * land in one partition, in order) and value = the envelope JSON (events_event_to_json). The producer
 * is idempotent (enable.idempotence=true, acks=all): broker retries never duplicate or reorder. The
 * batch returns only after every message's delivery report; the checkpoint then covers the leading
 * delivered events only. Kafka unreachable → reports fail after message.timeout.ms → the batch
 * fails → the dispatcher retries with backoff from the checkpoint: nothing is lost, and republished
 * events are duplicates consumers absorb (seq is the idempotency key).
 *
 * Worker. events_kafka_consume() joins group "medcore-<consumer name>" on EVENTS_TOPIC (auto commit
 * off, earliest offset on a new group), runs the consumer for each message (EVENTS_TXN: inside a
 * store write unit), retries a failing message with backoff, and commits the message's offset only
 * after the consumer returned MC_OK (its effect is durable).
 *
 * extra: optional NULL-terminated list of librdkafka property name/value pairs applied last
 * ({"message.timeout.ms", "5000", NULL}); tests use it. Broker lists and errors are logged without
 * any payload.
 */
#ifndef MC_EVENTS_KAFKA_H
#define MC_EVENTS_KAFKA_H
#include <stdatomic.h>
#include <stdbool.h>

#include "events/events.h"

struct events_bridge;

/* MC_EINVAL when brokers is empty or librdkafka rejects the configuration. */
int events_bridge_create(const char *brokers, const char *const *extra, struct events_bridge **out);
/* The bridge as a consumer ("kafka_bridge"); valid while the bridge lives. */
const struct events_consumer *events_bridge_consumer(struct events_bridge *b);
/* Waits (bounded, 5 s) for in-flight messages, then frees. NULL is fine. */
void events_bridge_free(struct events_bridge *b);

/* Run consumer c from Kafka until *stop is true. s: the store EVENTS_TXN consumers write to (may be
 * NULL for other consumers). Returns MC_OK after a clean stop, MC_EINVAL for a bad configuration. */
int events_kafka_consume(struct store *s, const char *brokers, const struct events_consumer *c,
			 const char *const *extra, atomic_bool *stop);

#endif
