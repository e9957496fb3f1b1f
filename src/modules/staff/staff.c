/* modules/staff/staff.c — staff records (FHIR Practitioner + PractitionerRole linked to a user)
 * and shift blocks. See staff.h. */
#include "modules/staff/staff.h"

#include <stdio.h>
#include <stdlib.h>
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
#include "modules/scheduling/slots.h"
#include "store/store.h"

#define CODES_MAX 16

static void json_free_cb(void *p) { json_decref(p); }

static json_t *own(struct arena *a, json_t *j)
{
	if (j)
		arena_defer(a, json_free_cb, j);
	return j;
}

static int field_fail(struct req *r, int code, const char *field, const char *msg)
{
	return req_fail(r, code, msg, NULL, field ? json_pack("{s:s}", "field", field) : NULL);
}

static const char *fmt_ms(struct arena *a, int64_t ms)
{
	char *s = arena_alloc(a, 32);
	mctime_format_ms(ms, s);
	return s;
}

/* Printable code: [A-Za-z0-9._-]{1,64}. */
static bool code_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_'))
			return false;
	}
	return true;
}

/* An array of at most CODES_MAX strings accepted by ok(); "Location/x" is stripped to "x". */
static int str_array(struct req *r, const json_t *body, const char *key, bool ids, json_t **out)
{
	json_t *v = json_object_get(body, key);
	*out = own(r->arena, json_array());
	if (!v)
		return MC_OK;
	if (!json_is_array(v) || json_array_size(v) > CODES_MAX)
		return field_fail(r, MC_EINVAL, key, arena_printf(r->arena, "%s: an array of at most 16 codes", key));
	size_t i;
	json_t *x;
	json_array_foreach(v, i, x) {
		const char *s = json_string_value(x);
		if (s && ids && !strncmp(s, "Location/", 9))
			s += 9;
		if (!s || (ids ? !mcid_valid_fhir_id(s) : !code_ok(s)))
			return field_fail(r, MC_EINVAL, key, arena_printf(r->arena, "%s[%zu]: malformed", key, i));
		json_array_append_new(*out, json_string(s));
	}
	return MC_OK;
}

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
			return field_fail(r, MC_EINVAL, k, arena_printf(r->arena, "%.40s: unknown field", k));
	}
	return MC_OK;
}

/* ---- POST /api/v1/staff ---- */

struct create_work {
	struct req *req;
	const char *first, *last, *gender, *username, *role_code;
	int64_t user_id;
	json_t *specialties, *locations;
	int fail_code;
	const char *fail_field, *fail_msg;
	char pid[65], rid[65];
	char display[160];
};

static int cfail(struct create_work *w, int code, const char *field, const char *msg)
{
	w->fail_code = code;
	w->fail_field = field;
	w->fail_msg = msg;
	return code;
}

