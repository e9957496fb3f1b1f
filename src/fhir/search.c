/* fhir/search.c — the FHIR search compiler and runner (fhir/search.h).
 *
 * Shape of the statement:
 *   SELECT ... FROM resources r CROSS JOIN resource_versions v
 *   WHERE v.rkey = r.rkey AND v.version = r.version
 *     AND r.deleted = 0
 *     AND r.rkey IN (SELECT rkey FROM idx_string WHERE param = $2 AND (norm >= $3 AND norm < $4))
 *     AND ... one term per query parameter ...
 *     AND +r.type = $1                 -- '+': let the planner drive from an index term instead
 *   ORDER BY r.rkey LIMIT n OFFSET m
 * `rkey IN (subquery)` makes SQLite walk the index table's primary key range and look resources up
 * by rowid, in rowid order (no sort step), which keeps a family search among 100k patients far
 * below a millisecond. Every client value is a bound argument; the only text formatted into SQL
 * is this file's constants and search-parameter codes from the generated tables (checked again
 * to be [a-z0-9_-] before use).
 */
#include "fhir/search.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mctime.h"
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

static int access_cond(struct fhir_sql *q, const struct fhir_access *acc)
{
	int rc;
	switch (acc->scope) {
	case AUTH_SCOPE_OWN:
		if (!acc->patient_id || !acc->patient_id[0])
			return buf_puts(&q->sql, "0 = 1");
		rc = buf_puts(&q->sql, "r.patient_id = ");
		return rc ? rc : fhir_sql_arg(q, SA_TEXT(acc->patient_id));
	case AUTH_SCOPE_CARE: {
		if (q->nargs + 2 > FHIR_SQL_MAX_ARGS)
			return MC_ETOOBIG;
		int64_t now = acc->now_ms ? acc->now_ms : mctime_now_ms();
		q->args[q->nargs++] = SA_INT(acc->user_id);
		int u = (int)q->nargs;
		q->args[q->nargs++] = SA_INT(now);
		int n = (int)q->nargs;
		return buf_printf(&q->sql, AUTH_CARE_SQL, "r.patient_id", u, n, "r.patient_id", u, n);
	}
	case AUTH_SCOPE_ALL:
		return buf_puts(&q->sql, "1 = 1");
	case AUTH_SCOPE_NONE:
	default:
		return buf_puts(&q->sql, "0 = 1");
	}
}

