/* modules/medications/modutil.h — small helpers shared by the medications, lab and dashboard
 * modules (not a public API). All strings and JSON they return belong to the request arena.
 */
#ifndef MC_MODULES_MEDICATIONS_MODUTIL_H
#define MC_MODULES_MEDICATIONS_MODUTIL_H
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "fhir/store.h"
#include "http/route.h"

static inline void modutil_json_free(void *p) { json_decref(p); }

/* Keep j alive until the request ends; returns j. */
static inline json_t *mu_own(struct req *r, json_t *j)
{
	if (j)
		arena_defer(r->arena, modutil_json_free, j);
	return j;
}

/* 4xx with error.details.field = field (a client-safe name such as "items[2].dose"). */
static inline int mu_field_fail(struct req *r, int code, const char *field, const char *msg)
{
	return req_fail(r, code, arena_printf(r->arena, "%s: %s", field, msg), NULL,
			json_pack("{s:s}", "field", field));
}

/* The current version of type/id parsed into *out (arena-owned). MC_ENOTFOUND also for a deleted
 * resource or a malformed id. meta may be NULL. */
static inline int mu_read(struct store_txn *t, struct req *r, const char *type, const char *id, json_t **out,
			  struct fhir_meta *meta)
{
	if (!id || !mcid_valid_fhir_id(id))
		return MC_ENOTFOUND;
	struct fhir_stored st;
	int rc = fhir_store_read(t, r->arena, type, id, 0, &st);
	if (rc == MC_EGONE)
		return MC_ENOTFOUND;
	if (rc)
		return rc;
	json_t *j;
	if (mcjson_parse(st.json, st.json_len, &j, NULL))
		return MC_EINTERNAL;
	*out = mu_own(r, j);
	if (meta)
		*meta = st.meta;
	return MC_OK;
}

/* "Patient/<id>" of a reference element equal to want_type/want_id? */
static inline bool mu_ref_is(const json_t *ref, const char *want_type, const char *want_id)
{
	const char *s = mcjson_str(ref, "reference");
	size_t n = strlen(want_type);
	return s && !strncmp(s, want_type, n) && s[n] == '/' && !strcmp(s + n + 1, want_id);
}

/* Only keys from allowed (NULL-terminated) may appear in obj; else 400 naming the key. */
static inline int mu_known_keys(struct req *r, const json_t *obj, const char *prefix, const char *const *allowed)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(k, allowed[i]);
		if (!ok)
			return mu_field_fail(r, MC_EINVAL, arena_printf(r->arena, "%s%.40s", prefix, k), "unknown field");
	}
	return MC_OK;
}

/* The reason field of a cancel/stop/reject body: 3..500 characters. NULL after recording a 400. */
static inline const char *mu_reason(struct req *r, const json_t *body, bool required)
{
	json_t *v = json_object_get(body, "reason");
	if (!v && !required)
		return "";
	size_t n = json_is_string(v) ? strlen(json_string_value(v)) : 0;
	if (n < 3 || n > 500) {
		mu_field_fail(r, MC_EINVAL, "reason", "give a reason of 3 to 500 characters");
		return NULL;
	}
	return json_string_value(v);
}

#endif
