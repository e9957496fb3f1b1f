/* fhir/search.c — the FHIR search compiler and runner (fhir/search.h).
 *
 * Shape of the statement:
 *   SELECT ... FROM resources r CROSS JOIN resource_versions v
 *   WHERE v.rkey = r.rkey AND v.version = r.version
 *     AND r.deleted = 0
 *     AND r.rkey IN (SELECT x.rkey FROM idx_ref x WHERE param = $2 AND (ref_id = $3 AND ...))
 *     AND EXISTS (SELECT 1 FROM idx_date x WHERE x.rkey = r.rkey AND param = $5 AND (...))
 *     AND ... one term per query parameter ...
 *     AND +r.type = $1                 -- '+': let the planner drive from the IN term instead
 *   [AND r.rkey <= snapshot AND r.rkey > cursor]   -- paging (fhir_search_run)
 *   ORDER BY r.rkey LIMIT n OFFSET m
 * The most selective term (pick_driver: a reference/token/composite equality or a chain, then a
 * string...) is `rkey IN (subquery)`: SQLite walks that index table's primary key range and looks
 * resources up by rowid, in rowid order (no sort step). Every other term is a correlated EXISTS
 * probe through the index table's rkey index, so a broad term (a date range over a million
 * Observations) is never materialized. Every client value is a bound argument; the only text
 * formatted into SQL is this file's constants, search-parameter codes and resource type names
 * from the generated tables (checked again to be plain before use) and integers we parsed.
 * Chains, _has and _include/_revinclude add the access condition of the resources they reach
 * (types_access_sql), so nothing the caller may not read influences or enters a result.
 */
#include "fhir/search.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "fhir/gen_fhir.h"
#include "fhir/resource.h"

#define MAX_VALUES 20         /* comma-separated values in one parameter */
#define MAX_PARAMS 40         /* query arguments in one search */
#define MAX_VALUE_LEN 512     /* bytes of one value */
#define MAX_OFFSET 1000000

/* ---- patient compartment ---- */

/* Resource types with a non-empty param list in spec/fhir-r4/compartmentdefinition-patient.json,
 * sorted (bsearch). */
static const char *const compartment_types[] = {
	"Account", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse", "AuditEvent",
	"Basic", "BodyStructure", "CarePlan", "CareTeam", "ChargeItem", "Claim", "ClaimResponse",
	"ClinicalImpression", "Communication", "CommunicationRequest", "Composition", "Condition", "Consent",
	"Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue",
	"DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference",
	"Encounter", "EnrollmentRequest", "EpisodeOfCare", "ExplanationOfBenefit", "FamilyMemberHistory",
	"Flag", "Goal", "Group", "ImagingStudy", "Immunization", "ImmunizationEvaluation",
	"ImmunizationRecommendation", "Invoice", "List", "MeasureReport", "Media", "MedicationAdministration",
	"MedicationDispense", "MedicationRequest", "MedicationStatement", "MolecularSequence", "NutritionOrder",
	"Observation", "Patient", "Person", "Procedure", "Provenance", "QuestionnaireResponse", "RelatedPerson",
	"RequestGroup", "ResearchSubject", "RiskAssessment", "Schedule", "ServiceRequest", "Specimen",
	"SupplyDelivery", "SupplyRequest", "Task", "VisionPrescription",
};

static int cmp_str(const void *k, const void *e)
{
	return strcmp((const char *)k, *(const char *const *)e);
}

bool fhir_type_in_patient_compartment(const char *type)
{
	if (!type)
		return false;
	return bsearch(type, compartment_types, sizeof(compartment_types) / sizeof(compartment_types[0]),
		       sizeof(compartment_types[0]), cmp_str) != NULL;
}

/* ---- SQL builder ---- */

void fhir_sql_init(struct fhir_sql *q)
{
	buf_init(&q->sql, (size_t)1 << 20);
	q->nargs = 0;
}

void fhir_sql_release(struct fhir_sql *q)
{
	buf_release(&q->sql);
	q->nargs = 0;
}

int fhir_sql_arg(struct fhir_sql *q, struct store_arg a)
{
	if (q->nargs >= FHIR_SQL_MAX_ARGS)
		return MC_ETOOBIG;
	q->args[q->nargs++] = a;
	return buf_printf(&q->sql, "$%zu", q->nargs);
}

/* The access condition over the resources table under alias (a caller constant, [a-z]). */
static int access_cond(struct fhir_sql *q, const struct fhir_access *acc, const char *alias)
{
	int rc;
	char col[32];
	snprintf(col, sizeof(col), "%s.patient_id", alias);
	switch (acc->scope) {
	case AUTH_SCOPE_OWN:
		if (!acc->patient_id || !acc->patient_id[0])
			return buf_puts(&q->sql, "0 = 1");
		rc = buf_printf(&q->sql, "%s = ", col);
		return rc ? rc : fhir_sql_arg(q, SA_TEXT(acc->patient_id));
	case AUTH_SCOPE_CARE: {
		if (q->nargs + 2 > FHIR_SQL_MAX_ARGS)
			return MC_ETOOBIG;
		int64_t now = acc->now_ms ? acc->now_ms : mctime_now_ms();
		q->args[q->nargs++] = SA_INT(acc->user_id);
		int u = (int)q->nargs;
		q->args[q->nargs++] = SA_INT(now);
		int n = (int)q->nargs;
		return buf_printf(&q->sql, AUTH_CARE_SQL, col, u, n, col, u, n);
	}
	case AUTH_SCOPE_ALL:
		return buf_puts(&q->sql, "1 = 1");
	case AUTH_SCOPE_NONE:
	default:
		return buf_puts(&q->sql, "0 = 1");
	}
}

int fhir_access_sql_alias(struct fhir_sql *q, const struct fhir_access *acc, const char *type, const char *alias)
{
	if (!acc || acc->scope == AUTH_SCOPE_ALL)
		return MC_OK;
	if (type) {
		if (!fhir_type_in_patient_compartment(type))
			return MC_OK;
		int rc = buf_puts(&q->sql, " AND (");
		if (!rc)
			rc = access_cond(q, acc, alias);
		return rc ? rc : buf_puts(&q->sql, ")");
	}
	/* any type: rows of non-compartment types pass; the list is this file's constants */
	int rc = buf_printf(&q->sql, " AND (%s.type NOT IN (", alias);
	for (size_t i = 0; !rc && i < sizeof(compartment_types) / sizeof(compartment_types[0]); i++)
		rc = buf_printf(&q->sql, "%s'%s'", i ? ", " : "", compartment_types[i]);
	if (!rc)
		rc = buf_puts(&q->sql, ") OR ");
	if (!rc)
		rc = access_cond(q, acc, alias);
	return rc ? rc : buf_puts(&q->sql, ")");
}

int fhir_access_sql(struct fhir_sql *q, const struct fhir_access *acc, const char *type)
{
	return fhir_access_sql_alias(q, acc, type, "r");
}

/* ---- URL forms ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int pct_decode(struct arena *a, const char *s, size_t n, const char **out)
{
	char *o = arena_alloc(a, n + 1), *w = o;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*w++ = ' ';
		} else if (s[i] == '%') {
			if (i + 2 >= n)
				return MC_EINVAL;
			int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return MC_EINVAL;
			char c = (char)(hi * 16 + lo);
			if (c == '\0')
				return MC_EINVAL;
			*w++ = c;
			i += 2;
		} else {
			*w++ = s[i];
		}
	}
	*w = '\0';
	*out = o;
	return MC_OK;
}

int fhir_form_parse(struct arena *a, const char *body, size_t len, size_t max, struct kv **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!body || len == 0)
		return MC_OK;
	size_t cnt = 1;
	for (size_t i = 0; i < len; i++)
		cnt += body[i] == '&';
	if (cnt > max)
		return MC_ETOOBIG;
	struct kv *v = arena_zalloc(a, sizeof(*v) * cnt);
	size_t k = 0, i = 0;
	while (i <= len) {
		size_t j = i;
		while (j < len && body[j] != '&')
			j++;
		if (j > i) {
			size_t eq = i;
			while (eq < j && body[eq] != '=')
				eq++;
			const char *key, *val;
			if (pct_decode(a, body + i, eq - i, &key))
				return MC_EINVAL;
			if (eq < j) {
				if (pct_decode(a, body + eq + 1, j - eq - 1, &val))
					return MC_EINVAL;
			} else {
				val = "";
			}
			v[k].key = key;
			v[k].value = val;
			k++;
		}
		i = j + 1;
	}
	*out = v;
	*n = k;
	return MC_OK;
}

int fhir_url_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = MC_OK;
	for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~' || *p == ',' || *p == ':' ||
		    *p == '|' || *p == '/')
			rc = buf_putc(b, (char)*p);
		else
			rc = buf_printf(b, "%%%c%c", hex[*p >> 4], hex[*p & 15]);
	}
	return rc;
}

/* ---- compiler ---- */

struct cc {
	struct arena *a;
	struct fhir_search *s;
	const struct fhir_search_opts *o;
	const char *type;
	const char **err;
	struct buf canon;
	bool has_in, has_id;
	int64_t now_ms;
	int cur, driver;      /* index of the query argument being compiled / the one that drives */
};

/* A client-safe rendering of a parameter name: echoed only when short and plain. */
static const char *safe_name(struct arena *a, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return "(parameter)";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '_' || c == '-' || c == ':' || c == '.'))
			return "(parameter)";
	}
	return arena_strdup(a, name);
}

static int fail(struct cc *c, const char *fmt, const char *name)
{
	*c->err = arena_printf(c->a, fmt, safe_name(c->a, name));
	return MC_EINVAL;
}

static bool code_is_plain(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.' ||
		      isupper((unsigned char)*s)))
			return false;
	}
	return true;
}

/* Find c in s not preceded by a backslash escape. */
static const char *find_unescaped(const char *s, const char *end, char ch)
{
	for (const char *p = s; p < end; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
			continue;
		}
		if (*p == ch)
			return p;
	}
	return NULL;
}

/* Copy [s,end) removing FHIR escapes (\, \| \$ \\). */
static char *unescape(struct arena *a, const char *s, const char *end)
{
	char *o = arena_alloc(a, (size_t)(end - s) + 1), *w = o;
	for (const char *p = s; p < end; p++) {
		if (*p == '\\' && p + 1 < end && (p[1] == ',' || p[1] == '|' || p[1] == '$' || p[1] == '\\'))
			p++;
		*w++ = *p;
	}
	*w = '\0';
	return o;
}

/* Split on unescaped commas; pieces keep their escapes. */
static int split_values(struct cc *c, const char *v, const char *name, const char **out, size_t *n)
{
	size_t k = 0;
	const char *p = v, *end = v + strlen(v);
	if ((size_t)(end - v) > MAX_VALUE_LEN * MAX_VALUES)
		return fail(c, "Search parameter '%s': value too long", name);
	for (;;) {
		const char *comma = find_unescaped(p, end, ',');
		const char *e = comma ? comma : end;
		if ((size_t)(e - p) > MAX_VALUE_LEN)
			return fail(c, "Search parameter '%s': value too long", name);
		if (k >= MAX_VALUES)
			return fail(c, "Search parameter '%s': too many values", name);
		out[k++] = arena_strndup(c->a, p, (size_t)(e - p));
		if (!comma)
			break;
		p = comma + 1;
	}
	*n = k;
	return MC_OK;
}

