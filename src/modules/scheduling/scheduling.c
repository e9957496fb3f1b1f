/* modules/scheduling/scheduling.c — availability templates and exceptions → FHIR Schedule/Slot,
 * booking, rescheduling, cancelling, check-in, no-show, completion, the waitlist with offers, the
 * same-day queue, reminders. See scheduling.h for the model and the error contract.
 *
 * Every write handler runs exactly one unit (req_write); every check that decides whether the write
 * may happen runs inside that unit, so nothing is decided on a stale read.
 */
#include "modules/clinical/clinical.h"
#include "modules/scheduling/scheduling.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "http/app.h"
#include "modules/scheduling/slots.h"
#include "store/store.h"

#define LIST_MAX 1000     /* rows in one listing */
#define WAITLIST_SCAN 20  /* waiting entries considered per freed slot */

/* ---- small helpers ---- */

static void json_free_cb(void *p) { json_decref(p); }

static json_t *own(struct arena *a, json_t *j)
{
	if (j)
		arena_defer(a, json_free_cb, j);
	return j;
}

/* Why a unit refused: code, client-safe message, offending field (may be NULL). */
struct sfail {
	int code;
	const char *msg;
	const char *field;
};

static int sfail(struct sfail *f, int code, const char *field, const char *msg)
{
	f->code = code;
	f->field = field;
	f->msg = msg;
	return code;
}

static int report(struct req *r, const struct sfail *f, int rc)
{
	if (f->msg)
		return req_fail(r, f->code, f->msg, NULL, f->field ? json_pack("{s:s}", "field", f->field) : NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this patient is not in your care", NULL, NULL);
	return rc;
}

static const char *fmt_ms(struct arena *a, int64_t ms)
{
	char *s = arena_alloc(a, 32);
	mctime_format_ms(ms, s);
	return s;
}

/* A string field of body, or NULL; *bad when present but not a non-empty short string. */
static const char *body_str(const json_t *body, const char *key, size_t max, bool *bad)
{
	json_t *v = json_object_get(body, key);
	if (!v)
		return NULL;
	if (!json_is_string(v) || !json_string_length(v) || json_string_length(v) > max) {
		*bad = true;
		return NULL;
	}
	return json_string_value(v);
}

/* Reject unknown body keys (typos must not be silently ignored). */
static int body_keys(struct req *r, const json_t *body, const char *const *allowed)
{
	if (!json_is_object(body))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)body, k, v) {
		bool ok = false;
		for (size_t i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(k, allowed[i]);
		if (!ok)
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%.40s: unknown field", k), NULL,
					json_pack("{s:s}", "field", k));
	}
	return MC_OK;
}

/* An id given as "abc" or "Type/abc": the bare id, or NULL when malformed. */
static const char *ref_id(struct arena *a, const char *s, const char *type)
{
	if (!s)
		return NULL;
	size_t tl = strlen(type);
	if (!strncmp(s, type, tl) && s[tl] == '/')
		s += tl + 1;
	return mcid_valid_fhir_id(s) ? arena_strdup(a, s) : NULL;
}

static int exists(struct store_txn *t, struct arena *a, const char *type, const char *id)
{
	struct fhir_stored st;
	int rc = fhir_store_read(t, a, type, id, 0, &st);
	return rc == MC_EGONE ? MC_ENOTFOUND : rc;
}

/* Serialize units on one key (see sched_lock in the migration). */
static int lock_key(struct store_txn *t, const char *kind, const char *id)
{
	char key[96];
	snprintf(key, sizeof(key), "%s:%s", kind, id);
	struct store_arg a[] = {SA_TEXT(key)};
	return store_exec(t, "INSERT INTO sched_lock(key, n) VALUES($1, 1) ON CONFLICT(key) DO UPDATE SET n = sched_lock.n + 1",
			  a, 1);
}

/* Read-modify-write of a stored resource. *out is owned by the arena. */
static int load_json(struct store_txn *t, struct arena *a, const char *type, const char *id, json_t **out)
{
	struct fhir_stored st;
	int rc = fhir_store_read(t, a, type, id, 0, &st);
	if (rc)
		return rc == MC_EGONE ? MC_ENOTFOUND : rc;
	if (mcjson_parse(st.json, st.json_len, out, NULL))
		return MC_EINTERNAL;
	own(a, *out);
	return MC_OK;
}

static int save_json(struct store_txn *t, const char *type, const char *id, json_t *j)
{
	struct fhir_issues is;
	if (fhir_validate(j, type, &is)) {
		LOGE("scheduling: generated resource invalid", "\"type\":\"%s\",\"path\":\"%s\"", type,
		     is.n ? is.v[0].path : "");
		return MC_EINTERNAL;
	}
	struct fhir_meta m;
	bool created;
	return fhir_store_update(t, type, id, j, 0, &m, &created);
}

static int set_slot_status(struct store_txn *t, struct arena *a, const char *slot_id, const char *status)
{
	json_t *j;
	int rc = load_json(t, a, "Slot", slot_id, &j);
	if (rc)
		return rc;
	json_object_set_new(j, "status", json_string(status));
	rc = save_json(t, "Slot", slot_id, j);
	if (rc)
		return rc;
	const char *mirror = strcmp(status, "free") ? "busy" : "free";
	struct store_arg args[] = {SA_TEXT(mirror), SA_TEXT(slot_id)};
	return store_exec(t, "UPDATE sched_slot SET status = $1, hold_waitlist = NULL, hold_until_ms = 0 WHERE slot_id = $2",
			  args, 2);
}

/* ---- slots and their mirror rows ---- */

struct slotrow {
	char id[65], practitioner[65], status[16], hold[65], location[65];
	int64_t start_ms, end_ms, hold_until;
	bool booked;   /* a slot_booking row exists */
};

