/* fhir/search.h — FHIR R4 search compiled into one parametrised SQL statement.
 *
 * fhir_search_compile() turns a resource type and the client's query arguments into SQL over
 * `resources r` with one `r.rkey IN (SELECT rkey FROM idx_<kind> WHERE ...)` term per parameter
 * (comma-separated values OR-ed inside the term, repeated parameters AND-ed as separate terms).
 * Values are always bound, never formatted into SQL; parameter names and codes that reach the SQL
 * text come only from the generated search-parameter tables (fhir/resource.h) and from this file.
 * fhir_search_run() executes it inside a store unit of work and returns the current versions' stored
 * JSON bytes, the total and the paging window.
 *
 * Supported (the CapabilityStatement lists exactly this):
 *   string    starts-with on the normalized text (case- and accent-insensitive), :exact, :contains
 *   token     code, system|code, |code, system|, :not, :text (starts-with on the display text)
 *   date      eq ne lt gt le ge sa eb ap prefixes; partial dates are ranges [lo,hi)
 *   reference Type/id, id, absolute URL, :Type modifier
 *   number    prefixes; eq honours the precision of the value (100 matches [99.5,100.5))
 *   quantity  [prefix]value[|system|code]
 *   uri       exact, :below (prefix), :above
 *   every kind: :missing=true|false
 *   _id, _lastUpdated, _count (default 20, max page_max), _offset, _sort (_id, _lastUpdated, or a
 *   string/date/number/token parameter; "-" for descending; several comma-separated),
 *   _total=none|estimate|accurate, _summary=count, _format=json; _pretty is ignored.
 * Unknown parameters, unsupported modifiers and malformed values are MC_EINVAL with a message that
 * names the parameter; with opts.lenient unknown parameters (only) are ignored instead.
 */
#ifndef MC_FHIR_SEARCH_H
#define MC_FHIR_SEARCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "fhir/store.h"
#include "http/route.h"
#include "store/store.h"

struct arena;

/* Which patients' rows a listing may show (auth_patient_scope). For resource types outside the
 * patient compartment the scope does not apply (they are not patient data; RBAC decided).
 * Rows of compartment types with no patient are shown only with AUTH_SCOPE_ALL (fail closed). */
struct fhir_access {
	enum auth_scope scope;
	const char *patient_id;   /* AUTH_SCOPE_OWN: the principal's patient id */
	int64_t user_id;          /* AUTH_SCOPE_CARE: the principal's user id */
	int64_t now_ms;           /* AUTH_SCOPE_CARE: now (break-glass expiry); 0 = mctime_now_ms() */
};

/* True when resources of `type` belong to a patient's compartment
 * (spec/fhir-r4/compartmentdefinition-patient.json). */
bool fhir_type_in_patient_compartment(const char *type);

/* SQL text plus its bound arguments ($1..$nargs in order). */
#define FHIR_SQL_MAX_ARGS 200
struct fhir_sql {
	struct buf sql;
	size_t nargs;
	struct store_arg args[FHIR_SQL_MAX_ARGS];
};
void fhir_sql_init(struct fhir_sql *q);
void fhir_sql_release(struct fhir_sql *q);
/* Append an argument; writes its placeholder ("$n") into q->sql. MC_ETOOBIG past the maximum.
 * Text arguments are borrowed: they must outlive the query (use arena strings). */
int fhir_sql_arg(struct fhir_sql *q, struct store_arg a);
/* Append " AND (<access condition over alias r>)" for type (NULL = any type: the condition then
 * tests r.type per row). Nothing is appended for AUTH_SCOPE_ALL. */
int fhir_access_sql(struct fhir_sql *q, const struct fhir_access *acc, const char *type);

/* True when sp can be searched here (what the CapabilityStatement lists): every kind but composite
 * and special, and not _content/_text/_query (full-text and named queries). */
struct fhir_sp;
bool fhir_search_param_supported(const struct fhir_sp *sp);

enum fhir_total_mode { FHIR_TOTAL_ACCURATE, FHIR_TOTAL_NONE };

struct fhir_search {
	const char *type;
	struct fhir_sql where;       /* "r.type = $1 AND r.deleted = 0 AND ..." */
	struct buf order;            /* " ORDER BY ..." */
	int count, offset;           /* page window */
	enum fhir_total_mode total_mode;
	bool summary_count;          /* _summary=count: total only, no entries */
	/* the accepted query, re-encoded without _count/_offset, for self/next/previous links
	 * ("name=jo&birthdate=ge1980"); arena-owned */
	const char *canon_query;
};

struct fhir_search_opts {
	struct fhir_access access;
	int page_max;                /* cfg page_max; <= 0 means 100 */
	int page_default;            /* <= 0 means 20 (capped by page_max) */
	bool lenient;                /* Prefer: handling=lenient — ignore unknown parameters */
};

/* Compile. On MC_EINVAL *err receives a client-safe message (arena string) naming the parameter.
 * *out is arena-allocated; release with fhir_search_release() (also registered on the arena, so
 * destroying the arena is enough). type must be a resource type. */
int fhir_search_compile(struct arena *a, const char *type, const struct kv *q, size_t nq,
			const struct fhir_search_opts *opts, struct fhir_search **out, const char **err);
void fhir_search_release(struct fhir_search *s);

struct fhir_search_result {
	int64_t total;               /* -1 when not computed (_total=none) */
	size_t n;
	struct fhir_stored *v;       /* arena-owned, n entries, json never NULL */
	bool more;                   /* another page follows */
};
/* Run inside a store unit of work (store_read). */
int fhir_search_run(struct store_txn *t, struct arena *a, const struct fhir_search *s,
		    struct fhir_search_result *out);

/* application/x-www-form-urlencoded (also the query string): split and percent-decode into an
 * arena array of at most max pairs. MC_EINVAL on bad escapes, MC_ETOOBIG past max. */
int fhir_form_parse(struct arena *a, const char *body, size_t len, size_t max, struct kv **out, size_t *n);
/* Percent-encode s for a query component into b. */
int fhir_url_encode(struct buf *b, const char *s);

#endif