static int arg(struct cc *c, struct store_arg a)
{
	return fhir_sql_arg(&c->s->where, a);
}

static int put(struct cc *c, const char *s)
{
	return buf_puts(&c->s->where.sql, s);
}

enum prefix { P_EQ, P_NE, P_GT, P_LT, P_GE, P_LE, P_SA, P_EB, P_AP };

/* Strip a two-letter prefix when followed by a digit or sign. */
static enum prefix take_prefix(const char **v)
{
	static const struct {
		const char *s;
		enum prefix p;
	} t[] = {{"eq", P_EQ}, {"ne", P_NE}, {"gt", P_GT}, {"lt", P_LT}, {"ge", P_GE},
		 {"le", P_LE}, {"sa", P_SA}, {"eb", P_EB}, {"ap", P_AP}};
	const char *s = *v;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (s[0] == t[i].s[0] && s[1] == t[i].s[1] && s[1] != '\0') {
			*v = s + 2;
			return t[i].p;
		}
	}
	return P_EQ;
}

/* Date range condition over column expressions lo_col/hi_col against [slo, shi). */
static int date_cond_in(struct cc *c, enum prefix p, int64_t slo, int64_t shi, const char *lo_col, const char *hi_col)
{
	struct buf *b = &c->s->where.sql;
	int rc = MC_OK;
	switch (p) {
	case P_EQ:
	case P_NE:
		/* lo < shi is implied (lo < hi <= shi) but bounds the index range scan on lo */
		rc = buf_printf(b, "%s(%s >= ", p == P_NE ? "NOT " : "", lo_col);
		rc = rc ? rc : arg(c, SA_INT(slo));
		rc = rc ? rc : buf_printf(b, " AND %s < ", lo_col);
		rc = rc ? rc : arg(c, SA_INT(shi));
		rc = rc ? rc : buf_printf(b, " AND %s <= ", hi_col);
		rc = rc ? rc : arg(c, SA_INT(shi));
		return rc ? rc : put(c, ")");
	case P_GT:
		rc = buf_printf(b, "%s > ", hi_col);
		return rc ? rc : arg(c, SA_INT(shi));
	case P_LT:
		rc = buf_printf(b, "%s < ", lo_col);
		return rc ? rc : arg(c, SA_INT(slo));
	case P_GE:
	case P_LE:
		if (p == P_GE) {
			rc = buf_printf(b, "(%s > ", hi_col);
			rc = rc ? rc : arg(c, SA_INT(shi));
		} else {
			rc = buf_printf(b, "(%s < ", lo_col);
			rc = rc ? rc : arg(c, SA_INT(slo));
		}
		rc = rc ? rc : buf_printf(b, " OR (%s >= ", lo_col);
		rc = rc ? rc : arg(c, SA_INT(slo));
		rc = rc ? rc : buf_printf(b, " AND %s <= ", hi_col);
		rc = rc ? rc : arg(c, SA_INT(shi));
		rc = rc ? rc : put(c, "))");
		if (!rc && p == P_LE) {
			/* every match starts before shi: bound the index range scan */
			rc = buf_printf(b, " AND %s < ", lo_col);
			rc = rc ? rc : arg(c, SA_INT(shi));
		}
		return rc;
	case P_SA:
		rc = buf_printf(b, "%s >= ", lo_col);
		return rc ? rc : arg(c, SA_INT(shi));
	case P_EB:
		/* lo < slo is implied (lo < hi <= slo); it bounds the index range scan */
		rc = buf_printf(b, "(%s < ", lo_col);
		rc = rc ? rc : arg(c, SA_INT(slo));
		rc = rc ? rc : buf_printf(b, " AND %s <= ", hi_col);
		rc = rc ? rc : arg(c, SA_INT(slo));
		return rc ? rc : put(c, ")");
	case P_AP: {
		int64_t d = llabs(c->now_ms - slo) / 10;
		rc = buf_printf(b, "(%s < ", lo_col);
		rc = rc ? rc : arg(c, SA_INT(shi + d));
		rc = rc ? rc : buf_printf(b, " AND %s > ", hi_col);
		rc = rc ? rc : arg(c, SA_INT(slo - d));
		return rc ? rc : put(c, ")");
	}
	}
	return MC_EINVAL;
}

static int date_cond(struct cc *c, enum prefix p, int64_t slo, int64_t shi, const char *lo_col, const char *hi_col)
{
	int rc = put(c, "(");
	rc = rc ? rc : date_cond_in(c, p, slo, shi, lo_col, hi_col);
	return rc ? rc : put(c, ")");
}

static int parse_date(struct cc *c, const char *name, const char *v, enum prefix *p, int64_t *lo, int64_t *hi)
{
	*p = take_prefix(&v);
	if (mctime_parse_fhir(v, lo, hi, NULL) != MC_OK)
		return fail(c, "Search parameter '%s': invalid date (expected a FHIR date, e.g. ge1980-05-01)", name);
	return MC_OK;
}

/* Parse a decimal; *half = half a unit of its last significant digit (implicit precision). */
static bool parse_number(const char *v, double *out, double *half)
{
	if (!*v)
		return false;
	const char *s = v;
	if (*s == '-' || *s == '+')
		s++;
	if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
		return false;
	char *end;
	double d = strtod(v, &end);
	if (*end != '\0' || !isfinite(d))
		return false;
	int decimals = 0, exp10 = 0;
	const char *dot = strchr(v, '.');
	const char *e = strpbrk(v, "eE");
	if (dot)
		decimals = (int)((e ? e : v + strlen(v)) - dot - 1);
	if (e)
		exp10 = atoi(e + 1);
	if (exp10 > 300 || exp10 < -300)
		return false;
	*out = d;
	*half = 0.5 * pow(10.0, (double)(exp10 - decimals));
	return true;
}

static int number_cond(struct cc *c, enum prefix p, double v, double half, const char *col)
{
	struct buf *b = &c->s->where.sql;
	int rc;
	switch (p) {
	case P_EQ:
	case P_NE:
		rc = buf_printf(b, "%s(%s >= ", p == P_NE ? "NOT " : "", col);
		rc = rc ? rc : arg(c, SA_REAL(v - half));
		rc = rc ? rc : buf_printf(b, " AND %s < ", col);
		rc = rc ? rc : arg(c, SA_REAL(v + half));
		return rc ? rc : put(c, ")");
	case P_GT:
	case P_SA:
		rc = buf_printf(b, "%s > ", col);
		return rc ? rc : arg(c, SA_REAL(v));
	case P_LT:
	case P_EB:
		rc = buf_printf(b, "%s < ", col);
		return rc ? rc : arg(c, SA_REAL(v));
	case P_GE:
		rc = buf_printf(b, "%s >= ", col);
		return rc ? rc : arg(c, SA_REAL(v));
	case P_LE:
		rc = buf_printf(b, "%s <= ", col);
		return rc ? rc : arg(c, SA_REAL(v));
	case P_AP: {
		double d = fabs(v) * 0.1;
		if (d < half)
			d = half;
		rc = buf_printf(b, "(%s >= ", col);
		rc = rc ? rc : arg(c, SA_REAL(v - d));
		rc = rc ? rc : buf_printf(b, " AND %s <= ", col);
		rc = rc ? rc : arg(c, SA_REAL(v + d));
		return rc ? rc : put(c, ")");
	}
	}
	return MC_EINVAL;
}

/* The smallest string greater than every string with prefix x (byte order): x with its last
 * byte incremented. Valid UTF-8 never contains 0xFF, so the increment cannot overflow. */
static const char *prefix_next(struct arena *a, const char *x)
{
	size_t n = strlen(x);
	char *o = arena_strndup(a, x, n);
	if (n > 0)
		o[n - 1] = (char)((unsigned char)o[n - 1] + 1);
	return o;
}

static const char *table_of(enum fhir_sp_type t)
{
	switch (t) {
	case FHIR_SP_STRING: return "idx_string";
	case FHIR_SP_TOKEN: return "idx_token";
	case FHIR_SP_DATE: return "idx_date";
	case FHIR_SP_REFERENCE: return "idx_ref";
	case FHIR_SP_NUMBER: return "idx_number";
	case FHIR_SP_QUANTITY: return "idx_quantity";
	case FHIR_SP_URI: return "idx_uri";
	default: return NULL;
	}
}

/* One value's condition inside the index subquery (columns of that index table). t is the kind
 * of the values searched (the parameter's, or a composite's second component); code the
 * parameter's code. */