static void copy(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

#define SLOT_COLS                                                                                        \
	"s.slot_id, s.practitioner_id, s.start_ms, s.end_ms, s.status, s.hold_waitlist, s.hold_until_ms, " \
	"s.location, (SELECT count(*) FROM slot_booking b WHERE b.slot_id = s.slot_id)"

static int slot_query(struct store_txn *t, const char *where, struct store_arg *args, size_t n, struct slotrow *out)
{
	char sql[512];
	snprintf(sql, sizeof(sql), "SELECT " SLOT_COLS " FROM sched_slot s WHERE %s AND s.status <> 'deleted' LIMIT 1",
		 where);
	struct store_rows *rows;
	int rc = store_query(t, sql, args, n, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step == 1) {
		copy(out->id, sizeof(out->id), store_rows_text(rows, 0));
		copy(out->practitioner, sizeof(out->practitioner), store_rows_text(rows, 1));
		out->start_ms = store_rows_int(rows, 2);
		out->end_ms = store_rows_int(rows, 3);
		copy(out->status, sizeof(out->status), store_rows_text(rows, 4));
		copy(out->hold, sizeof(out->hold), store_rows_text(rows, 5));
		out->hold_until = store_rows_int(rows, 6);
		copy(out->location, sizeof(out->location), store_rows_text(rows, 7));
		out->booked = store_rows_int(rows, 8) > 0;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	return step == 1 ? MC_OK : MC_ENOTFOUND;
}

/* May this slot be booked now (by the holder of waitlist entry wl, which may be NULL)? */
static int slot_bookable(const struct slotrow *s, int64_t now, const char *wl, struct sfail *f, const char *field)
{
	if (s->start_ms <= now)
		return sfail(f, MC_EINVAL, field, "the slot starts in the past");
	if (strcmp(s->status, "free"))
		return sfail(f, MC_ECONFLICT, field, "the slot is no longer offered");
	if (s->booked)
		return sfail(f, MC_ECONFLICT, field, "the slot is already booked");
	if (s->hold[0] && s->hold_until > now && (!wl || strcmp(wl, s->hold)))
		return sfail(f, MC_ECONFLICT, field, "the slot is held for a waitlist offer");
	return MC_OK;
}

/* Does the patient have an active appointment overlapping [s, e) other than except? */
static int patient_busy(struct store_txn *t, const char *patient, int64_t s, int64_t e, const char *except, bool *busy)
{
	struct store_arg a[] = {SA_TEXT(patient), SA_INT(s), SA_INT(e), SA_TEXT(except ? except : "")};
	int64_t one;
	int rc = store_query_int(t,
				 "SELECT 1 FROM sched_appt WHERE patient_id = $1 AND status IN ('booked', 'arrived') AND "
				 "start_ms < $3 AND end_ms > $2 AND appointment_id <> $4 LIMIT 1",
				 a, 4, &one);
	*busy = rc == MC_OK;
	return rc == MC_ENOTFOUND ? MC_OK : rc;
}

/* Booking with a practitioner puts their user account(s) on the patient's care team. */
static int care_team_for(struct store_txn *t, const char *patient, const char *practitioner, const char *by)
{
	struct store_arg a[] = {SA_TEXT(practitioner)};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT id FROM users WHERE practitioner_id = $1 AND active = 1 LIMIT 8", a, 1, &rows);
	if (rc)
		return rc;
	int64_t ids[8];
	int n = 0, step;
	while ((step = store_rows_next(rows)) == 1 && n < 8)
		ids[n++] = store_rows_int(rows, 0);
	store_rows_close(rows);
	if (step < 0)
		return -step;
	for (int i = 0; i < n && !rc; i++)
		rc = auth_care_team_add(t, patient, ids[i], by);
	return rc;
}

/* A freed slot goes to the oldest matching waitlist entry whose patient is free then: the entry is
 * marked offered with an expiry, the slot held for it, and appointment.slot.offered emitted.
 * Expired offers first return to waiting. */
static int waitlist_offer(struct store_txn *t, struct arena *a, const char *slot_id, int64_t now)
{
	struct store_arg e[] = {SA_INT(now)};
	int rc = store_exec(t, "UPDATE waitlist SET status = 'waiting', offered_slot = NULL, offer_expires_ms = 0 "
			       "WHERE status = 'offered' AND offer_expires_ms <= $1",
			    e, 1);
	if (rc)
		return rc;
	struct slotrow s = {0};
	struct store_arg sa[] = {SA_TEXT(slot_id)};
	rc = slot_query(t, "s.slot_id = $1", sa, 1, &s);
	if (rc)
		return rc == MC_ENOTFOUND ? MC_OK : rc;
	if (s.start_ms <= now || s.booked || strcmp(s.status, "free"))
		return MC_OK;
	struct store_arg q[] = {SA_TEXT(s.practitioner), SA_INT(s.start_ms), SA_INT(s.end_ms)};
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT id, patient_id FROM waitlist WHERE practitioner_id = $1 AND status = 'waiting' AND "
			 "earliest_ms <= $2 AND latest_ms >= $3 ORDER BY created_ms, id LIMIT " "20",
			 q, 3, &rows);
	if (rc)
		return rc;
	char ids[WAITLIST_SCAN][65], pats[WAITLIST_SCAN][65];
	int n = 0, step;
	while ((step = store_rows_next(rows)) == 1 && n < WAITLIST_SCAN) {
		copy(ids[n], 65, store_rows_text(rows, 0));
		copy(pats[n], 65, store_rows_text(rows, 1));
		n++;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	for (int i = 0; i < n; i++) {
		bool busy;
		rc = patient_busy(t, pats[i], s.start_ms, s.end_ms, NULL, &busy);
		if (rc)
			return rc;
		if (busy)
			continue;
		int64_t exp = now + SCHED_OFFER_MS < s.start_ms ? now + SCHED_OFFER_MS : s.start_ms;
		struct store_arg u[] = {SA_TEXT(ids[i]), SA_TEXT(slot_id), SA_INT(exp)};
		rc = store_exec(t, "UPDATE waitlist SET status = 'offered', offered_slot = $2, offer_expires_ms = $3 WHERE id = $1",
				u, 3);
		if (!rc)
			rc = store_exec(t, "UPDATE sched_slot SET hold_waitlist = $1, hold_until_ms = $3 WHERE slot_id = $2", u, 3);
		if (rc)
			return rc;
		json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "waitlistId", ids[i], "slotId", slot_id, "practitionerId",
				      s.practitioner, "start", fmt_ms(a, s.start_ms), "expires", fmt_ms(a, exp));
		return events_emit(t, "appointment.slot.offered", pats[i], "Slot", slot_id, p);
	}
	return MC_OK;
}

/* ---- appointments: the mirror row ---- */

struct apptrow {
	char id[65], patient[65], practitioner[65], slot[65], status[16];
	int64_t start_ms, end_ms, checked_in_ms;
};

static int appt_load(struct store_txn *t, const char *id, struct apptrow *out)
{
	struct store_arg a[] = {SA_TEXT(id)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT appointment_id, patient_id, practitioner_id, slot_id, status, start_ms, end_ms, "
			     "checked_in_ms FROM sched_appt WHERE appointment_id = $1",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	if (step == 1) {
		copy(out->id, 65, store_rows_text(rows, 0));
		copy(out->patient, 65, store_rows_text(rows, 1));
		copy(out->practitioner, 65, store_rows_text(rows, 2));
		copy(out->slot, 65, store_rows_text(rows, 3));
		copy(out->status, 16, store_rows_text(rows, 4));
		out->start_ms = store_rows_int(rows, 5);
		out->end_ms = store_rows_int(rows, 6);
		out->checked_in_ms = store_rows_int(rows, 7);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	return step == 1 ? MC_OK : MC_ENOTFOUND;
}

static json_t *appt_view(struct arena *a, const struct apptrow *x)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", x->id, "status", x->status, "patient", x->patient,
			 "practitioner", x->practitioner, "slot", x->slot, "start", fmt_ms(a, x->start_ms), "end",
			 fmt_ms(a, x->end_ms));
}

/* ---- booking ---- */

struct book_work {
	struct req *req;
	/* in */
	const char *patient, *slot_id, *practitioner, *reason, *waitlist_id;
	int64_t start_ms;
	const char *slot_field;     /* "slot" or "start": the field a slot problem is reported on */
	/* out */
	struct sfail f;
	struct apptrow appt;
};

static int book_core(struct store_txn *t, struct book_work *w)
{
	struct req *r = w->req;
	struct arena *a = r->arena;
	int64_t now = mctime_now_ms();
	int rc = exists(t, a, "Patient", w->patient);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, MC_EUNPROC, "patient", "no such patient");
	if (rc)
		return rc;
	r->audit.patient_id = w->patient;
	rc = auth_patient_access(t, r->who, w->patient, AUTH_DEMOGRAPHICS_WRITE, NULL);
	if (rc)
		return rc;
	struct slotrow s = {0};
	if (w->slot_id) {
		struct store_arg sa[] = {SA_TEXT(w->slot_id)};
		rc = slot_query(t, "s.slot_id = $1", sa, 1, &s);
		if (rc == MC_ENOTFOUND)
			return sfail(&w->f, MC_EUNPROC, w->slot_field, "no such slot");
	} else {
		rc = exists(t, a, "Practitioner", w->practitioner);
		if (rc == MC_ENOTFOUND)
			return sfail(&w->f, MC_EUNPROC, "practitioner", "no such practitioner");
		if (rc)
			return rc;
		if (w->start_ms <= now)
			return sfail(&w->f, MC_EINVAL, "start", "start is in the past");
		struct store_arg sa[] = {SA_TEXT(w->practitioner), SA_INT(w->start_ms)};
		rc = slot_query(t, "s.practitioner_id = $1 AND s.start_ms = $2", sa, 2, &s);
		if (rc == MC_ENOTFOUND)
			return sfail(&w->f, MC_EUNPROC, "start", "the practitioner has no slot starting then (outside availability)");
	}
	if (rc)
		return rc;
	rc = slot_bookable(&s, now, w->waitlist_id, &w->f, w->slot_field);
	if (rc)
		return rc;
	rc = lock_key(t, "patient", w->patient);
	if (rc)
		return rc;
	bool busy;
	rc = patient_busy(t, w->patient, s.start_ms, s.end_ms, NULL, &busy);
	if (rc)
		return rc;
	if (busy)
		return sfail(&w->f, MC_ECONFLICT, "patient", "the patient already has an appointment at that time");

	char id[MCID_LEN + 1];
	mcid_new(id);
	/* THE guard: the primary key admits one booking per slot. */
	struct store_arg b[] = {SA_TEXT(s.id), SA_TEXT(id)};
	rc = store_exec(t, "INSERT INTO slot_booking(slot_id, appointment_id) VALUES($1, $2)", b, 2);
	if (rc == MC_ECONFLICT)
		return sfail(&w->f, MC_ECONFLICT, w->slot_field, "the slot is already booked");
	if (rc)
		return rc;

	json_t *ap = own(a, json_pack("{s:s, s:s, s:[{s:s}], s:s, s:s, s:I, s:s, s:[{s:{s:s}, s:s}, {s:{s:s}, s:s}]}",
				      "resourceType", "Appointment", "status", "booked", "slot", "reference",
				      arena_printf(a, "Slot/%s", s.id), "start", fmt_ms(a, s.start_ms), "end",
				      fmt_ms(a, s.end_ms), "minutesDuration",
				      (json_int_t)((s.end_ms - s.start_ms) / SCHED_MIN_MS), "created", fmt_ms(a, now),
				      "participant", "actor", "reference", arena_printf(a, "Patient/%s", w->patient),
				      "status", "accepted", "actor", "reference",
				      arena_printf(a, "Practitioner/%s", s.practitioner), "status", "accepted"));
	if (w->reason)
		json_object_set_new(ap, "reasonCode", json_pack("[{s:s}]", "text", w->reason));
	rc = save_json(t, "Appointment", id, ap);
	if (!rc)
		rc = set_slot_status(t, a, s.id, "busy");
	if (rc)
		return rc;
	struct store_arg m[] = {SA_TEXT(id), SA_TEXT(w->patient), SA_TEXT(s.practitioner), SA_TEXT(s.id),
				SA_INT(s.start_ms), SA_INT(s.end_ms), SA_INT(now)};
	rc = store_exec(t,
			"INSERT INTO sched_appt(appointment_id, patient_id, practitioner_id, slot_id, start_ms, end_ms, "
			"status, created_ms) VALUES($1, $2, $3, $4, $5, $6, 'booked', $7)",
			m, 7);
	if (!rc)
		rc = care_team_for(t, w->patient, s.practitioner, r->who->username);
	if (rc)
		return rc;
	json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s}", "appointmentId", id, "slotId", s.id, "practitionerId",
			      s.practitioner, "start", fmt_ms(a, s.start_ms), "end", fmt_ms(a, s.end_ms));
	rc = events_emit(t, "appointment.booked", w->patient, "Appointment", id, p);
	if (rc)
		return rc;
	w->appt = (struct apptrow){.start_ms = s.start_ms, .end_ms = s.end_ms};
	copy(w->appt.id, 65, id);
	copy(w->appt.patient, 65, w->patient);
	copy(w->appt.practitioner, 65, s.practitioner);
	copy(w->appt.slot, 65, s.id);
	copy(w->appt.status, 16, "booked");
	r->audit.resource_id = arena_strdup(a, id);
	return MC_OK;
}

