/* modules/clinical/notes.c — consultation notes: SOAP Compositions, sign, amend, history.
 *
 * Lifecycle: preliminary (editable by its author: each edit is a new version) -> final (signed by
 * its author: attester mode legal) -> amended (a signed note changed by its author, with a reason;
 * each amendment is a new version). Nothing is edited in place: the versioned store keeps every
 * version, listed by GET .../{id}/_history. Only doctors and nurses read or write notes
 * (clinical.h); the patient's care relation is checked in every unit.
 */
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "http/app.h"
#include "modules/clinical/clinical_int.h"
#include "modules/clinical/soap.h"

static int notes_role(struct req *r)
{
	if (clin_notes_role(r->who))
		return MC_OK;
	return req_fail(r, MC_EFORBIDDEN, "consultation notes are for doctors and nurses", NULL, NULL);
}

/* ---- POST /api/v1/consultations ---- */

struct note_new {
	const char *encounter;
};

static int note_prep(struct store_txn *t, struct clin_create *c)
{
	struct note_new *n = c->arg;
	json_t *enc;
	int rc = clin_check_owned(t, c->req, "Encounter", n->encounter, c->patient, "encounter", &enc, &c->err);
	if (rc)
		return rc;
	const char *st = mcjson_str(enc, "status");
	if (st && (!strcmp(st, "cancelled") || !strcmp(st, "entered-in-error") || !strcmp(st, "planned")))
		return clin_err_set(&c->err, MC_EINVAL, "encounter",
				    arena_printf(c->req->arena, "a note needs a started encounter (this one is %s)", st));
	return MC_OK;
}

int clin_h_note_create(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"patient", "encounter", "subjective", "objective", "assessment", "plan", NULL};
	r->audit.action = "create";
	r->audit.resource_type = "Composition";
	int rc = notes_role(r);
	if (rc)
		return rc;
	json_t *body;
	rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	struct clin_create c = {.level = AUTH_CLINICAL_WRITE, .type = "Composition", .event = "consultation.created"};
	struct note_new nn = {0};
	if (!rc)
		rc = clin_str_field(r, body, "patient", true, 64, &c.patient);
	if (!rc)
		rc = clin_str_field(r, body, "encounter", true, 64, &nn.encounter);
	if (rc)
		return rc;
	if (!mcid_valid_fhir_id(c.patient))
		return req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
	if (!mcid_valid_fhir_id(nn.encounter))
		return clin_bad(r, "encounter", "no such Encounter");
	r->audit.patient_id = c.patient;
	struct soap_note n;
	const char *field = NULL;
	if (soap_parse(body, false, &n, &field))
		return clin_bad(r, field, "give the note text as strings (at least one section, each at most 20000 characters)");
	struct soap_author a = {r->who->user_id, r->who->username, r->who->practitioner_id};
	c.res = clin_own(r, soap_to_composition(&n, c.patient, nn.encounter, &a, clin_now(r)));
	c.prep = note_prep;
	c.arg = &nn;
	return clin_create_reply(r, rep, &c, soap_view);
}

/* ---- load / sign / amend ---- */

struct note_work {
	struct req *req;
	const char *id;
	enum auth_access level;
	json_t *comp;
	struct fhir_meta meta;
	struct soap_note edit;     /* amend */
	const char *reason;        /* amend */
	int64_t if_match;          /* amend: 0 = none */
	struct clin_err err;
};

static int note_load(struct store_txn *t, struct note_work *w)
{
	int rc = clin_load(t, w->req, "Composition", w->id, "note", &w->comp, &w->meta, &w->err);
	if (!rc && strcmp(mcjson_str(w->comp, "title") ? mcjson_str(w->comp, "title") : "", "Consultation note"))
		rc = clin_err_set(&w->err, MC_ENOTFOUND, NULL, "no such note");
	if (!rc)
		rc = clin_gate(t, w->req, w->meta.patient_id, w->level, &w->err);
	if (!rc)
		w->req->audit.resource_id = w->id;
	return rc;
}

