/* fhir/bundle.h — FHIR R4 batch and transaction Bundles (POST /fhir), plus the route table of the
 * FHIR interactions added beside rest.c: PATCH (fhir/patch.h) and conditional update/delete
 * (fhir/conditional.h).
 *
 *   POST   /fhir                  Bundle type batch | transaction   (permission "self": RBAC per entry)
 *   PATCH  /fhir/{type}/{id}      application/json-patch+json
 *   PUT    /fhir/{type}?criteria  conditional update
 *   DELETE /fhir/{type}?criteria  conditional delete
 *
 * transaction: every entry runs inside ONE store_write unit; the first failing entry rolls all of
 *   them back and the reply is that entry's OperationOutcome (its status, expression
 *   "Bundle.entry[i]..."). Processing order (R4 §3.1.0.11.2): DELETE, POST (Patients first, so a
 *   clinician's new patient is in their care before the patient's other resources are written),
 *   PUT/PATCH, GET; the response lists entries in request order. POST entries whose fullUrl is
 *   "urn:uuid:..." get their id before anything is written; every Reference.reference equal to such
 *   a fullUrl, anywhere in any entry's resource, is rewritten to "Type/id" (an urn:uuid reference
 *   that resolves to no entry is 400). Conditional create (request.ifNoneExist), conditional update
 *   (PUT Type?criteria) and delete (DELETE Type?criteria) search inside the transaction.
 * batch: each entry is its own unit (writes) or read; failures are reported per entry.
 * Both: RBAC per entry (auth_fhir_perm of the entry's type), then the same patient-level checks as
 *   the single-resource handlers (they run the same steps, fhir/rest_int.h). One audit record per
 *   entry, appended inside the entry's unit. Prefer: return=minimal|representation|OperationOutcome
 *   decides entry.resource / entry.response.outcome of writes.
 * Limits: FHIR_BUNDLE_MAX_ENTRIES entries; body FHIR_BUNDLE_MAX_BODY (the route's max_body — the
 *   server-wide --max-body, 1 MiB by default, still caps it); request.url relative to this server
 *   ("Patient/1", "Patient?identifier=x"); absolute URLs only when they start with this server's
 *   own base "<base>/fhir/".
 */
#ifndef MC_FHIR_BUNDLE_H
#define MC_FHIR_BUNDLE_H
#include <jansson.h>
#include <stddef.h>

#include "http/route.h"

#define FHIR_BUNDLE_MAX_ENTRIES 1000
#define FHIR_BUNDLE_MAX_BODY ((size_t)16 << 20)

extern const struct route_table fhir_bundle_routes;

/* Processing pass of an entry: 0 DELETE, 1 POST of a Patient, 2 other POST, 3 PUT/PATCH, 4 GET/HEAD;
 * -1 for another method. */
int fhir_bundle_pass(const char *method, const char *type);
/* order[k] = index of the k-th entry to process (stable within a pass). Entries of pass -1 come last.
 * methods[i], types[i] describe entry i (types[i] may be NULL). */
void fhir_bundle_order(const char *const *methods, const char *const *types, size_t n, size_t *order);

/* urn:uuid resolution: from[i] (a fullUrl such as "urn:uuid:...") becomes to[i] ("Patient/abc"). */
struct fhir_urn_map {
	size_t n;
	const char *const *from;
	const char *const *to;
};
/* Rewrite, recursively, every object member "reference" of res whose string value equals a
 * from[i] into to[i]. With strict, a "reference" that starts with "urn:uuid:" or "urn:oid:" and is
 * in no map entry is MC_EINVAL, and bad_path (size badsz, may be NULL) receives its location as
 * prefix + ".member[2].reference". *rewritten (may be NULL) counts the replacements. */
int fhir_bundle_rewrite_refs(json_t *res, const struct fhir_urn_map *m, bool strict, const char *prefix,
			     char *bad_path, size_t badsz, size_t *rewritten);

#endif