static int create_unit(struct store_txn *t, void *arg)
{
	struct create_work *w = arg;
	struct arena *a = w->req->arena;
	struct store_arg ua[] = {SA_TEXT(w->username ? w->username : ""), SA_INT(w->user_id)};
	struct store_rows *rows;
	int rc = store_query(t, "SELECT id, role, active, practitioner_id FROM users WHERE username = $1 OR id = $2", ua, 2,
			     &rows);
	if (rc)
		return rc;
	int step = store_rows_next(rows);
	enum auth_role role = ROLE__COUNT;
	bool active = false, linked = false;
	if (step == 1) {
		w->user_id = store_rows_int(rows, 0);
		auth_role_parse(store_rows_text(rows, 1), &role);
		active = store_rows_int(rows, 2) != 0;
		linked = !store_rows_null(rows, 3) && store_rows_text(rows, 3)[0];
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	if (step == 0 || !active)
		return cfail(w, MC_EUNPROC, "user", "no such active user");
	if (role == ROLE_PATIENT || role == ROLE_DEVICE || role == ROLE_INTEGRATION)
		return cfail(w, MC_EUNPROC, "user", "only staff accounts can be linked to a staff record");
	if (linked)
		return cfail(w, MC_ECONFLICT, "user", "the user is already linked to a practitioner");
	size_t i;
	json_t *x;
	json_array_foreach(w->locations, i, x) {
		struct fhir_stored st;
		rc = fhir_store_read(t, a, "Location", json_string_value(x), 0, &st);
		if (rc == MC_ENOTFOUND || rc == MC_EGONE)
			return cfail(w, MC_EUNPROC, "locations", "no such Location");
		if (rc)
			return rc;
	}
	json_t *pr = own(a, json_pack("{s:s, s:b, s:[{s:s, s:s, s:[s]}]}", "resourceType", "Practitioner", "active", 1, "name",
				      "use", "official", "family", w->last, "given", w->first));
	if (w->gender)
		json_object_set_new(pr, "gender", json_string(w->gender));
	struct fhir_issues is;
	if (fhir_validate(pr, "Practitioner", &is))
		return cfail(w, MC_EINVAL, is.n ? "gender" : NULL, "invalid practitioner data");
	struct fhir_meta m;
	rc = fhir_store_create(t, "Practitioner", pr, &m);
	if (rc)
		return rc;
	snprintf(w->pid, sizeof(w->pid), "%s", m.id);
	json_t *role_res = own(a, json_pack("{s:s, s:b, s:{s:s}}", "resourceType", "PractitionerRole", "active", 1,
					    "practitioner", "reference", arena_printf(a, "Practitioner/%s", m.id)));
	if (w->role_code)
		json_object_set_new(role_res, "code", json_pack("[{s:s}]", "text", w->role_code));
	json_t *sp = json_array(), *lo = json_array();
	json_array_foreach(w->specialties, i, x)
		json_array_append_new(sp, json_pack("{s:[{s:s, s:O}]}", "coding", "system", STAFF_SPECIALTY_SYSTEM, "code", x));
	json_array_foreach(w->locations, i, x)
		json_array_append_new(lo, json_pack("{s:s}", "reference", arena_printf(a, "Location/%s", json_string_value(x))));
	if (json_array_size(sp))
		json_object_set_new(role_res, "specialty", sp);
	else
		json_decref(sp);
	if (json_array_size(lo))
		json_object_set_new(role_res, "location", lo);
	else
		json_decref(lo);
	if (fhir_validate(role_res, "PractitionerRole", &is))
		return cfail(w, MC_EINVAL, NULL, "invalid practitioner role data");
	rc = fhir_store_create(t, "PractitionerRole", role_res, &m);
	if (rc)
		return rc;
	snprintf(w->rid, sizeof(w->rid), "%s", m.id);
	char *spj = mcjson_dumps(w->specialties), *loj = mcjson_dumps(w->locations);
	snprintf(w->display, sizeof(w->display), "%s %s", w->first, w->last);
	struct store_arg ins[] = {SA_TEXT(w->pid), SA_TEXT(w->rid), SA_INT(w->user_id), SA_TEXT(w->display),
				  SA_TEXT(spj), SA_TEXT(loj), SA_INT(mctime_now_ms())};
	rc = store_exec(t,
			"INSERT INTO staff(practitioner_id, role_id, user_id, display, specialties, locations, created_ms) "
			"VALUES($1, $2, $3, $4, $5, $6, $7)",
			ins, 7);
	free(spj);
	free(loj);
	if (rc == MC_ECONFLICT)
		return cfail(w, MC_ECONFLICT, "user", "the user is already linked to a practitioner");
	if (rc)
		return rc;
	struct store_arg up[] = {SA_TEXT(w->pid), SA_INT(w->user_id)};
	return store_exec(t, "UPDATE users SET practitioner_id = $1 WHERE id = $2", up, 2);
}

static json_t *staff_view(const char *pid, const char *rid, int64_t uid, const char *display, json_t *sp, json_t *lo)
{
	return json_pack("{s:s, s:s, s:I, s:s, s:O, s:O}", "id", pid, "roleId", rid, "userId", (json_int_t)uid, "name",
			 display, "specialties", sp, "locations", lo);
}

static int h_create(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"firstName", "lastName", "gender", "username", "userId", "role",
					   "specialties", "locations", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = body_keys(r, body, keys);
	if (rc)
		return rc;
	struct create_work w = {.req = r, .user_id = -1};
	w.first = mcjson_str(body, "firstName");
	w.last = mcjson_str(body, "lastName");
	if (!w.first || !w.first[0] || strlen(w.first) > 64)
		return field_fail(r, MC_EINVAL, "firstName", "firstName is required (at most 64 characters)");
	if (!w.last || !w.last[0] || strlen(w.last) > 64)
		return field_fail(r, MC_EINVAL, "lastName", "lastName is required (at most 64 characters)");
	w.gender = mcjson_str(body, "gender");
	if (json_object_get(body, "gender") && (!w.gender || (strcmp(w.gender, "male") && strcmp(w.gender, "female") &&
							       strcmp(w.gender, "other") && strcmp(w.gender, "unknown"))))
		return field_fail(r, MC_EINVAL, "gender", "gender: male, female, other or unknown");
	w.role_code = mcjson_str(body, "role");
	if (json_object_get(body, "role") && (!w.role_code || !code_ok(w.role_code)))
		return field_fail(r, MC_EINVAL, "role", "role: a code of at most 64 characters");
	w.username = mcjson_str(body, "username");
	json_t *uid = json_object_get(body, "userId");
	if (uid) {
		if (!json_is_integer(uid) || json_integer_value(uid) < 1)
			return field_fail(r, MC_EINVAL, "userId", "userId: a positive integer");
		w.user_id = json_integer_value(uid);
	}
	if ((!w.username || !auth_username_valid(w.username)) && w.user_id < 0)
		return field_fail(r, MC_EINVAL, "username", "give the username or userId of the staff member's account");
	if (w.username && w.user_id > 0)
		return field_fail(r, MC_EINVAL, "userId", "give username or userId, not both");
	if ((rc = str_array(r, body, "specialties", false, &w.specialties)) ||
	    (rc = str_array(r, body, "locations", true, &w.locations)))
		return rc;
	rc = req_write(r, create_unit, &w);
	if (w.fail_msg)
		return field_fail(r, w.fail_code, w.fail_field, w.fail_msg);
	if (rc)
		return rc;
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/Practitioner/%s", w.pid));
	return reply_api(rep, r, 201, staff_view(w.pid, w.rid, w.user_id, w.display, w.specialties, w.locations), NULL);
}

/* ---- GET /api/v1/staff, /api/v1/staff/{id} ---- */

struct list_work {
	struct req *req;
	const char *id, *specialty;
	json_t *items;
	int64_t from, to;
	bool found;
};

static int list_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	struct store_arg a[] = {SA_TEXT(w->id)};
	struct store_rows *rows;
	int rc = store_query(t,
			     w->id ? "SELECT practitioner_id, role_id, user_id, display, specialties, locations FROM staff WHERE "
				     "practitioner_id = $1"
				   : "SELECT practitioner_id, role_id, user_id, display, specialties, locations FROM staff ORDER BY "
				     "display, practitioner_id LIMIT 1000",
			     a, w->id ? 1 : 0, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1 && json_array_size(w->items) < STAFF_LIST_MAX) {
		const char *spt = store_rows_text(rows, 4), *lot = store_rows_text(rows, 5);
		json_t *sp = NULL, *lo = NULL;
		if (!spt || mcjson_parse(spt, strlen(spt), &sp, NULL))
			sp = json_array();
		if (!lot || mcjson_parse(lot, strlen(lot), &lo, NULL))
			lo = json_array();
		bool keep = !w->specialty;
		size_t i;
		json_t *x;
		json_array_foreach(sp, i, x)
			if (w->specialty && json_is_string(x) && !strcmp(json_string_value(x), w->specialty))
				keep = true;
		if (keep)
			json_array_append_new(w->items, staff_view(store_rows_text(rows, 0), store_rows_text(rows, 1),
								   store_rows_int(rows, 2), store_rows_text(rows, 3), sp, lo));
		json_decref(sp);
		json_decref(lo);
	}
	store_rows_close(rows);
	w->found = json_array_size(w->items) > 0;
	return step < 0 ? -step : MC_OK;
}