static int own_note(struct note_work *w, const char *what)
{
	if (soap_author_user(w->comp) != w->req->who->user_id)
		return clin_err_set(&w->err, MC_EFORBIDDEN, NULL,
				    arena_printf(w->req->arena, "only the note's author may %s it", what));
	return MC_OK;
}

static json_t *attester(struct note_work *w, const char *now)
{
	json_t *party = json_deep_copy(json_array_get(json_object_get(w->comp, "author"), 0));
	return json_pack("[{s:s, s:s, s:o}]", "mode", "legal", "time", now, "party", party);
}

static int note_sign_unit(struct store_txn *t, void *arg)
{
	struct note_work *w = arg;
	int rc = note_load(t, w);
	if (!rc)
		rc = own_note(w, "sign");
	if (rc)
		return rc;
	const char *st = mcjson_str(w->comp, "status");
	if (!st || strcmp(st, "preliminary"))
		return clin_err_set(&w->err, MC_ECONFLICT, NULL, "the note is already signed; amend it instead");
	char now[32];
	mctime_format_ms(mctime_now_ms(), now);
	json_object_set_new(w->comp, "status", json_string("final"));
	json_object_set_new(w->comp, "attester", attester(w, now));
	bool created;
	rc = fhir_store_update(t, "Composition", w->id, w->comp, w->meta.version, &w->meta, &created);
	return rc ? rc : clin_event(t, "consultation.signed", &w->meta);
}

static struct note_work *note_begin(struct req *r, const char *action, enum auth_access level)
{
	struct note_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->id = req_param(r, "id");
	w->level = level;
	r->audit.action = action;
	r->audit.resource_type = "Composition";
	r->audit.resource_id = w->id;
	return w;
}

int clin_h_note_sign(struct req *r, struct reply *rep)
{
	struct note_work *w = note_begin(r, "update", AUTH_CLINICAL_WRITE);
	int rc = notes_role(r);
	if (!rc)
		rc = clin_fail(r, req_write(r, note_sign_unit, w), &w->err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, soap_view(w->comp), NULL);
}

static void set_reason(json_t *comp, const char *reason)
{
	json_t *exts = json_object_get(comp, "extension");
	json_t *keep = json_array();
	size_t i;
	json_t *x;
	json_array_foreach(exts, i, x) {
		const char *url = mcjson_str(x, "url");
		if (!url || strcmp(url, SOAP_AMEND_REASON_URL))
			json_array_append(keep, x);
	}
	json_array_append_new(keep, json_pack("{s:s, s:s}", "url", SOAP_AMEND_REASON_URL, "valueString", reason));
	json_object_set_new(comp, "extension", keep);
}

static int note_amend_unit(struct store_txn *t, void *arg)
{
	struct note_work *w = arg;
	int rc = note_load(t, w);
	if (!rc)
		rc = own_note(w, "amend");
	if (rc)
		return rc;
	if (w->if_match && w->if_match != w->meta.version)
		return clin_err_set(&w->err, MC_EPRECOND, NULL, "the note was changed since you read it; reload and retry");
	const char *st = mcjson_str(w->comp, "status");
	bool signed_ = st && (!strcmp(st, "final") || !strcmp(st, "amended"));
	if (!signed_ && (!st || strcmp(st, "preliminary")))
		return clin_err_set(&w->err, MC_ECONFLICT, NULL, "this note can no longer be changed");
	if (signed_ && !w->reason)
		return clin_err_set(&w->err, MC_EINVAL, "reason", "a signed note is amended only with a reason");
	struct soap_note cur;
	if (soap_from_composition(w->comp, &cur))
		return MC_EINTERNAL;
	bool changed = false;
	for (int i = 0; i < SOAP_NSECTIONS; i++)
		if (w->edit.text[i] && strcmp(w->edit.text[i], cur.text[i]))
			changed = true;
	soap_note_free(&cur);
	if (!changed)
		return clin_err_set(&w->err, MC_EINVAL, NULL, "nothing to change: the text equals the current version");
	char now[32];
	mctime_format_ms(mctime_now_ms(), now);
	soap_apply(w->comp, &w->edit);
	json_object_set_new(w->comp, "date", json_string(now));
	if (signed_) {
		json_object_set_new(w->comp, "status", json_string("amended"));
		json_object_set_new(w->comp, "attester", attester(w, now));
		set_reason(w->comp, w->reason);
	}
	struct fhir_issues is;
	if (fhir_validate(w->comp, "Composition", &is))
		return clin_err_set(&w->err, MC_EINVAL, NULL, "the amended note is not valid");
	bool created;
	rc = fhir_store_update(t, "Composition", w->id, w->comp, w->meta.version, &w->meta, &created);
	if (!rc && signed_)
		rc = clin_event(t, "consultation.amended", &w->meta);
	return rc;
}

