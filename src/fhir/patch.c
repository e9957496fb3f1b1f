/* fhir/patch.c — JSON Patch (RFC 6902) engine and the PATCH interaction (fhir/patch.h). */
#include "fhir/patch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mem.h"
#include "fhir/store.h"
#include "http/app.h"

/* ---- JSON Pointer (RFC 6901) ---- */

struct ptr {
	size_t n;
	char *tok[FHIR_PATCH_MAX_DEPTH];
	char *mem;      /* decoded tokens, NUL-separated; malloc'd */
};

static void ptr_release(struct ptr *p)
{
	free(p->mem);
	p->mem = NULL;
	p->n = 0;
}

static int ptr_parse(const char *s, struct ptr *p, const char **why)
{
	memset(p, 0, sizeof(*p));
	if (!*s)
		return MC_OK;
	if (*s != '/') {
		*why = "a JSON Pointer must be empty or start with '/'";
		return MC_EINVAL;
	}
	size_t len = strlen(s);
	p->mem = mc_malloc(len + 1);
	char *o = p->mem;
	for (const char *c = s; *c;) {
		/* *c == '/': a new token */
		if (p->n == FHIR_PATCH_MAX_DEPTH) {
			*why = "the JSON Pointer is too deep";
			ptr_release(p);
			return MC_ETOOBIG;
		}
		c++;
		p->tok[p->n++] = o;
		while (*c && *c != '/') {
			if (*c == '~') {
				if (c[1] == '0')
					*o++ = '~';
				else if (c[1] == '1')
					*o++ = '/';
				else {
					*why = "invalid '~' escape in the JSON Pointer (use ~0 or ~1)";
					ptr_release(p);
					return MC_EINVAL;
				}
				c += 2;
			} else {
				*o++ = *c++;
			}
		}
		*o++ = '\0';
	}
	return MC_OK;
}

/* Array index token: -1 for "-", else 0..; -2 when not an index. */
static long array_index(const char *t)
{
	if (!strcmp(t, "-"))
		return -1;
	size_t n = strlen(t);
	if (!n || n > 9 || (n > 1 && t[0] == '0'))
		return -2;
	for (size_t i = 0; i < n; i++)
		if (t[i] < '0' || t[i] > '9')
			return -2;
	return strtol(t, NULL, 10);
}

/* The value at tokens [0, n) of root, or NULL. */
static json_t *walk(json_t *root, const struct ptr *p, size_t n)
{
	json_t *cur = root;
	for (size_t i = 0; cur && i < n; i++) {
		if (json_is_object(cur)) {
			cur = json_object_get(cur, p->tok[i]);
		} else if (json_is_array(cur)) {
			long k = array_index(p->tok[i]);
			cur = k >= 0 ? json_array_get(cur, (size_t)k) : NULL;
		} else {
			cur = NULL;
		}
	}
	return cur;
}

/* ---- operations on the working copy ---- */

struct work {
	json_t *root;
	const char *why;
};

