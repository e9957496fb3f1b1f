/* fhir/conditional.h — conditional interactions (FHIR R4 §3.1.0.8–3.1.0.9, §3.1.0.7.1).
 *
 *   POST   /fhir/{type}            + If-None-Exist: q   conditional create (in rest.c's create step)
 *   PUT    /fhir/{type}?q                               conditional update
 *   DELETE /fhir/{type}?q                               conditional delete
 *   GET    /fhir/{type}/{id}       + If-Modified-Since  conditional read (rest.c; If-None-Match too)
 *
 * Matching is a search (fhir/search.h) run inside the caller's unit of work, so it sees what earlier
 * entries of the same transaction wrote. It is narrowed to the patients the caller may read
 * (auth_patient_scope): a resource the caller cannot see never matches, so a conditional
 * interaction never reveals that a hidden resource exists (a clinician's conditional create may
 * then create a second record for a patient outside their care; that is the price of not leaking).
 * 0 matches: create (create/update) or nothing to do (delete, 204); 1: that resource; more: 412.
 */
#ifndef MC_FHIR_CONDITIONAL_H
#define MC_FHIR_CONDITIONAL_H
#include <stdint.h>

#include "fhir/store.h"
#include "http/route.h"

struct fhir_wctx;

#define FHIR_COND_MAX_PARAMS 30

struct fhir_cond {
	int n;                   /* 0, 1, or 2 meaning "more than one" */
	struct fhir_stored one;  /* n == 1: the match (current version, json arena-owned) */
};

/* Match query ("identifier=a%7Cb&family=x", a URL query string without '?') against the current
 * resources of type that r->who may read. Search-result parameters (_count, _sort, _include...)
 * are refused. MC_EINVAL (req_fail'd, client-safe message) for an empty or invalid query. */
int fhir_cond_match(struct store_txn *t, struct req *r, const char *type, const char *query,
		    struct fhir_cond *out);

/* Conditional update step: w->type, w->res set (validated), w->id NULL. Matches query; 0 → create
 * (with res.id when given, else a new id), 1 → update it (res.id absent or equal, else MC_EINVAL),
 * more → MC_EPRECOND. */
int fhir_cond_update_step(struct store_txn *t, struct fhir_wctx *w, const char *query);
/* Conditional delete step: 0 matches → MC_OK with w->meta.id "" (nothing deleted), 1 → deleted,
 * more → MC_EPRECOND. */
int fhir_cond_delete_step(struct store_txn *t, struct fhir_wctx *w, const char *query);

/* HTTP-date (RFC 9110: IMF-fixdate, also the obsolete RFC 850 and asctime forms) → ms since the
 * epoch. MC_EINVAL when malformed. */
int fhir_http_date_parse(const char *s, int64_t *ms);

/* PUT /fhir/{type}?q and DELETE /fhir/{type}?q (in fhir_bundle_routes, fhir/bundle.h). */
int fhir_h_cond_update(struct req *r, struct reply *rep);
int fhir_h_cond_delete(struct req *r, struct reply *rep);

#endif
