/* modules/vitals/devices.c — monitoring devices: register (FHIR Device + vitals_device row), bind to
 * a patient, unbind at discharge. Who: doctors, nurses and the integration account (not devices,
 * not lab staff); clinicians only for patients in their care. The binding is what ingest checks:
 * a sample is accepted only when its device is bound to its patient at that moment. The Device
 * resource carries the binding in Device.patient, so its version history is the binding history.
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "http/app.h"
#include "modules/vitals/live.h"
#include "modules/vitals/vitals_int.h"
#include "store/store.h"

#define DEVICE_IDENTIFIER_SYSTEM "urn:medcore:device"

static void json_free_cb(void *p) { json_decref(p); }

static json_t *own(struct req *r, json_t *j)
{
	if (j)
		arena_defer(r->arena, json_free_cb, j);
	return j;
}

static bool may_manage(const struct req *r)
{
	enum auth_role ro = r->who->role;
	return ro == ROLE_DOCTOR || ro == ROLE_NURSE || ro == ROLE_INTEGRATION;
}

static bool printable(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static json_t *device_view(const char *id, const char *identifier, const char *type, const char *patient,
			   int64_t user_id)
{
	json_t *d = json_pack("{s:s, s:s, s:s}", "id", id, "identifier", identifier, "type", type ? type : "");
	json_object_set_new(d, "patient", patient && *patient ? json_string(patient) : json_null());
	json_object_set_new(d, "user_id", user_id > 0 ? json_integer(user_id) : json_null());
	return d;
}

/* ---- create ---- */

struct create_work {
	struct req *req;
	const char *identifier, *type, *username;
	int64_t user_id;
	struct fhir_meta meta;
	const char *why;
};

static int create_unit(struct store_txn *t, void *arg)
{
	struct create_work *w = arg;
	int64_t one;
	struct store_arg ia[1] = {SA_TEXT(w->identifier)};
	int rc = store_query_int(t, "SELECT 1 FROM vitals_device WHERE identifier = $1", ia, 1, &one);
	if (rc == MC_OK) {
		w->why = "a device with this identifier exists";
		return MC_ECONFLICT;
	}
	if (rc != MC_ENOTFOUND)
		return rc;
	if (w->username) {
		struct store_arg ua[1] = {SA_TEXT(w->username)};
		struct store_rows *rows;
		rc = store_query(t, "SELECT id, role FROM users WHERE username = $1", ua, 1, &rows);
		if (rc)
			return rc;
		int step = store_rows_next(rows);
		const char *role = step == 1 ? store_rows_text(rows, 1) : NULL;
		bool device_role = role && !strcmp(role, "device");
		w->user_id = step == 1 ? store_rows_int(rows, 0) : 0;
		store_rows_close(rows);
		if (step < 0)
			return -step;
		if (!device_role) {
			w->why = "user must be an existing user with role device";
			return MC_EINVAL;
		}
		struct store_arg la[1] = {SA_INT(w->user_id)};
		rc = store_query_int(t, "SELECT 1 FROM vitals_device WHERE user_id = $1", la, 1, &one);
		if (rc == MC_OK) {
			w->why = "this user is already linked to a device";
			return MC_ECONFLICT;
		}
		if (rc != MC_ENOTFOUND)
			return rc;
	}
	json_t *dev = json_pack("{s:s, s:[{s:s, s:s}], s:s, s:{s:s}}", "resourceType", "Device", "identifier", "system",
				DEVICE_IDENTIFIER_SYSTEM, "value", w->identifier, "status", "active", "type", "text",
				w->type);
	struct fhir_issues is = {0};
	rc = fhir_validate(dev, "Device", &is);
	if (rc) {
		json_decref(dev);
		w->why = "the device is not a valid FHIR Device";
		return MC_EINVAL;
	}
	rc = fhir_store_create(t, "Device", dev, &w->meta);
	json_decref(dev);
	if (rc)
		return rc;
	struct store_arg a[4] = {SA_TEXT(w->meta.id), SA_TEXT(w->identifier), w->user_id ? SA_INT(w->user_id) : SA_NULL(),
				 SA_INT(mctime_now_ms())};
	rc = store_exec(t, "INSERT INTO vitals_device(device_id, identifier, user_id, created_ms) VALUES($1, $2, $3, $4)",
			a, 4);
	w->req->audit.resource_id = arena_strdup(w->req->arena, w->meta.id);
	return rc;
}

