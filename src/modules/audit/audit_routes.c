/* modules/audit/audit_routes.c — the audit chain as FHIR AuditEvent (read only).
 *
 * Search parameters: patient (id or Patient/id), agent (username or user id), date (repeatable,
 * prefixes eq ne gt lt ge le sa eb, compared with the record time), _count (1..page_max, default
 * 50). Other parameters are ignored (FHIR's lenient default). Newest records first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/mctime.h"
#include "http/app.h"
#include "modules/audit/audit_routes.h"
#include "store/store.h"

#define MAX_DATES 4
#define DEFAULT_COUNT 50

static void json_free_cb(void *p)
{
	json_decref(p);
}

static void buf_free_cb(void *p)
{
	buf_release(p);
}

/* FHIR AuditEvent.action: C R U D E */
static const char *action_code(const char *a)
{
	if (!a)
		return "E";
	if (!strcmp(a, "create"))
		return "C";
	if (!strcmp(a, "read") || !strcmp(a, "vread") || !strcmp(a, "history"))
		return "R";
	if (!strcmp(a, "update") || !strcmp(a, "patch"))
		return "U";
	if (!strcmp(a, "delete"))
		return "D";
	return "E";   /* search, login, logout, break-glass, ... */
}

static bool is_rest(const char *a)
{
	static const char *const rest[] = {"create", "read", "vread", "history", "update", "patch", "delete", "search"};
	for (size_t i = 0; a && i < sizeof(rest) / sizeof(rest[0]); i++)
		if (!strcmp(a, rest[i]))
			return true;
	return false;
}

json_t *audit_event_json(const struct audit_row *a)
{
	char id[24], when[32];
	snprintf(id, sizeof(id), "%lld", (long long)a->seq);
	mctime_format_ms(a->ts_ms, when);
	json_t *ev = json_object();
	json_object_set_new(ev, "resourceType", json_string("AuditEvent"));
	json_object_set_new(ev, "id", json_string(id));
	json_object_set_new(ev, "meta", json_pack("{s:s}", "lastUpdated", when));
	bool rest = is_rest(a->action);
	bool authn = a->action && (!strncmp(a->action, "login", 5) || !strcmp(a->action, "logout") ||
				   !strncmp(a->action, "refresh", 7) || !strncmp(a->action, "mfa", 3));
	if (rest)
		json_object_set_new(ev, "type", json_pack("{s:s,s:s,s:s}", "system",
							  "http://terminology.hl7.org/CodeSystem/audit-event-type", "code",
							  "rest", "display", "RESTful Operation"));
	else if (authn)
		json_object_set_new(ev, "type", json_pack("{s:s,s:s,s:s}", "system", "http://dicom.nema.org/resources/ontology/DCM",
							  "code", "110114", "display", "User Authentication"));
	else
		json_object_set_new(ev, "type", json_pack("{s:s,s:s}", "system", "urn:medcore:audit-action", "code",
							  a->action ? a->action : "unknown"));
	json_object_set_new(ev, "subtype",
			    json_pack("[{s:s,s:s}]", "system",
				      rest ? "http://hl7.org/fhir/restful-interaction" : "urn:medcore:audit-action", "code",
				      a->action ? a->action : "unknown"));
	json_object_set_new(ev, "action", json_string(action_code(a->action)));
	json_object_set_new(ev, "recorded", json_string(when));
	const char *outcome = a->outcome < 400 ? "0" : a->outcome < 500 ? "4" : "8";
	json_object_set_new(ev, "outcome", json_string(outcome));
	char oc[16];
	snprintf(oc, sizeof(oc), "%lld", (long long)a->outcome);
	json_object_set_new(ev, "outcomeDesc", json_string(oc));
	if (a->reason && a->reason[0])
		json_object_set_new(ev, "purposeOfEvent",
				    json_pack("[{s:[{s:s,s:s}],s:s}]", "coding", "system",
					      "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code",
					      a->action && !strcmp(a->action, "break-glass") ? "ETREAT" : "HOPERAT", "text",
					      a->reason));

	json_t *agent = json_object();
	json_t *who = json_object();
	char uid[24];
	snprintf(uid, sizeof(uid), "%lld", (long long)a->user_id);
	json_object_set_new(who, "identifier", json_pack("{s:s,s:s}", "system", "urn:medcore:user", "value", uid));
	json_object_set_new(who, "display", json_string(a->username && a->username[0] ? a->username
										   : a->user_id ? uid : "anonymous"));
	json_object_set_new(agent, "who", who);
	if (a->role && a->role[0])
		json_object_set_new(agent, "role", json_pack("[{s:s}]", "text", a->role));
	json_object_set_new(agent, "requestor", json_true());
	if (a->client_ip && a->client_ip[0])
		json_object_set_new(agent, "network", json_pack("{s:s,s:s}", "address", a->client_ip, "type", "2"));
	json_object_set_new(ev, "agent", json_pack("[o]", agent));

	json_object_set_new(ev, "source", json_pack("{s:s,s:{s:s}}", "site", "medcore", "observer", "display", "medcore"));

	json_t *entities = json_array();
	if (a->resource_type && a->resource_type[0]) {
		json_t *what = a->resource_id && a->resource_id[0]
				       ? json_pack("{s:s++}", "reference", a->resource_type, "/", a->resource_id)
				       : json_pack("{s:s}", "display", a->resource_type);
		json_array_append_new(entities, json_pack("{s:o}", "what", what));
	}
	if (a->patient_id && a->patient_id[0])
		json_array_append_new(entities,
				      json_pack("{s:{s:s+},s:{s:s,s:s,s:s}}", "what", "reference", "Patient/", a->patient_id,
						"role", "system", "http://terminology.hl7.org/CodeSystem/object-role", "code", "1",
						"display", "Patient"));
	if (a->request_id && a->request_id[0])
		json_array_append_new(entities, json_pack("{s:{s:s},s:s}", "what", "display", "request", "name", a->request_id));
	if (json_array_size(entities))
		json_object_set_new(ev, "entity", entities);
	else
		json_decref(entities);
	return ev;
}

