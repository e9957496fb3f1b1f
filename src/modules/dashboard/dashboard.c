/* modules/dashboard/dashboard.c — the doctor's dashboard (see dashboard.h). Reads only, in one
 * snapshot; then one small write records the view. */
#include "modules/dashboard/dashboard.h"

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/search.h"
#include "http/app.h"
#include "modules/medications/modutil.h"
#include "store/store.h"

struct dash_work {
	struct req *req;
	const char *day;           /* YYYY-MM-DD */
	int64_t seen_ms;           /* previous view; 0 = never */
	int64_t now_ms;
	json_t *appts, *results, *critical, *cosign;
};

/* Run a FHIR search of type with q under the principal's scope for what; append each match
 * (parsed) to out, skipping those keep() refuses. */
static int search_into(struct store_txn *t, struct dash_work *w, const char *type, const struct kv *q, size_t nq,
		       enum auth_access what, bool (*keep)(const json_t *res, const struct req *r), json_t *out)
{
	struct req *r = w->req;
	struct fhir_search_opts opts = {.access = {.scope = auth_patient_scope(r->who, what),
						   .patient_id = r->who->patient_id,
						   .user_id = r->who->user_id},
					.page_max = DASH_LIST_MAX,
					.page_default = DASH_LIST_MAX};
	if (opts.access.scope == AUTH_SCOPE_NONE)
		return MC_OK;
	struct fhir_search *s;
	const char *err;
	int rc = fhir_search_compile(r->arena, type, q, nq, &opts, &s, &err);
	if (rc)
		return rc == MC_EINVAL ? MC_EINTERNAL : rc;   /* our own query: never the client's fault */
	struct fhir_search_result res;
	if ((rc = fhir_search_run(t, r->arena, s, &res)))
		return rc;
	for (size_t i = 0; i < res.n; i++) {
		json_t *j;
		if (mcjson_parse(res.v[i].json, res.v[i].json_len, &j, NULL))
			continue;
		if (!keep || keep(j, r))
			json_array_append(out, j);
		json_decref(j);
	}
	return MC_OK;
}

/* A Composition is awaiting co-signature by this doctor when someone else wrote it. */
static bool authored_by_other(const json_t *c, const struct req *r)
{
	size_t i;
	json_t *a;
	const char *me = r->who->practitioner_id;
	json_array_foreach(json_object_get(c, "author"), i, a) {
		const char *s = mcjson_str(a, "reference");
		if (me[0] && s && !strncmp(s, "Practitioner/", 13) && !strcmp(s + 13, me))
			return false;
	}
	return true;
}