int vitals_h_device_create(struct req *r, struct reply *rep)
{
	r->audit.action = "create";
	r->audit.resource_type = "Device";
	if (!may_manage(r))
		return req_fail(r, MC_EFORBIDDEN, "only doctors, nurses and integrations manage devices", NULL, NULL);
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	if (!json_is_object(body))
		return req_fail(r, MC_EINVAL, "the body must be an object", NULL, NULL);
	struct create_work w = {.req = r};
	w.identifier = mcjson_str(body, "identifier");
	w.type = mcjson_str(body, "type");
	w.username = mcjson_str(body, "user");
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v) {
		if (strcmp(k, "identifier") && strcmp(k, "type") && strcmp(k, "user"))
			return req_fail(r, MC_EINVAL, "unknown field", k[0] ? arena_strdup(r->arena, k) : NULL, NULL);
	}
	if (!printable(w.identifier, 128))
		return req_fail(r, MC_EINVAL, "identifier: 1..128 printable characters required", "identifier", NULL);
	if (!printable(w.type, 128))
		return req_fail(r, MC_EINVAL, "type: 1..128 printable characters required", "type", NULL);
	if (json_object_get(body, "user") && !auth_username_valid(w.username ? w.username : ""))
		return req_fail(r, MC_EINVAL, "user must be a username", "user", NULL);
	rc = req_write(r, create_unit, &w);
	if (rc)
		return w.why ? req_fail(r, rc, w.why, NULL, NULL) : rc;
	char loc[128];
	snprintf(loc, sizeof(loc), "/fhir/Device/%s", w.meta.id);
	reply_header(rep, r, "Location", arena_strdup(r->arena, loc));
	return reply_api(rep, r, 201, device_view(w.meta.id, w.identifier, w.type, NULL, w.user_id), NULL);
}

/* ---- bind / unbind ---- */

struct bind_work {
	struct req *req;
	const char *device, *patient;   /* patient NULL = unbind */
	char bound[65];                 /* the binding before */
	char identifier[129], type[129];
	int64_t user_id;
	const char *why;
	bool changed;
};

/* Set or remove Device.patient as a new version of the Device. */
static int device_set_patient(struct store_txn *t, struct req *r, const char *id, const char *patient, char *type,
			      size_t typesz)
{
	struct fhir_stored st;
	int rc = fhir_store_read(t, r->arena, "Device", id, 0, &st);
	if (rc)
		return rc == MC_EGONE ? MC_ENOTFOUND : rc;
	json_t *dev;
	rc = mcjson_parse(st.json, st.json_len, &dev, NULL);
	if (rc)
		return MC_EINTERNAL;
	own(r, dev);
	const char *tt = mcjson_str(json_object_get(dev, "type"), "text");
	snprintf(type, typesz, "%s", tt ? tt : "");
	if (patient) {
		char ref[96];
		snprintf(ref, sizeof(ref), "Patient/%s", patient);
		json_object_set_new(dev, "patient", json_pack("{s:s}", "reference", ref));
	} else {
		json_object_del(dev, "patient");
	}
	struct fhir_meta m;
	return fhir_store_update(t, "Device", id, dev, st.meta.version, &m, NULL);
}

