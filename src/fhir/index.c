/* fhir/index.c — search-index extraction (fhir_index_extract) and the patient compartment
 * (fhir_patient_of).
 *
 * Each search parameter carries generated path programs (gen_fhir.h): FIELD steps walk keys
 * (arrays are iterated), WHERE_EQ / RESOLVE steps filter, and the type at the end of the path is
 * known from the schema, so values are converted by their FHIR type (HumanName, CodeableConcept,
 * Period ...), never guessed from the JSON shape. Rows borrow strings from the resource or from
 * stack buffers: they live only during the callback.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/gen_fhir.h"
#include "fhir/resource.h"
#include "fhir/search.h"

#define NORM_MAX 1024   /* normalized strings longer than this are indexed truncated (prefix) */
#define COMP_TOKENS 16  /* first-component tokens kept per composite element */
#define COMP_KEY_MAX 600

struct xctx;
/* What to do with a value reached by a path: index it (index_value) or, for a composite's
 * element, evaluate the components relative to it (composite_element). */
typedef int leaf_fn(struct xctx *x, const json_t *v, int type);

struct xctx {
	fhir_index_fn *cb;
	void *arg;
	const struct fhir_sp *sp;
	enum fhir_sp_type type;   /* kind of the values produced (the sp's, or a component's) */
	const char *param;        /* row param (the sp's code) */
	leaf_fn *leaf;
	unsigned base;            /* composite: the fhir_paths index of the element path being walked */
};

static int emit(struct xctx *x, struct fhir_index_row *r)
{
	r->type = x->type;
	r->param = x->param;
	return x->cb(r, x->arg);
}

static struct fhir_index_row row0(void)
{
	struct fhir_index_row r;
	memset(&r, 0, sizeof r);
	return r;
}

/* Plain JSON string (not a decimal lexeme) or NULL. */
static const char *jstr(const json_t *j)
{
	return json_is_string(j) && !mcjson_is_decimal(j) ? json_string_value(j) : NULL;
}

/* ---- string ---- */

static int emit_string(struct xctx *x, const char *s)
{
	char norm[NORM_MAX];
	if (!s || !*s)
		return 0;
	fhir_normalize(s, norm, sizeof norm);   /* MC_ETOOBIG leaves a valid truncated prefix */
	struct fhir_index_row r = row0();
	r.text = norm;
	r.raw = s;
	return emit(x, &r);
}

/* obj[key] as a string or an array of strings. */
static int emit_string_member(struct xctx *x, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);
	if (json_is_array(v)) {
		size_t i;
		const json_t *it;
		json_array_foreach(v, i, it) {
			int rc = emit_string(x, jstr(it));
			if (rc)
				return rc;
		}
		return 0;
	}
	return emit_string(x, jstr(v));
}

static int emit_string_parts(struct xctx *x, const json_t *obj, const char *const *keys)
{
	for (; *keys; keys++) {
		int rc = emit_string_member(x, obj, *keys);
		if (rc)
			return rc;
	}
	return 0;
}

/* phonetic: one compact row per family/given name: its Soundex code (fhir_phonetic), not a copy
 * of the name (prefix, suffix and text are not sounded out). */
static int emit_phonetic(struct xctx *x, const char *s)
{
	char code[FHIR_PHONETIC_LEN];
	if (!s || !fhir_phonetic(s, code))
		return 0;
	struct fhir_index_row r = row0();
	r.text = code;
	r.raw = code;
	return emit(x, &r);
}

static int index_phonetic(struct xctx *x, const json_t *v, int type)
{
	if (type != FHIR_T_HumanName)
		return type < FHIR_NTYPES && fhir_types[type].kind == FHIR_K_PRIM ? emit_phonetic(x, jstr(v)) : 0;
	int rc = emit_phonetic(x, mcjson_str(v, "family"));
	const json_t *given = json_object_get(v, "given");
	size_t i;
	const json_t *g;
	json_array_foreach(given, i, g) {
		if (!rc)
			rc = emit_phonetic(x, jstr(g));
	}
	return rc;
}