static int care_rows(struct store_txn *t, struct dash_work *w, const char *sql_fmt, int64_t since, json_t *out,
		     bool critical)
{
	struct req *r = w->req;
	char cond[600];
	snprintf(cond, sizeof(cond), AUTH_CARE_SQL, "patient_id", 1, 2, "patient_id", 1, 2);
	char *sql = arena_printf(r->arena, sql_fmt, cond);
	struct store_arg a[] = {SA_INT(r->who->user_id), SA_INT(w->now_ms), SA_INT(since), SA_INT(DASH_LIST_MAX)};
	struct store_rows *rows;
	int rc = store_query(t, sql, a, 4, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		char ts[32];
		mctime_format_ms(store_rows_int(rows, 2), ts);
		if (critical)
			json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "observation",
							     store_rows_text(rows, 0), "patient", store_rows_text(rows, 1),
							     "since", ts, "loinc", store_rows_text(rows, 3), "interpretation",
							     store_rows_text(rows, 4), "order", store_rows_text(rows, 5)));
		else
			json_array_append_new(out, json_pack("{s:s, s:s, s:I}", "patient", store_rows_text(rows, 0), "lastResult",
							     ts, "orders", (json_int_t)store_rows_int(rows, 1)));
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int dash_unit(struct store_txn *t, void *arg)
{
	struct dash_work *w = arg;
	struct req *r = w->req;
	struct store_arg u[] = {SA_INT(r->who->user_id)};
	int rc = store_query_int(t, "SELECT seen_ms FROM dashboard_seen WHERE user_id = $1", u, 1, &w->seen_ms);
	if (rc && rc != MC_ENOTFOUND)
		return rc;
	if (r->who->practitioner_id[0]) {
		struct kv q[] = {{"practitioner", arena_printf(r->arena, "Practitioner/%s", r->who->practitioner_id)},
				 {"date", w->day},
				 {"_sort", "date"},
				 {"_count", "100"}};
		if ((rc = search_into(t, w, "Appointment", q, 4, AUTH_DEMOGRAPHICS_READ, NULL, w->appts)))
			return rc;
	}
	/* patient_id, count, max(result_ms): SQL text below is fixed; only the care condition is formatted */
	if ((rc = care_rows(t, w,
			    "SELECT patient_id, count(*), max(result_ms) FROM lab_order WHERE result_ms > $3 AND %s "
			    "GROUP BY patient_id ORDER BY max(result_ms) DESC LIMIT $4",
			    w->seen_ms, w->results, false)))
		return rc;
	if ((rc = care_rows(t, w,
			    "SELECT observation_id, patient_id, created_ms, loinc, flag, order_id FROM lab_critical "
			    "WHERE ack_ms IS NULL AND created_ms > $3 AND %s ORDER BY created_ms LIMIT $4",
			    -1, w->critical, true)))
		return rc;
	struct kv q[] = {{"status", "preliminary"}, {"_count", "100"}};
	return search_into(t, w, "Composition", q, 2, AUTH_CLINICAL_READ, authored_by_other, w->cosign);
}

static int seen_unit(struct store_txn *t, void *arg)
{
	struct dash_work *w = arg;
	struct store_arg a[] = {SA_INT(w->req->who->user_id), SA_INT(w->now_ms)};
	return store_exec(t,
			  "INSERT INTO dashboard_seen(user_id, seen_ms) VALUES($1, $2) "
			  "ON CONFLICT(user_id) DO UPDATE SET seen_ms = excluded.seen_ms",
			  a, 2);
}

static int h_doctor(struct req *r, struct reply *rep)
{
	r->audit.action = "search";
	r->audit.resource_type = "Appointment";
	if (r->who->role != ROLE_DOCTOR)
		return req_fail(r, MC_EFORBIDDEN, "the doctor dashboard is for doctors", NULL, NULL);
	struct dash_work w = {.req = r, .now_ms = mctime_now_ms()};
	char today[32];
	mctime_format_ms(w.now_ms, today);
	today[10] = 0;
	w.day = req_query(r, "date");
	int64_t lo, hi;
	enum mctime_prec prec;
	if (w.day && (strlen(w.day) != 10 || mctime_parse_fhir(w.day, &lo, &hi, &prec) || prec != MCT_DAY))
		return mu_field_fail(r, MC_EINVAL, "date", "must be a day YYYY-MM-DD");
	if (!w.day)
		w.day = today;
	w.appts = mu_own(r, json_array());
	w.results = mu_own(r, json_array());
	w.critical = mu_own(r, json_array());
	w.cosign = mu_own(r, json_array());
	int rc = store_read(r->app->store, dash_unit, &w);
	if (rc)
		return rc;
	/* the view is recorded only once the answer exists; a failure here does not hide it */
	store_write(r->app->store, seen_unit, &w);
	char seen[32] = "";
	if (w.seen_ms)
		mctime_format_ms(w.seen_ms, seen);
	return reply_api(rep, r, 200,
			 json_pack("{s:s, s:s?, s:O, s:O, s:O, s:O}", "date", w.day, "previousView", w.seen_ms ? seen : NULL,
				   "appointments", w.appts, "newResults", w.results, "criticalResults", w.critical,
				   "pendingCosign", w.cosign),
			 NULL);
}

static const struct route routes[] = {
	{"GET", "/api/v1/dashboard/doctor", h_doctor, ROUTE_PHI, "read:patient_data", 0,
	 "Doctor dashboard: today's appointments, new and critical results, notes to co-sign"},
};

const struct route_table dashboard_routes = {routes, sizeof(routes) / sizeof(routes[0])};