static int book_unit(struct store_txn *t, void *arg)
{
	return book_core(t, arg);
}

static int h_book(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"patient", "slot", "practitioner", "start", "reason", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (rc)
		return rc;
	if ((rc = body_keys(r, body, keys)))
		return rc;
	r->audit.action = "create";
	r->audit.resource_type = "Appointment";
	struct book_work w = {.req = r};
	bool bad = false;
	const char *pat = body_str(body, "patient", 80, &bad);
	if (bad || !(w.patient = ref_id(r->arena, pat, "Patient")))
		return req_fail(r, MC_EINVAL, "patient: a Patient id is required", NULL, json_pack("{s:s}", "field", "patient"));
	const char *slot = body_str(body, "slot", 80, &bad);
	const char *prac = body_str(body, "practitioner", 80, &bad);
	const char *start = body_str(body, "start", 40, &bad);
	w.reason = body_str(body, "reason", 500, &bad);
	if (bad)
		return req_fail(r, MC_EINVAL, "slot, practitioner, start and reason must be non-empty strings", NULL, NULL);
	if (slot && (prac || start))
		return req_fail(r, MC_EINVAL, "give either slot or practitioner and start, not both", NULL,
				json_pack("{s:s}", "field", "slot"));
	if (slot) {
		if (!(w.slot_id = ref_id(r->arena, slot, "Slot")))
			return req_fail(r, MC_EINVAL, "slot: malformed id", NULL, json_pack("{s:s}", "field", "slot"));
		w.slot_field = "slot";
	} else {
		if (!prac || !start)
			return req_fail(r, MC_EINVAL, "give slot, or practitioner and start", NULL,
					json_pack("{s:s}", "field", prac ? "start" : "practitioner"));
		if (!(w.practitioner = ref_id(r->arena, prac, "Practitioner")))
			return req_fail(r, MC_EINVAL, "practitioner: malformed id", NULL,
					json_pack("{s:s}", "field", "practitioner"));
		if (sched_parse_instant(start, &w.start_ms))
			return req_fail(r, MC_EINVAL, "start: must be a date-time such as 2026-03-02T09:00:00Z", NULL,
					json_pack("{s:s}", "field", "start"));
		w.slot_field = "start";
	}
	rc = req_write(r, book_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/Appointment/%s", w.appt.id));
	return reply_api(rep, r, 201, appt_view(r->arena, &w.appt), NULL);
}

/* ---- appointment actions ---- */

enum act { ACT_RESCHEDULE, ACT_CANCEL, ACT_CHECKIN, ACT_NOSHOW, ACT_COMPLETE };

struct act_work {
	struct req *req;
	enum act act;
	const char *id, *reason, *new_slot;
	struct sfail f;
	struct apptrow appt;
};

/* Apply the new status (and extra fields) to the stored Appointment. */
static int appt_fhir_update(struct store_txn *t, struct arena *a, const struct apptrow *x, const char *status,
			    const char *cancel_reason, const struct slotrow *ns)
{
	json_t *j;
	int rc = load_json(t, a, "Appointment", x->id, &j);
	if (rc)
		return rc;
	json_object_set_new(j, "status", json_string(status));
	if (cancel_reason)
		json_object_set_new(j, "cancelationReason", json_pack("{s:s}", "text", cancel_reason));
	if (ns) {
		json_object_set_new(j, "start", json_string(fmt_ms(a, ns->start_ms)));
		json_object_set_new(j, "end", json_string(fmt_ms(a, ns->end_ms)));
		json_object_set_new(j, "minutesDuration", json_integer((ns->end_ms - ns->start_ms) / SCHED_MIN_MS));
		json_object_set_new(j, "slot", json_pack("[{s:s}]", "reference", arena_printf(a, "Slot/%s", ns->id)));
		size_t i;
		json_t *p;
		json_array_foreach(json_object_get(j, "participant"), i, p) {
			const char *ref = mcjson_str(json_object_get(p, "actor"), "reference");
			if (ref && !strncmp(ref, "Practitioner/", 13))
				json_object_set_new(json_object_get(p, "actor"), "reference",
						    json_string(arena_printf(a, "Practitioner/%s", ns->practitioner)));
		}
	}
	return save_json(t, "Appointment", x->id, j);
}

/* Give the appointment's slot back: remove the guard row, mark the Slot free (future slots only),
 * offer it to the waitlist. */
static int release_slot(struct store_txn *t, struct arena *a, const struct apptrow *x, int64_t now)
{
	struct store_arg b[] = {SA_TEXT(x->slot), SA_TEXT(x->id)};
	int rc = store_exec(t, "DELETE FROM slot_booking WHERE slot_id = $1 AND appointment_id = $2", b, 2);
	if (rc || x->start_ms <= now)
		return rc;
	rc = set_slot_status(t, a, x->slot, "free");
	if (rc == MC_ENOTFOUND)
		return MC_OK;   /* the slot was withdrawn meanwhile: nothing to give back */
	return rc ? rc : waitlist_offer(t, a, x->slot, now);
}

static int set_mirror_status(struct store_txn *t, const char *id, const char *status, int64_t checked_in)
{
	struct store_arg a[] = {SA_TEXT(id), SA_TEXT(status), SA_INT(checked_in)};
	return store_exec(t,
			  "UPDATE sched_appt SET status = $2, checked_in_ms = CASE WHEN $3 > 0 THEN $3 ELSE checked_in_ms END "
			  "WHERE appointment_id = $1",
			  a, 3);
}

static int act_unit(struct store_txn *t, void *arg)
{
	struct act_work *w = arg;
	struct req *r = w->req;
	struct arena *a = r->arena;
	int64_t now = mctime_now_ms();
	int rc = appt_load(t, w->id, &w->appt);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, rc, NULL, "no such appointment");
	if (rc)
		return rc;
	struct apptrow *x = &w->appt;
	r->audit.patient_id = arena_strdup(a, x->patient);
	rc = auth_patient_access(t, r->who, x->patient, AUTH_DEMOGRAPHICS_WRITE, NULL);
	if (rc)
		return rc;
	rc = lock_key(t, "patient", x->patient);
	if (rc)
		return rc;
	const char *ev = NULL, *to = NULL;
	json_t *payload = json_pack("{s:s, s:s}", "appointmentId", x->id, "practitionerId", x->practitioner);
	own(a, payload);
	switch (w->act) {
	case ACT_RESCHEDULE: {
		if (strcmp(x->status, "booked"))
			return sfail(&w->f, MC_ECONFLICT, NULL, "only a booked appointment can be rescheduled");
		if (!strcmp(w->new_slot, x->slot))
			return sfail(&w->f, MC_EINVAL, "slot", "that is the appointment's current slot");
		struct slotrow s = {0};
		struct store_arg sa[] = {SA_TEXT(w->new_slot)};
		rc = slot_query(t, "s.slot_id = $1", sa, 1, &s);
		if (rc == MC_ENOTFOUND)
			return sfail(&w->f, MC_EUNPROC, "slot", "no such slot");
		if (rc)
			return rc;
		rc = slot_bookable(&s, now, NULL, &w->f, "slot");
		if (rc)
			return rc;
		bool busy;
		rc = patient_busy(t, x->patient, s.start_ms, s.end_ms, x->id, &busy);
		if (rc)
			return rc;
		if (busy)
			return sfail(&w->f, MC_ECONFLICT, "slot", "the patient already has an appointment at that time");
		struct store_arg b[] = {SA_TEXT(s.id), SA_TEXT(x->id)};
		rc = store_exec(t, "INSERT INTO slot_booking(slot_id, appointment_id) VALUES($1, $2)", b, 2);
		if (rc == MC_ECONFLICT)
			return sfail(&w->f, MC_ECONFLICT, "slot", "the slot is already booked");
		if (!rc)
			rc = appt_fhir_update(t, a, x, "booked", NULL, &s);
		if (!rc)
			rc = set_slot_status(t, a, s.id, "busy");
		if (rc)
			return rc;
		struct apptrow old = *x;
		struct store_arg m[] = {SA_TEXT(x->id), SA_TEXT(s.id), SA_TEXT(s.practitioner), SA_INT(s.start_ms),
					SA_INT(s.end_ms)};
		rc = store_exec(t,
				"UPDATE sched_appt SET slot_id = $2, practitioner_id = $3, start_ms = $4, end_ms = $5, "
				"reminder_sent = 0 WHERE appointment_id = $1",
				m, 5);
		if (!rc)
			rc = release_slot(t, a, &old, now);
		if (!rc)
			rc = care_team_for(t, x->patient, s.practitioner, r->who->username);
		if (rc)
			return rc;
		copy(x->slot, 65, s.id);
		copy(x->practitioner, 65, s.practitioner);
		x->start_ms = s.start_ms;
		x->end_ms = s.end_ms;
		json_object_set_new(payload, "previousSlotId", json_string(old.slot));
		json_object_set_new(payload, "slotId", json_string(s.id));
		json_object_set_new(payload, "start", json_string(fmt_ms(a, s.start_ms)));
		ev = "appointment.rescheduled";
		break;
	}
	case ACT_CANCEL:
		if (strcmp(x->status, "booked") && strcmp(x->status, "arrived"))
			return sfail(&w->f, MC_ECONFLICT, NULL, "the appointment is already cancelled, completed or missed");
		to = "cancelled";
		rc = appt_fhir_update(t, a, x, to, w->reason, NULL);
		if (!rc)
			rc = set_mirror_status(t, x->id, to, 0);
		if (!rc)
			rc = release_slot(t, a, x, now);
		if (rc)
			return rc;
		ev = "appointment.cancelled";
		break;
	case ACT_CHECKIN:
		if (strcmp(x->status, "booked"))
			return sfail(&w->f, MC_ECONFLICT, NULL, "only a booked appointment can be checked in");
		if (x->start_ms - now > SCHED_DAY_MS || now - x->start_ms > SCHED_DAY_MS)
			return sfail(&w->f, MC_ECONFLICT, NULL, "check-in is possible only within a day of the appointment");
		to = "arrived";
		rc = appt_fhir_update(t, a, x, to, NULL, NULL);
		if (!rc)
			rc = set_mirror_status(t, x->id, to, now);
		/* Arrival opens the visit's Encounter (idempotent per appointment), which also puts the
		 * practitioner's clinicians on the care team. */
		struct fhir_meta enc;
		if (!rc)
			rc = clinical_encounter_open_txn(t, x->patient, x->id, x->practitioner, &enc);
		if (!rc)
			json_object_set_new(payload, "encounterId", json_string(enc.id));
		x->checked_in_ms = now;
		ev = "appointment.checked-in";
		break;
	case ACT_NOSHOW:
		if (strcmp(x->status, "booked"))
			return sfail(&w->f, MC_ECONFLICT, NULL, "only a booked appointment can be marked no-show");
		to = "noshow";
		rc = appt_fhir_update(t, a, x, to, NULL, NULL);
		if (!rc)
			rc = set_mirror_status(t, x->id, to, 0);
		ev = "appointment.no-show";
		break;
	case ACT_COMPLETE:
		if (strcmp(x->status, "arrived"))
			return sfail(&w->f, MC_ECONFLICT, NULL, "only a checked-in appointment can be completed");
		to = "fulfilled";
		rc = appt_fhir_update(t, a, x, to, NULL, NULL);
		if (!rc)
			rc = set_mirror_status(t, x->id, to, 0);
		ev = "appointment.completed";
		break;
	}
	if (rc)
		return rc;
	if (to)
		copy(x->status, 16, to);
	return events_emit(t, ev, x->patient, "Appointment", x->id, json_incref(payload));
}