/* Steals value (also on failure). */
static int op_add(struct work *w, const struct ptr *p, json_t *value)
{
	if (p->n == 0) {
		json_decref(w->root);
		w->root = value;
		return MC_OK;
	}
	json_t *parent = walk(w->root, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	int rc = MC_EINVAL;
	if (json_is_object(parent)) {
		rc = json_object_set_new(parent, last, value) ? MC_EINVAL : MC_OK;
		value = NULL;
	} else if (json_is_array(parent)) {
		long k = array_index(last);
		size_t sz = json_array_size(parent);
		if (k == -1) {
			rc = json_array_append_new(parent, value) ? MC_EINVAL : MC_OK;
			value = NULL;
		} else if (k >= 0 && (size_t)k <= sz) {
			rc = json_array_insert_new(parent, (size_t)k, value) ? MC_EINVAL : MC_OK;
			value = NULL;
		} else {
			w->why = "the array index is out of range";
		}
	} else {
		w->why = "the path's parent does not exist";
	}
	if (value)
		json_decref(value);
	if (rc && !w->why)
		w->why = "the value cannot be added there";
	return rc;
}

static int op_remove(struct work *w, const struct ptr *p)
{
	if (p->n == 0) {
		w->why = "the whole document cannot be removed";
		return MC_EINVAL;
	}
	json_t *parent = walk(w->root, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	if (json_is_object(parent) && json_object_get(parent, last)) {
		json_object_del(parent, last);
		return MC_OK;
	}
	if (json_is_array(parent)) {
		long k = array_index(last);
		if (k >= 0 && (size_t)k < json_array_size(parent)) {
			json_array_remove(parent, (size_t)k);
			return MC_OK;
		}
	}
	w->why = "the path does not exist";
	return MC_EINVAL;
}

/* Steals value. */
static int op_replace(struct work *w, const struct ptr *p, json_t *value)
{
	if (p->n == 0) {
		json_decref(w->root);
		w->root = value;
		return MC_OK;
	}
	if (!walk(w->root, p, p->n)) {
		json_decref(value);
		w->why = "the path does not exist";
		return MC_EINVAL;
	}
	json_t *parent = walk(w->root, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	if (json_is_object(parent))
		return json_object_set_new(parent, last, value) ? MC_EINVAL : MC_OK;
	return json_array_set_new(parent, (size_t)array_index(last), value) ? MC_EINVAL : MC_OK;
}

static bool is_prefix(const struct ptr *a, const struct ptr *b)
{
	if (a->n > b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->tok[i], b->tok[i]))
			return false;
	return true;
}

bool fhir_patch_equal(const json_t *a, const json_t *b)
{
	if (mcjson_is_number(a) || mcjson_is_number(b))
		return mcjson_is_number(a) && mcjson_is_number(b) && mcjson_number_value(a) == mcjson_number_value(b);
	if (json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_object(a)) {
		if (json_object_size(a) != json_object_size(b))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)a, k, v) {
			json_t *o = json_object_get(b, k);
			if (!o || !fhir_patch_equal(v, o))
				return false;
		}
		return true;
	}
	if (json_is_array(a)) {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!fhir_patch_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	return json_equal((json_t *)a, (json_t *)b);
}

static void set_err(struct fhir_patch_error *e, size_t op, const char *field, const char *msg)
{
	if (!e)
		return;
	e->op = op;
	if (field)
		snprintf(e->path, sizeof(e->path), "/%zu/%s", op, field);
	else
		snprintf(e->path, sizeof(e->path), "/%zu", op);
	snprintf(e->msg, sizeof(e->msg), "patch operation %zu: %s", op, msg);
}

/* One operation on w. field receives the member the error is about. */
static int apply_one(struct work *w, const json_t *o, const char **field)
{
	*field = NULL;
	if (!json_is_object(o)) {
		w->why = "an operation must be a JSON object";
		return MC_EINVAL;
	}
	const char *op = mcjson_str(o, "op"), *path = mcjson_str(o, "path");
	if (!op) {
		*field = "op";
		w->why = "\"op\" is missing";
		return MC_EINVAL;
	}
	if (!path) {
		*field = "path";
		w->why = "\"path\" is missing or not a string";
		return MC_EINVAL;
	}
	bool needs_value = !strcmp(op, "add") || !strcmp(op, "replace") || !strcmp(op, "test");
	bool needs_from = !strcmp(op, "move") || !strcmp(op, "copy");
	if (!needs_value && !needs_from && strcmp(op, "remove")) {
		*field = "op";
		w->why = "unknown op (add, remove, replace, move, copy, test)";
		return MC_EINVAL;
	}
	const json_t *value = json_object_get(o, "value");
	if (needs_value && !value) {
		*field = "value";
		w->why = "\"value\" is missing";
		return MC_EINVAL;
	}
	const char *from = mcjson_str(o, "from");
	if (needs_from && !from) {
		*field = "from";
		w->why = "\"from\" is missing or not a string";
		return MC_EINVAL;
	}
	struct ptr p, f = {0};
	*field = "path";
	int rc = ptr_parse(path, &p, &w->why);
	if (rc)
		return rc;
	if (needs_from) {
		*field = "from";
		rc = ptr_parse(from, &f, &w->why);
		if (rc) {
			ptr_release(&p);
			return rc;
		}
	}
	*field = "path";
	if (!strcmp(op, "add")) {
		rc = op_add(w, &p, json_deep_copy(value));
	} else if (!strcmp(op, "remove")) {
		rc = op_remove(w, &p);
	} else if (!strcmp(op, "replace")) {
		rc = op_replace(w, &p, json_deep_copy(value));
	} else if (!strcmp(op, "test")) {
		json_t *cur = walk(w->root, &p, p.n);
		if (!cur) {
			w->why = "the path does not exist";
			rc = MC_EINVAL;
		} else if (!fhir_patch_equal(cur, value)) {
			w->why = "test failed: the value differs";
			rc = MC_EUNPROC;
		}
	} else {
		json_t *src = walk(w->root, &f, f.n);
		if (!src) {
			*field = "from";
			w->why = "the from path does not exist";
			rc = MC_EINVAL;
		} else if (!strcmp(op, "copy")) {
			rc = op_add(w, &p, json_deep_copy(src));
		} else if (is_prefix(&f, &p) && f.n == p.n) {
			rc = MC_OK;  /* move onto itself */
		} else if (is_prefix(&f, &p)) {
			w->why = "cannot move a value into one of its own children";
			rc = MC_EINVAL;
		} else {
			json_incref(src);
			*field = "from";
			rc = op_remove(w, &f);
			*field = "path";
			if (rc)
				json_decref(src);
			else
				rc = op_add(w, &p, src);
		}
	}
	ptr_release(&p);
	ptr_release(&f);
	return rc;
}

int fhir_patch_apply(json_t **doc, const json_t *patch, struct fhir_patch_error *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
	if (!json_is_array(patch)) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "a JSON Patch document must be an array of operations");
		return MC_EINVAL;
	}
	size_t n = json_array_size(patch);
	if (n > FHIR_PATCH_MAX_OPS) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "a JSON Patch may have at most %d operations",
				 FHIR_PATCH_MAX_OPS);
		return MC_ETOOBIG;
	}
	struct work w = {.root = json_deep_copy(*doc)};
	for (size_t i = 0; i < n; i++) {
		const char *field;
		int rc = apply_one(&w, json_array_get(patch, i), &field);
		if (rc) {
			set_err(err, i, field, w.why ? w.why : "cannot be applied");
			json_decref(w.root);
			return rc;
		}
	}
	json_decref(*doc);
	*doc = w.root;
	return MC_OK;
}