static int h_list(struct req *r, struct reply *rep)
{
	if (r->who->role == ROLE_DEVICE)
		return req_fail(r, MC_EFORBIDDEN, "this role may not list staff", NULL, NULL);
	struct list_work w = {.req = r, .specialty = req_query(r, "specialty")};
	w.items = own(r->arena, json_array());
	int rc = store_read(r->app->store, list_unit, &w);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.items), NULL);
}

static int h_get(struct req *r, struct reply *rep)
{
	if (r->who->role == ROLE_DEVICE)
		return req_fail(r, MC_EFORBIDDEN, "this role may not read staff records", NULL, NULL);
	struct list_work w = {.req = r, .id = req_param(r, "id")};
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such staff member", NULL, NULL);
	w.items = own(r->arena, json_array());
	int rc = store_read(r->app->store, list_unit, &w);
	if (rc)
		return rc;
	if (!w.found)
		return req_fail(r, MC_ENOTFOUND, "no such staff member", NULL, NULL);
	return reply_api(rep, r, 200, json_incref(json_array_get(w.items, 0)), NULL);
}

/* ---- shifts ---- */

struct shift_work {
	struct req *req;
	const char *practitioner, *location, *role;
	int64_t start, end;
	char id[MCID_LEN + 1];
	int fail_code;
	const char *fail_field, *fail_msg;
};

