/* fhir/resource.c — lookups over the generated R4 tables, the search-parameter API and
 * structural validation (fhir_validate).
 *
 * Validation walks the JSON once, guided by the type tables: every key must be an element of the
 * type (or the `_name` extension sibling of a primitive element), every value must have the
 * element's JSON shape, primitives must match FHIR's formats (hand-written matchers, no regex),
 * fixed value sets are enforced, at most one variant of a choice[x] may appear, required elements
 * must be present. Contained resources (ResourceList) are validated by their own resourceType.
 * Nesting is capped (FHIR_MAX_DEPTH) so hostile input cannot exhaust the stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/gen_fhir.h"
#include "fhir/resource.h"

#define FHIR_MAX_DEPTH 48       /* object nesting; Extension.extension chains are input-driven */
#define FHIR_MAX_CHOICES 16     /* choice groups tracked per object (R4 max is well below) */

/* ---- table lookups ---- */

static int cmp_type(const void *key, const void *elem)
{
	return strcmp(key, FHIR_S(((const struct fhir_type_def *)elem)->name));
}

int fhir_type_index(const char *name)
{
	const struct fhir_type_def *t = bsearch(name, fhir_types, FHIR_NTYPES, sizeof fhir_types[0], cmp_type);
	return t ? (int)(t - fhir_types) : -1;
}

static int cmp_owner(const void *key, const void *elem)
{
	return strcmp(key, FHIR_S(((const struct fhir_sp_owner *)elem)->name));
}

int fhir_owner_index(const char *name)
{
	const struct fhir_sp_owner *o =
		bsearch(name, fhir_sp_owners, FHIR_NOWNERS, sizeof fhir_sp_owners[0], cmp_owner);
	return o ? (int)(o - fhir_sp_owners) : -1;
}

static int cmp_elem(const void *key, const void *elem)
{
	return strcmp(key, FHIR_S(((const struct fhir_elem_def *)elem)->name));
}

const struct fhir_elem_def *fhir_elem_find(int type, const char *name)
{
	const struct fhir_type_def *t = &fhir_types[type];
	if (t->elem_count == 0)
		return NULL;
	return bsearch(name, &fhir_elems[t->elem_first], t->elem_count, sizeof fhir_elems[0], cmp_elem);
}

bool fhir_type_is_resource(const char *type)
{
	int t = type ? fhir_type_index(type) : -1;
	return t >= 0 && fhir_types[t].kind == FHIR_K_RESOURCE;
}

const char *const *fhir_resource_types(void)
{
	return fhir_resource_names;
}

/* ---- search parameters ---- */

static int cmp_sp(const void *key, const void *elem)
{
	return strcmp(key, FHIR_S(((const struct fhir_sp *)elem)->code));
}

static const struct fhir_sp *sp_in_owner(int owner, const char *code)
{
	if (owner < 0 || fhir_sp_owners[owner].sp_count == 0)
		return NULL;
	const struct fhir_sp_owner *o = &fhir_sp_owners[owner];
	return bsearch(code, &fhir_sps[o->sp_first], o->sp_count, sizeof fhir_sps[0], cmp_sp);
}

/* The owners whose parameters apply to resource type t: itself, Resource, DomainResource. */
static int sp_owners(const char *type, int owners[3])
{
	int t = type ? fhir_type_index(type) : -1;
	int n = 0;
	if (t < 0 || fhir_types[t].kind != FHIR_K_RESOURCE)
		return 0;
	owners[n++] = fhir_owner_index(type);
	owners[n++] = fhir_owner_index("Resource");
	if (fhir_types[t].domain)
		owners[n++] = fhir_owner_index("DomainResource");
	return n;
}

const struct fhir_sp *fhir_sp_find(const char *type, const char *code)
{
	int owners[3];
	int n = sp_owners(type, owners);
	for (int i = 0; i < n && code; i++) {
		const struct fhir_sp *sp = owners[i] >= 0 ? sp_in_owner(owners[i], code) : NULL;
		if (sp)
			return sp;
	}
	return NULL;
}