int clin_h_note_amend(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"subjective", "objective", "assessment", "plan", "reason", "version", NULL};
	struct note_work *w = note_begin(r, "update", AUTH_CLINICAL_WRITE);
	int rc = notes_role(r);
	json_t *body = NULL;
	if (!rc)
		rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	if (!rc)
		rc = clin_str_field(r, body, "reason", false, SOAP_REASON_MAX, &w->reason);
	if (rc)
		return rc;
	if (w->reason && strlen(w->reason) < 5)
		return clin_bad(r, "reason", "say why the note is amended (at least 5 characters)");
	json_t *ver = json_object_get(body, "version");
	if (ver) {
		if (!json_is_integer(ver) || json_integer_value(ver) < 1)
			return clin_bad(r, "version", "must be a positive integer");
		w->if_match = json_integer_value(ver);
	}
	const char *field = NULL;
	if (soap_parse(body, true, &w->edit, &field))
		return clin_bad(r, field, "must be a string of at most 20000 characters");
	bool any = false;
	for (int i = 0; i < SOAP_NSECTIONS; i++)
		any = any || w->edit.text[i];
	if (!any)
		return req_fail(r, MC_EINVAL, "give at least one of subjective, objective, assessment, plan", NULL, NULL);
	rc = clin_fail(r, req_write(r, note_amend_unit, w), &w->err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, soap_view(w->comp), NULL);
}

static int note_read_unit(struct store_txn *t, void *arg)
{
	return note_load(t, arg);
}

int clin_h_note_get(struct req *r, struct reply *rep)
{
	struct note_work *w = note_begin(r, "read", AUTH_CLINICAL_READ);
	int rc = notes_role(r);
	if (!rc)
		rc = clin_fail(r, store_read(r->app->store, note_read_unit, w), &w->err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, soap_view(w->comp), NULL);
}

struct hist_work {
	struct note_work *w;
	json_t *items;
};

static int note_history_unit(struct store_txn *t, void *arg)
{
	struct hist_work *h = arg;
	int rc = note_load(t, h->w);
	if (rc)
		return rc;
	struct fhir_stored *v;
	int n;
	int64_t total;
	rc = fhir_store_history(t, h->w->req->arena, "Composition", h->w->id, 0, 0, 100, &v, &n, &total);
	for (int i = 0; !rc && i < n; i++) {
		json_t *j;
		if (!v[i].json || mcjson_parse(v[i].json, v[i].json_len, &j, NULL))
			continue;
		json_array_append_new(h->items, soap_view(j));
		json_decref(j);
	}
	return rc;
}

int clin_h_note_history(struct req *r, struct reply *rep)
{
	struct note_work *w = note_begin(r, "history", AUTH_CLINICAL_READ);
	struct hist_work h = {w, clin_own(r, json_array())};
	int rc = notes_role(r);
	if (!rc)
		rc = clin_fail(r, store_read(r->app->store, note_history_unit, &h), &w->err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(h.items), NULL);
}

static json_t *note_list_view(const json_t *res)
{
	return soap_view(res);
}

int clin_h_note_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "patientId", "search", "Composition");
	if (!pid)
		return MC_ENOTFOUND;
	int rc = notes_role(r);
	if (rc)
		return rc;
	return clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "Composition",
			       " AND r.rkey IN (SELECT rkey FROM idx_token WHERE param = 'type' AND code = '11488-4')",
			       note_list_view);
}