static int bind_unit(struct store_txn *t, void *arg)
{
	struct bind_work *w = arg;
	struct req *r = w->req;
	struct store_arg da[1] = {SA_TEXT(w->device)};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT COALESCE(patient_id, ''), identifier, COALESCE(user_id, 0) FROM vitals_device "
				"WHERE device_id = $1",
			     da, 1, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step == 1) {
		snprintf(w->bound, sizeof(w->bound), "%s", store_rows_text(rows, 0));
		snprintf(w->identifier, sizeof(w->identifier), "%s", store_rows_text(rows, 1));
		w->user_id = store_rows_int(rows, 2);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	if (step == 0) {
		w->why = "no such device";
		return MC_ENOTFOUND;
	}
	/* the patient whose chart changes: the new one on bind, the current one on unbind */
	const char *pat = w->patient ? w->patient : w->bound;
	r->audit.patient_id = pat[0] ? arena_strdup(r->arena, pat) : NULL;
	if (w->patient) {
		struct fhir_stored ps;
		rc = fhir_store_read(t, r->arena, "Patient", w->patient, 0, &ps);
		if (rc == MC_ENOTFOUND || rc == MC_EGONE) {
			w->why = "no such patient";
			return MC_ENOTFOUND;
		}
		if (rc)
			return rc;
	}
	if (pat[0]) {
		rc = auth_patient_access(t, r->who, pat, AUTH_CLINICAL_WRITE, NULL);
		if (rc) {
			w->why = "this patient is not in your care";
			return rc;
		}
	}
	if (w->patient && w->bound[0] && strcmp(w->bound, w->patient)) {
		w->why = "the device is bound to another patient; unbind it first";
		return MC_ECONFLICT;
	}
	if (w->patient ? !strcmp(w->bound, w->patient) : !w->bound[0]) {
		/* already so: idempotent, nothing written */
		struct fhir_stored st;
		rc = fhir_store_read(t, r->arena, "Device", w->device, 0, &st);
		if (!rc) {
			json_t *dev;
			if (!mcjson_parse(st.json, st.json_len, &dev, NULL)) {
				const char *tt = mcjson_str(json_object_get(dev, "type"), "text");
				snprintf(w->type, sizeof(w->type), "%s", tt ? tt : "");
				json_decref(dev);
			}
		}
		return MC_OK;
	}
	rc = device_set_patient(t, r, w->device, w->patient, w->type, sizeof(w->type));
	if (rc)
		return rc;
	struct store_arg a[4] = {SA_TEXT(w->device), SA_TEXT(w->patient), SA_INT(mctime_now_ms()),
				 SA_TEXT(r->who->username)};
	rc = store_exec(t, "UPDATE vitals_device SET patient_id = $2, bound_ms = $3, bound_by = $4 WHERE device_id = $1",
			a, 4);
	w->changed = rc == MC_OK;
	return rc;
}

static int bind_common(struct req *r, struct reply *rep, bool bind)
{
	struct bind_work w = {.req = r, .device = req_param(r, "id")};
	r->audit.action = "update";
	r->audit.resource_type = "Device";
	r->audit.resource_id = w.device;
	if (!may_manage(r))
		return req_fail(r, MC_EFORBIDDEN, "only doctors, nurses and integrations manage devices", NULL, NULL);
	if (!w.device || !mcid_valid_fhir_id(w.device))
		return req_fail(r, MC_ENOTFOUND, "no such device", NULL, NULL);
	if (bind) {
		json_t *body;
		int rc = req_json(r, &body);
		if (rc)
			return rc;
		w.patient = json_is_object(body) ? mcjson_str(body, "patient") : NULL;
		if (!w.patient || !mcid_valid_fhir_id(w.patient))
			return req_fail(r, MC_EINVAL, "patient: a patient id is required", "patient", NULL);
	}
	int rc = req_write(r, bind_unit, &w);
	if (rc)
		return w.why ? req_fail(r, rc, w.why, NULL, NULL) : rc;
	if (w.changed) {
		vitals_binding_forget(w.device);
		if (bind)
			alerts_device_bound(alerts_current(), w.device, w.patient);
		else
			alerts_device_unbound(alerts_current(), w.device, w.bound);
		live_membership_changed();
	}
	return reply_api(rep, r, 200, device_view(w.device, w.identifier, w.type, w.patient, w.user_id), NULL);
}

int vitals_h_device_bind(struct req *r, struct reply *rep) { return bind_common(r, rep, true); }
int vitals_h_device_unbind(struct req *r, struct reply *rep) { return bind_common(r, rep, false); }