enum fhir_sp_type fhir_sp_type(const struct fhir_sp *sp) { return (enum fhir_sp_type)sp->type; }
const char *fhir_sp_code(const struct fhir_sp *sp) { return FHIR_S(sp->code); }
const char *fhir_sp_documentation(const struct fhir_sp *sp) { return FHIR_S(sp->doc); }

void fhir_sp_each(const char *type, void (*cb)(const struct fhir_sp *sp, void *arg), void *arg)
{
	int owners[3];
	int n = sp_owners(type, owners);
	for (int i = 0; i < n; i++) {
		if (owners[i] < 0)
			continue;
		const struct fhir_sp_owner *o = &fhir_sp_owners[owners[i]];
		for (unsigned k = 0; k < o->sp_count; k++)
			cb(&fhir_sps[o->sp_first + k], arg);
	}
}

/* ---- primitive formats ---- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* hh:mm:ss(.f+)? at s; returns chars consumed or 0. */
static size_t match_time(const char *s)
{
	if (!digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2))
		return 0;
	int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
	int sec = (s[6] - '0') * 10 + (s[7] - '0');
	if (h > 23 || m > 59 || sec > 60)
		return 0;
	size_t n = 8;
	if (s[n] == '.') {
		size_t f = ++n;
		while (is_digit(s[n]))
			n++;
		if (n == f)
			return 0;
	}
	return n;
}

enum dt_mode { DT_DATE, DT_DATETIME, DT_INSTANT };

/* FHIR's date / dateTime / instant regexes, then calendar validity (no Feb 30) via mctime. */
static bool match_datetime(const char *s, enum dt_mode mode)
{
	size_t n = 0;
	if (!digits(s, 4) || memcmp(s, "0000", 4) == 0)
		return false;
	n = 4;
	int parts = 1;
	if (s[n] == '-') {
		if (!digits(s + n + 1, 2))
			return false;
		n += 3;
		parts = 2;
		if (s[n] == '-') {
			if (!digits(s + n + 1, 2))
				return false;
			n += 3;
			parts = 3;
		}
	}
	if (s[n] == 'T' && mode != DT_DATE && parts == 3) {
		size_t t = match_time(s + n + 1);
		if (t == 0)
			return false;
		n += 1 + t;
		if (s[n] == 'Z') {
			n++;
		} else if (s[n] == '+' || s[n] == '-') {
			const char *z = s + n + 1;
			if (!digits(z, 2) || z[2] != ':' || !digits(z + 3, 2))
				return false;
			int zh = (z[0] - '0') * 10 + (z[1] - '0'), zm = (z[3] - '0') * 10 + (z[4] - '0');
			if (zm > 59 || zh > 14 || (zh == 14 && zm != 0))
				return false;
			n += 6;
		} else {
			return false;
		}
	} else if (mode == DT_INSTANT) {
		return false;
	}
	if (s[n] != '\0')
		return false;
	return mctime_parse_fhir(s, NULL, NULL, NULL) == 0;
}