static int value_cond(struct cc *c, enum fhir_sp_type t, const char *spcode, const char *name, const char *mod,
		      const char *raw)
{
	const char *end = raw + strlen(raw);
	int rc;
	switch (t) {
	case FHIR_SP_STRING: {
		char *v = unescape(c->a, raw, end);
		char *norm = arena_alloc(c->a, strlen(v) * 3 + 16);
		if (fhir_normalize(v, norm, strlen(v) * 3 + 16) != MC_OK)
			return fail(c, "Search parameter '%s': value too long", name);
		if (spcode && strcmp(spcode, "phonetic") == 0 && !mod) {
			/* rows hold Soundex codes (fhir_phonetic): the value's code must equal one */
			char *ph = arena_alloc(c->a, FHIR_PHONETIC_LEN);
			if (!fhir_phonetic(v, ph))
				return fail(c, "Search parameter '%s': the value has no letters", name);
			rc = put(c, "norm = ");
			return rc ? rc : arg(c, SA_TEXT(ph));
		}
		if (!mod) {
			rc = put(c, "(norm >= ");
			rc = rc ? rc : arg(c, SA_TEXT(norm));
			if (norm[0]) {
				rc = rc ? rc : put(c, " AND norm < ");
				rc = rc ? rc : arg(c, SA_TEXT(prefix_next(c->a, norm)));
			}
			return rc ? rc : put(c, ")");
		}
		if (strcmp(mod, "exact") == 0) {
			rc = put(c, "(norm = ");
			rc = rc ? rc : arg(c, SA_TEXT(norm));
			rc = rc ? rc : put(c, " AND raw = ");
			rc = rc ? rc : arg(c, SA_TEXT(v));
			return rc ? rc : put(c, ")");
		}
		/* contains */
		rc = put(c, "instr(norm, ");
		rc = rc ? rc : arg(c, SA_TEXT(norm));
		return rc ? rc : put(c, ") > 0");
	}
	case FHIR_SP_TOKEN: {
		if (mod && strcmp(mod, "text") == 0) {
			/* starts-with on the normalized display text */
			char *v = unescape(c->a, raw, end);
			char *norm = arena_alloc(c->a, strlen(v) * 3 + 16);
			if (fhir_normalize(v, norm, strlen(v) * 3 + 16) != MC_OK || !norm[0])
				return fail(c, "Search parameter '%s': invalid :text value", name);
			rc = put(c, "(text >= ");
			rc = rc ? rc : arg(c, SA_TEXT(norm));
			rc = rc ? rc : put(c, " AND text < ");
			rc = rc ? rc : arg(c, SA_TEXT(prefix_next(c->a, norm)));
			return rc ? rc : put(c, ")");
		}
		if (mod && strcmp(mod, "of-type") == 0) {
			/* type-system|type-code|value; rows: system = "type-system|type-code", code = value */
			const char *b1 = find_unescaped(raw, end, '|');
			const char *b2 = b1 ? find_unescaped(b1 + 1, end, '|') : NULL;
			if (!b1 || !b2 || b2 + 1 >= end || b1 + 1 >= b2)
				return fail(c, "Search parameter '%s': :of-type takes type-system|type-code|value", name);
			const char *ts = unescape(c->a, raw, b1), *tc = unescape(c->a, b1 + 1, b2);
			rc = put(c, "(code = ");
			rc = rc ? rc : arg(c, SA_TEXT(unescape(c->a, b2 + 1, end)));
			rc = rc ? rc : put(c, " AND system = ");
			rc = rc ? rc : arg(c, SA_TEXT(arena_printf(c->a, "%s|%s", ts, tc)));
			return rc ? rc : put(c, ")");
		}
		const char *bar = find_unescaped(raw, end, '|');
		if (!bar) {
			rc = put(c, "code = ");
			return rc ? rc : arg(c, SA_TEXT(unescape(c->a, raw, end)));
		}
		const char *sys = unescape(c->a, raw, bar), *code = unescape(c->a, bar + 1, end);
		if (!*sys && !*code)
			return fail(c, "Search parameter '%s': empty token", name);
		if (!*code) {
			rc = put(c, "system = ");
			return rc ? rc : arg(c, SA_TEXT(sys));
		}
		rc = put(c, "(code = ");
		rc = rc ? rc : arg(c, SA_TEXT(code));
		rc = rc ? rc : put(c, " AND system = ");
		rc = rc ? rc : arg(c, SA_TEXT(sys));
		return rc ? rc : put(c, ")");
	}
	case FHIR_SP_DATE: {
		enum prefix p;
		int64_t lo, hi;
		char *v = unescape(c->a, raw, end);
		rc = parse_date(c, name, v, &p, &lo, &hi);
		if (rc)
			return rc;
		return date_cond(c, p, lo, hi, "lo", "hi");
	}
	case FHIR_SP_NUMBER: {
		char *v = unescape(c->a, raw, end);
		const char *num = v;
		enum prefix p = take_prefix(&num);
		double d, half;
		if (!parse_number(num, &d, &half))
			return fail(c, "Search parameter '%s': invalid number", name);
		return number_cond(c, p, d, half, "value");
	}
	case FHIR_SP_QUANTITY: {
		const char *b1 = find_unescaped(raw, end, '|');
		const char *num = unescape(c->a, raw, b1 ? b1 : end);
		const char *sys = NULL, *code = NULL;
		if (b1) {
			const char *b2 = find_unescaped(b1 + 1, end, '|');
			if (!b2)
				return fail(c, "Search parameter '%s': quantity must be [prefix]number|system|code", name);
			sys = unescape(c->a, b1 + 1, b2);
			code = unescape(c->a, b2 + 1, end);
		}
		enum prefix p = take_prefix(&num);
		double d, half;
		if (!parse_number(num, &d, &half))
			return fail(c, "Search parameter '%s': invalid number", name);
		rc = put(c, "(");
		rc = rc ? rc : number_cond(c, p, d, half, "value");
		if (sys && *sys) {
			rc = rc ? rc : put(c, " AND system = ");
			rc = rc ? rc : arg(c, SA_TEXT(sys));
		}
		if (code && *code) {
			rc = rc ? rc : put(c, " AND code = ");
			rc = rc ? rc : arg(c, SA_TEXT(code));
		}
		return rc ? rc : put(c, ")");
	}
	case FHIR_SP_REFERENCE: {
		char *v = unescape(c->a, raw, end);
		if (!*v)
			return fail(c, "Search parameter '%s': empty reference", name);
		const char *rtype = mod, *rid = v;
		if (!strstr(v, "://")) {
			char *slash = strchr(v, '/');
			if (slash) {
				*slash = '\0';
				char *hist = strstr(slash + 1, "/_history/");
				if (hist)
					*hist = '\0';
				if (!fhir_type_is_resource(v))
					return fail(c, "Search parameter '%s': reference must be Type/id or id", name);
				if (mod && strcmp(mod, v) != 0)
					return fail(c, "Search parameter '%s': type modifier and reference type differ", name);
				rtype = v;
				rid = slash + 1;
			}
			if (!*rid || strchr(rid, '/'))
				return fail(c, "Search parameter '%s': reference must be Type/id or id", name);
		}
		if (rtype) {
			rc = put(c, "(ref_id = ");
			rc = rc ? rc : arg(c, SA_TEXT(rid));
			rc = rc ? rc : put(c, " AND ref_type = ");
			rc = rc ? rc : arg(c, SA_TEXT(rtype));
			return rc ? rc : put(c, ")");
		}
		rc = put(c, "ref_id = ");
		return rc ? rc : arg(c, SA_TEXT(rid));
	}
	case FHIR_SP_URI: {
		char *v = unescape(c->a, raw, end);
		if (!mod) {
			rc = put(c, "uri = ");
			return rc ? rc : arg(c, SA_TEXT(v));
		}
		if (strcmp(mod, "below") == 0) {
			rc = put(c, "(uri >= ");
			rc = rc ? rc : arg(c, SA_TEXT(v));
			if (*v) {
				rc = rc ? rc : put(c, " AND uri < ");
				rc = rc ? rc : arg(c, SA_TEXT(prefix_next(c->a, v)));
			}
			return rc ? rc : put(c, ")");
		}
		/* above: the stored uri is a prefix of the value */
		rc = put(c, "substr(");
		rc = rc ? rc : arg(c, SA_TEXT(v));
		return rc ? rc : put(c, ", 1, length(uri)) = uri");
	}
	default:
		return fail(c, "Search parameter '%s' is not supported", name);
	}
}

/* ---- Observation combo-* ---- */

bool fhir_search_combo_of(const char *type, const char *code, const char *parts[2])
{
	static const char *const combos[][3] = {
		{"combo-code", "code", "component-code"},
		{"combo-code-value-concept", "code-value-concept", "component-code-value-concept"},
		{"combo-code-value-quantity", "code-value-quantity", "component-code-value-quantity"},
		{"combo-data-absent-reason", "data-absent-reason", "component-data-absent-reason"},
		{"combo-value-concept", "value-concept", "component-value-concept"},
		{"combo-value-quantity", "value-quantity", "component-value-quantity"},
	};
	if (!type || !code || strcmp(type, "Observation") != 0 || strncmp(code, "combo-", 6) != 0)
		return false;
	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		if (strcmp(code, combos[i][0]) == 0) {
			if (parts) {
				parts[0] = combos[i][1];
				parts[1] = combos[i][2];
			}
			return true;
		}
	}
	return false;
}

/* "param = $n" or, for a combo, "param IN ($n, $m)"; suffix is appended to each code. */
static int put_param(struct cc *c, const char *const *codes, size_t n, const char *suffix)
{
	int rc = put(c, n == 1 ? "param = " : "param IN (");
	for (size_t i = 0; !rc && i < n; i++) {
		rc = i ? put(c, ", ") : MC_OK;
		rc = rc ? rc : arg(c, SA_TEXT(suffix ? arena_printf(c->a, "%s%s", codes[i], suffix) : codes[i]));
	}
	return rc || n == 1 ? rc : put(c, ")");
}

/* ---- what is supported ---- */

static bool code_is_special(const char *code)
{
	/* full-text (_content, _text), named queries (_query) and the like need more than an index */
	static const char *const no[] = {"_content", "_text", "_query", "_has", "_list", "_type", "_filter"};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcmp(code, no[i]))
			return true;
	return false;
}

/* The kind of a composite's second component (its first is always a token). */
static enum fhir_sp_type composite_value_type(const struct fhir_sp *sp)
{
	for (unsigned k = 0; k < sp->part_count; k++)
		if (fhir_comp_parts[sp->part_first + k].slot == 1)
			return (enum fhir_sp_type)fhir_comp_parts[sp->part_first + k].type;
	return FHIR_SP_SPECIAL;
}

bool fhir_search_param_supported(const struct fhir_sp *sp)
{
	if (!sp)
		return false;
	const char *code = fhir_sp_code(sp);
	if (!code_is_plain(code) || code_is_special(code))
		return false;
	if (!strcmp(code, "_id") || !strcmp(code, "_lastUpdated"))
		return true;   /* columns of resources */
	if (sp->type == FHIR_SP_COMPOSITE)
		return sp->part_count > 0 && table_of(composite_value_type(sp)) != NULL;
	return table_of(fhir_sp_type(sp)) != NULL && sp->path_count > 0;
}

double fhir_search_coverage(size_t *supported, size_t *total)
{
	size_t n = 0, ok = 0;
	for (unsigned o = 0; o < FHIR_NOWNERS; o++) {
		for (unsigned k = 0; k < fhir_sp_owners[o].sp_count; k++) {
			n++;
			ok += fhir_search_param_supported(&fhir_sps[fhir_sp_owners[o].sp_first + k]);
		}
	}
	if (supported)
		*supported = ok;
	if (total)
		*total = n;
	return n ? (double)ok / (double)n : 0.0;
}

static bool mod_allowed(enum fhir_sp_type t, const char *mod)
{
	if (!mod)
		return true;
	if (strcmp(mod, "missing") == 0)
		return t != FHIR_SP_COMPOSITE;
	switch (t) {
	case FHIR_SP_STRING: return strcmp(mod, "exact") == 0 || strcmp(mod, "contains") == 0;
	case FHIR_SP_TOKEN: return strcmp(mod, "not") == 0 || strcmp(mod, "text") == 0 || strcmp(mod, "of-type") == 0;
	case FHIR_SP_URI: return strcmp(mod, "below") == 0 || strcmp(mod, "above") == 0;
	case FHIR_SP_REFERENCE: return fhir_type_is_resource(mod);
	default: return false;
	}
}

static int canon_add(struct cc *c, const char *key, const char *value)
{
	int rc = c->canon.len ? buf_putc(&c->canon, '&') : MC_OK;
	rc = rc ? rc : fhir_url_encode(&c->canon, key);
	rc = rc ? rc : buf_putc(&c->canon, '=');
	return rc ? rc : fhir_url_encode(&c->canon, value);
}

/* An unknown or unsupported parameter: MC_EINVAL when strict; else remembered (for the
 * OperationOutcome entry) and ignored. fmt has one %s: the client-safe parameter name. */
