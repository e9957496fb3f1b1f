/* events/events.h — domain events: the transactional outbox, consumers and their checkpoints, the
 * in-process dispatcher, replay (DESIGN §3).
 *
 * Outbox. events_emit() inserts one row into table outbox inside the caller's write unit, so the
 * event commits or rolls back with the change it describes. seq (the row's key) orders events.
 * Payloads carry ids, codes and versions — never PHI text (names, addresses, notes).
 *
 * Consumers. A consumer has a name (its checkpoint key in consumer_offsets, and its Kafka group
 * "medcore-<name>") and a function called once per event, in seq order. Delivery is at-least-once:
 * the checkpoint advances only after the consumer returned MC_OK, so after a crash or a failure the
 * same event may come again — effects must be idempotent; ev->seq is the idempotency key.
 * With EVENTS_TXN the function runs inside a store write unit (ev->txn) that also advances the
 * checkpoint, so a database-local effect and its checkpoint commit together.
 *
 * Dispatcher. One thread per consumer. Threads wake after every commit of the store (store_on_commit)
 * and also poll (EVENTS_POLL_MS) for events written by other processes. A failing consumer is retried
 * with exponential backoff (EVENTS_BACKOFF_MIN_MS .. EVENTS_BACKOFF_MAX_MS) and blocks only itself.
 * Checkpoint writes are compare-and-set: when another process moved the checkpoint (projections
 * rebuild), the thread reloads it and continues from there.
 * Metrics: medcore_consumer_lag{name} (outbox head - checkpoint), medcore_events_delivered_total{name},
 * medcore_consumer_failures_total{name}.
 */
#ifndef MC_EVENTS_EVENTS_H
#define MC_EVENTS_EVENTS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;
struct buf;

#define EVENTS_TOPIC "medcore.domain-events"
#define EVENTS_NAME_MAX 128          /* bytes of an event name */
#define EVENTS_ID_MAX 64             /* bytes of a patient / resource id */
#define EVENTS_PAYLOAD_MAX 16384     /* bytes of a serialized payload */
#define EVENTS_CONSUMER_NAME_MAX 64  /* [a-z0-9_], also in the Kafka group id */
#define EVENTS_BATCH_MAX 512         /* events read per round */
#define EVENTS_POLL_MS 200
#define EVENTS_BACKOFF_MIN_MS 10
#define EVENTS_BACKOFF_MAX_MS 5000

/* Inside a store_write unit: append an event to the outbox.
 * name: "patient.registered", "fhir.Patient.created", ... ([a-zA-Z0-9._-], <= EVENTS_NAME_MAX).
 * patient_id: the patient the event is about, or NULL/"" — it is the Kafka key, so ordering is per
 *   patient. Without one the key is "resource_type/resource_id" (or the name when those are NULL).
 * payload: a JSON object or NULL ({}); the reference is STOLEN (decref'd here, also on error).
 *   resource_type/resource_id, when given, are added to it as "resourceType"/"resourceId" unless set.
 * MC_EINVAL for a bad name/id or a payload that is not an object or exceeds EVENTS_PAYLOAD_MAX. */
int events_emit(struct store_txn *t, const char *name, const char *patient_id, const char *resource_type,
		const char *resource_id, json_t *payload);

/* One event as delivered. Every pointer is borrowed for the duration of the call. */
struct events_event {
	int64_t seq;
	const char *name;
	const char *patient_id;   /* NULL when none */
	const char *key;
	const char *payload;      /* JSON object text */
	int64_t created_ms;
	struct store_txn *txn;    /* EVENTS_TXN consumers: the write unit; otherwise NULL */
};

/* Event envelope JSON (the Kafka message value; docs/events/envelope.json):
 * {"seq":N,"name":"...","patient_id":"..."|null,"key":"...","created_ms":N,"payload":{...}} */
int events_event_to_json(const struct events_event *ev, struct buf *out);
/* Parse an envelope. *holder owns the strings ev points into (json_decref it when done).
 * MC_EINVAL for anything malformed; ev->txn is NULL. */
