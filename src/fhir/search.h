/* fhir/search.h — FHIR R4 search (§3.1.1) compiled into parametrised SQL.
 *
 * fhir_search_compile() turns a resource type and the client's query arguments into SQL over
 * `resources r` with one `r.rkey IN (SELECT rkey FROM idx_<kind> WHERE ...)` term per parameter
 * (comma-separated values OR-ed inside the term, repeated parameters AND-ed as separate terms).
 * Values are always bound, never formatted into SQL; parameter names, codes and type names that
 * reach the SQL text come only from the generated tables (fhir/resource.h) and from search.c.
 * fhir_search_run() executes it inside a store unit of work and returns the current versions'
 * stored JSON bytes, the total, the paging window and the _include/_revinclude resources;
 * fhir_search_bundle() writes the searchset Bundle.
 *
 * Supported (the CapabilityStatement lists exactly the parameters fhir_search_param_supported()
 * accepts; fhir_search_coverage() gives the fraction of R4's search parameters that is):
 *   string    starts-with on the normalized text (case- and accent-insensitive), :exact, :contains
 *   token     code, system|code, |code, system|, :not, :text (starts-with on the display text),
 *             :of-type on Identifier (type-system|type-code|value)
 *   date      eq ne lt gt le ge sa eb ap prefixes; partial dates are ranges [lo,hi)
 *   reference Type/id, id, absolute URL, :Type modifier
 *   number    prefixes; eq honours the precision of the value (100 matches [99.5,100.5))
 *   quantity  [prefix]value[|system|code]
 *   uri       exact, :below (prefix), :above
 *   composite two components, the first a token: code-value-quantity=http://loinc.org|8480-6$gt100
 *             (component values are paired within one element: Observation.component[i]). The
 *             extractor writes one row per (first-component coding, second-component value) into
 *             the second component's index table, under param "<code>$<code>|<system>"
 *             (fhir_composite_key): code alone is a prefix range, system|code an exact key.
 *             Observation combo-* = the union of X and component-X (fhir_search_combo_of).
 *   phonetic  American Soundex (fhir_phonetic) of each family and given name, exact match on the
 *             code of the search value: one 4-character row per name part.
 *   every kind: :missing=true|false
 *   chains    one level: subject:Patient.name=smith, patient.birthdate=ge1980 (the reference's
 *             targets that have the chained parameter; they must agree on its kind, else :Type is
 *             required). Joined through idx_ref to the target's index rows.
 *   _has      one level: _has:Observation:patient:code=1234-5
 *   _id, _lastUpdated, _count (default 20, max page_max), _offset, _sort (_id, _lastUpdated, or a
 *   string/date/number/token/quantity/uri/reference parameter; "-" for descending; several
 *   comma-separated keys), _total=none|estimate|accurate, _summary=true|text|data|count|false,
 *   _elements=a,b, _include / _revinclude (Type:param[:target], Type:*, *; :iterate one more
 *   level), _format=json; _pretty is ignored.
 *   _summary=true: the R4 schema we generate from carries no isSummary flags, so "summary" is
 *   approximated as id, meta, implicitRules, text, status and the top-level elements the schema
 *   marks required;
 *   _summary=text gives the same set; _summary=data drops text. _elements keeps the listed
 *   top-level elements (a choice name such as "value" keeps valueQuantity...) plus id, meta,
 *   status and the required elements. Both add meta.tag SUBSETTED.
 *
 * Handling: lenient is the default (Prefer: handling=lenient or nothing): unknown parameters,
 * unsupported parameters and unsupported modifiers are ignored and listed in s->ignored; the
 * Bundle then carries an OperationOutcome entry (search.mode "outcome", severity warning).
 * opts.strict (Prefer: handling=strict) makes them MC_EINVAL. Malformed values are MC_EINVAL
 * either way; every message names the parameter and is safe to show to the client.
 *
 * Access: the main search, every chain target, every _has source and every included resource
 * pass the same compartment/scope rules (fhir_access_sql): opts.type_access gives the rules for
 * other resource types (RBAC per type + patient scope); a type it refuses contributes nothing, and
 * without the callback every other type is refused (fail closed).
 *
 * Paging (consistent while writes happen): the first page records a snapshot bound, the largest
 * rkey at the time (rkeys only grow; an update keeps its rkey). Every next/previous link carries
 * _snapshot=<bound>, and every page then only considers r.rkey <= bound, so resources created
 * after the first page never shift later pages nor change the total. With the default order
 * (r.rkey) the next link also carries _cursor=<last rkey of the page> (keyset paging: the next
 * page is rkey > cursor, so deletions do not shift pages either); with _sort the next page is the
 * offset within the snapshot. _offset stays the logical position (for the previous link).
 * Updates of existing resources may still move them between pages (they keep their rkey).
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

/* Like fhir_access_sql for a resources table under another alias ("t", "h"); alias is a
 * constant of the caller ([a-z]). */
