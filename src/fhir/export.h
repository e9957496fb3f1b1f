/* fhir/export.h — FHIR Bulk Data export (async pattern, Bulk Data Access IG v1/v2).
 *
 * A kick-off inserts a row in export_jobs (audited "export" in the same transaction) and wakes the
 * one background worker thread; the worker writes one NDJSON file per type (split past
 * EXPORT_FILE_MAX bytes) under <export dir>/<job>/ and records the manifest's output. Bounded: one
 * job runs at a time and at most EXPORT_QUEUE_MAX jobs may wait or run (then 429).
 * Jobs run as their owner: the owner's role, patient link and OAuth2 scopes decide what is written,
 * with the same access rules as searches (fhir_access_sql, auth_scope_allows). Only principals who
 * may read every patient's clinical data (AUTH_SCOPE_ALL: the integration role) may start one.
 * Status and files are served to the owner only. A job interrupted by a shutdown runs again from
 * the start after the next start-up.
 *
 * The worker starts with the first export request and needs the store to outlive it:
 * fhir_export_shutdown() (cli/cmd_serve.c, before store_close) stops and joins it.
 */
#ifndef MC_FHIR_EXPORT_H
#define MC_FHIR_EXPORT_H
#include <stdbool.h>
#include <stddef.h>

#include "http/route.h"

#define EXPORT_QUEUE_MAX 4                     /* queued + running jobs */
#define EXPORT_FILE_MAX ((size_t)32 << 20)     /* bytes per NDJSON file before the next part */
#define EXPORT_BATCH 500                       /* resources per read snapshot */
#define EXPORT_GROUP_MAX 10000                 /* members of an exported Group */

/* The route handlers (listed in fhir/ops.c's table). */
int fhir_export_h_kickoff(struct req *r, struct reply *rep);
int fhir_export_h_status(struct req *r, struct reply *rep);
int fhir_export_h_cancel(struct req *r, struct reply *rep);
int fhir_export_h_file(struct req *r, struct reply *rep);

/* Stop the worker (a running job is abandoned and re-run after the next start) and join it.
 * Idempotent; a no-op when it never started. */
void fhir_export_shutdown(void);

/* The export directory for cfg: cfg->export_dir, else "<sqlite path>-export", else
 * "medcore-export". MC_ETOOBIG when it does not fit in out. */
struct mc_config;
int fhir_export_dir(const struct mc_config *cfg, char *out, size_t n);

/* Is name a file name the worker writes ("Observation.ndjson", "Observation.2.ndjson")? */
bool fhir_export_file_name_valid(const char *name);

#endif