static int unknown(struct cc *c, const char *fmt, const char *name)
{
	if (c->o->strict)
		return fail(c, fmt, name);
	struct fhir_search *s = c->s;
	if (s->nignored < MAX_PARAMS) {
		if (!s->ignored)
			s->ignored = arena_zalloc(c->a, sizeof(*s->ignored) * MAX_PARAMS);
		s->ignored[s->nignored++] = arena_printf(c->a, fmt, safe_name(c->a, name));
	}
	return MC_OK;
}

/* ---- access for other types (chains, _has, includes) ---- */

/* Without a type_access callback only the searched type (self) is readable: chains, _has and
 * includes into other types then match nothing (fail closed: RBAC per type is unknown here). */
static int type_acc(const struct fhir_search_opts *o, const char *self, const char *type, struct fhir_access *out)
{
	if (!o->type_access) {
		if (!self || strcmp(self, type) != 0)
			return MC_EFORBIDDEN;
		*out = o->access;
		return MC_OK;
	}
	memset(out, 0, sizeof(*out));
	return o->type_access(o->type_access_ctx, type, out);
}

static bool acc_equal(const struct fhir_access *x, const struct fhir_access *y)
{
	if (x->scope != y->scope)
		return false;
	if (x->scope == AUTH_SCOPE_OWN)
		return x->patient_id && y->patient_id && !strcmp(x->patient_id, y->patient_id);
	if (x->scope == AUTH_SCOPE_CARE)
		return x->user_id == y->user_id && x->now_ms == y->now_ms;
	return true;
}

static bool type_name_plain(const char *t)
{
	if (!t || !*t || strlen(t) > 63)
		return false;
	for (; *t; t++)
		if (!isalpha((unsigned char)*t))
			return false;
	return true;
}

/* " AND (<alias>.type IN ('A','B') [AND access] OR ...)" over types (resource type names from the
 * generated tables or checked by fhir_type_is_resource; formatted only when [A-Za-z]+). Types the
 * caller may not read are left out; nothing readable gives " AND 0 = 1". Types with the same
 * access rules share one condition, which keeps the argument count small. */
#define ACC_GROUPS 8
static int types_access_sql(struct fhir_sql *q, const struct fhir_search_opts *o, const char *self,
			    const char *alias, const char *const *types, size_t n)
{
	struct {
		struct fhir_access acc;
		const char *first_comp;   /* a compartment type of the group (for fhir_access_sql_alias) */
		bool any;
	} g[ACC_GROUPS];
	size_t ng = 0;
	signed char *grp = mc_calloc(n ? n : 1, 1);
	for (size_t i = 0; i < n; i++) {
		grp[i] = -1;
		struct fhir_access acc;
		if (!type_name_plain(types[i]) || !fhir_type_is_resource(types[i]) || type_acc(o, self, types[i], &acc) != MC_OK)
			continue;
		bool comp = fhir_type_in_patient_compartment(types[i]);
		if (!comp || acc.scope == AUTH_SCOPE_ALL)
			acc.scope = AUTH_SCOPE_ALL;   /* no row condition */
		size_t k = 0;
		while (k < ng && !acc_equal(&g[k].acc, &acc))
			k++;
		if (k == ng) {
			if (ng == ACC_GROUPS)
				continue;   /* fail closed: more distinct rules than expected */
			g[ng].acc = acc;
			g[ng].first_comp = NULL;
			g[ng].any = false;
			ng++;
		}
		if (comp && !g[k].first_comp)
			g[k].first_comp = types[i];
		g[k].any = true;
		grp[i] = (signed char)k;
	}
	int rc = buf_puts(&q->sql, " AND (");
	bool first = true;
	for (size_t k = 0; !rc && k < ng; k++) {
		if (!g[k].any)
			continue;
		/* "+": never drive from the type index (every row of a type); the caller's key does */
		rc = buf_printf(&q->sql, "%s(+%s.type IN (", first ? "" : " OR ", alias);
		bool f2 = true;
		for (size_t i = 0; !rc && i < n; i++) {
			if (grp[i] != (signed char)k)
				continue;
			rc = buf_printf(&q->sql, "%s'%s'", f2 ? "" : ", ", types[i]);
			f2 = false;
		}
		rc = rc ? rc : buf_puts(&q->sql, ")");
		if (!rc && g[k].acc.scope != AUTH_SCOPE_ALL)
			rc = fhir_access_sql_alias(q, &g[k].acc, g[k].first_comp, alias);
		rc = rc ? rc : buf_puts(&q->sql, ")");
		first = false;
	}
	if (!rc && first)
		rc = buf_puts(&q->sql, "0 = 1");
	free(grp);
	return rc ? rc : buf_puts(&q->sql, ")");
}

/* ---- parameters ---- */

static int compile_param(struct cc *c, const char *type, const char *alias, int depth, const char *key,
			 const char *value);

/* Split "name[:mod]" into name (buffer) and mod (NULL when absent). */
static bool split_key(const char *key, char *name, size_t namesz, const char **mod)
{
	const char *colon = strchr(key, ':');
	size_t nlen = colon ? (size_t)(colon - key) : strlen(key);
	if (nlen == 0 || nlen >= namesz)
		return false;
	memcpy(name, key, nlen);
	name[nlen] = '\0';
	*mod = colon ? colon + 1 : NULL;
	return true;
}

/* Open one index term on alias.rkey. The driving term (the most selective one, picked by
 * pick_driver; every term inside chains and _has) is "alias.rkey IN (SELECT x.rkey ...)": SQLite
 * walks that index range and looks the resources up by rowid. Every other term is a correlated
 * probe "EXISTS (SELECT 1 ... WHERE x.rkey = alias.rkey AND ...)" through the table's rkey index:
 * an IN there would materialize every matching row of a broad term (a date range over a million
 * Observations) before the join. Negated terms are always NOT EXISTS probes. The caller appends
 * the conditions over x's columns and one closing ")". table and alias are constants. */
static int term_open(struct cc *c, const char *alias, int depth, const char *table, bool neg)
{
	if (!neg && (depth > 0 || c->cur == c->driver)) {
		if (depth == 0)
			c->has_in = true;
		return buf_printf(&c->s->where.sql, " AND %s.rkey IN (SELECT x.rkey FROM %s x WHERE ", alias, table);
	}
	return buf_printf(&c->s->where.sql, " AND %sEXISTS (SELECT 1 FROM %s x WHERE x.rkey = %s.rkey AND ",
			  neg ? "NOT " : "", table, alias);
}

/* Selectivity rank of a query argument for pick_driver: 1 equality on a reference/token/composite
 * or a chain, 2 string, 3 _has, 4 ranges (date, number, quantity, uri), 9 never (negations, paging,
 * _id: r.id is looked up by its own index). */
static int key_rank(const char *type, const char *key)
{
	if (key[0] == '_' && strncmp(key, "_has:", 5) != 0)
		return 9;
	if (strncmp(key, "_has:", 5) == 0)
		return 3;
	if (strchr(key, '.'))
		return 1;   /* a chain usually names one target (an identifier, a name) */
	char name[80];
	const char *mod;
	if (!split_key(key, name, sizeof(name), &mod))
		return 9;
	const struct fhir_sp *sp = fhir_sp_find(type, name);
	if (!sp || !fhir_search_param_supported(sp))
		return 9;
	if (mod && (!strcmp(mod, "not") || !strcmp(mod, "missing") || !strcmp(mod, "contains") || !strcmp(mod, "text") ||
		    !strcmp(mod, "above")))
		return 9;
	switch (fhir_sp_type(sp)) {
	case FHIR_SP_REFERENCE:
	case FHIR_SP_TOKEN:
	case FHIR_SP_COMPOSITE: return 1;
	case FHIR_SP_STRING: return 2;
	default: return 4;
	}
}

static int pick_driver(const char *type, const struct kv *q, size_t nq)
{
	int best = -1, best_rank = 9;
	for (size_t i = 0; i < nq; i++) {
		if (!q[i].key || !q[i].value || !q[i].value[0])
			continue;
		if (!strcmp(q[i].key, "_id"))
			return -1;   /* r.id IN (...) drives */
		int rk = key_rank(type, q[i].key);
		if (rk < best_rank) {
			best_rank = rk;
			best = (int)i;
		}
	}
	return best;
}

/* Chained parameter, one level: "subject:Patient.name" / "patient.birthdate". */
static int compile_chain(struct cc *c, const char *type, const char *alias, const char *key, const char *dot,
			 const char *value)
{
	char left[128], name[80];
	size_t ll = (size_t)(dot - key);
	if (ll >= sizeof(left))
		return unknown(c, "Unknown search parameter '%s'", key);
	memcpy(left, key, ll);
	left[ll] = '\0';
	const char *mod;
	if (!split_key(left, name, sizeof(name), &mod))
		return unknown(c, "Unknown search parameter '%s'", key);
	const struct fhir_sp *sp = fhir_sp_find(type, name);
	if (!sp || sp->type != FHIR_SP_REFERENCE || !fhir_search_param_supported(sp))
		return unknown(c, "Unknown search parameter '%s' (chains need a reference parameter)", key);
	if (mod && !fhir_type_is_resource(mod))
		return fail(c, "Search parameter '%s': the chain's type modifier is not a resource type", key);
	const char *chained = dot + 1;
	char cname[80];
	const char *cmod;
	if (strchr(chained, '.'))
		return fail(c, "Search parameter '%s': only one level of chaining is supported", key);
	if (!split_key(chained, cname, sizeof(cname), &cmod))
		return unknown(c, "Unknown search parameter '%s'", key);

	/* candidate target types: the modifier, or the reference's targets having the chained param */
	const char *cand[160];
	size_t nc = 0;
	int kind = -1;
	bool mixed = false;
	size_t ntargets = mod ? 1 : sp->target_count;
	for (size_t i = 0; i < ntargets && nc < sizeof(cand) / sizeof(cand[0]); i++) {
		const char *t = mod ? mod : FHIR_S(fhir_sp_targets[sp->target_first + i]);
		const struct fhir_sp *csp = fhir_sp_find(t, cname);
		if (!csp || !fhir_search_param_supported(csp))
			continue;
		if (kind >= 0 && kind != (int)csp->type)
			mixed = true;
		kind = (int)csp->type;
		cand[nc++] = t;
	}
	if (nc == 0)
		return unknown(c, "Unknown search parameter '%s' (no target type has the chained parameter)", key);
	if (mixed)
		return fail(c, "Search parameter '%s': ambiguous chain; add the target type (name:Type.param)", key);

	/* driving: from the matching targets to the references (idx_ref's key is param, ref_id,
	 * ref_type); probe: from this resource's references to their target */
	int rc;
	if (c->cur == c->driver) {
		c->has_in = true;
		rc = buf_printf(&c->s->where.sql,
				" AND %s.rkey IN (SELECT x.rkey FROM resources t CROSS JOIN idx_ref x WHERE x.param = ", alias);
	} else {
		rc = buf_printf(&c->s->where.sql,
				" AND EXISTS (SELECT 1 FROM idx_ref x CROSS JOIN resources t WHERE x.rkey = %s.rkey AND "
				"x.param = ",
				alias);
	}
	rc = rc ? rc : arg(c, SA_TEXT(fhir_sp_code(sp)));
	rc = rc ? rc : put(c, " AND x.ref_id = t.id AND x.ref_type = t.type AND +t.deleted = 0");
	rc = rc ? rc : types_access_sql(&c->s->where, c->o, c->type, "t", cand, nc);
	rc = rc ? rc : compile_param(c, cand[0], "t", 1, chained, value);
	return rc ? rc : put(c, ")");
}

