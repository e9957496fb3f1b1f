/* modules/vitals/vitals_int.h — what the module's own files share (not for other modules). */
#ifndef MC_MODULES_VITALS_INT_H
#define MC_MODULES_VITALS_INT_H
#include <stdbool.h>
#include <stdint.h>

#include "http/route.h"
#include "modules/vitals/vitals.h"

struct app;
struct vstore;

/* The module's state: set by vitals_module_start*, read-only afterwards. */
struct vitals_mod {
	const struct app *app;
	struct vstore *vs;
	bool owned;
	int64_t retention_ms;
	double rate, burst;   /* per device token bucket */
};
extern struct vitals_mod vitals_g;

/* Forget the cached binding of device_id (after bind/unbind committed). */
void vitals_binding_forget(const char *device_id);
/* Ingest parsing and validation, exposed for unit tests. */
struct vitals_raw {
	char device[65], patient[65], code[16], unit[16];
	double value;
	int64_t ts_ms;
	unsigned have;   /* bit per field */
};
/* Parse one flat object starting at *p (leading spaces skipped) up to end; on success *p is after
 * the closing brace. MC_EINVAL with *why (static) on any syntax error, unknown or duplicate key. */
int vitals_parse_object(const char **p, const char *end, struct vitals_raw *out, const char **why);
/* Validate and canonicalize (units, LOINC mapping, range, time). MC_OK or MC_EINVAL with *code and
 * *why (static strings). now_ms: the server's clock. */
int vitals_validate(const struct vitals_raw *r, int64_t now_ms, int64_t retention_ms, struct vitals_sample *out,
		    const char **code, const char **why);

/* Batches assembled from several bodies (the Kafka consumer: one body per message), validated like
 * HTTP ingest (bindings, device ownership, clinician access), then stored in one durable unit.
 * who is borrowed and must outlive the batch. vitals_batch_new: NULL when the module is not started
 * or a device principal's link cannot be read. */
struct auth_principal;
struct vstore_srcpos;
struct vitals_batch;
enum vitals_body { VB_NDJSON, VB_ARRAY, VB_AUTO /* '[' array, one object (may span lines), else NDJSON */ };
struct vitals_batch *vitals_batch_new(const struct auth_principal *who);
/* Add the valid samples of body; only_device (may be NULL): samples naming another device are
 * rejected (DEVICE_MISMATCH). *accepted / *rejected (may be NULL): this body's counts.
 * MC_OK; MC_EINVAL (malformed array, empty body), MC_ETOOBIG (> VITALS_BATCH_MAX samples) or a
 * store failure (MC_EUNAVAIL...): then nothing of this body stays in the batch. */
int vitals_batch_add(struct vitals_batch *b, const char *body, size_t len, enum vitals_body fmt,
		     const char *only_device, size_t *accepted, size_t *rejected);
size_t vitals_batch_samples(const struct vitals_batch *b);
/* The code of the first sample the last vitals_batch_add rejected (static), or NULL. */
const char *vitals_batch_first_reject(const struct vitals_batch *b);
/* Store the batch's samples durably with the source positions in the same unit
 * (vstore_append_at), then hand them to the sinks. No rate limit: the source paces itself.
 * MC_OK (also for an empty batch without positions) or the store's error (nothing stored;
 * the batch is unchanged and may be committed again). */
int vitals_batch_commit(struct vitals_batch *b, const struct vstore_srcpos *pos, size_t npos);
void vitals_batch_reset(struct vitals_batch *b);   /* empty it for reuse (clock re-read) */
void vitals_batch_free(struct vitals_batch *b);

int vitals_h_device_create(struct req *r, struct reply *rep);
int vitals_h_device_bind(struct req *r, struct reply *rep);
int vitals_h_device_unbind(struct req *r, struct reply *rep);
int vitals_h_query(struct req *r, struct reply *rep);
int vitals_h_fhir(struct req *r, struct reply *rep);

#endif