static int act_run(struct req *r, struct reply *rep, enum act act)
{
	struct act_work w = {.req = r, .act = act, .id = req_param(r, "id")};
	r->audit.action = "update";
	r->audit.resource_type = "Appointment";
	r->audit.resource_id = w.id;
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such appointment", NULL, NULL);
	/* Patients may move and cancel their own appointments; the front desk and clinicians
	 * record arrivals, no-shows and completion. */
	if (r->who->role == ROLE_PATIENT && act != ACT_CANCEL && act != ACT_RESCHEDULE)
		return req_fail(r, MC_EFORBIDDEN, "patients cannot change this themselves", NULL, NULL);
	if (r->body) {
		json_t *body;
		int rc = req_json(r, &body);
		if (rc)
			return rc;
		static const char *const k_res[] = {"slot", NULL}, *const k_can[] = {"reason", NULL},
					 *const k_none[] = {NULL};
		rc = body_keys(r, body, act == ACT_RESCHEDULE ? k_res : act == ACT_CANCEL ? k_can : k_none);
		if (rc)
			return rc;
		bool bad = false;
		w.reason = body_str(body, "reason", 500, &bad);
		const char *slot = body_str(body, "slot", 80, &bad);
		if (bad)
			return req_fail(r, MC_EINVAL, "slot and reason must be non-empty strings", NULL, NULL);
		if (slot && !(w.new_slot = ref_id(r->arena, slot, "Slot")))
			return req_fail(r, MC_EINVAL, "slot: malformed id", NULL, json_pack("{s:s}", "field", "slot"));
	}
	if (act == ACT_RESCHEDULE && !w.new_slot)
		return req_fail(r, MC_EINVAL, "slot is required", NULL, json_pack("{s:s}", "field", "slot"));
	int rc = req_write(r, act_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	return reply_api(rep, r, 200, appt_view(r->arena, &w.appt), NULL);
}

static int h_reschedule(struct req *r, struct reply *rep) { return act_run(r, rep, ACT_RESCHEDULE); }
static int h_cancel(struct req *r, struct reply *rep) { return act_run(r, rep, ACT_CANCEL); }
static int h_checkin(struct req *r, struct reply *rep) { return act_run(r, rep, ACT_CHECKIN); }
static int h_noshow(struct req *r, struct reply *rep) { return act_run(r, rep, ACT_NOSHOW); }
static int h_complete(struct req *r, struct reply *rep) { return act_run(r, rep, ACT_COMPLETE); }

/* ---- GET /api/v1/appointments/patient/{patientId} ---- */

struct list_work {
	struct req *req;
	const char *id;
	int64_t from, to, now;
	json_t *items;
	struct sfail f;
};

static int patient_appts_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	int rc = exists(t, w->req->arena, "Patient", w->id);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, rc, NULL, "no such patient");
	if (rc)
		return rc;
	rc = auth_patient_access(t, w->req->who, w->id, AUTH_DEMOGRAPHICS_READ, NULL);
	if (rc)
		return rc;
	struct store_arg a[] = {SA_TEXT(w->id)};
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT appointment_id, patient_id, practitioner_id, slot_id, status, start_ms, end_ms FROM sched_appt "
			 "WHERE patient_id = $1 ORDER BY start_ms DESC LIMIT 1000",
			 a, 1, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		struct apptrow x = {0};
		copy(x.id, 65, store_rows_text(rows, 0));
		copy(x.patient, 65, store_rows_text(rows, 1));
		copy(x.practitioner, 65, store_rows_text(rows, 2));
		copy(x.slot, 65, store_rows_text(rows, 3));
		copy(x.status, 16, store_rows_text(rows, 4));
		x.start_ms = store_rows_int(rows, 5);
		x.end_ms = store_rows_int(rows, 6);
		json_array_append_new(w->items, appt_view(w->req->arena, &x));
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int h_patient_appts(struct req *r, struct reply *rep)
{
	struct list_work w = {.req = r, .id = req_param(r, "patientId")};
	r->audit.action = "search";
	r->audit.resource_type = "Appointment";
	r->audit.patient_id = w.id;
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
	w.items = own(r->arena, json_array());
	int rc = store_read(r->app->store, patient_appts_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	return reply_api(rep, r, 200, json_incref(w.items), NULL);
}

/* ---- availability: read, templates, exceptions, generation ---- */

/* from/to query arguments: defaults now .. now + 7 days; span at most SCHED_RANGE_MAX_MS. */
static int range_query(struct req *r, int64_t *from, int64_t *to)
{
	const char *f = req_query(r, "from"), *t = req_query(r, "to");
	int64_t lo, hi;
	enum mctime_prec p;
	*from = mctime_now_ms();
	if (f) {
		if (mctime_parse_fhir(f, &lo, &hi, &p))
			return req_fail(r, MC_EINVAL, "from: must be a date or date-time", NULL, json_pack("{s:s}", "field", "from"));
		*from = lo;
	}
	*to = *from + 7 * SCHED_DAY_MS;
	if (t) {
		if (mctime_parse_fhir(t, &lo, &hi, &p))
			return req_fail(r, MC_EINVAL, "to: must be a date or date-time", NULL, json_pack("{s:s}", "field", "to"));
		*to = p <= MCT_DAY ? hi : lo;   /* a date includes its whole day */
	}
	if (*to <= *from)
		return req_fail(r, MC_EINVAL, "to must be after from", NULL, json_pack("{s:s}", "field", "to"));
	if (*to - *from > SCHED_RANGE_MAX_MS)
		return req_fail(r, MC_EINVAL, "the range may span at most 62 days", NULL, json_pack("{s:s}", "field", "to"));
	return MC_OK;
}

static int avail_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	int rc = exists(t, w->req->arena, "Practitioner", w->id);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, rc, NULL, "no such practitioner");
	if (rc)
		return rc;
	int64_t from = w->from > w->now ? w->from : w->now + 1;
	struct store_arg a[] = {SA_TEXT(w->id), SA_INT(from), SA_INT(w->to), SA_INT(w->now)};
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT s.slot_id, s.start_ms, s.end_ms, s.location FROM sched_slot s WHERE s.practitioner_id = $1 "
			 "AND s.start_ms >= $2 AND s.start_ms < $3 AND s.status = 'free' AND s.hold_until_ms <= $4 AND NOT "
			 "EXISTS (SELECT 1 FROM slot_booking b WHERE b.slot_id = s.slot_id) ORDER BY s.start_ms LIMIT 1000",
			 a, 4, &rows);
	if (rc)
		return rc;
	int step;
	struct arena *ar = w->req->arena;
	while ((step = store_rows_next(rows)) == 1) {
		json_t *o = json_pack("{s:s, s:s, s:s}", "slot", store_rows_text(rows, 0), "start",
				      fmt_ms(ar, store_rows_int(rows, 1)), "end", fmt_ms(ar, store_rows_int(rows, 2)));
		const char *loc = store_rows_text(rows, 3);
		if (loc && *loc)
			json_object_set_new(o, "location", json_string(loc));
		json_array_append_new(w->items, o);
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static bool staff_or_patient(const struct auth_principal *p)
{
	return p && p->role != ROLE_DEVICE;
}

static int h_availability(struct req *r, struct reply *rep)
{
	struct list_work w = {.req = r, .id = req_param(r, "id"), .now = mctime_now_ms()};
	if (!staff_or_patient(r->who))
		return req_fail(r, MC_EFORBIDDEN, "this role may not read availability", NULL, NULL);
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such practitioner", NULL, NULL);
	int rc = range_query(r, &w.from, &w.to);
	if (rc)
		return rc;
	w.items = own(r->arena, json_array());
	rc = store_read(r->app->store, avail_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	return reply_api(rep, r, 200,
			 json_pack("{s:s, s:s, s:s, s:O}", "practitioner", w.id, "from", fmt_ms(r->arena, w.from), "to",
				   fmt_ms(r->arena, w.to), "slots", w.items),
			 NULL);
}

struct gen_work {
	struct req *req;
	const char *practitioner;
	struct sched_template tmpl[SCHED_TEMPLATES_MAX];
	size_t ntmpl;
	bool set_templates;          /* replace the template set */
	struct sched_range exc;      /* add this exception (when exc_kind) */
	const char *exc_kind;
	int weeks;
	struct sfail f;
	int created, withdrawn, kept_busy;   /* out */
	const char *schedule_id;             /* out */
};

static int load_templates(struct store_txn *t, struct gen_work *w)
{
	struct store_arg a[] = {SA_TEXT(w->practitioner)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT weekday, start_min, end_min, slot_min, location FROM sched_template WHERE "
			     "practitioner_id = $1 ORDER BY weekday, start_min LIMIT 64",
			     a, 1, &rows);
	if (rc)
		return rc;
	int step;
	w->ntmpl = 0;
	while ((step = store_rows_next(rows)) == 1 && w->ntmpl < SCHED_TEMPLATES_MAX) {
		struct sched_template *x = &w->tmpl[w->ntmpl++];
		x->weekday = (int)store_rows_int(rows, 0);
		x->start_min = (int)store_rows_int(rows, 1);
		x->end_min = (int)store_rows_int(rows, 2);
		x->slot_min = (int)store_rows_int(rows, 3);
		copy(x->location, sizeof(x->location), store_rows_text(rows, 4));
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int ensure_schedule(struct store_txn *t, struct gen_work *w, int64_t from, int64_t to)
{
	struct arena *a = w->req->arena;
	struct store_arg k[] = {SA_TEXT(w->practitioner)};
	char *sid = NULL;
	int rc = store_query_text(t, "SELECT schedule_id FROM sched_schedule WHERE practitioner_id = $1", k, 1, &sid);
	if (rc && rc != MC_ENOTFOUND)
		return rc;
	json_t *j = own(a, json_pack("{s:s, s:b, s:[{s:s}], s:{s:s, s:s}}", "resourceType", "Schedule", "active", 1,
				     "actor", "reference", arena_printf(a, "Practitioner/%s", w->practitioner),
				     "planningHorizon", "start", fmt_ms(a, from), "end", fmt_ms(a, to)));
	if (sid) {
		w->schedule_id = arena_strdup(a, sid);
		free(sid);
		rc = save_json(t, "Schedule", w->schedule_id, j);
	} else {
		struct fhir_meta m;
		rc = fhir_store_create(t, "Schedule", j, &m);
		if (!rc)
			w->schedule_id = arena_strdup(a, m.id);
	}
	if (rc)
		return rc;
	struct store_arg u[] = {SA_TEXT(w->practitioner), SA_TEXT(w->schedule_id), SA_INT(to)};
	return store_exec(t,
			  "INSERT INTO sched_schedule(practitioner_id, schedule_id, horizon_end_ms) VALUES($1, $2, $3) "
			  "ON CONFLICT(practitioner_id) DO UPDATE SET horizon_end_ms = $3",
			  u, 3);
}

struct existing {
	char id[65];
	int64_t start_ms, end_ms;
	bool free;
};

static int gen_find(const struct sched_gen *g, size_t n, int64_t start)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (g[mid].start_ms < start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (int)lo;
}

/* Bring the practitioner's future Slots in line with templates minus exceptions over the horizon:
 * free slots that are no longer wanted are withdrawn (FHIR delete), wanted ones that are missing are
 * created; booked slots are never touched, and nothing new is created overlapping one. */
static int regenerate(struct store_txn *t, struct gen_work *w)
{
	struct arena *a = w->req->arena;
	int64_t now = mctime_now_ms();
	if (w->weeks <= 0) {
		struct store_arg k[] = {SA_TEXT(w->practitioner)};
		int64_t end = 0;
		int rc0 = store_query_int(t, "SELECT horizon_end_ms FROM sched_schedule WHERE practitioner_id = $1", k, 1, &end);
		if (rc0 && rc0 != MC_ENOTFOUND)
			return rc0;
		int64_t wk = rc0 ? SCHED_HORIZON_WEEKS_DEFAULT : (end - now + 7 * SCHED_DAY_MS - 1) / (7 * SCHED_DAY_MS);
		w->weeks = (int)(wk < 1 ? 1 : wk > SCHED_HORIZON_MAX_WEEKS ? SCHED_HORIZON_MAX_WEEKS : wk);
	}
	int64_t to = (now / SCHED_DAY_MS + 1 + (int64_t)w->weeks * 7) * SCHED_DAY_MS;
	int rc = load_templates(t, w);
	if (rc)
		return rc;
	struct sched_range *exc = arena_alloc(a, sizeof(*exc) * SCHED_EXCEPTIONS_MAX);
	size_t ne = 0;
	struct store_arg ea[] = {SA_TEXT(w->practitioner), SA_INT(now), SA_INT(to)};
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT start_ms, end_ms FROM sched_exception WHERE practitioner_id = $1 AND end_ms > $2 AND "
			 "start_ms < $3 ORDER BY start_ms LIMIT 512",
			 ea, 3, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1 && ne < SCHED_EXCEPTIONS_MAX) {
		exc[ne].start_ms = store_rows_int(rows, 0);
		exc[ne++].end_ms = store_rows_int(rows, 1);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	struct sched_gen *g = mc_malloc(sizeof(*g) * SCHED_SLOTS_MAX);
	arena_defer(a, free, g);
	size_t ng;
	if (sched_generate(w->tmpl, w->ntmpl, exc, ne, now, to, g, SCHED_SLOTS_MAX, &ng))
		return sfail(&w->f, MC_EINVAL, "horizonWeeks", "too many slots: shorten the horizon or lengthen the slots");
	bool *used = arena_zalloc(a, ng ? ng : 1);
	rc = ensure_schedule(t, w, now, to);
	if (rc)
		return rc;

	/* existing future slots */
	rc = store_query(t,
			 "SELECT s.slot_id, s.start_ms, s.end_ms, CASE WHEN s.status = 'free' AND NOT EXISTS (SELECT 1 FROM "
			 "slot_booking b WHERE b.slot_id = s.slot_id) THEN 1 ELSE 0 END FROM sched_slot s WHERE s.practitioner_id = $1 AND s.end_ms > $2 AND "
			 "s.status <> 'deleted' ORDER BY s.start_ms",
			 ea, 2, &rows);
	if (rc)
		return rc;
	size_t nx = 0, cap = 256;
	struct existing *ex = mc_malloc(sizeof(*ex) * cap);
	while ((step = store_rows_next(rows)) == 1 && nx < 4 * SCHED_SLOTS_MAX) {
		if (nx == cap) {
			cap *= 2;
			ex = mc_realloc(ex, sizeof(*ex) * cap);
		}
		copy(ex[nx].id, 65, store_rows_text(rows, 0));
		ex[nx].start_ms = store_rows_int(rows, 1);
		ex[nx].end_ms = store_rows_int(rows, 2);
		ex[nx++].free = store_rows_int(rows, 3) != 0;
	}
	arena_defer(a, free, ex);
	store_rows_close(rows);
	if (step < 0)
		return -step;
	for (size_t i = 0; i < nx; i++) {
		int k = gen_find(g, ng, ex[i].start_ms);
		if (ex[i].free) {
			if ((size_t)k < ng && g[k].start_ms == ex[i].start_ms && g[k].end_ms == ex[i].end_ms && !used[k]) {
				used[k] = true;
				continue;
			}
			rc = fhir_store_delete(t, "Slot", ex[i].id, 0, NULL);
			struct store_arg d[] = {SA_TEXT(ex[i].id)};
			if (!rc || rc == MC_ENOTFOUND)
				rc = store_exec(t, "UPDATE sched_slot SET status = 'deleted' WHERE slot_id = $1", d, 1);
			if (rc)
				return rc;
			w->withdrawn++;
			continue;
		}
		/* a booked slot blocks every generated slot overlapping it */
		w->kept_busy++;
		for (int j = k > 0 ? k - 1 : 0; (size_t)j < ng && g[j].start_ms < ex[i].end_ms; j++)
			if (sched_overlaps(g[j].start_ms, g[j].end_ms, ex[i].start_ms, ex[i].end_ms))
				used[j] = true;
		/* a long generated slot may start well before the busy one */
		for (int j = k - 1; j >= 0 && ex[i].start_ms - g[j].start_ms <= SCHED_SLOT_MAX_MIN * SCHED_MIN_MS; j--)
			if (sched_overlaps(g[j].start_ms, g[j].end_ms, ex[i].start_ms, ex[i].end_ms))
				used[j] = true;
	}
	const char *sched_ref = arena_printf(a, "Schedule/%s", w->schedule_id);
	for (size_t i = 0; i < ng; i++) {
		if (used[i])
			continue;
		const char *loc = w->tmpl[g[i].tmpl].location;
		char st[32], en[32];
		mctime_format_ms(g[i].start_ms, st);
		mctime_format_ms(g[i].end_ms, en);
		json_t *s = json_pack("{s:s, s:{s:s}, s:s, s:s, s:s}", "resourceType", "Slot", "schedule", "reference",
				      sched_ref, "status", "free", "start", st, "end", en);
		if (loc[0])
			json_object_set_new(s, "comment", json_string(arena_printf(a, "Location/%s", loc)));
		struct fhir_meta m;
		rc = fhir_store_create(t, "Slot", s, &m);
		json_decref(s);
		if (rc)
			return rc;
		struct store_arg ins[] = {SA_TEXT(m.id), SA_TEXT(w->practitioner), SA_INT(g[i].start_ms),
					  SA_INT(g[i].end_ms), SA_TEXT(loc[0] ? loc : NULL)};
		rc = store_exec(t,
				"INSERT INTO sched_slot(slot_id, practitioner_id, start_ms, end_ms, status, location) "
				"VALUES($1, $2, $3, $4, 'free', $5)",
				ins, 5);
		if (rc)
			return rc;
		w->created++;
	}
	return MC_OK;
}

static int gen_unit(struct store_txn *t, void *arg)
{
	struct gen_work *w = arg;
	int rc = exists(t, w->req->arena, "Practitioner", w->practitioner);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, rc, NULL, "no such practitioner");
	if (!rc)
		rc = lock_key(t, "practitioner", w->practitioner);
	if (rc)
		return rc;
	struct store_arg p[] = {SA_TEXT(w->practitioner)};
	if (w->set_templates) {
		rc = store_exec(t, "DELETE FROM sched_template WHERE practitioner_id = $1", p, 1);
		for (size_t i = 0; i < w->ntmpl && !rc; i++) {
			char id[MCID_LEN + 1];
			mcid_new(id);
			const struct sched_template *x = &w->tmpl[i];
			struct store_arg a[] = {SA_TEXT(id), SA_TEXT(w->practitioner), SA_INT(x->weekday),
						SA_INT(x->start_min), SA_INT(x->end_min), SA_INT(x->slot_min),
						SA_TEXT(x->location[0] ? x->location : NULL)};
			rc = store_exec(t,
					"INSERT INTO sched_template(id, practitioner_id, weekday, start_min, end_min, slot_min, "
					"location) VALUES($1, $2, $3, $4, $5, $6, $7)",
					a, 7);
		}
		if (rc)
			return rc;
	}
	if (w->exc_kind) {
		char id[MCID_LEN + 1];
		mcid_new(id);
		struct store_arg a[] = {SA_TEXT(id), SA_TEXT(w->practitioner), SA_INT(w->exc.start_ms),
					SA_INT(w->exc.end_ms), SA_TEXT(w->exc_kind)};
		rc = store_exec(t,
				"INSERT INTO sched_exception(id, practitioner_id, start_ms, end_ms, kind) VALUES($1, $2, $3, $4, $5)",
				a, 5);
		if (rc)
			return rc;
	}
	return regenerate(t, w);
}

static int gen_reply(struct req *r, struct reply *rep, struct gen_work *w, int status)
{
	int rc = req_write(r, gen_unit, w);
	if (rc)
		return report(r, &w->f, rc);
	return reply_api(rep, r, status,
			 json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "practitioner", w->practitioner, "schedule",
				   w->schedule_id, "horizonWeeks", w->weeks, "slotsCreated", w->created, "slotsWithdrawn",
				   w->withdrawn, "bookedSlotsKept", w->kept_busy),
			 NULL);
}

static int weeks_arg(struct req *r, const json_t *body, int *weeks)
{
	json_t *hw = json_object_get(body, "horizonWeeks");
	*weeks = 0;   /* keep the practitioner's current horizon (regenerate decides) */
	if (!hw)
		return MC_OK;
	if (!json_is_integer(hw) || json_integer_value(hw) < 1 || json_integer_value(hw) > SCHED_HORIZON_MAX_WEEKS)
		return req_fail(r, MC_EINVAL, "horizonWeeks: must be an integer from 1 to 26", NULL,
				json_pack("{s:s}", "field", "horizonWeeks"));
	*weeks = (int)json_integer_value(hw);
	return MC_OK;
}

static int h_templates_put(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"templates", "horizonWeeks", NULL};
	static const char *const tkeys[] = {"weekday", "start", "end", "slotMinutes", "location", NULL};
	struct gen_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->practitioner = req_param(r, "id");
	w->set_templates = true;
	if (r->who->role == ROLE_PATIENT)
		return req_fail(r, MC_EFORBIDDEN, "patients cannot change availability", NULL, NULL);
	if (!w->practitioner || !mcid_valid_fhir_id(w->practitioner))
		return req_fail(r, MC_ENOTFOUND, "no such practitioner", NULL, NULL);
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = body_keys(r, body, keys);
	if (!rc)
		rc = weeks_arg(r, body, &w->weeks);
	if (rc)
		return rc;
	json_t *arr = json_object_get(body, "templates");
	if (!json_is_array(arr) || json_array_size(arr) > SCHED_TEMPLATES_MAX)
		return req_fail(r, MC_EINVAL, "templates: an array of at most 64 blocks is required", NULL,
				json_pack("{s:s}", "field", "templates"));
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) {
		const char *field = arena_printf(r->arena, "templates[%zu]", i);
		if (!json_is_object(x))
			return req_fail(r, MC_EINVAL, "each template must be an object", NULL, json_pack("{s:s}", "field", field));
		const char *k;
		json_t *v;
		json_object_foreach(x, k, v) {
			bool ok = false;
			for (size_t j = 0; tkeys[j] && !ok; j++)
				ok = !strcmp(k, tkeys[j]);
			if (!ok)
				return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s.%.40s: unknown field", field, k), NULL,
						json_pack("{s:s}", "field", field));
		}
		struct sched_template *tp = &w->tmpl[i];
		json_t *wd = json_object_get(x, "weekday"), *sm = json_object_get(x, "slotMinutes");
		tp->weekday = json_is_integer(wd) ? (int)json_integer_value(wd) : 0;
		tp->slot_min = json_is_integer(sm) && json_integer_value(sm) <= 10000 ? (int)json_integer_value(sm) : 0;
		bool bad = false;
		const char *loc = body_str(x, "location", 80, &bad);
		const char *lid = loc ? ref_id(r->arena, loc, "Location") : NULL;
		if (bad || (loc && !lid))
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s.location: malformed Location id", field), NULL,
					json_pack("{s:s}", "field", field));
		copy(tp->location, sizeof(tp->location), lid);
		if (sched_parse_hhmm(mcjson_str(x, "start"), &tp->start_min) ||
		    sched_parse_hhmm(mcjson_str(x, "end"), &tp->end_min))
			return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: start and end must be HH:MM (UTC)", field),
					NULL, json_pack("{s:s}", "field", field));
	}
	w->ntmpl = json_array_size(arr);
	size_t badi;
	const char *why;
	if (sched_templates_check(w->tmpl, w->ntmpl, &badi, &why))
		return req_fail(r, MC_EINVAL, arena_printf(r->arena, "templates[%zu]: %s", badi, why), NULL,
				json_pack("{s:s}", "field", arena_printf(r->arena, "templates[%zu]", badi)));
	return gen_reply(r, rep, w, 200);
}