int fhir_access_sql_alias(struct fhir_sql *q, const struct fhir_access *acc, const char *type, const char *alias);

/* True when sp can be searched here (what the CapabilityStatement lists): every kind with an
 * indexed path (composites: with translated components), not special, not _content/_text/_query
 * (full-text and named queries). */
struct fhir_sp;
bool fhir_search_param_supported(const struct fhir_sp *sp);
/* Coverage of R4 search parameters (every (base type, code) of search-parameters.json that the
 * generator knows, including Resource/DomainResource ones): *supported of *total are supported
 * end to end. Returns the fraction (0..1). Either pointer may be NULL. */
double fhir_search_coverage(size_t *supported, size_t *total);

/* Observation's combo-X parameters ("Observation | Observation.component") are exactly the union
 * of X and component-X: they are not indexed (saving rows on every create) but searched over both.
 * True when code of type is such a parameter; then parts (if not NULL) gets the two codes. */
bool fhir_search_combo_of(const char *type, const char *code, const char *parts[2]);

/* Soundex code of s (normalized first; non-letters skipped): "Robert" → "R163". False when s has
 * no letter a-z. out has FHIR_PHONETIC_LEN bytes. */
#define FHIR_PHONETIC_LEN 5
bool fhir_phonetic(const char *s, char out[FHIR_PHONETIC_LEN]);
/* The index param of a composite row: "<code>$<value>|<system>" (system "" = none), value being
 * the first component's code. False when it does not fit in outsz. */
bool fhir_composite_key(char *out, size_t outsz, const char *code, const char *system, const char *value);

/* Bundle.total. The default (no _total, or _total=estimate) counts matches up to
 * FHIR_TOTAL_BOUND and gives the exact total when there are no more than that, and no total
 * otherwise (FHIR leaves total optional): counting every match of a broad search ("family=mu"
 * among 100k patients) costs more than the page itself. _total=accurate always counts. */
#define FHIR_TOTAL_BOUND 1000
enum fhir_total_mode { FHIR_TOTAL_BOUNDED = 0, FHIR_TOTAL_ACCURATE, FHIR_TOTAL_NONE };
enum fhir_summary { FHIR_SUMMARY_FALSE, FHIR_SUMMARY_TRUE, FHIR_SUMMARY_TEXT, FHIR_SUMMARY_DATA };

/* Access rules for resources of `type` reached from a search (chains, _has, includes): MC_OK and
 * *out filled, or non-zero when the caller may not read that type at all. */
typedef int fhir_type_access_fn(void *ctx, const char *type, struct fhir_access *out);

struct fhir_search_opts {
	struct fhir_access access;   /* for the searched type */
	fhir_type_access_fn *type_access;   /* NULL: only the searched type is readable (chains,
	                                     * _has, includes into other types match nothing) */
	void *type_access_ctx;       /* borrowed; must outlive fhir_search_run */
	int page_max;                /* cfg page_max; <= 0 means 100 */
	int page_default;            /* <= 0 means 20 (capped by page_max) */
	bool strict;                 /* Prefer: handling=strict — unknown parameters are errors */
};