static int index_string(struct xctx *x, const json_t *v, int type)
{
	static const char *const name_parts[] = { "family", "given", "prefix", "suffix", "text", NULL };
	static const char *const addr_parts[] = { "line", "city", "district", "state", "postalCode",
						  "country", "text", NULL };
	if (strcmp(x->param, "phonetic") == 0)
		return index_phonetic(x, v, type);
	if (type == FHIR_T_HumanName)
		return emit_string_parts(x, v, name_parts);
	if (type == FHIR_T_Address)
		return emit_string_parts(x, v, addr_parts);
	if (fhir_types[type].kind == FHIR_K_PRIM)
		return emit_string(x, jstr(v));
	return 0;
}

/* ---- token ---- */

static int emit_token(struct xctx *x, const char *system, const char *code, const char *display)
{
	char norm[NORM_MAX];
	struct fhir_index_row r = row0();
	if (!code && !display)
		return 0;
	r.system = system;
	r.code = code;
	if (display && *display) {
		fhir_normalize(display, norm, sizeof norm);
		r.text = norm;
		r.raw = display;
	}
	return emit(x, &r);
}

static int index_token(struct xctx *x, const json_t *v, int type)
{
	if (type == FHIR_T_Coding)
		return emit_token(x, mcjson_str(v, "system"), mcjson_str(v, "code"), mcjson_str(v, "display"));
	if (type == FHIR_T_CodeableConcept) {
		const char *text = mcjson_str(v, "text");
		const json_t *codings = json_object_get(v, "coding");
		size_t i;
		const json_t *c;
		if (json_array_size(codings) == 0)
			return emit_token(x, NULL, NULL, text);
		json_array_foreach(codings, i, c) {
			const char *disp = mcjson_str(c, "display");
			int rc = emit_token(x, mcjson_str(c, "system"), mcjson_str(c, "code"), disp ? disp : text);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (type == FHIR_T_Identifier) {
		const char *value = mcjson_str(v, "value");
		if (!value)
			return 0;
		int rc = emit_token(x, mcjson_str(v, "system"), value, NULL);
		/* :of-type rows: param "<code>:of-type", code = the value, system = "<type system>|<type code>"
		 * for each coding of Identifier.type (a separate param: plain searches never see them) */
		const json_t *codings = json_object_get(json_object_get(v, "type"), "coding");
		size_t i;
		const json_t *c;
		char param[96], sys[COMP_KEY_MAX];
		if (rc || json_array_size(codings) == 0 || x->type != FHIR_SP_TOKEN)
			return rc;
		if ((size_t)snprintf(param, sizeof param, "%s:of-type", x->param) >= sizeof param)
			return 0;
		json_array_foreach(codings, i, c) {
			const char *ts = mcjson_str(c, "system"), *tc = mcjson_str(c, "code");
			if (!tc || (size_t)snprintf(sys, sizeof sys, "%s|%s", ts ? ts : "", tc) >= sizeof sys)
				continue;
			struct fhir_index_row r = row0();
			r.type = FHIR_SP_TOKEN;
			r.param = param;
			r.system = sys;
			r.code = value;
			rc = x->cb(&r, x->arg);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (type == FHIR_T_ContactPoint) {
		const char *value = mcjson_str(v, "value");
		return value ? emit_token(x, NULL, value, NULL) : 0;
	}
	if (fhir_types[type].kind != FHIR_K_PRIM)
		return 0;
	if (json_is_boolean(v))
		return emit_token(x, NULL, json_is_true(v) ? "true" : "false", NULL);
	return jstr(v) ? emit_token(x, NULL, jstr(v), NULL) : 0;
}

/* ---- date ---- */

static int index_date(struct xctx *x, const json_t *v, int type)
{
	struct fhir_index_row r = row0();
	int64_t lo, hi;
	if (type == FHIR_T_Period) {
		const char *start = mcjson_str(v, "start"), *end = mcjson_str(v, "end");
		r.lo = INT64_MIN;
		r.hi = INT64_MAX;
		if (start && mctime_parse_fhir(start, &lo, &hi, NULL) == 0)
			r.lo = lo;
		else if (start)
			return 0;
		if (end && mctime_parse_fhir(end, &lo, &hi, NULL) == 0)
			r.hi = hi;
		else if (end)
			return 0;
		return start || end ? emit(x, &r) : 0;
	}
	if (type == FHIR_T_Timing) {
		const json_t *ev = json_object_get(v, "event");
		size_t i;
		const json_t *e;
		json_array_foreach(ev, i, e) {
			if (jstr(e) && mctime_parse_fhir(jstr(e), &r.lo, &r.hi, NULL) == 0) {
				int rc = emit(x, &r);
				if (rc)
					return rc;
			}
		}
		return 0;
	}
	if (fhir_types[type].kind != FHIR_K_PRIM || !jstr(v))
		return 0;
	if (mctime_parse_fhir(jstr(v), &r.lo, &r.hi, NULL) != 0)
		return 0;
	return emit(x, &r);
}

/* ---- reference ---- */

/* A literal reference: "Type/id", "Type/id/_history/v", or an absolute URL (or urn:) whose last
 * two segments (before /_history/v) may be Type/id. type/id are set only when that split gives a
 * known resource type and a valid id. Returns false for local ("#x") or empty references. */
static bool ref_split(const char *ref, char type[64], char id[65], bool *split, bool *absolute)
{
	size_t n = strlen(ref);
	*split = false;
	*absolute = strchr(ref, ':') != NULL;
	if (n == 0 || ref[0] == '#')
		return false;
	const char *end = strstr(ref, "/_history/");
	if (!end)
		end = ref + n;
	const char *s1 = end;
	while (s1 > ref && s1[-1] != '/')
		s1--;
	if (s1 == ref)   /* no '/' */
		return true;
	const char *s0 = s1 - 1;   /* the '/' before id */
	const char *t0 = s0;
	while (t0 > ref && t0[-1] != '/')
		t0--;
	if (t0 != ref)
		*absolute = true;
	size_t tl = (size_t)(s0 - t0), il = (size_t)(end - s1);
	if (tl == 0 || tl >= 64 || il == 0 || il > 64)
		return true;
	memcpy(type, t0, tl);
	type[tl] = '\0';
	memcpy(id, s1, il);
	id[il] = '\0';
	for (size_t i = 0; i < il; i++) {
		char c = id[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return true;
	}
	*split = fhir_type_is_resource(type);
	return true;
}

static int index_reference(struct xctx *x, const json_t *v, int type)
{
	const char *ref;
	if (type == FHIR_T_Reference)
		ref = mcjson_str(v, "reference");
	else if (fhir_types[type].kind == FHIR_K_PRIM)
		ref = jstr(v);
	else
		return 0;
	char rtype[64], rid[65];
	bool split, absolute;
	if (!ref || !ref_split(ref, rtype, rid, &split, &absolute))
		return 0;
	struct fhir_index_row r = row0();
	if (absolute) {
		r.ref_type = split ? rtype : NULL;
		r.ref_id = ref;
	} else if (split) {
		r.ref_type = rtype;
		r.ref_id = rid;
	} else {
		return 0;   /* relative but not Type/id: nothing searchable */
	}
	return emit(x, &r);
}

/* ---- number, quantity, uri ---- */

static int index_number(struct xctx *x, const json_t *v, int type)
{
	struct fhir_index_row r = row0();
	if (fhir_types[type].kind != FHIR_K_PRIM || !mcjson_is_number(v))
		return 0;
	r.num = mcjson_number_value(v);
	return emit(x, &r);
}

static int index_quantity(struct xctx *x, const json_t *v, int type)
{
	struct fhir_index_row r = row0();
	const json_t *value = json_object_get(v, "value");
	if (!mcjson_is_number(value))
		return 0;
	r.num = mcjson_number_value(value);
	if (type == FHIR_T_Money) {
		r.system = "urn:iso:std:iso:4217";
		r.code = mcjson_str(v, "currency");
	} else if (type == FHIR_T_Quantity || type == FHIR_T_Age || type == FHIR_T_Duration ||
		   type == FHIR_T_Count || type == FHIR_T_Distance) {
		r.system = mcjson_str(v, "system");
		r.code = mcjson_str(v, "code");
		if (!r.code)
			r.code = mcjson_str(v, "unit");
	} else {
		return 0;   /* Range, SampledData: not indexed */
	}
	return emit(x, &r);
}

static int index_uri(struct xctx *x, const json_t *v, int type)
{
	struct fhir_index_row r = row0();
	if (fhir_types[type].kind != FHIR_K_PRIM || !jstr(v) || !*jstr(v))
		return 0;
	r.text = jstr(v);
	return emit(x, &r);
}

static int index_value(struct xctx *x, const json_t *v, int type)
{
	switch (x->type) {
	case FHIR_SP_STRING: return index_string(x, v, type);
	case FHIR_SP_TOKEN: return index_token(x, v, type);
	case FHIR_SP_DATE: return index_date(x, v, type);
	case FHIR_SP_REFERENCE: return index_reference(x, v, type);
	case FHIR_SP_NUMBER: return index_number(x, v, type);
	case FHIR_SP_QUANTITY: return index_quantity(x, v, type);
	case FHIR_SP_URI: return index_uri(x, v, type);
	default: return 0;
	}
}

/* Run steps[0..n) from node; arrays met on the way are iterated. */
static int eval(struct xctx *x, const json_t *node, const struct fhir_step *st, unsigned n, int type)
{
	if (json_is_array(node)) {
		size_t i;
		const json_t *it;
		json_array_foreach(node, i, it) {
			int rc = eval(x, it, st, n, type);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!json_is_object(node) && n > 0)
		return 0;
	if (n == 0)
		return x->leaf(x, node, type);
	switch (st->op) {
	case FHIR_OP_FIELD: {
		const json_t *child = json_object_get(node, FHIR_S(st->a));
		return child ? eval(x, child, st + 1, n - 1, type) : 0;
	}
	case FHIR_OP_WHERE_EQ: {
		const char *s = mcjson_str(node, FHIR_S(st->a));
		return s && strcmp(s, FHIR_S(st->b)) == 0 ? eval(x, node, st + 1, n - 1, type) : 0;
	}
	case FHIR_OP_RESOLVE: {
		const char *ref = mcjson_str(node, "reference");
		char rtype[64], rid[65];
		bool split, absolute;
		if (ref && ref_split(ref, rtype, rid, &split, &absolute) && split &&
		    strcmp(rtype, FHIR_S(st->a)) == 0)
			return eval(x, node, st + 1, n - 1, type);
		return 0;
	}
	default:
		return 0;
	}
}

static int eval_sp(struct xctx *x, const json_t *res)
{
	for (unsigned p = 0; p < x->sp->path_count; p++) {
		const struct fhir_path *path = &fhir_paths[x->sp->path_first + p];
		int rc = eval(x, res, &fhir_steps[path->step_first], path->nsteps, path->type);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- composite ---- */

struct comp_tok {
	const char *system, *code;
};
struct comp_state {
	struct xctx *outer;
	struct comp_tok tok[COMP_TOKENS];
	size_t ntok;
};

static int comp_collect(const struct fhir_index_row *r, void *arg)
{
	struct comp_state *cs = arg;
	if (r->code && cs->ntok < COMP_TOKENS) {
		/* system and code point into the resource (or are static): they outlive the element */
		cs->tok[cs->ntok].system = r->system;
		cs->tok[cs->ntok].code = r->code;
		cs->ntok++;
	}
	return 0;
}

/* Forward a second-component row once per first-component token, under the key
 * "<code>$<token code>|<token system>" (fhir_composite_key): one row serves code, system|code and
 * |code searches (prefix "<code>$C|", exact, exact with an empty system). */
static int comp_forward(const struct fhir_index_row *r, void *arg)
{
	struct comp_state *cs = arg;
	struct xctx *o = cs->outer;
	char key[COMP_KEY_MAX];
	for (size_t i = 0; i < cs->ntok; i++) {
		const struct comp_tok *t = &cs->tok[i];
		if (!fhir_composite_key(key, sizeof key, o->param, t->system, t->code))
			continue;
		struct fhir_index_row c = *r;
		c.param = key;
		int rc = o->cb(&c, o->arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int eval(struct xctx *x, const json_t *node, const struct fhir_step *st, unsigned n, int type);

static int eval_part(struct xctx *x, const json_t *node, const struct fhir_comp_part *part)
{
	for (unsigned p = 0; p < part->path_count; p++) {
		const struct fhir_path *path = &fhir_paths[part->path_first + p];
		int rc = eval(x, node, &fhir_steps[path->step_first], path->nsteps, path->type);
		if (rc)
			return rc;
	}
	return 0;
}

/* Leaf of a composite's element path: the components are evaluated on this one element, so a
 * code is paired only with the value of the same element (Observation.component[i]). */
static int composite_element(struct xctx *x, const json_t *node, int type)
{
	(void)type;
	struct comp_state cs = { .outer = x };
	struct xctx sub = { .arg = &cs, .sp = x->sp, .param = x->param, .leaf = index_value };
	const struct fhir_comp_part *parts = &fhir_comp_parts[x->sp->part_first];
	for (int slot = 0; slot < 2; slot++) {
		for (unsigned k = 0; k < x->sp->part_count; k++) {
			if (parts[k].base != x->base || parts[k].slot != slot)
				continue;
			sub.type = (enum fhir_sp_type)parts[k].type;
			sub.cb = slot == 0 ? comp_collect : comp_forward;
			int rc = eval_part(&sub, node, &parts[k]);
			if (rc)
				return rc;
		}
		if (cs.ntok == 0)
			return 0;
	}
	return 0;
}

static int eval_composite(struct xctx *x, const json_t *res)
{
	for (unsigned p = 0; p < x->sp->path_count; p++) {
		const struct fhir_path *path = &fhir_paths[x->sp->path_first + p];
		x->base = x->sp->path_first + p;
		int rc = path->nsteps == 0 ? composite_element(x, res, path->type)
					   : eval(x, res, &fhir_steps[path->step_first], path->nsteps, path->type);
		if (rc)
			return rc;
	}
	return 0;
}

bool fhir_composite_key(char *out, size_t outsz, const char *code, const char *system, const char *value)
{
	int n = snprintf(out, outsz, "%s$%s|%s", code, value ? value : "", system ? system : "");
	return n > 0 && (size_t)n < outsz;
}

int fhir_index_extract(const char *type, const json_t *res, fhir_index_fn *cb, void *arg)
{
	int t = type ? fhir_type_index(type) : -1;
	if (t < 0 || fhir_types[t].kind != FHIR_K_RESOURCE || !json_is_object(res))
		return MC_EINVAL;
	int owners[3] = { fhir_owner_index(type), fhir_owner_index("Resource"), -1 };
	if (fhir_types[t].domain)
		owners[2] = fhir_owner_index("DomainResource");
	struct xctx x = { .cb = cb, .arg = arg };
	for (int i = 0; i < 3; i++) {
		if (owners[i] < 0)
			continue;
		const struct fhir_sp_owner *o = &fhir_sp_owners[owners[i]];
		for (unsigned k = 0; k < o->sp_count; k++) {
			x.sp = &fhir_sps[o->sp_first + k];
			x.param = FHIR_S(x.sp->code);
			x.type = (enum fhir_sp_type)x.sp->type;
			if (x.sp->type == FHIR_SP_SPECIAL || fhir_search_combo_of(type, x.param, NULL))
				continue;   /* combo-*: searched as the union of two indexed params */
			int rc;
			if (x.sp->type == FHIR_SP_COMPOSITE) {
				if (x.sp->part_count == 0)
					continue;
				x.leaf = composite_element;
				rc = eval_composite(&x, res);
			} else {
				x.leaf = index_value;
				rc = eval_sp(&x, res);
			}
			if (rc)
				return rc;
		}
	}
	return MC_OK;
}

/* ---- patient compartment ---- */

struct patient_find {
	char *out;
	bool found;
};

/* First relative "Patient/<id>" reference; absolute URLs never place a resource in one of our
 * patients' compartments (they may point at another server). */
static int patient_cb(const struct fhir_index_row *r, void *arg)
{
	struct patient_find *pf = arg;
	if (r->type != FHIR_SP_REFERENCE || !r->ref_type || strcmp(r->ref_type, "Patient") != 0)
		return 0;
	if (strchr(r->ref_id, '/') || strchr(r->ref_id, ':') || strlen(r->ref_id) > 64)
		return 0;
	snprintf(pf->out, 65, "%s", r->ref_id);
	pf->found = true;
	return 1;
}

bool fhir_patient_of(const char *type, const json_t *res, char out[65])
{
	if (!type || !json_is_object(res))
		return false;
	if (strcmp(type, "Patient") == 0) {
		const char *id = mcjson_str(res, "id");
		size_t n = id ? strlen(id) : 0;
		if (n == 0 || n > 64 || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") != n)
			return false;
		memcpy(out, id, n + 1);
		return true;
	}
	int o = fhir_owner_index(type);
	if (o < 0)
		return false;
	struct patient_find pf = { .out = out };
	struct xctx x = { .cb = patient_cb, .arg = &pf, .leaf = index_value };
	const struct fhir_sp_owner *ow = &fhir_sp_owners[o];
	for (unsigned k = 0; k < ow->comp_count && !pf.found; k++) {
		x.sp = &fhir_sps[fhir_comp_sps[ow->comp_first + k]];
		x.param = FHIR_S(x.sp->code);
		x.type = (enum fhir_sp_type)x.sp->type;
		eval_sp(&x, res);
	}
	return pf.found;
}

/* ---- phonetic ---- */

/* American Soundex over the normalized text (accents removed, lowercase); characters other than
 * a-z are skipped. */
bool fhir_phonetic(const char *in, char out[FHIR_PHONETIC_LEN])
{
	/*                               abcdefghijklmnopqrstuvwxyz */
	static const char codes[27] = "01230120022455012623010202";
	char norm[NORM_MAX];
	fhir_normalize(in, norm, sizeof norm);   /* a truncated prefix is fine: only 4 codes are kept */
	size_t k = 0;
	char last = 0;
	for (const char *p = norm; *p && k < 4; p++) {
		char c = *p;
		if (c < 'a' || c > 'z')
			continue;
		char d = codes[c - 'a'];
		if (k == 0) {
			out[k++] = (char)(c - 'a' + 'A');
			last = d;
			continue;
		}
		if (c == 'h' || c == 'w')
			continue;          /* h and w do not separate equal codes */
		if (d != '0' && d != last)
			out[k++] = d;
		last = d;              /* a vowel (0) separates equal codes */
	}
	if (k == 0)
		return false;
	while (k < 4)
		out[k++] = '0';
	out[4] = '\0';
	return true;
}