static int shift_unit(struct store_txn *t, void *arg)
{
	struct shift_work *w = arg;
	struct store_arg p[] = {SA_TEXT(w->practitioner), SA_INT(w->start), SA_INT(w->end)};
	int64_t one;
	int rc = store_query_int(t, "SELECT 1 FROM staff WHERE practitioner_id = $1", p, 1, &one);
	if (rc == MC_ENOTFOUND) {
		w->fail_code = MC_EUNPROC, w->fail_field = "practitioner", w->fail_msg = "no such staff member";
		return MC_EUNPROC;
	}
	if (rc)
		return rc;
	char key[96];
	snprintf(key, sizeof(key), "practitioner:%s", w->practitioner);
	struct store_arg k[] = {SA_TEXT(key)};
	rc = store_exec(t, "INSERT INTO sched_lock(key, n) VALUES($1, 1) ON CONFLICT(key) DO UPDATE SET n = sched_lock.n + 1",
			k, 1);
	if (rc)
		return rc;
	rc = store_query_int(t,
			     "SELECT 1 FROM staff_shift WHERE practitioner_id = $1 AND start_ms < $3 AND end_ms > $2 LIMIT 1", p,
			     3, &one);
	if (rc == MC_OK) {
		w->fail_code = MC_ECONFLICT, w->fail_field = "start", w->fail_msg = "overlaps another shift of this practitioner";
		return MC_ECONFLICT;
	}
	if (rc != MC_ENOTFOUND)
		return rc;
	mcid_new(w->id);
	struct store_arg ins[] = {SA_TEXT(w->id), SA_TEXT(w->practitioner), SA_INT(w->start), SA_INT(w->end),
				  SA_TEXT(w->location), SA_TEXT(w->role), SA_INT(mctime_now_ms())};
	return store_exec(t,
			  "INSERT INTO staff_shift(id, practitioner_id, start_ms, end_ms, location, role, created_ms) "
			  "VALUES($1, $2, $3, $4, $5, $6, $7)",
			  ins, 7);
}

static int h_shift_add(struct req *r, struct reply *rep)
{
	static const char *const keys[] = {"practitioner", "start", "end", "location", "role", NULL};
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = body_keys(r, body, keys);
	if (rc)
		return rc;
	struct shift_work w = {.req = r};
	w.practitioner = mcjson_str(body, "practitioner");
	if (w.practitioner && !strncmp(w.practitioner, "Practitioner/", 13))
		w.practitioner += 13;
	if (!w.practitioner || !mcid_valid_fhir_id(w.practitioner))
		return field_fail(r, MC_EINVAL, "practitioner", "practitioner: a Practitioner id is required");
	if (sched_parse_instant(mcjson_str(body, "start"), &w.start))
		return field_fail(r, MC_EINVAL, "start", "start: must be a date-time");
	if (sched_parse_instant(mcjson_str(body, "end"), &w.end))
		return field_fail(r, MC_EINVAL, "end", "end: must be a date-time");
	if (w.end <= w.start)
		return field_fail(r, MC_EINVAL, "end", "end must be after start");
	if (w.end - w.start > STAFF_SHIFT_MAX_MS)
		return field_fail(r, MC_EINVAL, "end", "a shift lasts at most 24 hours");
	w.location = mcjson_str(body, "location");
	if (w.location && !strncmp(w.location, "Location/", 9))
		w.location += 9;
	if (json_object_get(body, "location") && (!w.location || !mcid_valid_fhir_id(w.location)))
		return field_fail(r, MC_EINVAL, "location", "location: a Location id");
	w.role = mcjson_str(body, "role");
	if (json_object_get(body, "role") && (!w.role || !code_ok(w.role)))
		return field_fail(r, MC_EINVAL, "role", "role: a code of at most 64 characters");
	rc = req_write(r, shift_unit, &w);
	if (w.fail_msg)
		return field_fail(r, w.fail_code, w.fail_field, w.fail_msg);
	if (rc)
		return rc;
	return reply_api(rep, r, 201,
			 json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?}", "id", w.id, "practitioner", w.practitioner, "start",
				   fmt_ms(r->arena, w.start), "end", fmt_ms(r->arena, w.end), "location", w.location, "role",
				   w.role),
			 NULL);
}