#define COLS "seq, ts_ms, user_id, username, role, action, resource_type, resource_id, patient_id, outcome, " \
	     "request_id, client_ip, reason"

static void row_of(struct store_rows *r, struct audit_row *a)
{
	a->seq = store_rows_int(r, 0);
	a->ts_ms = store_rows_int(r, 1);
	a->user_id = store_rows_int(r, 2);
	a->username = store_rows_text(r, 3);
	a->role = store_rows_text(r, 4);
	a->action = store_rows_text(r, 5);
	a->resource_type = store_rows_text(r, 6);
	a->resource_id = store_rows_text(r, 7);
	a->patient_id = store_rows_text(r, 8);
	a->outcome = store_rows_int(r, 9);
	a->request_id = store_rows_text(r, 10);
	a->client_ip = store_rows_text(r, 11);
	a->reason = store_rows_text(r, 12);
}

struct search {
	struct buf sql;
	struct store_arg args[4 + 2 * MAX_DATES];
	size_t nargs;
	json_t *entries;
	const char *base;
};

static int search_unit(struct store_txn *t, void *arg)
{
	struct search *s = arg;
	struct store_rows *r = NULL;
	int rc = store_query(t, buf_str(&s->sql), s->args, s->nargs, &r);
	if (rc)
		return rc;
	int st;
	while ((st = store_rows_next(r)) == 1) {
		struct audit_row a;
		row_of(r, &a);
		json_t *ev = audit_event_json(&a);
		char url[256];
		snprintf(url, sizeof(url), "%s/fhir/AuditEvent/%lld", s->base, (long long)a.seq);
		json_array_append_new(s->entries, json_pack("{s:s,s:o,s:{s:s}}", "fullUrl", url, "resource", ev, "search",
							    "mode", "match"));
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

static int add_arg(struct search *s, struct store_arg a)
{
	s->args[s->nargs++] = a;
	return (int)s->nargs;
}

static int date_clause(struct req *r, struct search *s, const char *v)
{
	static const char *const prefixes[] = {"eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"};
	const char *p = "eq";
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		if (!strncmp(v, prefixes[i], 2)) {
			p = prefixes[i];
			v += 2;
			break;
		}
	}
	int64_t lo, hi;
	if (mctime_parse_fhir(v, &lo, &hi, NULL))
		return req_fail(r, MC_EINVAL, "date: must be [prefix]YYYY[-MM[-DD[Thh:mm[:ss]]]]", "date", NULL);
	int rc;
	if (!strcmp(p, "eq")) {
		int a = add_arg(s, SA_INT(lo));
		rc = buf_printf(&s->sql, " AND ts_ms >= $%d AND ts_ms < $%d", a, add_arg(s, SA_INT(hi)));
	} else if (!strcmp(p, "ne")) {
		int a = add_arg(s, SA_INT(lo));
		rc = buf_printf(&s->sql, " AND (ts_ms < $%d OR ts_ms >= $%d)", a, add_arg(s, SA_INT(hi)));
	} else if (!strcmp(p, "gt") || !strcmp(p, "sa")) {
		rc = buf_printf(&s->sql, " AND ts_ms >= $%d", add_arg(s, SA_INT(hi)));
	} else if (!strcmp(p, "lt") || !strcmp(p, "eb")) {
		rc = buf_printf(&s->sql, " AND ts_ms < $%d", add_arg(s, SA_INT(lo)));
	} else if (!strcmp(p, "ge")) {
		rc = buf_printf(&s->sql, " AND ts_ms >= $%d", add_arg(s, SA_INT(lo)));
	} else { /* le */
		rc = buf_printf(&s->sql, " AND ts_ms < $%d", add_arg(s, SA_INT(hi)));
	}
	return rc ? MC_ETOOBIG : MC_OK;
}

static int h_search(struct req *r, struct reply *rep)
{
	struct search *s = arena_zalloc(r->arena, sizeof(*s));
	buf_init(&s->sql, 4096);
	arena_defer(r->arena, buf_free_cb, &s->sql);
	buf_puts(&s->sql, "SELECT " COLS " FROM audit WHERE 1 = 1");
	int64_t max = r->app->cfg && r->app->cfg->page_max > 0 ? r->app->cfg->page_max : 1000;
	int64_t count = DEFAULT_COUNT < max ? DEFAULT_COUNT : max;
	int ndates = 0;
	bool have_patient = false, have_agent = false;
	for (size_t i = 0; i < r->nquery; i++) {
		const char *k = r->query[i].key, *v = r->query[i].value ? r->query[i].value : "";
		int rc = MC_OK;
		if (!strcmp(k, "patient") && !have_patient) {
			if (!strncmp(v, "Patient/", 8))
				v += 8;
			if (!mcid_valid_fhir_id(v))
				return req_fail(r, MC_EINVAL, "patient: must be a Patient id", "patient", NULL);
			rc = buf_printf(&s->sql, " AND patient_id = $%d", add_arg(s, SA_TEXT(v)));
			have_patient = true;
		} else if (!strcmp(k, "agent") && !have_agent) {
			char *end = NULL;
			long long id = strtoll(v, &end, 10);
			if (v[0] && !*end && id > 0)
				rc = buf_printf(&s->sql, " AND user_id = $%d", add_arg(s, SA_INT(id)));
			else if (v[0] && strlen(v) <= 64)
				rc = buf_printf(&s->sql, " AND username = $%d", add_arg(s, SA_TEXT(v)));
			else
				return req_fail(r, MC_EINVAL, "agent: give a username or a user id", "agent", NULL);
			have_agent = true;
		} else if (!strcmp(k, "date")) {
			if (++ndates > MAX_DATES)
				return req_fail(r, MC_EINVAL, "date: at most 4 date parameters", "date", NULL);
			rc = date_clause(r, s, v);
		} else if (!strcmp(k, "_count")) {
			char *end = NULL;
			long long c = strtoll(v, &end, 10);
			if (!v[0] || *end || c < 0 || c > max)
				return req_fail(r, MC_EINVAL,
						arena_printf(r->arena, "_count: must be an integer from 0 to %lld", (long long)max),
						"_count", NULL);
			count = c;
		}
		if (rc)
			return rc == MC_ETOOBIG ? req_fail(r, MC_EINVAL, "too many search parameters", NULL, NULL) : rc;
	}
	if (buf_printf(&s->sql, " ORDER BY seq DESC LIMIT $%d", add_arg(s, SA_INT(count))))
		return req_fail(r, MC_EINVAL, "too many search parameters", NULL, NULL);
	s->entries = json_array();
	arena_defer(r->arena, json_free_cb, s->entries);
	s->base = r->base_url ? r->base_url : "";
	int rc = store_read(r->app->store, search_unit, s);
	if (rc)
		return rc;
	json_t *bundle = json_pack("{s:s,s:s,s:[{s:s,s:s+}],s:O}", "resourceType", "Bundle", "type", "searchset", "link",
				   "relation", "self", "url", s->base, r->path, "entry", s->entries);
	if (!bundle)
		return MC_EINTERNAL;
	arena_defer(r->arena, json_free_cb, bundle);
	return reply_fhir_json(rep, 200, bundle);
}

struct one {
	int64_t seq;
	json_t *ev;
};

static int one_unit(struct store_txn *t, void *arg)
{
	struct one *o = arg;
	struct store_arg a[1] = {SA_INT(o->seq)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT " COLS " FROM audit WHERE seq = $1", a, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1) {
		struct audit_row row;
		row_of(r, &row);
		o->ev = audit_event_json(&row);
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

static int h_read(struct req *r, struct reply *rep)
{
	const char *id = req_param(r, "id");
	char *end = NULL;
	long long seq = id ? strtoll(id, &end, 10) : 0;
	if (!id || !id[0] || *end || seq <= 0)
		return req_fail(r, MC_ENOTFOUND, "AuditEvent not found", NULL, NULL);
	struct one o = {.seq = seq};
	int rc = store_read(r->app->store, one_unit, &o);
	if (rc)
		return rc;
	if (!o.ev)
		return req_fail(r, MC_ENOTFOUND, "AuditEvent not found", NULL, NULL);
	arena_defer(r->arena, json_free_cb, o.ev);
	return reply_fhir_json(rep, 200, o.ev);
}

static const struct route routes[] = {
	{"GET", "/fhir/AuditEvent", h_search, ROUTE_FHIR, "read:audit", 0,
	 "Search the audit chain as AuditEvent (patient, agent, date, _count)"},
	{"GET", "/fhir/AuditEvent/{id}", h_read, ROUTE_FHIR, "read:audit", 0, "One audit record as AuditEvent"},
};

const struct route_table audit_routes = {routes, sizeof(routes) / sizeof(routes[0])};