static bool match_id(const char *s, size_t n)
{
	if (n < 1 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* ^[^\s]+(\s[^\s]+)*$ */
static bool match_code(const char *s, size_t n)
{
	if (n == 0 || is_ws(s[0]) || is_ws(s[n - 1]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (is_ws(s[i]) && is_ws(s[i - 1]))
			return false;
	return true;
}

static bool match_uri(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (is_ws(s[i]))
			return false;
	return true;
}

/* ^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$ */
static bool match_oid(const char *s)
{
	if (strncmp(s, "urn:oid:", 8) != 0 || s[8] < '0' || s[8] > '2')
		return false;
	const char *p = s + 9;
	int arcs = 0;
	while (*p == '.') {
		p++;
		if (*p == '0') {
			p++;
		} else if (*p >= '1' && *p <= '9') {
			while (is_digit(*p))
				p++;
		} else {
			return false;
		}
		arcs++;
	}
	return arcs > 0 && *p == '\0';
}

static bool match_uuid(const char *s, size_t n)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	if (n != 9 + sizeof shape - 1 || strncmp(s, "urn:uuid:", 9) != 0)
		return false;
	for (size_t i = 0; i < sizeof shape - 1; i++) {
		char c = s[9 + i];
		if (shape[i] == '-' ? c != '-' : !(is_digit(c) || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

static bool match_base64(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (is_ws(c))
			continue;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '+' || c == '/' || c == '='))
			return false;
		k++;
	}
	return k > 0 && k % 4 == 0;
}

/* ---- validation ---- */

struct vctx {
	struct fhir_issues *out;
	char path[sizeof(((struct fhir_issue *)0)->path)];
	size_t plen;
	int depth;
};

static bool full(const struct vctx *v) { return v->out->n >= FHIR_MAX_ISSUES; }

__attribute__((format(printf, 3, 4)))
static void issue(struct vctx *v, const char *code, const char *fmt, ...)
{
	if (full(v))
		return;
	struct fhir_issue *is = &v->out->v[v->out->n++];
	snprintf(is->code, sizeof is->code, "%s", code);
	snprintf(is->path, sizeof is->path, "%s", v->path);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(is->msg, sizeof is->msg, fmt, ap);
	va_end(ap);
}

/* Append ".key" (keys from input are cut at 64 bytes) or "[i]"; return the length to restore. */
static size_t push_key(struct vctx *v, const char *key)
{
	size_t old = v->plen;
	int n = snprintf(v->path + v->plen, sizeof v->path - v->plen, ".%.64s", key);
	if (n > 0)
		v->plen += (size_t)n < sizeof v->path - v->plen ? (size_t)n : sizeof v->path - v->plen - 1;
	return old;
}

static size_t push_index(struct vctx *v, size_t i)
{
	size_t old = v->plen;
	int n = snprintf(v->path + v->plen, sizeof v->path - v->plen, "[%zu]", i);
	if (n > 0)
		v->plen += (size_t)n < sizeof v->path - v->plen ? (size_t)n : sizeof v->path - v->plen - 1;
	return old;
}

static void pop(struct vctx *v, size_t old)
{
	v->plen = old;
	v->path[old] = '\0';
}

static const char *json_kind(const json_t *j)
{
	if (mcjson_is_decimal(j) || json_is_number(j))
		return "number";
	switch (json_typeof(j)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	default: return "null";
	}
}

static bool in_enum(unsigned set, const char *s)
{
	const struct fhir_enum_set *es = &fhir_enum_sets[set];
	for (unsigned i = 0; i < es->count; i++)
		if (strcmp(FHIR_S(fhir_enum_vals[es->first + i]), s) == 0)
			return true;
	return false;
}

static void check_prim(struct vctx *v, const json_t *j, int type, unsigned enums)
{
	const struct fhir_type_def *t = &fhir_types[type];
	const char *tn = FHIR_S(t->name);
	switch (t->prim) {
	case FHIR_P_BOOLEAN:
		if (!json_is_boolean(j))
			issue(v, "structure", "expected a boolean, found %s", json_kind(j));
		return;
	case FHIR_P_DECIMAL:
		if (!mcjson_is_number(j))
			issue(v, "structure", "expected a number, found %s", json_kind(j));
		return;
	case FHIR_P_INTEGER:
	case FHIR_P_POSITIVEINT:
	case FHIR_P_UNSIGNEDINT: {
		if (!json_is_integer(j)) {
			if (mcjson_is_number(j))
				issue(v, "value", "%s must be a whole number", tn);
			else
				issue(v, "structure", "expected a number, found %s", json_kind(j));
			return;
		}
		json_int_t x = json_integer_value(j);
		json_int_t lo = t->prim == FHIR_P_INTEGER ? -2147483648LL : t->prim == FHIR_P_POSITIVEINT ? 1 : 0;
		if (x < lo || x > 2147483647LL)
			issue(v, "value", "%s out of range", tn);
		return;
	}
	default:
		break;
	}
	if (!json_is_string(j) || mcjson_is_decimal(j)) {
		issue(v, "structure", "expected a string, found %s", json_kind(j));
		return;
	}
	const char *s = json_string_value(j);
	size_t n = json_string_length(j);
	bool ok;
	if (strlen(s) != n) {
		ok = false;   /* embedded NUL */
	} else {
		switch (t->prim) {
		case FHIR_P_DATE: ok = match_datetime(s, DT_DATE); break;
		case FHIR_P_DATETIME: ok = match_datetime(s, DT_DATETIME); break;
		case FHIR_P_INSTANT: ok = match_datetime(s, DT_INSTANT); break;
		case FHIR_P_TIME: ok = match_time(s) == n; break;
		case FHIR_P_ID: ok = match_id(s, n); break;
		case FHIR_P_CODE: ok = match_code(s, n); break;
		case FHIR_P_URI:
		case FHIR_P_URL:
		case FHIR_P_CANONICAL: ok = match_uri(s, n); break;
		case FHIR_P_OID: ok = match_oid(s); break;
		case FHIR_P_UUID: ok = match_uuid(s, n); break;
		case FHIR_P_BASE64BINARY: ok = match_base64(s, n); break;
		default: ok = n > 0; break;   /* string, markdown, xhtml: non-empty */
		}
	}
	if (!ok) {
		if (n == 0)
			issue(v, "value", "empty %s is not allowed", tn);
		else
			issue(v, "value", "not a valid %s", tn);
		return;
	}
	if (enums && !in_enum(enums, s))
		issue(v, "value", "code is not in the required value set");
}

static void check_object(struct vctx *v, const json_t *j, int type);

/* A resource inside another (contained, Bundle.entry.resource): typed by its resourceType. */
static void check_any_resource(struct vctx *v, const json_t *j)
{
	if (!json_is_object(j)) {
		issue(v, "structure", "expected a resource object, found %s", json_kind(j));
		return;
	}
	const char *rt = mcjson_str(j, "resourceType");
	int t = rt ? fhir_type_index(rt) : -1;
	if (!rt) {
		issue(v, "required", "resourceType is missing");
		return;
	}
	if (t < 0 || fhir_types[t].kind != FHIR_K_RESOURCE) {
		issue(v, "invalid", "unknown resourceType");
		return;
	}
	check_object(v, j, t);
}

static void check_value(struct vctx *v, const json_t *j, int type, unsigned enums)
{
	switch (fhir_types[type].kind) {
	case FHIR_K_PRIM: check_prim(v, j, type, enums); break;
	case FHIR_K_RESLIST: check_any_resource(v, j); break;
	default:
		if (!json_is_object(j))
			issue(v, "structure", "expected an object, found %s", json_kind(j));
		else
			check_object(v, j, type);
		break;
	}
}

/* The `_name` sibling of primitive element e: Element, or for arrays an array of Element|null. */
static void check_prim_ext(struct vctx *v, const json_t *j, const struct fhir_elem_def *e)
{
	if (!(e->flags & FHIR_E_ARRAY)) {
		check_value(v, j, FHIR_T_Element, 0);
		return;
	}
	if (!json_is_array(j) || json_array_size(j) == 0) {
		issue(v, "structure", "expected a non-empty array, found %s", json_kind(j));
		return;
	}
	size_t i;
	const json_t *item;
	json_array_foreach(j, i, item) {
		if (json_is_null(item))
			continue;
		size_t old = push_index(v, i);
		check_value(v, item, FHIR_T_Element, 0);
		pop(v, old);
	}
}

static void check_element(struct vctx *v, const json_t *obj, const char *key, const json_t *val,
			  const struct fhir_elem_def *e)
{
	bool prim = fhir_types[e->type].kind == FHIR_K_PRIM;
	if (!(e->flags & FHIR_E_ARRAY)) {
		if (json_is_array(val))
			issue(v, "structure", "expected a single value, not an array");
		else if (json_is_null(val))
			issue(v, "structure", "null is not allowed");
		else
			check_value(v, val, e->type, e->enums);
		return;
	}
	if (!json_is_array(val)) {
		issue(v, "structure", "expected an array, found %s", json_kind(val));
		return;
	}
	if (json_array_size(val) == 0) {
		issue(v, "structure", "empty arrays are not allowed");
		return;
	}
	/* nulls in a primitive array keep positions aligned with its `_name` sibling */
	char ext[80];
	bool has_ext = prim && snprintf(ext, sizeof ext, "_%s", key) < (int)sizeof ext && json_object_get(obj, ext);
	size_t i;
	const json_t *item;
	json_array_foreach(val, i, item) {
		if (full(v))
			return;
		size_t old = push_index(v, i);
		if (json_is_null(item)) {
			if (!has_ext)
				issue(v, "structure", "null is not allowed");
		} else {
			check_value(v, item, e->type, e->enums);
		}
		pop(v, old);
	}
}

static void check_object(struct vctx *v, const json_t *j, int type)
{
	const struct fhir_type_def *t = &fhir_types[type];
	if (json_object_size(j) == 0) {
		issue(v, "structure", "empty objects are not allowed");
		return;
	}
	if (++v->depth > FHIR_MAX_DEPTH) {
		issue(v, "structure", "nested too deeply");
		v->depth--;
		return;
	}
	uint32_t seen[FHIR_MAX_CHOICES];
	size_t nseen = 0;
	const char *key;
	const json_t *val;
	json_object_foreach((json_t *)j, key, val) {
		if (full(v))
			break;
		size_t old = push_key(v, key);
		if (t->kind == FHIR_K_RESOURCE && strcmp(key, "resourceType") == 0) {
			if (!json_is_string(val) || strcmp(json_string_value(val), FHIR_S(t->name)) != 0)
				issue(v, "invalid", "resourceType must be %s", FHIR_S(t->name));
		} else if (key[0] == '_') {
			const struct fhir_elem_def *e = fhir_elem_find(type, key + 1);
			if (!e || fhir_types[e->type].kind != FHIR_K_PRIM)
				issue(v, "structure", "unknown element");
			else
				check_prim_ext(v, val, e);
		} else {
			const struct fhir_elem_def *e = fhir_elem_find(type, key);
			if (!e) {
				issue(v, "structure", "unknown element");
			} else {
				if (e->choice) {
					bool dup = false;
					for (size_t k = 0; k < nseen; k++)
						dup = dup || seen[k] == e->choice;
					if (dup)
						issue(v, "structure", "only one %s[x] variant is allowed", FHIR_S(e->choice));
					else if (nseen < FHIR_MAX_CHOICES)
						seen[nseen++] = e->choice;
				}
				check_element(v, j, key, val, e);
			}
		}
		pop(v, old);
	}
	if (t->has_required) {
		for (unsigned k = 0; k < t->elem_count && !full(v); k++) {
			const struct fhir_elem_def *e = &fhir_elems[t->elem_first + k];
			char ext[80];
			if (!(e->flags & FHIR_E_REQUIRED) || json_object_get(j, FHIR_S(e->name)))
				continue;
			if (snprintf(ext, sizeof ext, "_%s", FHIR_S(e->name)) < (int)sizeof ext && json_object_get(j, ext))
				continue;
			size_t old = push_key(v, FHIR_S(e->name));
			issue(v, "required", "missing required element");
			pop(v, old);
		}
	}
	v->depth--;
}

int fhir_validate(const json_t *res, const char *type, struct fhir_issues *out)
{
	struct vctx v = { .out = out };
	out->n = 0;
	int t = type ? fhir_type_index(type) : -1;
	if (t < 0 || fhir_types[t].kind != FHIR_K_RESOURCE) {
		issue(&v, "invalid", "unknown resource type");
		return MC_EINVAL;
	}
	snprintf(v.path, sizeof v.path, "%s", FHIR_S(fhir_types[t].name));
	v.plen = strlen(v.path);
	if (!json_is_object(res)) {
		issue(&v, "structure", "a resource must be a JSON object");
		return MC_EINVAL;
	}
	if (!json_object_get(res, "resourceType"))
		issue(&v, "required", "resourceType is missing");
	check_object(&v, res, t);
	return out->n ? MC_EINVAL : MC_OK;
}