static int h_exception_post(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"start", "end", "kind", "horizonWeeks", NULL};
	struct gen_work *w = arena_zalloc(r->arena, sizeof(*w));
	w->req = r;
	w->practitioner = req_param(r, "id");
	if (r->who->role == ROLE_PATIENT)
		return req_fail(r, MC_EFORBIDDEN, "patients cannot change availability", NULL, NULL);
	if (!w->practitioner || !mcid_valid_fhir_id(w->practitioner))
		return req_fail(r, MC_ENOTFOUND, "no such practitioner", NULL, NULL);
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = body_keys(r, body, keys);
	if (!rc)
		rc = weeks_arg(r, body, &w->weeks);
	if (rc)
		return rc;
	const char *kind = mcjson_str(body, "kind");
	if (!kind)
		kind = "leave";
	if (strcmp(kind, "leave") && strcmp(kind, "holiday") && strcmp(kind, "other"))
		return req_fail(r, MC_EINVAL, "kind: must be leave, holiday or other", NULL, json_pack("{s:s}", "field", "kind"));
	/* a date means its whole UTC day; a date-time an instant */
	int64_t lo, hi, lo2, hi2;
	enum mctime_prec p1, p2;
	const char *s = mcjson_str(body, "start"), *e = mcjson_str(body, "end");
	if (!s || strlen(s) > 40 || mctime_parse_fhir(s, &lo, &hi, &p1) || p1 < MCT_DAY)
		return req_fail(r, MC_EINVAL, "start: must be a date or date-time", NULL, json_pack("{s:s}", "field", "start"));
	if (!e || strlen(e) > 40 || mctime_parse_fhir(e, &lo2, &hi2, &p2) || p2 < MCT_DAY)
		return req_fail(r, MC_EINVAL, "end: must be a date or date-time", NULL, json_pack("{s:s}", "field", "end"));
	w->exc.start_ms = lo;
	w->exc.end_ms = p2 == MCT_DAY ? hi2 : lo2;
	if (w->exc.end_ms <= w->exc.start_ms)
		return req_fail(r, MC_EINVAL, "end must be after start", NULL, json_pack("{s:s}", "field", "end"));
	w->exc_kind = kind;
	return gen_reply(r, rep, w, 201);
}

