/* modules/vitals/vitals_module.h — the vitals module seen from outside: its routes, its start-up
 * and shut-down, and the batch ingest entry point other transports (WebSocket, Kafka) call.
 *
 * Routes: POST /api/v1/vitals (NDJSON or JSON array), /api/v1/devices (create, bind, unbind),
 * GET /api/v1/patients/{id}/vitals (raw, 1m, 1h) and /api/v1/patients/{id}/vitals/fhir (a Bundle
 * of vital-signs Observations built from samples; deliberately not part of the generic
 * /fhir/Observation search, which only sees stored Observation resources).
 */
#ifndef MC_MODULES_VITALS_MODULE_H
#define MC_MODULES_VITALS_MODULE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/route.h"

struct app;
struct auth_principal;
struct vstore;

extern const struct route_table vitals_routes;

/* Open the vitals store (cfg->vitals_db, default "<sqlite db>-vitals.db" or the main PostgreSQL
 * database) and keep app for access checks. Call once after the main store is open, before the
 * HTTP server starts. MC_EUNAVAIL when the store cannot be opened. */
int vitals_module_start(const struct app *app);
/* Tests: use an already open vstore (not owned: vitals_module_stop leaves it open). */
int vitals_module_start_with(const struct app *app, struct vstore *vs);
/* Checkpoint and close (when owned). Safe when never started. */
void vitals_module_stop(void);

/* Ingest one batch for principal who: body is NDJSON (one flat sample object per line) when
 * ndjson, else a JSON array of them. Sample: {"device","patient","code" (LOINC),"value","unit"
 * (UCUM),"ts" (epoch ms or FHIR instant)}. Valid samples are stored durably and handed to the
 * sinks before this returns.
 *   MC_OK        at least one sample accepted; *report = {accepted, rejected, errors:[{index,
 *                code, message}]} (owned by the caller; index = 0-based sample number, NDJSON
 *                blank lines not counted)
 *   MC_EUNPROC   every sample was rejected; *report as above
 *   MC_EINVAL    malformed JSON array, empty batch, or more than VITALS_BATCH_MAX samples
 *   MC_ERATE     a device in the batch is over its rate; nothing stored
 *   MC_EUNAVAIL  the module is not started or a store could not answer
 * *report is NULL on the other codes. report may be NULL. Safe from any thread. */
#define VITALS_BATCH_MAX 50000
int vitals_ingest_batch(const struct auth_principal *who, const char *body, size_t len, bool ndjson,
			json_t **report);

/* Kafka ingest (docs/vitals.md "Kafka ingest"). Topic VITALS_TOPIC, consumer group
 * VITALS_KAFKA_GROUP. A message's key is the device id; its value is an NDJSON batch, a JSON array
 * or one sample object (may span lines), every sample of the same shape as for HTTP and naming the
 * key's device (else rejected DEVICE_MISMATCH). Samples are validated as for HTTP (the device must be
 * bound to the sample's patient at that moment) as the integration principal "kafka:patient-vitals";
 * no per-device rate limit (the consumer paces itself). Invalid samples and malformed messages are
 * logged (partition, offset, counts, codes; never payload), counted and passed over. Each polled
 * group of messages is stored in one durable unit together with the position reached in each
 * partition (vstore_append_at), then goes to the sinks, then its offsets are committed to Kafka:
 * a sample is stored exactly once even when Kafka redelivers (see vkafka.c).
 * vitals_kafka_start: after vitals_module_start* (MC_EUNAVAIL before); extra: librdkafka property
 * name/value pairs applied last, NULL-terminated (tests), borrowed for the consumer's life;
 * MC_EINVAL for a rejected configuration; MC_OK when already running. vitals_kafka_stop stores
 * what is in hand, commits and leaves the group; safe when not started. */
#define VITALS_TOPIC "patient-vitals"
#define VITALS_KAFKA_GROUP "medcore-vitals"
int vitals_kafka_start(const char *brokers, const char *const *extra);
void vitals_kafka_stop(void);
struct vitals_kafka_stats {
	uint64_t messages;      /* taken (not counting redelivered ones skipped) */
	uint64_t samples;       /* stored */
	uint64_t rejected;      /* invalid samples skipped */
	uint64_t skipped;       /* malformed messages skipped */
	uint64_t redelivered;   /* messages before the stored position, skipped */
	uint64_t batches;       /* durable units written */
};
void vitals_kafka_stats(struct vitals_kafka_stats *out);   /* of the running or last consumer */

#endif
