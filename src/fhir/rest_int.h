/* fhir/rest_int.h — the single-resource steps of fhir/rest.c, shared with the other FHIR
 * interaction files (bundle.c, patch.c, conditional.c). Not a public API: only src/fhir uses it.
 *
 * A step runs inside a store unit of work (store_write for writes, store_read or a write unit for
 * reads) on behalf of request r: it checks which patient (auth_patient_access; RBAC for the type is
 * the caller's job), writes, and records what it touched in r->audit (resource_id, patient_id,
 * reason "break-the-glass"). On refusal it calls req_fail (r->err_msg) and returns the MC_* code.
 * Strings a step stores in r or in its context are arena (r->arena) strings or borrowed from the
 * caller; nothing needs freeing.
 */
#ifndef MC_FHIR_REST_INT_H
#define MC_FHIR_REST_INT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "http/route.h"

#define FHIR_REST_CT "application/fhir+json; charset=utf-8"

/* Write context: create, update, delete (and conditional create). res is borrowed; the store
 * stamps id and meta into it. */
struct fhir_wctx {
	struct req *r;
	const char *type, *id;      /* id: NULL for create (server-assigned, or res.id when set) */
	json_t *res;                /* create/update: the validated resource; NULL for delete */
	int64_t if_match;           /* 0 = unconditional */
	const char *if_none_exist;  /* create: conditional create query ("identifier=a|b"); NULL = plain */
	struct fhir_meta meta;      /* out: the written (or matched) version */
	bool created;               /* out (update): the resource did not exist */
	bool matched;               /* out (conditional create): an existing resource matched; nothing
	                               was written, meta and match describe it */
	struct fhir_stored match;   /* out: the matched resource's stored bytes (arena) */
};
/* Each takes a struct fhir_wctx * (store_work_fn shape, so it can be a unit by itself). */
int fhir_rest_create_step(struct store_txn *t, void *w);
int fhir_rest_update_step(struct store_txn *t, void *w);
int fhir_rest_delete_step(struct store_txn *t, void *w);

/* Read context: read (version 0) or vread. st.json is arena-owned. Returns MC_OK, MC_EGONE (meta
 * filled), MC_ENOTFOUND, MC_EFORBIDDEN. */
struct fhir_rctx {
	struct req *r;
	const char *type, *id;
	int64_t version;
	struct fhir_stored st;
};
int fhir_rest_read_step(struct store_txn *t, void *c);

/* May r reach a resource of type owned by patient pid ("" = none)? (req_fail on refusal.) */
int fhir_rest_patient_gate(struct store_txn *t, struct req *r, const char *type, const char *pid, bool write);
/* The access level auth_patient_access/auth_patient_scope need for type. */
enum auth_access fhir_rest_access_level(const char *type, bool write);
/* {type} of the route: a served resource type (404 otherwise; AuditEvent 405). Sets audit type. */
int fhir_rest_check_type(struct req *r, const char **type);
/* W/"3", "3" or 3 → 3. 0 when h is NULL; -1 when malformed. */
int64_t fhir_rest_parse_etag(const char *h);
/* "Tue, 24 Nov 2026 13:02:11 GMT" */
void fhir_rest_http_date(int64_t ms, char out[40]);
/* ETag and Last-Modified headers of m. */
void fhir_rest_version_headers(struct reply *rep, struct req *r, const struct fhir_meta *m);
/* Prefer: return=... → "minimal", "OperationOutcome" or "representation" (default). */
const char *fhir_rest_prefer_return(struct req *r);
/* The body of a successful write per Prefer: res, nothing, or an informational OperationOutcome. */
int fhir_rest_reply_written(struct req *r, struct reply *rep, int status, json_t *res);
/* 400 OperationOutcome listing every issue (with its expression); returns MC_EINVAL. */
int fhir_rest_reply_issues(struct req *r, struct reply *rep, const struct fhir_issues *is);
/* The options of a search of type made by r: its patient scope, the access rules for other types
 * reached by chains, _has and _include, page limit, Prefer: handling. Bundle entries use it too. */
struct fhir_search_opts;
void fhir_rest_search_opts(struct req *r, const char *type, struct fhir_search_opts *o);
/* Clinicians who create a Patient join its care team. */
bool fhir_rest_joins_care_team(const struct auth_principal *p);

#endif
