/* fhir/store.h — the versioned resource store.
 *
 * Every write makes a new version; all versions are kept. Deletes write a tombstone version.
 * Write functions run inside a store_write() unit (the writer thread); read functions in any unit.
 * Callers have already validated the resource (fhir_validate) and checked access.
 *
 * Tables (sql/sqlite/0002_fhir.sql): resource_versions (every version, JSON bytes), resources (the
 * current version per type+id, with its patient compartment owner), and one index table per
 * search-parameter kind holding rows for current versions only.
 */
#ifndef MC_FHIR_STORE_H
#define MC_FHIR_STORE_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct store_txn;
struct arena;

struct fhir_meta {
	char type[64];
	char id[65];
	int64_t version;            /* 1, 2, ... */
	int64_t last_updated_ms;
	bool deleted;
	char patient_id[65];        /* compartment owner, "" when none */
};

/* Create: assigns a new id (UUIDv7) unless id is given (update-as-create), versionId 1 and
 * lastUpdated; writes them into res.id / res.meta; stores JSON and index rows. */
int fhir_store_create(struct store_txn *t, const char *type, json_t *res, struct fhir_meta *out);
/* Update: if_match 0 = unconditional; else the current version must equal it (MC_EPRECOND
 * otherwise). A missing resource is created with the client's id (*created = true).
 * A deleted resource is revived as a new version. Sets res.id/meta. */
int fhir_store_update(struct store_txn *t, const char *type, const char *id, json_t *res,
		      int64_t if_match, struct fhir_meta *out, bool *created);
/* Logical delete: a tombstone version. MC_ENOTFOUND when absent; already deleted is MC_OK
 * (idempotent, no new version). */
int fhir_store_delete(struct store_txn *t, const char *type, const char *id, int64_t if_match,
		      struct fhir_meta *out);

/* A stored version: json is the exact stored bytes (arena-owned), NULL for tombstones. */
struct fhir_stored {
	struct fhir_meta meta;
	const char *json;
	size_t json_len;
};
/* version 0 = current. Current deleted → MC_EGONE (meta filled); absent → MC_ENOTFOUND. */
int fhir_store_read(struct store_txn *t, struct arena *a, const char *type, const char *id,
		    int64_t version, struct fhir_stored *out);

/* History, newest first. type NULL = whole system; id NULL = the type. since_ms 0 = all.
 * Returns at most count entries starting at offset; *total gets the total count. */
int fhir_store_history(struct store_txn *t, struct arena *a, const char *type, const char *id,
		       int64_t since_ms, int offset, int count, struct fhir_stored **out, int *n, int64_t *total);
/* The same, listing only what acc allows (struct fhir_access, fhir/search.h; NULL = everything).
 * count is capped at FHIR_STORE_PAGE_MAX. *out is arena-owned. */
struct fhir_access;
#define FHIR_STORE_PAGE_MAX 1000
int fhir_store_history_ex(struct store_txn *t, struct arena *a, const char *type, const char *id,
			  int64_t since_ms, int offset, int count, const struct fhir_access *acc,
			  struct fhir_stored **out, int *n, int64_t *total);

#endif