#define FHIR_SEARCH_MAX_INCLUDES 10
struct fhir_include {
	bool rev, iterate;
	const char *src_type;        /* the type holding the reference */
	const char *param;           /* reference parameter code; NULL = every reference ("*") */
	const char *target;          /* target type or NULL */
};

struct fhir_search {
	const char *type;
	struct fhir_sql where;       /* "r.deleted = 0 AND ... AND r.type = $n" */
	struct buf order;            /* " ORDER BY ..." */
	bool default_order;          /* ORDER BY r.rkey (keyset paging applies) */
	int count, offset;           /* page window; offset = logical position of the page */
	int64_t cursor;              /* _cursor: rkey > cursor (0: none) */
	int64_t snapshot;            /* _snapshot: rkey <= snapshot (0: none; set by the first page) */
	enum fhir_total_mode total_mode;
	bool summary_count;          /* _summary=count: total only, no entries */
	enum fhir_summary summary;
	const char **elements;       /* _elements (arena), NULL-terminated; NULL when absent */
	struct fhir_include inc[FHIR_SEARCH_MAX_INCLUDES];
	size_t ninc;
	const char **ignored;        /* lenient: ignored parameter names (client-safe, arena) */
	size_t nignored;
	struct fhir_search_opts opts;  /* copy (type_access for includes at run time) */
	/* the accepted query, re-encoded without paging parameters (_count, _offset, _cursor,
	 * _snapshot), for self/next/previous links ("name=jo&birthdate=ge1980"); arena-owned */
	const char *canon_query;
};

/* Compile. On MC_EINVAL *err receives a client-safe message (arena string) naming the parameter.
 * *out is arena-allocated; release with fhir_search_release() (also registered on the arena, so
 * destroying the arena is enough). type must be a resource type. */
int fhir_search_compile(struct arena *a, const char *type, const struct kv *q, size_t nq,
			const struct fhir_search_opts *opts, struct fhir_search **out, const char **err);
void fhir_search_release(struct fhir_search *s);

#define FHIR_SEARCH_MAX_INCLUDED 500   /* included resources per page (more are dropped) */
struct fhir_search_result {
	int64_t total;               /* -1 when not computed (_total=none, or past the bound) */
	size_t n;
	struct fhir_stored *v;       /* arena-owned, n entries, json never NULL */
	int64_t *rkeys;              /* rkeys of v (arena) */
	bool more;                   /* another page follows */
	int64_t snapshot;            /* the bound for next/previous links */
	int64_t last_rkey;           /* rkey of the last entry (the next page's _cursor) */
	size_t ninc;
	struct fhir_stored *inc;     /* _include/_revinclude resources (arena), never in v */
};
/* Run inside a store unit of work (store_read): the page, then the includes. */
int fhir_search_run(struct store_txn *t, struct arena *a, const struct fhir_search *s,
		    struct fhir_search_result *out);

/* The searchset Bundle into b: total, self/next/previous links (base = ".../fhir/<type>"),
 * entries (search.mode match, shaped by _summary/_elements), included resources (mode
 * include; fullUrl from fhir_base = ".../fhir"), and the OperationOutcome of ignored
 * parameters (mode outcome). MC_ETOOBIG when b's limit is reached. */
int fhir_search_bundle(struct buf *b, struct arena *a, const char *fhir_base, const struct fhir_search *s,
		       const struct fhir_search_result *res);

/* application/x-www-form-urlencoded (also the query string): split and percent-decode into an
 * arena array of at most max pairs. MC_EINVAL on bad escapes, MC_ETOOBIG past max. */
int fhir_form_parse(struct arena *a, const char *body, size_t len, size_t max, struct kv **out, size_t *n);
/* Percent-encode s for a query component into b. */
int fhir_url_encode(struct buf *b, const char *s);

#endif