static int shifts_unit(struct store_txn *t, void *arg)
{
	struct list_work *w = arg;
	struct store_arg a[] = {SA_TEXT(w->id), SA_INT(w->from), SA_INT(w->to)};
	int64_t one;
	int rc = store_query_int(t, "SELECT 1 FROM staff WHERE practitioner_id = $1", a, 1, &one);
	if (rc)
		return rc;
	w->found = true;
	struct store_rows *rows;
	rc = store_query(t,
			 "SELECT id, start_ms, end_ms, location, role FROM staff_shift WHERE practitioner_id = $1 AND "
			 "start_ms < $3 AND end_ms > $2 ORDER BY start_ms LIMIT 1000",
			 a, 3, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1)
		json_array_append_new(w->items, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "id", store_rows_text(rows, 0), "start",
							  fmt_ms(w->req->arena, store_rows_int(rows, 1)), "end",
							  fmt_ms(w->req->arena, store_rows_int(rows, 2)), "location",
							  store_rows_text(rows, 3), "role", store_rows_text(rows, 4)));
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int h_shifts(struct req *r, struct reply *rep)
{
	if (r->who->role == ROLE_DEVICE || r->who->role == ROLE_PATIENT)
		return req_fail(r, MC_EFORBIDDEN, "this role may not read shifts", NULL, NULL);
	struct list_work w = {.req = r, .id = req_param(r, "id")};
	if (!w.id || !mcid_valid_fhir_id(w.id))
		return req_fail(r, MC_ENOTFOUND, "no such staff member", NULL, NULL);
	const char *f = req_query(r, "from"), *to = req_query(r, "to");
	int64_t lo, hi;
	enum mctime_prec p;
	w.from = mctime_now_ms() / SCHED_DAY_MS * SCHED_DAY_MS;
	if (f && (mctime_parse_fhir(f, &lo, &hi, &p) || (w.from = lo, false)))
		return field_fail(r, MC_EINVAL, "from", "from: must be a date or date-time");
	w.to = w.from + 7 * SCHED_DAY_MS;
	if (to) {
		if (mctime_parse_fhir(to, &lo, &hi, &p))
			return field_fail(r, MC_EINVAL, "to", "to: must be a date or date-time");
		w.to = p <= MCT_DAY ? hi : lo;
	}
	if (w.to <= w.from)
		return field_fail(r, MC_EINVAL, "to", "to must be after from");
	if (w.to - w.from > 62 * SCHED_DAY_MS)
		return field_fail(r, MC_EINVAL, "to", "the range may span at most 62 days");
	w.items = own(r->arena, json_array());
	int rc = store_read(r->app->store, shifts_unit, &w);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "no such staff member", NULL, NULL);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.items), NULL);
}

static const struct route routes[] = {
	{"POST", "/api/v1/staff", h_create, ROUTE_WRITE, "admin:users", 16384,
	 "Create a staff record (Practitioner + PractitionerRole) linked to a user account"},
	{"GET", "/api/v1/staff", h_list, 0, "self", 0, "The staff directory (?specialty=code)"},
	{"GET", "/api/v1/staff/{id}", h_get, 0, "self", 0, "One staff record by Practitioner id"},
	{"POST", "/api/v1/staff/schedule", h_shift_add, ROUTE_WRITE, "admin:users", 4096,
	 "Add a shift block for a practitioner (overlapping shifts: 409)"},
	{"GET", "/api/v1/staff/{id}/shifts", h_shifts, 0, "self", 0, "A practitioner's shifts between from and to"},
};

const struct route_table staff_routes = {routes, sizeof(routes) / sizeof(routes[0])};
