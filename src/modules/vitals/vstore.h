/* modules/vitals/vstore.h — the vitals store: time-chunked samples in their own database (DESIGN §5).
 *
 * Layout. Samples of one patient and parameter are grouped into one-minute *parts*: a row of
 * vitals_chunk keyed by (patient_id, code, minute, seq) holding the samples as a compact blob
 * (zig-zag varint ts delta + float32 value, ≈ 6 bytes a sample) plus the part's rollup columns
 * (n, min, max, sum, first/last ts). A minute usually has one part (seq 0); a part is sealed at
 * VSTORE_PART_MAX samples and late samples for a minute already written start a new part, so a
 * stored row is only ever rewritten by the process that holds it open in memory.
 *
 * Durability without rewriting growing blobs. vstore_append() writes the batch as one row of
 * vitals_pending (a compact log record) through the store's group-commit writer and, in the same
 * unit on the writer thread, appends the samples to the open parts in memory. It returns once that
 * row is durable: acknowledged = durable. A checkpoint (background thread, every checkpoint_ms or
 * when the log grows) writes every dirty part and deletes the log rows in one unit; parts whose
 * minute is over (or sealed) then leave memory. After a crash vstore_open() replays the log rows
 * into new parts: nothing acknowledged is lost and nothing is stored twice (a replayed sample goes
 * to a new seq, the checkpointed rows never held it).
 *
 * Threads. All mutation happens on the store's writer thread (units), so applies and checkpoints
 * are totally ordered; a mutex only keeps readers (vstore_range/vstore_rollup, any thread) from
 * seeing a part mid-append. Readers copy memory parts first, then read the database, and keep the
 * larger version of a part present in both (parts only grow).
 *
 * Retention: whole minutes older than retention_days are deleted by the background thread
 * (hourly) or vstore_retention_run().
 */
#ifndef MC_MODULES_VITALS_VSTORE_H
#define MC_MODULES_VITALS_VSTORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "modules/vitals/vitals.h"

#define VSTORE_PART_MAX 1024            /* samples in one part before it is sealed */
#define VSTORE_BATCH_MAX 100000         /* samples in one vstore_append */
#define VSTORE_RANGE_MAX 500000         /* points vstore_range returns at most */

struct store;
struct vstore;

struct vstore_config {
	int64_t retention_days;   /* > 0 */
	int64_t checkpoint_ms;    /* 0 = 5000 */
	bool background;          /* run the checkpoint/retention thread (false in unit tests) */
};

/* Open the vitals database at url ("sqlite:PATH" or "postgres://..."), create its tables when
 * missing and replay the log. MC_EUNAVAIL when it cannot be opened. *out is freed by vstore_close. */
int vstore_open(const char *url, const struct vstore_config *cfg, struct vstore **out);
/* Stops the thread, checkpoints, closes. NULL is fine. */
void vstore_close(struct vstore *v);
/* The underlying store (tests, benchmarks). */
struct store *vstore_store(struct vstore *v);

/* Append n validated samples (canonical units; patient ids valid FHIR ids). Returns once durable.
 * MC_EINVAL for n == 0 or n > VSTORE_BATCH_MAX or a bad sample; MC_EUNAVAIL/MC_EINTERNAL from
 * the store (then nothing was acknowledged). Safe from any thread. */
int vstore_append(struct vstore *v, const struct vitals_sample *s, size_t n);
/* A position in an external source (a Kafka topic partition) that a batch came from. */
#define VSTORE_SOURCE_MAX 64
struct vstore_srcpos {
	char source[VSTORE_SOURCE_MAX];   /* e.g. the topic name */
	int32_t partition;
	int64_t next_offset;              /* the offset after the last message in the batch */
};
/* vstore_append, and in the same durable unit record for each pos that everything before
 * next_offset of that source partition is stored (table vitals_source_offset; a position never
 * moves backwards). n may be 0 when npos > 0 (a message whose samples were all rejected still
 * moves the position). This is what makes an at-least-once source exactly-once in the store: a
 * consumer skips whatever lies before the stored position (vstore_srcpos_get). */
int vstore_append_at(struct vstore *v, const struct vitals_sample *s, size_t n, const struct vstore_srcpos *pos,
		     size_t npos);
/* The stored position of (source, partition): MC_OK with *next_offset, MC_ENOTFOUND when none. */
int vstore_srcpos_get(struct vstore *v, const char *source, int32_t partition, int64_t *next_offset);

/* Write every dirty part now and trim the log (also done by the background thread). */
int vstore_checkpoint(struct vstore *v);
/* Delete parts of minutes before now_ms - retention; *deleted (may be NULL) = rows deleted. */
int vstore_retention_run(struct vstore *v, int64_t now_ms, int64_t *deleted);

struct vstore_point {
	int64_t ts_ms;
	double value;     /* stored as float32: ≈ 7 significant digits */
};
/* Samples of one patient/parameter with from_ms <= ts <= to_ms, ascending by ts. *out is
 * malloc'd (caller frees; NULL when *n == 0). MC_ETOOBIG when more than max points (max 0 =
 * VSTORE_RANGE_MAX). */
int vstore_range(struct vstore *v, const char *patient, enum vitals_param p, int64_t from_ms, int64_t to_ms,
		 size_t max, struct vstore_point **out, size_t *n);

struct vstore_bucket {
	int64_t t0_ms;    /* bucket start */
	int64_t count;
	double min, max, mean;
};
/* Rollups of whole minutes whose start lies in [from_ms, to_ms], grouped into buckets of
 * bucket_ms (a multiple of 60000), ascending; empty buckets are left out. Read from the parts'
 * rollup columns, no blob decoded. *out malloc'd (caller frees). MC_ETOOBIG past max buckets. */
int vstore_rollup(struct vstore *v, const char *patient, enum vitals_param p, int64_t from_ms, int64_t to_ms,
		  int64_t bucket_ms, size_t max, struct vstore_bucket **out, size_t *n);

struct vstore_stats {
	uint64_t samples, batches, checkpoints, parts_written, replayed;
	uint64_t series, parts_in_memory;
};
void vstore_stats(struct vstore *v, struct vstore_stats *out);

/* Blob codec (exposed for tests): encode appends one sample after prev_ts; decode reads n samples
 * starting from base_ts. MC_EINVAL on a truncated or oversized blob. */
size_t vstore_codec_put(uint8_t *out, int64_t prev_ts, int64_t ts, float value);   /* <= 14 bytes */
int vstore_codec_decode(const uint8_t *p, size_t len, int64_t base_ts, size_t n, struct vstore_point *out);

#endif