/* ---- the interaction ---- */

static void decref_cb(void *p) { json_decref(p); }

int fhir_patch_step(struct store_txn *t, struct fhir_wctx *w, const json_t *ops, struct fhir_patch_error *perr,
		    struct fhir_issues *is)
{
	struct req *r = w->r;
	struct fhir_stored cur;
	int rc = fhir_store_read(t, r->arena, w->type, w->id, 0, &cur);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "Resource not found", NULL, NULL);
	if (rc == MC_EGONE)
		return req_fail(r, rc, "Resource deleted", NULL, NULL);
	if (rc)
		return rc;
	r->audit.patient_id = cur.meta.patient_id[0] ? arena_strdup(r->arena, cur.meta.patient_id) : NULL;
	rc = fhir_rest_patient_gate(t, r, w->type, cur.meta.patient_id, true);
	if (rc)
		return rc;
	if (w->if_match && w->if_match != cur.meta.version)
		return req_fail(r, MC_EPRECOND, "The resource has changed (If-Match does not match the current version)",
				NULL, NULL);
	json_t *doc;
	if (mcjson_parse(cur.json, cur.json_len, &doc, NULL))
		return MC_EINTERNAL;
	struct fhir_patch_error pe;
	rc = fhir_patch_apply(&doc, ops, &pe);
	if (perr)
		*perr = pe;
	if (rc) {
		json_decref(doc);
		return req_fail(r, rc, pe.msg, NULL, NULL);
	}
	arena_defer(r->arena, decref_cb, doc);
	const char *rt = mcjson_str(doc, "resourceType"), *id = mcjson_str(doc, "id");
	if (!json_is_object(doc) || !rt || strcmp(rt, w->type))
		return req_fail(r, MC_EINVAL, "A patch must not change resourceType", "resourceType", NULL);
	if (!id || strcmp(id, w->id))
		return req_fail(r, MC_EINVAL, "A patch must not change or remove the id",
				arena_printf(r->arena, "%s.id", w->type), NULL);
	struct fhir_issues local;
	struct fhir_issues *iv = is ? is : &local;
	memset(iv, 0, sizeof(*iv));
	rc = fhir_validate(doc, w->type, iv);
	if (rc) {
		const struct fhir_issue *f = iv->n ? &iv->v[0] : NULL;
		return req_fail(r, MC_EINVAL, f ? f->msg : "The patched resource is invalid",
				f && f->path[0] ? f->path : NULL, NULL);
	}
	w->res = doc;
	w->if_match = cur.meta.version;   /* same unit: cannot change, but says what we patched */
	return fhir_rest_update_step(t, w);
}

struct pctx {
	struct fhir_wctx w;
	const json_t *ops;
	struct fhir_issues is;
};

static int patch_unit(struct store_txn *t, void *arg)
{
	struct pctx *c = arg;
	return fhir_patch_step(t, &c->w, c->ops, NULL, &c->is);
}

int fhir_h_patch(struct req *r, struct reply *rep)
{
	const char *type;
	int rc = fhir_rest_check_type(r, &type);
	if (rc)
		return rc;
	r->audit.action = "update";
	const char *id = req_param(r, "id");
	if (!id || !mcid_valid_fhir_id(id))
		return req_fail(r, MC_ENOTFOUND, "Resource not found", NULL, NULL);
	r->audit.resource_id = id;
	if (!r->content_type || strcmp(r->content_type, "application/json-patch+json"))
		return req_fail(r, MC_EMEDIA, "PATCH takes application/json-patch+json (RFC 6902)", NULL, NULL);
	int64_t im = fhir_rest_parse_etag(req_header(r, "If-Match"));
	if (im < 0)
		return req_fail(r, MC_EINVAL, "If-Match must be a version ETag such as W/\"1\"", NULL, NULL);
	json_t *ops;
	rc = req_json(r, &ops);
	if (rc)
		return rc;
	if (!json_is_array(ops))
		return req_fail(r, MC_EINVAL, "A JSON Patch document must be an array of operations", NULL, NULL);
	struct pctx c = {.w = {.r = r, .type = type, .id = id, .if_match = im}, .ops = ops};
	rc = req_write(r, patch_unit, &c);
	if (rc == MC_EINVAL && c.is.n)
		return fhir_rest_reply_issues(r, rep, &c.is);
	if (rc)
		return rc;
	fhir_rest_version_headers(rep, r, &c.w.meta);
	int wrc = fhir_rest_reply_written(r, rep, 200, c.w.res);
	if (wrc == MC_OK && rep->content_type)
		rep->content_type = FHIR_REST_CT;
	return wrc;
}