int fhir_access_sql(struct fhir_sql *q, const struct fhir_access *acc, const char *type)
{
	if (!acc || acc->scope == AUTH_SCOPE_ALL)
		return MC_OK;
	if (type) {
		if (!fhir_type_in_patient_compartment(type))
			return MC_OK;
		int rc = buf_puts(&q->sql, " AND (");
		if (!rc)
			rc = access_cond(q, acc);
		return rc ? rc : buf_puts(&q->sql, ")");
	}
	/* any type: rows of non-compartment types pass; the list is this file's constants */
	int rc = buf_puts(&q->sql, " AND (r.type NOT IN (");
	for (size_t i = 0; !rc && i < sizeof(compartment_types) / sizeof(compartment_types[0]); i++)
		rc = buf_printf(&q->sql, "%s'%s'", i ? ", " : "", compartment_types[i]);
	if (!rc)
		rc = buf_puts(&q->sql, ") OR ");
	if (!rc)
		rc = access_cond(q, acc);
	return rc ? rc : buf_puts(&q->sql, ")");
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

/* One value's condition inside the index subquery (columns of that index table). */
static int value_cond(struct cc *c, const struct fhir_sp *sp, const char *name, const char *mod, const char *raw)
{
	const char *end = raw + strlen(raw);
	int rc;
	switch (fhir_sp_type(sp)) {
	case FHIR_SP_STRING: {
		char *v = unescape(c->a, raw, end);
		char *norm = arena_alloc(c->a, strlen(v) * 3 + 16);
		if (fhir_normalize(v, norm, strlen(v) * 3 + 16) != MC_OK)
			return fail(c, "Search parameter '%s': value too long", name);
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

bool fhir_search_param_supported(const struct fhir_sp *sp)
{
	/* full-text (_content, _text), named queries (_query) and the like need more than an index */
	static const char *const no[] = {"_content", "_text", "_query", "_has", "_list", "_type", "_filter"};
	if (!sp || !table_of(fhir_sp_type(sp)))
		return false;
	const char *code = fhir_sp_code(sp);
	if (!code_is_plain(code))
		return false;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcmp(code, no[i]))
			return false;
	return true;
}

static bool mod_allowed(enum fhir_sp_type t, const char *mod)
{
	if (!mod)
		return true;
	if (strcmp(mod, "missing") == 0)
		return true;
	switch (t) {
	case FHIR_SP_STRING: return strcmp(mod, "exact") == 0 || strcmp(mod, "contains") == 0;
	case FHIR_SP_TOKEN: return strcmp(mod, "not") == 0;
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

static int compile_param(struct cc *c, const char *key, const char *value)
{
	char name[80];
	const char *colon = strchr(key, ':');
	size_t nlen = colon ? (size_t)(colon - key) : strlen(key);
	if (nlen == 0 || nlen >= sizeof(name))
		return fail(c, "Unknown search parameter '%s'", key);
	memcpy(name, key, nlen);
	name[nlen] = '\0';
	const char *mod = colon ? colon + 1 : NULL;
	const char *vals[MAX_VALUES];
	size_t nv;
	int rc;

	if (strcmp(name, "_id") == 0) {
		if (mod)
			return fail(c, "Search parameter '%s': modifier not supported", key);
		rc = split_values(c, value, key, vals, &nv);
		if (rc)
			return rc;
		rc = put(c, " AND r.id IN (");
		for (size_t i = 0; !rc && i < nv; i++) {
			rc = i ? put(c, ", ") : MC_OK;
			rc = rc ? rc : arg(c, SA_TEXT(unescape(c->a, vals[i], vals[i] + strlen(vals[i]))));
		}
		c->has_id = true;
		return rc ? rc : put(c, ")");
	}
	if (strcmp(name, "_lastUpdated") == 0) {
		if (mod)
			return fail(c, "Search parameter '%s': modifier not supported", key);
		rc = split_values(c, value, key, vals, &nv);
		if (rc)
			return rc;
		rc = put(c, " AND (");
		for (size_t i = 0; !rc && i < nv; i++) {
			enum prefix p;
			int64_t lo, hi;
			rc = parse_date(c, key, vals[i], &p, &lo, &hi);
			if (rc)
				return rc;
			rc = i ? put(c, " OR ") : MC_OK;
			rc = rc ? rc : date_cond(c, p, lo, hi, "r.last_updated_ms", "(r.last_updated_ms + 1)");
		}
		return rc ? rc : put(c, ")");
	}

	const struct fhir_sp *sp = fhir_sp_find(c->type, name);
	if (!sp) {
		if (c->o->lenient)
			return MC_OK;
		*c->err = arena_printf(c->a, "Unknown search parameter '%s' for resource type %s",
				       safe_name(c->a, name), c->type);
		return MC_EINVAL;
	}
	enum fhir_sp_type st = fhir_sp_type(sp);
	const char *table = table_of(st);
	const char *code = fhir_sp_code(sp);
	if (!fhir_search_param_supported(sp))
		return fail(c, "Search parameter '%s' is not supported by this server", name);
	if (!mod_allowed(st, mod))
		return fail(c, "Search parameter '%s': modifier not supported", key);

	struct buf *b = &c->s->where.sql;
	if (mod && strcmp(mod, "missing") == 0) {
		bool missing;
		if (strcmp(value, "true") == 0)
			missing = true;
		else if (strcmp(value, "false") == 0)
			missing = false;
		else
			return fail(c, "Search parameter '%s': :missing takes true or false", name);
		rc = buf_printf(b, " AND r.rkey %sIN (SELECT rkey FROM %s WHERE param = ", missing ? "NOT " : "", table);
		rc = rc ? rc : arg(c, SA_TEXT(code));
		if (!missing)
			c->has_in = true;
		return rc ? rc : put(c, ")");
	}
	rc = split_values(c, value, name, vals, &nv);
	if (rc)
		return rc;
	bool neg = mod && strcmp(mod, "not") == 0;
	rc = buf_printf(b, " AND r.rkey %sIN (SELECT rkey FROM %s WHERE param = ", neg ? "NOT " : "", table);
	rc = rc ? rc : arg(c, SA_TEXT(code));
	rc = rc ? rc : put(c, " AND (");
	for (size_t i = 0; !rc && i < nv; i++) {
		rc = i ? put(c, " OR ") : MC_OK;
		rc = rc ? rc : value_cond(c, sp, name, mod, vals[i]);
	}
	if (!neg)
		c->has_in = true;
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
		if (!sp || !code_is_plain(code))
			return fail(c, "Cannot sort by '%s': unknown search parameter", f);
		/* code is a generated constant of plain characters (checked above) */
		switch (fhir_sp_type(sp)) {
		case FHIR_SP_STRING:
			rc = buf_printf(o, "(SELECT min(norm) FROM idx_string x WHERE x.rkey = r.rkey AND x.param = '%s') %s",
					code, dir);
			break;
		case FHIR_SP_DATE:
			rc = buf_printf(o, "(SELECT %s FROM idx_date x WHERE x.rkey = r.rkey AND x.param = '%s') %s",
					desc ? "max(hi)" : "min(lo)", code, dir);
			break;
		case FHIR_SP_TOKEN:
			rc = buf_printf(o, "(SELECT min(code) FROM idx_token x WHERE x.rkey = r.rkey AND x.param = '%s') %s",
					code, dir);
			break;
		case FHIR_SP_NUMBER:
			rc = buf_printf(o, "(SELECT min(value) FROM idx_number x WHERE x.rkey = r.rkey AND x.param = '%s') %s",
					code, dir);
			break;
		default:
			return fail(c, "Cannot sort by '%s': only string, date, token and number parameters", f);
		}
	}
	return rc ? rc : buf_puts(o, ", r.rkey ASC");
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

int fhir_search_compile(struct arena *a, const char *type, const struct kv *q, size_t nq,
			const struct fhir_search_opts *opts, struct fhir_search **out, const char **err)
{
	static const char *const dummy_err = "";
	const char *e_local = dummy_err;
	if (!err)
		err = &e_local;
	*err = NULL;
	*out = NULL;
	if (!type || !fhir_type_is_resource(type)) {
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
	struct cc c = {.a = a, .s = s, .o = opts ? opts : &dflt, .type = s->type, .err = err};
	c.now_ms = c.o->access.now_ms ? c.o->access.now_ms : mctime_now_ms();
	buf_init(&c.canon, 64 << 10);

	int rc = MC_OK;
	if (nq > MAX_PARAMS) {
		*err = "Too many search parameters";
		rc = MC_EINVAL;
		goto out;
	}
	rc = buf_puts(&s->where.sql, "r.deleted = 0");
	for (size_t i = 0; !rc && i < nq; i++) {
		const char *k = q[i].key, *v = q[i].value ? q[i].value : "";
		if (!k || !*k)
			continue;
		if (strcmp(k, "_count") == 0) {
			if (parse_int(v, 0, 1 << 30, &s->count)) {
				rc = fail(&c, "Search parameter '%s': expected a non-negative integer", k);
				break;
			}
			if (s->count > page_max)
				s->count = page_max;
			if (s->count == 0)
				s->summary_count = true;
			continue;
		}
		if (strcmp(k, "_offset") == 0) {
			if (parse_int(v, 0, MAX_OFFSET, &s->offset))
				rc = fail(&c, "Search parameter '%s': expected a non-negative integer", k);
			continue;
		}
		if (strcmp(k, "_pretty") == 0)
			continue;
		if (strcmp(k, "_format") == 0) {
			if (strcmp(v, "json") != 0 && strcmp(v, "application/fhir+json") != 0 &&
			    strcmp(v, "application/json") != 0)
				rc = fail(&c, "Search parameter '%s': only json is supported", k);
			continue;
		}
		if (strcmp(k, "_total") == 0) {
			if (strcmp(v, "none") == 0)
				s->total_mode = FHIR_TOTAL_NONE;
			else if (strcmp(v, "accurate") == 0 || strcmp(v, "estimate") == 0)
				s->total_mode = FHIR_TOTAL_ACCURATE;
			else
				rc = fail(&c, "Search parameter '%s': expected none, estimate or accurate", k);
			rc = rc ? rc : canon_add(&c, k, v);
			continue;
		}
		if (strcmp(k, "_summary") == 0) {
			if (strcmp(v, "count") == 0)
				s->summary_count = true;
			else if (strcmp(v, "false") != 0)
				rc = fail(&c, "Search parameter '%s': only count and false are supported", k);
			rc = rc ? rc : canon_add(&c, k, v);
			continue;
		}
		if (strcmp(k, "_sort") == 0) {
			if (s->order.len) {
				rc = fail(&c, "Search parameter '%s' given twice", k);
				break;
			}
			rc = compile_sort(&c, v);
			rc = rc ? rc : canon_add(&c, k, v);
			continue;
		}
		if (!*v)
			continue; /* FHIR: an empty value is ignored */
		size_t before = s->where.sql.len;
		rc = compile_param(&c, k, v);
		if (rc == MC_OK && s->where.sql.len != before)
			rc = canon_add(&c, k, v);
	}
	if (rc == MC_OK) {
		rc = buf_puts(&s->where.sql, c.has_in && !c.has_id ? " AND +r.type = " : " AND r.type = ");
		rc = rc ? rc : fhir_sql_arg(&s->where, SA_TEXT(s->type));
	}
	if (rc == MC_OK)
		rc = fhir_access_sql(&s->where, &c.o->access, s->type);
	if (rc == MC_OK && s->order.len == 0)
		rc = buf_puts(&s->order, " ORDER BY r.rkey ASC");
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

int fhir_search_run(struct store_txn *t, struct arena *a, const struct fhir_search *s,
		    struct fhir_search_result *out)
{
	memset(out, 0, sizeof(*out));
	out->total = -1;
	int rc = MC_OK;
	if (s->total_mode == FHIR_TOTAL_ACCURATE || s->summary_count) {
		struct buf q = BUF_INIT;
		rc = buf_printf(&q, "SELECT count(*) FROM resources r WHERE %s", buf_str(&s->where.sql));
		if (!rc)
			rc = store_query_int(t, q.data, s->where.args, s->where.nargs, &out->total);
		buf_release(&q);
		if (rc)
			return rc;
	}
	if (s->summary_count || s->count <= 0)
		return MC_OK;
	struct buf q = BUF_INIT;
	rc = buf_printf(&q,
			"SELECT r.id, r.version, r.last_updated_ms, r.patient_id, v.json "
			"FROM resources r CROSS JOIN resource_versions v "
			"WHERE v.rkey = r.rkey AND v.version = r.version AND %s%s LIMIT %d OFFSET %d",
			buf_str(&s->where.sql), buf_str(&s->order), s->count + 1, s->offset);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, q.data, s->where.args, s->where.nargs, &rows);
	buf_release(&q);
	if (rc)
		return rc;
	struct fhir_stored *v = arena_zalloc(a, sizeof(*v) * (size_t)s->count);
	size_t k = 0;
	int st;
	for (;;) {
		st = store_rows_next(rows);
		if (st != 1)
			break;
		if (k == (size_t)s->count) {
			out->more = true;
			break;
		}
		struct fhir_stored *e = &v[k++];
		snprintf(e->meta.type, sizeof(e->meta.type), "%s", s->type);
		snprintf(e->meta.id, sizeof(e->meta.id), "%s", store_rows_text(rows, 0));
		e->meta.version = store_rows_int(rows, 1);
		e->meta.last_updated_ms = store_rows_int(rows, 2);
		if (!store_rows_null(rows, 3))
			snprintf(e->meta.patient_id, sizeof(e->meta.patient_id), "%s", store_rows_text(rows, 3));
		size_t n = 0;
		const void *p = store_rows_blob(rows, 4, &n);
		e->json = arena_strndup(a, p ? p : "{}", p ? n : 2);
		e->json_len = p ? n : 2;
	}
	if (st < 0)
		rc = -st;
	store_rows_close(rows);
	out->v = v;
	out->n = k;
	return rc;
}