/* ---- waitlist ---- */

struct wl_work {
	struct req *req;
	const char *id, *patient, *practitioner;
	int64_t earliest, latest;
	struct sfail f;
	struct book_work book;
};

static int wl_add_unit(struct store_txn *t, void *arg)
{
	struct wl_work *w = arg;
	struct arena *a = w->req->arena;
	int rc = exists(t, a, "Patient", w->patient);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, MC_EUNPROC, "patient", "no such patient");
	if (!rc)
		rc = auth_patient_access(t, w->req->who, w->patient, AUTH_DEMOGRAPHICS_WRITE, NULL);
	if (rc)
		return rc;
	rc = exists(t, a, "Practitioner", w->practitioner);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, MC_EUNPROC, "practitioner", "no such practitioner");
	if (rc)
		return rc;
	char id[MCID_LEN + 1];
	mcid_new(id);
	w->id = arena_strdup(a, id);
	w->req->audit.resource_id = w->id;
	struct store_arg v[] = {SA_TEXT(id), SA_TEXT(w->patient), SA_TEXT(w->practitioner), SA_INT(w->earliest),
				SA_INT(w->latest), SA_INT(mctime_now_ms())};
	return store_exec(t,
			  "INSERT INTO waitlist(id, patient_id, practitioner_id, earliest_ms, latest_ms, status, created_ms) "
			  "VALUES($1, $2, $3, $4, $5, 'waiting', $6)",
			  v, 6);
}