/* Reverse chain, one level: "_has:Observation:patient:code" = value. */
static int compile_has(struct cc *c, const char *type, const char *alias, const char *key, const char *value)
{
	char rtype[64], rparam[80];
	const char *p = key + 5, *c1 = strchr(p, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || !c2 || (size_t)(c1 - p) >= sizeof(rtype) || (size_t)(c2 - c1 - 1) >= sizeof(rparam))
		return fail(c, "Search parameter '%s': expected _has:Type:reference:parameter", key);
	memcpy(rtype, p, (size_t)(c1 - p));
	rtype[c1 - p] = '\0';
	memcpy(rparam, c1 + 1, (size_t)(c2 - c1 - 1));
	rparam[c2 - c1 - 1] = '\0';
	const char *rest = c2 + 1;
	if (!fhir_type_is_resource(rtype) || !type_name_plain(rtype))
		return fail(c, "Search parameter '%s': unknown resource type in _has", key);
	if (!strncmp(rest, "_has:", 5) || strchr(rest, '.'))
		return fail(c, "Search parameter '%s': only one level of _has is supported", key);
	const struct fhir_sp *sp = fhir_sp_find(rtype, rparam);
	if (!sp || sp->type != FHIR_SP_REFERENCE || !fhir_search_param_supported(sp))
		return unknown(c, "Unknown search parameter '%s' (_has needs a reference parameter)", key);
	int rc = buf_printf(&c->s->where.sql, " AND %s.id IN (SELECT x.ref_id FROM idx_ref x WHERE x.param = ", alias);
	rc = rc ? rc : arg(c, SA_TEXT(fhir_sp_code(sp)));
	rc = rc ? rc : put(c, " AND x.ref_type = ");
	rc = rc ? rc : arg(c, SA_TEXT(type));
	rc = rc ? rc : put(c, " AND x.rkey IN (SELECT h.rkey FROM resources h WHERE +h.deleted = 0");
	const char *types[1] = {rtype};
	rc = rc ? rc : types_access_sql(&c->s->where, c->o, c->type, "h", types, 1);
	size_t before = c->s->where.sql.len;
	rc = rc ? rc : compile_param(c, rtype, "h", 1, rest, value);
	if (!rc && c->s->where.sql.len == before)   /* inner parameter ignored (lenient): no _has either */
		rc = put(c, " AND 0 = 1");
	return rc ? rc : put(c, "))");
}

/* Composite: each value "A$B": A a token (first component), B of the second component's kind.
 * Rows are keyed "<code>$<token code>|<token system>" (fhir_composite_key). */
static int compile_composite(struct cc *c, const struct fhir_sp *sp, const char *const *codes, size_t ncodes,
			     const char *alias, int depth, const char *name, const char **vals, size_t nv)
{
	enum fhir_sp_type vt = composite_value_type(sp);
	int rc = term_open(c, alias, depth, table_of(vt), false);
	rc = rc ? rc : put(c, "(");
	bool first = true;
	for (size_t i = 0; !rc && i < nv; i++) {
		const char *v = vals[i], *end = v + strlen(v);
		const char *dollar = find_unescaped(v, end, '$');
		if (!dollar || dollar == v || dollar + 1 >= end)
			return fail(c, "Search parameter '%s': composite values are code$value", name);
		const char *bar = find_unescaped(v, dollar, '|');
		const char *sys = bar ? unescape(c->a, v, bar) : NULL;
		const char *cd = unescape(c->a, bar ? bar + 1 : v, dollar);
		if (!*cd && (!sys || !*sys))
			return fail(c, "Search parameter '%s': empty token", name);
		for (size_t k = 0; !rc && k < ncodes; k++) {
			char key[600];
			rc = put(c, first ? "(" : " OR (");
			first = false;
			if (*cd && sys) {
				/* system|code, |code: the exact key */
				if (!fhir_composite_key(key, sizeof(key), codes[k], sys, cd))
					return fail(c, "Search parameter '%s': value too long", name);
				rc = rc ? rc : put(c, "param = ");
				rc = rc ? rc : arg(c, SA_TEXT(arena_strdup(c->a, key)));
			} else if (*cd) {
				/* code in any system: the keys starting "<code>$<C>|" */
				if (!fhir_composite_key(key, sizeof(key), codes[k], "", cd))
					return fail(c, "Search parameter '%s': value too long", name);
				rc = rc ? rc : put(c, "param >= ");
				rc = rc ? rc : arg(c, SA_TEXT(arena_strdup(c->a, key)));
				rc = rc ? rc : put(c, " AND param < ");
				rc = rc ? rc : arg(c, SA_TEXT(prefix_next(c->a, key)));
			} else {
				/* system|: every code of the system (keys of this param ending "|<system>") */
				char *pfx = arena_printf(c->a, "%s$", codes[k]);
				char *tail = arena_printf(c->a, "|%s", sys);
				rc = rc ? rc : put(c, "param >= ");
				rc = rc ? rc : arg(c, SA_TEXT(pfx));
				rc = rc ? rc : put(c, " AND param < ");
				rc = rc ? rc : arg(c, SA_TEXT(prefix_next(c->a, pfx)));
				rc = rc ? rc : put(c, " AND substr(param, -");
				rc = rc ? rc : arg(c, SA_INT((int64_t)strlen(tail)));
				rc = rc ? rc : put(c, ") = ");
				rc = rc ? rc : arg(c, SA_TEXT(tail));
			}
			rc = rc ? rc : put(c, " AND ");
			rc = rc ? rc : value_cond(c, vt, NULL, name, NULL, dollar + 1);
			rc = rc ? rc : put(c, ")");
		}
	}
	return rc ? rc : put(c, "))");
}

static int compile_param(struct cc *c, const char *type, const char *alias, int depth, const char *key,
			 const char *value)
{
	char name[80];
	const char *mod;
	const char *vals[MAX_VALUES];
	size_t nv;
	int rc;

	if (depth == 0 && strncmp(key, "_has:", 5) == 0)
		return compile_has(c, type, alias, key, value);
	const char *dot = strchr(key, '.');
	if (dot && depth == 0)
		return compile_chain(c, type, alias, key, dot, value);
	if (dot || !split_key(key, name, sizeof(name), &mod))
		return unknown(c, "Unknown search parameter '%s'", key);

	if (strcmp(name, "_id") == 0) {
		if (mod)
			return unknown(c, "Search parameter '%s': modifier not supported", key);
		rc = split_values(c, value, key, vals, &nv);
		if (rc)
			return rc;
		rc = buf_printf(&c->s->where.sql, " AND %s.id IN (", alias);
		for (size_t i = 0; !rc && i < nv; i++) {
			rc = i ? put(c, ", ") : MC_OK;
			rc = rc ? rc : arg(c, SA_TEXT(unescape(c->a, vals[i], vals[i] + strlen(vals[i]))));
		}
		if (depth == 0)
			c->has_id = true;
		return rc ? rc : put(c, ")");
	}
	if (strcmp(name, "_lastUpdated") == 0) {
		if (mod)
			return unknown(c, "Search parameter '%s': modifier not supported", key);
		rc = split_values(c, value, key, vals, &nv);
		if (rc)
			return rc;
		rc = put(c, " AND (");
		char lo_col[32], hi_col[40];
		snprintf(lo_col, sizeof(lo_col), "%s.last_updated_ms", alias);
		snprintf(hi_col, sizeof(hi_col), "(%s.last_updated_ms + 1)", alias);
		for (size_t i = 0; !rc && i < nv; i++) {
			enum prefix p;
			int64_t lo, hi;
			rc = parse_date(c, key, vals[i], &p, &lo, &hi);
			if (rc)
				return rc;
			rc = i ? put(c, " OR ") : MC_OK;
			rc = rc ? rc : date_cond(c, p, lo, hi, lo_col, hi_col);
		}
		return rc ? rc : put(c, ")");
	}

	const struct fhir_sp *sp = fhir_sp_find(type, name);
	if (!sp) {
		if (c->o->strict) {
			*c->err = arena_printf(c->a, "Unknown search parameter '%s' for resource type %s",
					       safe_name(c->a, name), type);
			return MC_EINVAL;
		}
		return unknown(c, "Unknown search parameter '%s'", name);
	}
	enum fhir_sp_type st = fhir_sp_type(sp);
	const char *code = fhir_sp_code(sp);
	const char *codes[2] = {code, NULL};
	size_t ncodes = fhir_search_combo_of(type, code, codes) ? 2 : 1;
	if (!fhir_search_param_supported(sp))
		return unknown(c, "Search parameter '%s' is not supported by this server", name);
	if (!mod_allowed(st, mod))
		return unknown(c, "Search parameter '%s': modifier not supported", key);
	if (st == FHIR_SP_COMPOSITE) {
		rc = split_values(c, value, name, vals, &nv);
		return rc ? rc : compile_composite(c, sp, codes, ncodes, alias, depth, name, vals, nv);
	}
	const char *table = table_of(st);

	if (mod && strcmp(mod, "missing") == 0) {
		bool missing;
		if (strcmp(value, "true") == 0)
			missing = true;
		else if (strcmp(value, "false") == 0)
			missing = false;
		else
			return fail(c, "Search parameter '%s': :missing takes true or false", name);
		rc = term_open(c, alias, depth, table, missing);
		rc = rc ? rc : put_param(c, codes, ncodes, NULL);
		return rc ? rc : put(c, ")");
	}
	rc = split_values(c, value, name, vals, &nv);
	if (rc)
		return rc;
	bool neg = mod && strcmp(mod, "not") == 0;
	rc = term_open(c, alias, depth, table, neg);
	rc = rc ? rc : put_param(c, codes, ncodes, mod && strcmp(mod, "of-type") == 0 ? ":of-type" : NULL);
	rc = rc ? rc : put(c, " AND (");
	for (size_t i = 0; !rc && i < nv; i++) {
		rc = i ? put(c, " OR ") : MC_OK;
		rc = rc ? rc : value_cond(c, st, code, name, mod, vals[i]);
	}
	return rc ? rc : put(c, "))");
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	if (!*v || !isdigit((unsigned char)*v))
		return MC_EINVAL;
	long n = strtol(v, &end, 10);
	if (*end || n < lo || n > hi)
		return MC_EINVAL;
	*out = (int)n;
	return MC_OK;
}

static int parse_i64(const char *v, int64_t *out)
{
	char *end;
	if (!*v || !isdigit((unsigned char)*v) || strlen(v) > 18)
		return MC_EINVAL;
	long long n = strtoll(v, &end, 10);
	if (*end || n < 0)
		return MC_EINVAL;
	*out = n;
	return MC_OK;
}