int events_event_parse(const char *text, size_t len, struct events_event *ev, json_t **holder);

typedef int events_consumer_fn(const struct events_event *ev, void *arg);
/* Optional batch form (not with EVENTS_TXN): handle evs[0..n) in order. MC_OK when all are done;
 * otherwise an error with *done = how many leading events were handled (their effects are durable). */
typedef int events_batch_fn(const struct events_event *evs, size_t n, size_t *done, void *arg);
/* Optional: clear the consumer's read model before a full replay; runs inside a write unit. */
typedef int events_reset_fn(struct store_txn *t, void *arg);

enum events_consumer_flags {
	EVENTS_TXN = 1 << 0,   /* fn runs in a write unit with the checkpoint update */
};

struct events_consumer {
	const char *name;
	events_consumer_fn *fn;   /* required unless batch is set */
	events_batch_fn *batch;   /* optional; used instead of fn */
	events_reset_fn *reset;   /* optional */
	void *arg;
	unsigned flags;
};

/* MC_OK when name is 1..EVENTS_CONSUMER_NAME_MAX of [a-z0-9_] and the function set is consistent. */
int events_consumer_check(const struct events_consumer *c);

/* ---- checkpoints and replay ------------------------------------------------------------------ */

int events_head(struct store *s, int64_t *seq);                              /* max seq, 0 when empty */
int events_checkpoint(struct store *s, const char *name, int64_t *seq);      /* 0 when none */
/* Deliver everything after the consumer's checkpoint, synchronously on this thread, until caught
 * up with the head as it was at the call (or a failure: its code). *delivered may be NULL. */
int events_catch_up(struct store *s, const struct events_consumer *c, int64_t *delivered);
/* Rebuild: from <= 1 runs c->reset (if any) and sets the checkpoint to 0, all in one write unit;
 * from > 1 sets the checkpoint to from - 1. Then events_catch_up. */
int events_replay(struct store *s, const struct events_consumer *c, int64_t from, int64_t *delivered);

/* ---- the in-process dispatcher --------------------------------------------------------------- */

struct events_dispatcher;

/* Starts one thread per consumer and hooks the store's commits (store_on_commit: one hook per store,
 * so one dispatcher per store). The consumers must outlive the dispatcher (the array need not).
 * MC_EINVAL for a bad or duplicate consumer. n may be 0 (then nothing runs). */
int events_dispatcher_start(struct store *s, const struct events_consumer *const *consumers, size_t n,
			    struct events_dispatcher **out);
/* Unhooks, stops and joins the threads (a consumer call in progress finishes first), frees. NULL ok.
 * Call it before store_close. */
void events_dispatcher_stop(struct events_dispatcher *d);
/* Wake every consumer thread now (e.g. after a write through another store handle). */
void events_dispatcher_poke(struct events_dispatcher *d);
/* Wait until every consumer's checkpoint is >= seq: MC_OK, or MC_ETIMEOUT. */
int events_dispatcher_wait(struct events_dispatcher *d, int64_t seq, int64_t timeout_ms);

/* ---- consumers shipped with the engine ------------------------------------------------------- */

/* "patient_directory": the read model table patient_directory (patient_id, mrn, family_norm,
 * birth_date, active, updated_seq), maintained from patient.registered and fhir.Patient.* events by
 * reading the Patient's current version (so replays converge on the same rows). EVENTS_TXN. */
extern const struct events_consumer events_patient_directory;
/* "metrics": counts events per name (medcore_events_total{name}) and observes the outbox-to-consumer
 * latency (medcore_event_latency_seconds, from created_ms). Also keeps microsecond samples for
 * events_metrics_latency_p99(). */
extern const struct events_consumer events_metrics_consumer;
/* p99 of the latencies the metrics consumer observed (ms), and how many; resets the samples. */
double events_metrics_latency_p99(size_t *count);

#endif