static int h_waitlist_add(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"patient", "practitioner", "earliest", "latest", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = body_keys(r, body, keys);
	if (rc)
		return rc;
	r->audit.action = "create";
	r->audit.resource_type = "Appointment";
	struct wl_work w = {.req = r};
	bool bad = false;
	w.patient = ref_id(r->arena, body_str(body, "patient", 80, &bad), "Patient");
	w.practitioner = ref_id(r->arena, body_str(body, "practitioner", 80, &bad), "Practitioner");
	if (bad || !w.patient || !w.practitioner)
		return req_fail(r, MC_EINVAL, "patient and practitioner ids are required", NULL,
				json_pack("{s:s}", "field", w.patient ? "practitioner" : "patient"));
	r->audit.patient_id = w.patient;
	if (sched_parse_instant(mcjson_str(body, "earliest"), &w.earliest))
		return req_fail(r, MC_EINVAL, "earliest: must be a date-time", NULL, json_pack("{s:s}", "field", "earliest"));
	if (sched_parse_instant(mcjson_str(body, "latest"), &w.latest))
		return req_fail(r, MC_EINVAL, "latest: must be a date-time", NULL, json_pack("{s:s}", "field", "latest"));
	if (w.latest <= w.earliest)
		return req_fail(r, MC_EINVAL, "latest must be after earliest", NULL, json_pack("{s:s}", "field", "latest"));
	if (w.latest <= mctime_now_ms())
		return req_fail(r, MC_EINVAL, "latest is in the past", NULL, json_pack("{s:s}", "field", "latest"));
	rc = req_write(r, wl_add_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	return reply_api(rep, r, 201,
			 json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", w.id, "status", "waiting", "patient", w.patient,
				   "practitioner", w.practitioner, "earliest", fmt_ms(r->arena, w.earliest), "latest",
				   fmt_ms(r->arena, w.latest)),
			 NULL);
}