static int compile_sort(struct cc *c, const char *value)
{
	struct buf *o = &c->s->order;
	const char *vals[MAX_VALUES];
	size_t nv;
	int rc = split_values(c, value, "_sort", vals, &nv);
	if (rc)
		return rc;
	rc = buf_puts(o, " ORDER BY ");
	for (size_t i = 0; !rc && i < nv; i++) {
		const char *f = vals[i];
		bool desc = f[0] == '-';
		if (desc)
			f++;
		const char *dir = desc ? "DESC" : "ASC";
		if (i)
			rc = buf_puts(o, ", ");
		if (rc)
			break;
		if (strcmp(f, "_id") == 0) {
			rc = buf_printf(o, "r.id %s", dir);
			continue;
		}
		if (strcmp(f, "_lastUpdated") == 0) {
			rc = buf_printf(o, "r.last_updated_ms %s", dir);
			continue;
		}
		const struct fhir_sp *sp = fhir_sp_find(c->type, f);
		const char *code = sp ? fhir_sp_code(sp) : NULL;
		if (!sp || !code_is_plain(code) || !fhir_search_param_supported(sp))
			return fail(c, "Cannot sort by '%s': unknown search parameter", f);
		/* code is a generated constant of plain characters (checked above) */
		const char *agg = desc ? "max" : "min";
		const char *parts[2] = {code, code};
		fhir_search_combo_of(c->type, code, parts);
		const char *code2 = parts[1];
		code = parts[0];
		switch (fhir_sp_type(sp)) {
		case FHIR_SP_STRING:
			rc = buf_printf(o, "(SELECT %s(norm) FROM idx_string x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		case FHIR_SP_DATE:
			rc = buf_printf(o, "(SELECT %s FROM idx_date x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					desc ? "max(hi)" : "min(lo)", code, code2, dir);
			break;
		case FHIR_SP_TOKEN:
			rc = buf_printf(o, "(SELECT %s(code) FROM idx_token x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		case FHIR_SP_NUMBER:
			rc = buf_printf(o, "(SELECT %s(value) FROM idx_number x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		case FHIR_SP_QUANTITY:
			rc = buf_printf(o,
					"(SELECT %s(value) FROM idx_quantity x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		case FHIR_SP_URI:
			rc = buf_printf(o, "(SELECT %s(uri) FROM idx_uri x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		case FHIR_SP_REFERENCE:
			rc = buf_printf(o, "(SELECT %s(ref_id) FROM idx_ref x WHERE x.rkey = r.rkey AND x.param IN ('%s', '%s')) %s",
					agg, code, code2, dir);
			break;
		default:
			return fail(c, "Cannot sort by '%s': composite parameters have no order", f);
		}
	}
	return rc ? rc : buf_puts(o, ", r.rkey ASC");
}

/* _include / _revinclude value: "Type:param[:target]", "Type:*", "*". */
static int compile_include(struct cc *c, const char *key, const char *value, bool rev, bool iterate)
{
	struct fhir_search *s = c->s;
	if (s->ninc >= FHIR_SEARCH_MAX_INCLUDES)
		return fail(c, "Search parameter '%s': too many includes", key);
	struct fhir_include *in = &s->inc[s->ninc];
	memset(in, 0, sizeof(*in));
	in->rev = rev;
	in->iterate = iterate;
	if (strcmp(value, "*") == 0) {
		in->src_type = c->type;
		s->ninc++;
		return MC_OK;
	}
	char *v = arena_strdup(c->a, value);
	char *c1 = strchr(v, ':');
	if (!c1)
		return fail(c, "Search parameter '%s': expected Type:parameter[:targetType]", key);
	*c1 = '\0';
	char *param = c1 + 1, *c2 = strchr(param, ':');
	if (c2) {
		*c2 = '\0';
		in->target = c2 + 1;
		if (!fhir_type_is_resource(in->target) || !type_name_plain(in->target))
			return fail(c, "Search parameter '%s': unknown target type", key);
	}
	if (!fhir_type_is_resource(v) || !type_name_plain(v))
		return fail(c, "Search parameter '%s': unknown resource type", key);
	if (!rev && !iterate && strcmp(v, c->type) != 0)
		return fail(c, "Search parameter '%s': the source type must be the searched type (or use :iterate)", key);
	in->src_type = v;
	if (strcmp(param, "*") != 0) {
		const struct fhir_sp *sp = fhir_sp_find(v, param);
		if (!sp || sp->type != FHIR_SP_REFERENCE || !fhir_search_param_supported(sp))
			return unknown(c, "Search parameter '%s': not a reference parameter of that type", key);
		in->param = fhir_sp_code(sp);
	}
	s->ninc++;
	return MC_OK;
}

static int compile_elements(struct cc *c, const char *key, const char *value)
{
	const char *vals[MAX_VALUES];
	size_t nv;
	int rc = split_values(c, value, key, vals, &nv);
	if (rc)
		return rc;
	const char **e = arena_zalloc(c->a, sizeof(*e) * (nv + 1));
	for (size_t i = 0; i < nv; i++) {
		if (!code_is_plain(vals[i]))
			return fail(c, "Search parameter '%s': element names are plain words", key);
		/* "Patient.name" is accepted as "name" */
		const char *dot = strrchr(vals[i], '.');
		e[i] = dot ? dot + 1 : vals[i];
	}
	c->s->elements = e;
	return MC_OK;
}

static void search_cleanup(void *p)
{
	fhir_search_release(p);
}

void fhir_search_release(struct fhir_search *s)
{
	if (!s)
		return;
	fhir_sql_release(&s->where);
	buf_release(&s->order);
}

/* Paging and result-shape parameters; *handled = false for search parameters. */
static int compile_control(struct cc *c, const char *k, const char *v, int page_max, bool *handled)
{
	struct fhir_search *s = c->s;
	int rc = MC_OK;
	*handled = true;
	if (strcmp(k, "_count") == 0) {
		if (parse_int(v, 0, 1 << 30, &s->count))
			return fail(c, "Search parameter '%s': expected a non-negative integer", k);
		if (s->count > page_max)
			s->count = page_max;
		if (s->count == 0)
			s->summary_count = true;
		return MC_OK;
	}
	if (strcmp(k, "_offset") == 0) {
		if (parse_int(v, 0, MAX_OFFSET, &s->offset))
			return fail(c, "Search parameter '%s': expected a non-negative integer", k);
		return MC_OK;
	}
	if (strcmp(k, "_cursor") == 0 || strcmp(k, "_snapshot") == 0) {
		if (parse_i64(v, k[1] == 'c' ? &s->cursor : &s->snapshot))
			return fail(c, "Search parameter '%s': expected a paging token from a link", k);
		return MC_OK;
	}
	if (strcmp(k, "_pretty") == 0)
		return MC_OK;
	if (strcmp(k, "_format") == 0) {
		if (strcmp(v, "json") != 0 && strcmp(v, "application/fhir+json") != 0 && strcmp(v, "application/json") != 0)
			return fail(c, "Search parameter '%s': only json is supported", k);
		return MC_OK;
	}
	if (strcmp(k, "_total") == 0) {
		if (strcmp(v, "none") == 0)
			s->total_mode = FHIR_TOTAL_NONE;
		else if (strcmp(v, "accurate") == 0)
			s->total_mode = FHIR_TOTAL_ACCURATE;
		else if (strcmp(v, "estimate") == 0)
			s->total_mode = FHIR_TOTAL_BOUNDED;
		else
			return fail(c, "Search parameter '%s': expected none, estimate or accurate", k);
		return canon_add(c, k, v);
	}
	if (strcmp(k, "_summary") == 0) {
		if (strcmp(v, "count") == 0)
			s->summary_count = true;
		else if (strcmp(v, "true") == 0)
			s->summary = FHIR_SUMMARY_TRUE;
		else if (strcmp(v, "text") == 0)
			s->summary = FHIR_SUMMARY_TEXT;
		else if (strcmp(v, "data") == 0)
			s->summary = FHIR_SUMMARY_DATA;
		else if (strcmp(v, "false") != 0)
			return fail(c, "Search parameter '%s': expected true, text, data, count or false", k);
		return canon_add(c, k, v);
	}
	if (strcmp(k, "_elements") == 0) {
		rc = *v ? compile_elements(c, k, v) : MC_OK;
		return rc ? rc : canon_add(c, k, v);
	}
	if (strcmp(k, "_sort") == 0) {
		if (s->order.len)
			return fail(c, "Search parameter '%s' given twice", k);
		rc = compile_sort(c, v);
		return rc ? rc : canon_add(c, k, v);
	}
	bool inc = strcmp(k, "_include") == 0 || strcmp(k, "_include:iterate") == 0 ||
		   strcmp(k, "_include:recurse") == 0;
	bool rev = strcmp(k, "_revinclude") == 0 || strcmp(k, "_revinclude:iterate") == 0 ||
		   strcmp(k, "_revinclude:recurse") == 0;
	if (inc || rev) {
		size_t before = s->ninc;
		rc = compile_include(c, k, v, rev, strchr(k, ':') != NULL);
		return rc || s->ninc == before ? rc : canon_add(c, k, v);
	}
	*handled = false;
	return MC_OK;
}

int fhir_search_compile(struct arena *a, const char *type, const struct kv *q, size_t nq,
			const struct fhir_search_opts *opts, struct fhir_search **out, const char **err)
{
	static const char *const dummy_err = "";
	const char *e_local = dummy_err;
	if (!err)
		err = &e_local;
	*err = NULL;
	*out = NULL;
	if (!type || !fhir_type_is_resource(type) || !type_name_plain(type)) {
		*err = "Unknown resource type";
		return MC_EINVAL;
	}
	struct fhir_search *s = arena_zalloc(a, sizeof(*s));
	fhir_sql_init(&s->where);
	buf_init(&s->order, 64 << 10);
	arena_defer(a, search_cleanup, s);
	s->type = arena_strdup(a, type);

	int page_max = opts && opts->page_max > 0 ? opts->page_max : 100;
	int page_def = opts && opts->page_default > 0 ? opts->page_default : 20;
	if (page_def > page_max)
		page_def = page_max;
	s->count = page_def;

	struct fhir_search_opts dflt = {.access = {.scope = AUTH_SCOPE_NONE}};
	s->opts = opts ? *opts : dflt;
	struct cc c = {.a = a, .s = s, .o = &s->opts, .type = s->type, .err = err, .driver = -1};
	c.now_ms = c.o->access.now_ms ? c.o->access.now_ms : mctime_now_ms();
	buf_init(&c.canon, 64 << 10);

	int rc = MC_OK;
	if (nq > MAX_PARAMS) {
		*err = "Too many search parameters";
		rc = MC_EINVAL;
		goto out;
	}
	rc = buf_puts(&s->where.sql, "r.deleted = 0");
	c.driver = pick_driver(s->type, q, nq);
	for (size_t i = 0; !rc && i < nq; i++) {
		const char *k = q[i].key, *v = q[i].value ? q[i].value : "";
		c.cur = (int)i;
		if (!k || !*k)
			continue;
		bool handled;
		rc = compile_control(&c, k, v, page_max, &handled);
		if (rc || handled)
			continue;
		if (!*v)
			continue; /* FHIR: an empty value is ignored */
		size_t before = s->where.sql.len;
		rc = compile_param(&c, s->type, "r", 0, k, v);
		if (rc == MC_OK && s->where.sql.len != before)
			rc = canon_add(&c, k, v);
	}
	if (rc == MC_OK) {
		rc = buf_puts(&s->where.sql, c.has_in && !c.has_id ? " AND +r.type = " : " AND r.type = ");
		rc = rc ? rc : fhir_sql_arg(&s->where, SA_TEXT(s->type));
	}
	if (rc == MC_OK)
		rc = fhir_access_sql(&s->where, &c.o->access, s->type);
	if (rc == MC_OK && s->order.len == 0) {
		rc = buf_puts(&s->order, " ORDER BY r.rkey ASC");
		s->default_order = true;
	}
	if (rc == MC_ETOOBIG) {
		*err = "Search is too complex (too many values)";
		rc = MC_EINVAL;
	}
out:
	if (rc == MC_OK) {
		s->canon_query = arena_strdup(a, buf_str(&c.canon));
		*out = s;
	} else if (!*err || !**err) {
		*err = "Invalid search";
	}
	buf_release(&c.canon);
	return rc;
}

/* ---- runner ---- */

/* Read rows (rkey, type, id, version, last_updated_ms, patient_id, json) into v/rk from index
 * *k while below max. Rows whose rkey is in skip[0..nskip) are dropped. */
static int read_rows(struct store_rows *rows, struct arena *a, const char *type, struct fhir_stored *v, int64_t *rk,
		     size_t *k, size_t max, const int64_t *skip, size_t nskip, bool *more)
{
	int st;
	for (;;) {
		st = store_rows_next(rows);
		if (st != 1)
			break;
		int64_t key = store_rows_int(rows, 0);
		bool dup = false;
		for (size_t i = 0; i < nskip && !dup; i++)
			dup = skip[i] == key;
		for (size_t i = 0; i < *k && !dup; i++)
			dup = rk[i] == key;
		if (dup)
			continue;
		if (*k == max) {
			if (more)
				*more = true;
			break;
		}
		struct fhir_stored *e = &v[*k];
		rk[*k] = key;
		(*k)++;
		const char *t = type ? type : store_rows_text(rows, 1);
		snprintf(e->meta.type, sizeof(e->meta.type), "%s", t ? t : "");
		snprintf(e->meta.id, sizeof(e->meta.id), "%s", store_rows_text(rows, 2));
		e->meta.version = store_rows_int(rows, 3);
		e->meta.last_updated_ms = store_rows_int(rows, 4);
		if (!store_rows_null(rows, 5))
			snprintf(e->meta.patient_id, sizeof(e->meta.patient_id), "%s", store_rows_text(rows, 5));
		size_t n = 0;
		const void *p = store_rows_blob(rows, 6, &n);
		e->json = arena_strndup(a, p ? p : "{}", p ? n : 2);
		e->json_len = p ? n : 2;
	}
	return st < 0 ? -st : MC_OK;
}

#define ROW_COLS "r.rkey, r.type, r.id, r.version, r.last_updated_ms, r.patient_id, v.json"

static int rkey_list(struct buf *b, const int64_t *rk, const struct fhir_stored *v, size_t n, const char *type)
{
	int rc = MC_OK;
	bool first = true;
	for (size_t i = 0; !rc && i < n; i++) {
		if (type && strcmp(v[i].meta.type, type) != 0)
			continue;
		rc = buf_printf(b, "%s%lld", first ? "" : ",", (long long)rk[i]);
		first = false;
	}
	return first ? MC_ENOTFOUND : rc;
}

/* Target types of an _include: the target, the parameter's targets, or every reference
 * parameter's targets of the source type ("*"). Arena array; *n entries. */
static const char **include_targets(struct arena *a, const struct fhir_include *in, size_t *n)
{
	const char *const *all = fhir_resource_types();
	size_t cnt = 0;
	while (all[cnt])
		cnt++;
	const char **out = arena_zalloc(a, sizeof(*out) * (cnt + 1));
	*n = 0;
	if (in->target) {
		out[(*n)++] = in->target;
		return out;
	}
	bool *want = arena_zalloc(a, cnt + 1);
	int o = fhir_owner_index(in->src_type);
	for (unsigned k = 0; o >= 0 && k < fhir_sp_owners[o].sp_count; k++) {
		const struct fhir_sp *sp = &fhir_sps[fhir_sp_owners[o].sp_first + k];
		if (sp->type != FHIR_SP_REFERENCE || (in->param && strcmp(FHIR_S(sp->code), in->param) != 0))
			continue;
		for (unsigned t = 0; t < sp->target_count; t++) {
			const char *tn = FHIR_S(fhir_sp_targets[sp->target_first + t]);
			for (size_t i = 0; i < cnt; i++)
				if (!strcmp(all[i], tn))
					want[i] = true;
		}
	}
	for (size_t i = 0; i < cnt; i++)
		if (want[i])
			out[(*n)++] = all[i];
	return out;
}

/* Reference parameter codes of type (for "*"), as a literal SQL list "'a','b'" into b. */
static int ref_params_sql(struct buf *b, const char *type)
{
	int o = fhir_owner_index(type);
	bool first = true;
	int rc = MC_OK;
	for (unsigned k = 0; !rc && o >= 0 && k < fhir_sp_owners[o].sp_count; k++) {
		const struct fhir_sp *sp = &fhir_sps[fhir_sp_owners[o].sp_first + k];
		if (sp->type != FHIR_SP_REFERENCE || !code_is_plain(FHIR_S(sp->code)))
			continue;
		rc = buf_printf(b, "%s'%s'", first ? "" : ",", FHIR_S(sp->code));
		first = false;
	}
	return first ? buf_puts(b, "''") : rc;
}

struct incset {
	struct fhir_stored *v;
	int64_t *rk;
	size_t n;
};

/* One include spec over the source resources src (matches or included ones) into dst. */
static int run_include(struct store_txn *t, struct arena *a, const struct fhir_search *s,
		       const struct fhir_include *in, const struct incset *src, struct incset *dst,
		       const struct fhir_search_result *out)
{
	struct fhir_sql q;
	fhir_sql_init(&q);
	int rc = buf_puts(&q.sql, "SELECT " ROW_COLS " FROM resources r CROSS JOIN resource_versions v "
				  "WHERE v.rkey = r.rkey AND v.version = r.version AND r.deleted = 0");
	if (!in->rev) {
		rc = rc ? rc : buf_puts(&q.sql, " AND (r.type, r.id) IN (SELECT x.ref_type, x.ref_id FROM idx_ref x "
						"WHERE x.rkey IN (");
		int lr = rc ? rc : rkey_list(&q.sql, src->rk, src->v, src->n, in->src_type);
		if (lr == MC_ENOTFOUND) {
			fhir_sql_release(&q);
			return MC_OK;   /* no source of that type */
		}
		rc = lr ? lr : buf_puts(&q.sql, ")");
		if (!rc && in->param) {
			rc = buf_puts(&q.sql, " AND x.param = ");
			rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(in->param));
		}
		rc = rc ? rc : buf_puts(&q.sql, ")");
		size_t nt = 0;
		const char **tt = include_targets(a, in, &nt);
		rc = rc ? rc : types_access_sql(&q, &s->opts, s->type, "r", tt, nt);
	} else {
		rc = rc ? rc : buf_puts(&q.sql, " AND r.rkey IN (SELECT x.rkey FROM idx_ref x WHERE x.param ");
		if (!rc && in->param) {
			rc = buf_puts(&q.sql, "= ");
			rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(in->param));
		} else if (!rc) {
			rc = buf_puts(&q.sql, "IN (");
			rc = rc ? rc : ref_params_sql(&q.sql, in->src_type);
			rc = rc ? rc : buf_puts(&q.sql, ")");
		}
		rc = rc ? rc : buf_puts(&q.sql, " AND (x.ref_id, x.ref_type) IN (SELECT m.id, m.type FROM resources m "
						"WHERE m.rkey IN (");
		int lr = rc ? rc : rkey_list(&q.sql, src->rk, src->v, src->n, in->target);
		if (lr == MC_ENOTFOUND) {
			fhir_sql_release(&q);
			return MC_OK;
		}
		rc = lr ? lr : buf_puts(&q.sql, ")))");
		const char *types[1] = {in->src_type};
		rc = rc ? rc : types_access_sql(&q, &s->opts, s->type, "r", types, 1);
	}
	size_t room = FHIR_SEARCH_MAX_INCLUDED - dst->n;
	rc = rc ? rc : buf_printf(&q.sql, " ORDER BY r.rkey LIMIT %zu", room + out->n + dst->n + 1);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, q.sql.data, q.args, q.nargs, &rows);
	fhir_sql_release(&q);
	if (rc)
		return rc;
	rc = read_rows(rows, a, NULL, dst->v, dst->rk, &dst->n, FHIR_SEARCH_MAX_INCLUDED, out->rkeys, out->n, NULL);
	store_rows_close(rows);
	return rc;
}

static int run_includes(struct store_txn *t, struct arena *a, const struct fhir_search *s,
			struct fhir_search_result *out)
{
	struct incset dst = {
		.v = arena_zalloc(a, sizeof(*dst.v) * FHIR_SEARCH_MAX_INCLUDED),
		.rk = arena_zalloc(a, sizeof(*dst.rk) * FHIR_SEARCH_MAX_INCLUDED),
	};
	struct incset matches = {.v = out->v, .rk = out->rkeys, .n = out->n};
	int rc = MC_OK;
	/* round 1: every spec over the matches */
	for (size_t i = 0; !rc && i < s->ninc; i++)
		rc = run_include(t, a, s, &s->inc[i], &matches, &dst, out);
	/* round 2 (:iterate, one level): iterate specs over what round 1 included */
	size_t n1 = dst.n;
	struct incset first = {.v = dst.v, .rk = dst.rk, .n = n1};
	for (size_t i = 0; !rc && n1 && i < s->ninc; i++)
		if (s->inc[i].iterate)
			rc = run_include(t, a, s, &s->inc[i], &first, &dst, out);
	out->inc = dst.v;
	out->ninc = dst.n;
	return rc;
}

int fhir_search_run(struct store_txn *t, struct arena *a, const struct fhir_search *s,
		    struct fhir_search_result *out)
{
	memset(out, 0, sizeof(*out));
	out->total = -1;
	int rc = MC_OK;
	/* the paging bound: rkeys only grow, so "rkey <= snapshot" hides later creates */
	if (s->snapshot > 0) {
		out->snapshot = s->snapshot;
	} else {
		rc = store_query_int(t, "SELECT coalesce(max(rkey), 0) FROM resources", NULL, 0, &out->snapshot);
		if (rc)
			return rc;
	}
	struct buf snap = BUF_INIT, bound = BUF_INIT;
	rc = s->snapshot > 0 ? buf_printf(&snap, " AND r.rkey <= %lld", (long long)s->snapshot) : MC_OK;
	bool keyset = s->default_order && s->cursor > 0;
	rc = rc ? rc : buf_puts(&bound, buf_str(&snap));
	if (!rc && keyset)
		rc = buf_printf(&bound, " AND r.rkey > %lld", (long long)s->cursor);
	if (!rc && (s->total_mode != FHIR_TOTAL_NONE || s->summary_count)) {
		/* the total covers the whole snapshot, not only what follows the cursor */
		bool bounded = s->total_mode == FHIR_TOTAL_BOUNDED && !s->summary_count;
		struct buf q = BUF_INIT;
		rc = bounded ? buf_printf(&q, "SELECT count(*) FROM (SELECT 1 FROM resources r WHERE %s%s LIMIT %d) b",
					  buf_str(&s->where.sql), buf_str(&snap), FHIR_TOTAL_BOUND + 1)
			     : buf_printf(&q, "SELECT count(*) FROM resources r WHERE %s%s", buf_str(&s->where.sql),
					  buf_str(&snap));
		if (!rc)
			rc = store_query_int(t, q.data, s->where.args, s->where.nargs, &out->total);
		if (!rc && bounded && out->total > FHIR_TOTAL_BOUND)
			out->total = -1;
		buf_release(&q);
	}
	buf_release(&snap);
	if (rc || s->summary_count || s->count <= 0) {
		buf_release(&bound);
		return rc;
	}
	struct buf q = BUF_INIT;
	rc = buf_printf(&q,
			"SELECT " ROW_COLS " FROM resources r CROSS JOIN resource_versions v "
			"WHERE v.rkey = r.rkey AND v.version = r.version AND %s%s%s LIMIT %d OFFSET %d",
			buf_str(&s->where.sql), buf_str(&bound), buf_str(&s->order), s->count + 1,
			keyset ? 0 : s->offset);
	buf_release(&bound);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, q.data, s->where.args, s->where.nargs, &rows);
	buf_release(&q);
	if (rc)
		return rc;
	out->v = arena_zalloc(a, sizeof(*out->v) * (size_t)s->count);
	out->rkeys = arena_zalloc(a, sizeof(*out->rkeys) * (size_t)s->count);
	rc = read_rows(rows, a, s->type, out->v, out->rkeys, &out->n, (size_t)s->count, NULL, 0, &out->more);
	store_rows_close(rows);
	if (rc)
		return rc;
	if (out->n)
		out->last_rkey = out->rkeys[out->n - 1];
	if (s->ninc && out->n)
		rc = run_includes(t, a, s, out);
	return rc;
}

/* ---- the searchset Bundle ---- */

#define SUBSETTED_TAG                                                                                   \
	"{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ObservationValue\",\"code\":\"SUBSETTED\","  \
	"\"display\":\"Resource encoded in summary mode\"}"

/* Does the top-level element key survive _summary / _elements? */
static bool keep_element(const struct fhir_search *s, int tix, const char *key)
{
	if (key[0] == '_')
		key++;   /* a primitive's extension sibling follows its element */
	/* status is a modifier (and summary) element wherever it occurs; the JSON schema does not
	 * mark it required, so it is kept explicitly */
	if (!strcmp(key, "resourceType") || !strcmp(key, "id") || !strcmp(key, "meta") || !strcmp(key, "status"))
		return true;
	const struct fhir_elem_def *e = tix >= 0 ? fhir_elem_find(tix, key) : NULL;
	if (e && (e->flags & FHIR_E_REQUIRED))
		return true;
	if (s->elements) {
		for (const char **n = s->elements; *n; n++) {
			if (!strcmp(*n, key) || (e && e->choice && !strcmp(FHIR_S(e->choice), *n)))
				return true;
		}
		return false;
	}
	switch (s->summary) {
	case FHIR_SUMMARY_TRUE:
	case FHIR_SUMMARY_TEXT: return !strcmp(key, "text") || !strcmp(key, "implicitRules");
	case FHIR_SUMMARY_DATA: return strcmp(key, "text") != 0;
	default: return true;
	}
}

/* The match's JSON reduced per _summary/_elements with meta.tag SUBSETTED added, into b. */
static int put_shaped(struct buf *b, const struct fhir_search *s, const struct fhir_stored *e)
{
	json_t *res = NULL;
	if (mcjson_parse(e->json, e->json_len, &res, NULL) != MC_OK || !json_is_object(res)) {
		json_decref(res);
		return buf_append(b, e->json, e->json_len);   /* stored bytes are ours: not expected */
	}
	int tix = fhir_type_index(e->meta.type);
	json_t *o = json_object();
	const char *k;
	json_t *v;
	json_object_foreach(res, k, v) {
		if (keep_element(s, tix, k))
			json_object_set(o, k, v);
	}
	json_t *meta = json_object_get(o, "meta");
	if (!json_is_object(meta)) {
		meta = json_object();
		json_object_set_new(o, "meta", meta);
	}
	json_t *tags = json_object_get(meta, "tag");
	if (!json_is_array(tags)) {
		tags = json_array();
		json_object_set_new(meta, "tag", tags);
	}
	json_t *tag = NULL;
	if (mcjson_parse(SUBSETTED_TAG, strlen(SUBSETTED_TAG), &tag, NULL) == MC_OK)
		json_array_append_new(tags, tag);
	int rc = mcjson_dump(o, b);
	json_decref(o);
	json_decref(res);
	return rc;
}

static int put_link(struct buf *b, bool *first, const char *rel, const char *base, const struct fhir_search *s,
		    const char *paging)
{
	struct buf u = BUF_INIT;
	const char *q = s->canon_query ? s->canon_query : "";
	int rc = buf_printf(&u, "%s?%s%s%s", base, q, q[0] ? "&" : "", paging);
	rc = rc ? rc : buf_printf(b, "%s{\"relation\":\"%s\",\"url\":", *first ? "" : ",", rel);
	rc = rc ? rc : buf_json_str(b, buf_str(&u));
	rc = rc ? rc : buf_putc(b, '}');
	buf_release(&u);
	*first = false;
	return rc;
}

static int put_entry(struct buf *b, struct arena *a, const char *fhir_base, const struct fhir_stored *e,
		     const char *mode, const struct fhir_search *shape)
{
	int rc = buf_puts(b, "{\"fullUrl\":");
	rc = rc ? rc : buf_json_str(b, arena_printf(a, "%s/%s/%s", fhir_base, e->meta.type, e->meta.id));
	rc = rc ? rc : buf_puts(b, ",\"resource\":");
	if (shape)
		rc = rc ? rc : put_shaped(b, shape, e);
	else
		rc = rc ? rc : buf_append(b, e->json, e->json_len);
	return rc ? rc : buf_printf(b, ",\"search\":{\"mode\":\"%s\"}}", mode);
}

int fhir_search_bundle(struct buf *b, struct arena *a, const char *fhir_base, const struct fhir_search *s,
		       const struct fhir_search_result *res)
{
	char id[MCID_LEN + 1], now[32];
	mcid_new(id);
	mctime_format_ms(mctime_now_ms(), now);
	int rc = buf_printf(b, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"meta\":{\"lastUpdated\":\"%s\"},"
			       "\"type\":\"searchset\"",
			    id, now);
	if (!rc && res->total >= 0)
		rc = buf_printf(b, ",\"total\":%lld", (long long)res->total);

	/* links: self as asked; next/previous carry the snapshot bound (and the keyset cursor) */
	const char *base = arena_printf(a, "%s/%s", fhir_base, s->type);
	bool first = true;
	rc = rc ? rc : buf_puts(b, ",\"link\":[");
	char paging[160];
	if (s->snapshot > 0 && s->cursor > 0 && s->default_order)
		snprintf(paging, sizeof(paging), "_count=%d&_snapshot=%lld&_cursor=%lld&_offset=%d", s->count,
			 (long long)s->snapshot, (long long)s->cursor, s->offset);
	else if (s->snapshot > 0)
		snprintf(paging, sizeof(paging), "_count=%d&_snapshot=%lld&_offset=%d", s->count, (long long)s->snapshot,
			 s->offset);
	else
		snprintf(paging, sizeof(paging), "_count=%d&_offset=%d", s->count, s->offset);
	rc = rc ? rc : put_link(b, &first, "self", base, s, paging);
	if (!rc && res->more && !s->summary_count) {
		if (s->default_order)
			snprintf(paging, sizeof(paging), "_count=%d&_snapshot=%lld&_cursor=%lld&_offset=%d", s->count,
				 (long long)res->snapshot, (long long)res->last_rkey, s->offset + s->count);
		else
			snprintf(paging, sizeof(paging), "_count=%d&_snapshot=%lld&_offset=%d", s->count,
				 (long long)res->snapshot, s->offset + s->count);
		rc = put_link(b, &first, "next", base, s, paging);
	}
	if (!rc && s->offset > 0) {
		snprintf(paging, sizeof(paging), "_count=%d&_snapshot=%lld&_offset=%d", s->count, (long long)res->snapshot,
			 s->offset - s->count < 0 ? 0 : s->offset - s->count);
		rc = put_link(b, &first, "previous", base, s, paging);
	}
	rc = rc ? rc : buf_putc(b, ']');

	bool shaped = s->elements || s->summary != FHIR_SUMMARY_FALSE;
	bool any = false;
	for (size_t i = 0; !rc && i < res->n; i++) {
		rc = buf_puts(b, any ? "," : ",\"entry\":[");
		any = true;
		rc = rc ? rc : put_entry(b, a, fhir_base, &res->v[i], "match", shaped ? s : NULL);
	}
	for (size_t i = 0; !rc && i < res->ninc; i++) {
		rc = buf_puts(b, any ? "," : ",\"entry\":[");
		any = true;
		rc = rc ? rc : put_entry(b, a, fhir_base, &res->inc[i], "include", NULL);
	}
	if (!rc && s->nignored) {
		rc = buf_puts(b, any ? "," : ",\"entry\":[");
		any = true;
		rc = rc ? rc : buf_puts(b, "{\"resource\":{\"resourceType\":\"OperationOutcome\",\"issue\":[");
		for (size_t i = 0; !rc && i < s->nignored; i++) {
			rc = buf_printf(b, "%s{\"severity\":\"warning\",\"code\":\"not-supported\",\"diagnostics\":",
					i ? "," : "");
			rc = rc ? rc : buf_json_str(b, arena_printf(a, "%s; ignored", s->ignored[i]));
			rc = rc ? rc : buf_putc(b, '}');
		}
		rc = rc ? rc : buf_puts(b, "]},\"search\":{\"mode\":\"outcome\"}}");
	}
	if (!rc && any)
		rc = buf_putc(b, ']');
	return rc ? rc : buf_putc(b, '}');
}
