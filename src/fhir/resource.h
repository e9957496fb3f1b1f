/* fhir/resource.h — the R4 definitions as data, structural validation and search-index extraction.
 *
 * Driven by tables generated from spec/fhir-r4/ by tools/gen_fhir.py (src/fhir/gen_*.c, committed).
 * Pure functions: no store, no HTTP. Thread-safe (tables are const).
 */
#ifndef MC_FHIR_RESOURCE_H
#define MC_FHIR_RESOURCE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- validation ---- */
#define FHIR_MAX_ISSUES 20
struct fhir_issue {
	char code[24];          /* OperationOutcome issue.code: "structure", "value", "required", "invalid" */
	char path[256];         /* FHIRPath-ish: "Patient.name[0].family" */
	char msg[256];          /* safe for clients: describes the problem, never echoes long input */
};
struct fhir_issues {
	size_t n;
	struct fhir_issue v[FHIR_MAX_ISSUES];
};

bool fhir_type_is_resource(const char *type);      /* "Patient" → true; "HumanName" → false */
/* Validate res against the R4 schema for `type` (resourceType must equal type): unknown elements,
 * wrong JSON types, primitive formats (id, date, dateTime, instant, code, uri, decimal...),
 * enumerated codes where the schema fixes them, cardinality (array vs single), required elements,
 * at most one choice[x] variant. Decimals arrive as mcjson decimal strings (core/json.h).
 * Returns MC_OK, or MC_EINVAL with issues filled (at least one). */
int fhir_validate(const json_t *res, const char *type, struct fhir_issues *out);

/* ---- search parameters ---- */
enum fhir_sp_type {
	FHIR_SP_NUMBER, FHIR_SP_DATE, FHIR_SP_STRING, FHIR_SP_TOKEN, FHIR_SP_REFERENCE,
	FHIR_SP_COMPOSITE, FHIR_SP_QUANTITY, FHIR_SP_URI, FHIR_SP_SPECIAL
};
struct fhir_sp;   /* generated; opaque */
/* The search parameter `code` of resource `type`, including the ones every resource has
 * (_id, _lastUpdated, _tag, _profile, _security, _source). NULL when unknown. */
const struct fhir_sp *fhir_sp_find(const char *type, const char *code);
enum fhir_sp_type fhir_sp_type(const struct fhir_sp *sp);
const char *fhir_sp_code(const struct fhir_sp *sp);
/* For each param of type: cb(sp). For CapabilityStatement. */
void fhir_sp_each(const char *type, void (*cb)(const struct fhir_sp *sp, void *arg), void *arg);
const char *fhir_sp_documentation(const struct fhir_sp *sp);   /* may be "" */
/* Names of all resource types, NULL-terminated, sorted. */
const char *const *fhir_resource_types(void);

/* One extracted index value. Strings are borrowed: valid only during the callback. */
struct fhir_index_row {
	enum fhir_sp_type type;
	const char *param;        /* search parameter code, e.g. "family" */
	const char *text;         /* STRING: normalized (fhir_normalize); URI: the uri; TOKEN: display text or NULL */
	const char *raw;          /* STRING: original text */
	const char *system;       /* TOKEN/QUANTITY: system or NULL */
	const char *code;         /* TOKEN: code (exact); QUANTITY: unit code or NULL */
	int64_t lo, hi;           /* DATE: [lo, hi) in ms since epoch */
	double num;               /* NUMBER/QUANTITY value */
	const char *ref_type;     /* REFERENCE: "Patient" (NULL for absolute URLs we cannot split) */
	const char *ref_id;       /* REFERENCE: "123", or the whole URL */
};
typedef int fhir_index_fn(const struct fhir_index_row *row, void *arg);  /* non-zero stops, returned */
/* Extract every index value of every search parameter of `type` (the generated expressions,
 * evaluated over res). Composite and special parameters are skipped. */
int fhir_index_extract(const char *type, const json_t *res, fhir_index_fn *cb, void *arg);

/* Patient compartment (compartmentdefinition-patient.json): the patient a resource belongs to.
 * For Patient itself it is its own id. Writes the id of the first patient reference found via the
 * compartment's params into out (size >= 65) and returns true; false when the resource is not in
 * any patient's compartment. */
bool fhir_patient_of(const char *type, const json_t *res, char out[65]);

/* Case- and accent-insensitive form for string search: UTF-8 → lowercase, Latin diacritics
 * removed (é→e, ß→ss, Ø→o ...), whitespace runs folded to one space. out is NUL-terminated;
 * returns MC_ETOOBIG when it does not fit. */
int fhir_normalize(const char *in, char *out, size_t outsz);

#endif
