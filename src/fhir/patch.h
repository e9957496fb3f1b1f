/* fhir/patch.h — JSON Patch (RFC 6902) for FHIR resources: PATCH /fhir/{type}/{id} with
 * Content-Type application/json-patch+json, and PATCH entries of Bundles (fhir/bundle.h).
 *
 * Engine: fhir_patch_apply() applies the operations add, remove, replace, move, copy and test, in
 * order, to a copy of the document, and replaces the document only when every operation succeeded
 * (atomic, RFC 6902 §5). JSON Pointers (RFC 6901): "" is the whole document, "~1" is '/', "~0" is
 * '~' (any other '~' escape is an error), array indexes are decimal without leading zeros, "-" is
 * the end of an array (add, and the target of move/copy only). test compares by JSON value; numbers
 * compare by numeric value (1.50 equals 1.5), so FHIR decimal strings (core/json.h) work.
 *
 * Interaction: the patched resource must keep its resourceType and id (400 otherwise), is validated
 * with fhir_validate (400 with every issue), and is stored as a new version inside one unit of work
 * (If-Match honoured: 412). A failed test is 422; a malformed patch or a pointer that selects
 * nothing is 400.
 */
#ifndef MC_FHIR_PATCH_H
#define MC_FHIR_PATCH_H
#include <jansson.h>
#include <stddef.h>

#include "fhir/resource.h"
#include "fhir/rest_int.h"
#include "http/route.h"

#define FHIR_PATCH_MAX_OPS 1000       /* operations in one patch */
#define FHIR_PATCH_MAX_DEPTH 64       /* reference tokens in one pointer */

struct fhir_patch_error {
	size_t op;            /* index of the failing operation */
	char path[160];       /* "/0/path" style location of the problem in the patch document */
	char msg[200];        /* client-safe: never echoes document values */
};

/* Apply patch (a JSON array of operation objects) to *doc. On MC_OK *doc may be a new object (a
 * replace of the root): the old reference is released and the caller owns the new one. On error
 * *doc is untouched and err (may be NULL) says which operation and why:
 *   MC_EINVAL  malformed patch, bad pointer, or a pointer that selects nothing
 *   MC_EUNPROC a test operation failed
 *   MC_ETOOBIG more than FHIR_PATCH_MAX_OPS operations or FHIR_PATCH_MAX_DEPTH pointer tokens */
int fhir_patch_apply(json_t **doc, const json_t *patch, struct fhir_patch_error *err);

/* JSON value equality as test uses it (numbers by value). */
bool fhir_patch_equal(const json_t *a, const json_t *b);

/* Patch step inside a write unit: read the current version of w->type/w->id (404/410), gate read
 * and write access, check w->if_match, apply ops, check resourceType/id unchanged, validate (issues
 * into *is, MC_EINVAL), and store through fhir_rest_update_step. On success w->res is the stored
 * resource (a new reference owned by the request arena). perr and is may be NULL. */
int fhir_patch_step(struct store_txn *t, struct fhir_wctx *w, const json_t *ops, struct fhir_patch_error *perr,
		    struct fhir_issues *is);

/* PATCH /fhir/{type}/{id} (in fhir_bundle_routes). */
int fhir_h_patch(struct req *r, struct reply *rep);

#endif