static int wl_accept_unit(struct store_txn *t, void *arg)
{
	struct wl_work *w = arg;
	struct store_arg k[] = {SA_TEXT(w->id)};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT patient_id, status, offered_slot, offer_expires_ms FROM waitlist WHERE id = $1",
			     k, 1, &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	char pat[65] = "", status[16] = "", slot[65] = "";
	int64_t exp = 0;
	if (step == 1) {
		copy(pat, sizeof(pat), store_rows_text(rows, 0));
		copy(status, sizeof(status), store_rows_text(rows, 1));
		copy(slot, sizeof(slot), store_rows_text(rows, 2));
		exp = store_rows_int(rows, 3);
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	if (step == 0)
		return sfail(&w->f, MC_ENOTFOUND, NULL, "no such waitlist entry");
	struct arena *a = w->req->arena;
	w->req->audit.patient_id = arena_strdup(a, pat);
	rc = auth_patient_access(t, w->req->who, pat, AUTH_DEMOGRAPHICS_WRITE, NULL);
	if (rc)
		return rc;
	if (strcmp(status, "offered") || !slot[0])
		return sfail(&w->f, MC_ECONFLICT, NULL, "this entry has no open offer");
	if (exp <= mctime_now_ms())
		return sfail(&w->f, MC_ECONFLICT, NULL, "the offer has expired");
	w->book = (struct book_work){.req = w->req, .patient = arena_strdup(a, pat), .slot_id = arena_strdup(a, slot),
				     .waitlist_id = w->id, .slot_field = "slot"};
	rc = book_core(t, &w->book);
	if (rc) {
		w->f = w->book.f;
		return rc;
	}
	struct store_arg u[] = {SA_TEXT(w->id), SA_TEXT(w->book.appt.id)};
	return store_exec(t, "UPDATE waitlist SET status = 'booked', appointment_id = $2 WHERE id = $1", u, 2);
}

static int h_waitlist_accept(struct req *r, struct reply *rep)
{
	struct wl_work w = {.req = r, .id = req_param(r, "id")};
	r->audit.action = "create";
	r->audit.resource_type = "Appointment";
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such waitlist entry", NULL, NULL);
	int rc = req_write(r, wl_accept_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/Appointment/%s", w.book.appt.id));
	return reply_api(rep, r, 201, appt_view(r->arena, &w.book.appt), NULL);
}

/* ---- same-day queue ---- */

static int queue_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	struct req *r = w->req;
	int rc = exists(t, r->arena, "Practitioner", w->id);
	if (rc == MC_ENOTFOUND)
		return sfail(&w->f, rc, NULL, "no such practitioner");
	if (rc)
		return rc;
	enum auth_scope sc = auth_patient_scope(r->who, AUTH_DEMOGRAPHICS_READ);
	struct store_arg a[] = {SA_TEXT(w->id), SA_INT(w->from), SA_INT(w->to), SA_INT(r->who->user_id), SA_INT(w->now)};
	char sql[1024];
	int n = snprintf(sql, sizeof(sql),
			 "SELECT a.appointment_id, a.patient_id, a.start_ms, a.end_ms, a.checked_in_ms FROM sched_appt a "
			 "WHERE a.practitioner_id = $1 AND a.status = 'arrived' AND a.start_ms >= $2 AND a.start_ms < $3");
	if (sc == AUTH_SCOPE_CARE)
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, " AND " AUTH_CARE_SQL, "a.patient_id", 4, 5, "a.patient_id", 4, 5);
	snprintf(sql + n, sizeof(sql) - (size_t)n, " ORDER BY a.checked_in_ms, a.appointment_id LIMIT 1000");
	struct store_rows *rows;
	rc = store_query(t, sql, a, 5, &rows);
	if (rc)
		return rc;
	int step, pos = 0;
	int64_t wait = 0;
	while ((step = store_rows_next(rows)) == 1) {
		int64_t s = store_rows_int(rows, 2), e = store_rows_int(rows, 3);
		json_array_append_new(w->items,
				      json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "position", ++pos, "appointment",
						store_rows_text(rows, 0), "patient", store_rows_text(rows, 1), "start",
						fmt_ms(r->arena, s), "checkedIn", fmt_ms(r->arena, store_rows_int(rows, 4)),
						"estimatedWaitMinutes", (json_int_t)(wait / SCHED_MIN_MS)));
		wait += e - s;   /* everyone ahead takes their slot's length */
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int h_queue(struct req *r, struct reply *rep)
{
	struct list_work w = {.req = r, .id = req_param(r, "practitionerId"), .now = mctime_now_ms()};
	r->audit.action = "search";
	r->audit.resource_type = "Appointment";
	enum auth_scope sc = auth_patient_scope(r->who, AUTH_DEMOGRAPHICS_READ);
	if (sc != AUTH_SCOPE_ALL && sc != AUTH_SCOPE_CARE)
		return req_fail(r, MC_EFORBIDDEN, "this role may not see the queue", NULL, NULL);
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such practitioner", NULL, NULL);
	const char *d = req_query(r, "date");
	int64_t lo, hi;
	enum mctime_prec p;
	if (d) {
		if (mctime_parse_fhir(d, &lo, &hi, &p) || p != MCT_DAY)
			return req_fail(r, MC_EINVAL, "date: must be YYYY-MM-DD", NULL, json_pack("{s:s}", "field", "date"));
	} else {
		lo = w.now / SCHED_DAY_MS * SCHED_DAY_MS;
		hi = lo + SCHED_DAY_MS;
	}
	w.from = lo;
	w.to = hi;
	w.items = own(r->arena, json_array());
	int rc = store_read(r->app->store, queue_unit, &w);
	if (rc)
		return report(r, &w.f, rc);
	return reply_api(rep, r, 200, json_pack("{s:s, s:s, s:O}", "practitioner", w.id, "date",
						 arena_strndup(r->arena, fmt_ms(r->arena, lo), 10), "queue", w.items),
			 NULL);
}

/* ---- reminders ---- */

int sched_reminder_scan(struct store_txn *t, int64_t now_ms, int *n)
{
	if (n)
		*n = 0;
	struct store_arg a[] = {SA_INT(now_ms), SA_INT(now_ms + SCHED_REMINDER_AHEAD_MS)};
	struct store_rows *rows;
	int rc = store_query(t,
			     "SELECT appointment_id, patient_id, practitioner_id, start_ms FROM sched_appt WHERE status = "
			     "'booked' AND reminder_sent = 0 AND start_ms > $1 AND start_ms <= $2 ORDER BY start_ms LIMIT 500",
			     a, 2, &rows);
	if (rc)
		return rc;
	struct rem {
		char id[65], patient[65], practitioner[65];
		int64_t start;
	} *v = mc_malloc(sizeof(*v) * 500);
	int k = 0, step;
	while ((step = store_rows_next(rows)) == 1 && k < 500) {
		copy(v[k].id, 65, store_rows_text(rows, 0));
		copy(v[k].patient, 65, store_rows_text(rows, 1));
		copy(v[k].practitioner, 65, store_rows_text(rows, 2));
		v[k++].start = store_rows_int(rows, 3);
	}
	store_rows_close(rows);
	rc = step < 0 ? -step : MC_OK;
	for (int i = 0; i < k && !rc; i++) {
		char st[32];
		mctime_format_ms(v[i].start, st);
		rc = events_emit(t, "appointment.reminder.due", v[i].patient, "Appointment", v[i].id,
				 json_pack("{s:s, s:s, s:s}", "appointmentId", v[i].id, "practitionerId", v[i].practitioner,
					   "start", st));
		struct store_arg u[] = {SA_TEXT(v[i].id)};
		if (!rc)
			rc = store_exec(t, "UPDATE sched_appt SET reminder_sent = 1 WHERE appointment_id = $1", u, 1);
	}
	free(v);
	if (!rc && n)
		*n = k;
	return rc;
}

struct scan_work {
	int n;
};

static int scan_unit(struct store_txn *t, void *arg)
{
	struct scan_work *w = arg;
	return sched_reminder_scan(t, mctime_now_ms(), &w->n);
}

static int h_reminder_scan(struct req *r, struct reply *rep)
{
	if (r->who->role == ROLE_PATIENT)
		return req_fail(r, MC_EFORBIDDEN, "patients cannot run the reminder scan", NULL, NULL);
	struct scan_work w = {0};
	int rc = req_write(r, scan_unit, &w);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:i}", "remindersDue", w.n), NULL);
}

static _Atomic int64_t last_scan_ms;

static int reminder_consumer(const struct events_event *ev, void *arg)
{
	(void)arg;
	int64_t now = mctime_now_ms(), last = atomic_load(&last_scan_ms);
	if (now - last < 60000 || !atomic_compare_exchange_strong(&last_scan_ms, &last, now))
		return MC_OK;
	return sched_reminder_scan(ev->txn, now, NULL);
}

const struct events_consumer scheduling_reminder_consumer = {
	.name = "scheduling_reminders",
	.fn = reminder_consumer,
	.flags = EVENTS_TXN,
};

/* ---- the table ---- */

static const struct route routes[] = {
	{"GET", "/api/v1/doctors/{id}/availability", h_availability, 0, "self", 0,
	 "Free slots of a practitioner between from and to (default: the next 7 days)"},
	{"PUT", "/api/v1/doctors/{id}/availability/templates", h_templates_put, ROUTE_WRITE, "write:demographics", 65536,
	 "Replace a practitioner's weekly availability templates and regenerate Schedule/Slots"},
	{"POST", "/api/v1/doctors/{id}/availability/exceptions", h_exception_post, ROUTE_WRITE, "write:demographics", 4096,
	 "Add leave/holiday for a practitioner (free slots in it are withdrawn)"},
	{"POST", "/api/v1/appointments/book", h_book, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 8192,
	 "Book a slot for a patient: FHIR Appointment (booked), Slot busy; no double booking"},
	{"PUT", "/api/v1/appointments/{id}/reschedule", h_reschedule, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Move an appointment to another free slot"},
	{"POST", "/api/v1/appointments/{id}/cancel", h_cancel, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Cancel an appointment; the slot is freed and offered to the waitlist"},
	{"POST", "/api/v1/appointments/{id}/check-in", h_checkin, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Record the patient's arrival (joins the practitioner's queue)"},
	{"POST", "/api/v1/appointments/{id}/no-show", h_noshow, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Mark a booked appointment as a no-show"},
	{"POST", "/api/v1/appointments/{id}/complete", h_complete, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Complete a checked-in appointment"},
	{"GET", "/api/v1/appointments/patient/{patientId}", h_patient_appts, ROUTE_PHI, "read:demographics", 0,
	 "A patient's appointments, newest first"},
	{"POST", "/api/v1/appointments/reminders/scan", h_reminder_scan, ROUTE_WRITE, "write:demographics", 0,
	 "Emit appointment.reminder.due for appointments in the next 24 h (also runs periodically)"},
	{"POST", "/api/v1/waitlist", h_waitlist_add, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 4096,
	 "Put a patient on a practitioner's waitlist for a time window"},
	{"POST", "/api/v1/waitlist/{id}/accept", h_waitlist_accept, ROUTE_WRITE | ROUTE_PHI, "write:demographics", 0,
	 "Accept a waitlist offer: books the offered slot"},
	{"GET", "/api/v1/queue/{practitionerId}", h_queue, ROUTE_PHI, "read:demographics", 0,
	 "Checked-in patients of a practitioner for a day (?date=), in arrival order, with estimated waits"},
};

const struct route_table scheduling_routes = {routes, sizeof(routes) / sizeof(routes[0])};
