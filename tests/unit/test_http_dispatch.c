/* tests/unit/test_http_dispatch.c — the dispatcher without a socket: authentication, permission,
 * content type, error body shapes, request ids, security and CORS headers, audit decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "http/app.h"
#include "http/http_int.h"

/* ---- fakes ---- */
static int audits;
static struct audit_rec last_audit;
static char last_audit_action[32];

static int fake_audit(struct store *s, const struct audit_rec *r)
{
	(void)s;
	audits++;
	last_audit = *r;
	snprintf(last_audit_action, sizeof(last_audit_action), "%s", r->action ? r->action : "");
	return MC_OK;
}

/* "doctor" and "clerk" are valid tokens; anything else is refused. */
static int fake_verify(struct auth *a, const char *tok, struct auth_principal *out)
{
	(void)a;
	memset(out, 0, sizeof(*out));
	if (!strcmp(tok, "doctor")) {
		out->user_id = 7;
		snprintf(out->username, sizeof(out->username), "dr");
		out->role = ROLE_DOCTOR;
		out->perms = auth_role_perms(ROLE_DOCTOR);
		return MC_OK;
	}
	if (!strcmp(tok, "clerk")) {
		out->user_id = 8;
		out->role = ROLE_BILLING;
		out->perms = PERM_BIT(PERM_SELF);
		return MC_OK;
	}
	return MC_EUNAUTH;
}

/* ---- handlers ---- */
static int h_ok(struct req *r, struct reply *rep)
{
	json_t *d = json_pack("{s:s}", "path", r->path);
	return reply_api(rep, r, 200, d, NULL);
}

static int h_fail_detail(struct req *r, struct reply *rep)
{
	(void)rep;
	return req_fail(r, MC_EINVAL, "name.family is required", "Patient.name[0].family",
			json_pack("{s:s}", "field", "family"));
}

static int h_internal(struct req *r, struct reply *rep)
{
	(void)rep;
	return req_fail(r, MC_EINTERNAL, "sqlite said: no such table users", "x", json_pack("{s:s}", "sql", "secret"));
}

static int h_phi_read(struct req *r, struct reply *rep)
{
	r->audit.action = "read";
	r->audit.patient_id = "p1";
	return reply_fhir_bytes(rep, 200, "{\"resourceType\":\"Patient\"}", 26);
}

static int h_json(struct req *r, struct reply *rep)
{
	json_t *j;
	int rc = req_json(r, &j);
	if (rc)
		return rc;
	return reply_api(rep, r, 201, json_incref(j), NULL);
}

static int h_noreply(struct req *r, struct reply *rep)
{
	(void)r;
	(void)rep;
	return MC_OK;
}

static const struct route routes[] = {
	{"GET", "/public", h_ok, ROUTE_PUBLIC, NULL, 0, NULL},
	{"GET", "/api/v1/secret", h_ok, 0, "read:patient_data", 0, NULL},
	{"POST", "/api/v1/things", h_json, ROUTE_WRITE, "read:patient_data", 4096, NULL},
	{"POST", "/fhir/{type}/_search", h_phi_read, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE, NULL, 4096, NULL},
	{"PUT", "/fhir/{type}/{id}", h_phi_read, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE | ROUTE_WRITE, NULL, 4096, NULL},
	{"GET", "/api/v1/fail", h_fail_detail, ROUTE_PUBLIC, NULL, 0, NULL},
	{"GET", "/api/v1/boom", h_internal, ROUTE_PUBLIC, NULL, 0, NULL},
	{"GET", "/api/v1/noreply", h_noreply, ROUTE_PUBLIC, NULL, 0, NULL},
	{"GET", "/fhir/fail", h_fail_detail, ROUTE_PUBLIC | ROUTE_FHIR, NULL, 0, NULL},
	{"GET", "/fhir/{type}/{id}", h_phi_read, ROUTE_FHIR | ROUTE_PHI | ROUTE_PERM_BY_TYPE, NULL, 0, NULL},
	{"GET", "/raw/fail", h_fail_detail, ROUTE_PUBLIC | ROUTE_RAW, NULL, 0, NULL},
};
static const struct route_table table = {routes, sizeof(routes) / sizeof(routes[0])};

/* ---- a fake exchange: headers from a NULL-terminated name/value list ---- */
struct fake_headers {
	const char *const *kv;
};

static const char *fake_header(void *ctx, const char *name)
{
	const struct fake_headers *h = ctx;
	for (size_t i = 0; h->kv && h->kv[i]; i += 2)
		if (!strcasecmp(h->kv[i], name))
			return h->kv[i + 1];
	return NULL;
}

struct fixture {
	struct mc_config cfg;
	struct app app;
	struct router *rt;
	struct http_service svc;
	struct arena *arena;
	struct http_call call;
	struct fake_headers fh;
	struct http_exchange ex;
	json_t *body;
};

static int setup(void **state)
{
	struct fixture *f = test_calloc(1, sizeof(*f));
	config_defaults(&f->cfg);
	f->app.cfg = &f->cfg;
	f->app.store = (struct store *)(uintptr_t)1;   /* never dereferenced: audit is faked */
	f->app.version = "9.9.9";
	const struct route_table *tables[] = {&table};
	char err[256];
	assert_int_equal(router_build(tables, 1, &f->rt, err, sizeof(err)), MC_OK);
	f->app.router = f->rt;
	f->svc.app = &f->app;
	f->svc.router = f->rt;
	f->svc.ops.token_verify = fake_verify;
	f->svc.ops.audit_async = fake_audit;
	audits = 0;
	log_min_level = LOG_OFF;
	*state = f;
	return 0;
}

static void end_call(struct fixture *f)
{
	if (f->arena) {
		buf_release(&f->call.rep.body);
		arena_destroy(f->arena);
		f->arena = NULL;
	}
	json_decref(f->body);
	f->body = NULL;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	end_call(f);
	router_free(f->rt);
	config_release(&f->cfg);
	test_free(f);
	return 0;
}

/* Run one request; returns the status. headers: name, value, ..., NULL. */
static int run(struct fixture *f, const char *method, const char *target, const char *body, const char *const *headers)
{
	end_call(f);
	f->arena = arena_create();
	f->fh.kv = headers;
	f->ex.header = fake_header;
	f->ex.ctx = &f->fh;
	http_call_begin(&f->svc, &f->call, f->arena, method, target, &f->ex, "127.0.0.1");
	if (body) {
		f->call.req.body = body;
		f->call.req.body_len = strlen(body);
	}
	http_call_run(&f->svc, &f->call);
	struct reply *rep = &f->call.rep;
	if (rep->content_type && strstr(rep->content_type, "json")) {
		struct mcjson_error e;
		assert_int_equal(mcjson_parse(rep->body.data, rep->body.len, &f->body, &e), MC_OK);
	}
	return rep->status;
}

static const char *hdr(struct fixture *f, const char *name)
{
	for (size_t i = 0; i < f->call.rep.nheaders; i++)
		if (!strcasecmp(f->call.rep.headers[i].key, name))
			return f->call.rep.headers[i].value;
	return NULL;
}

static const char *jpath(json_t *j, const char *a, const char *b)
{
	json_t *o = json_object_get(j, a);
	return json_string_value(b ? json_object_get(o, b) : o);
}

static void test_public_ok_and_envelope(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(run(f, "GET", "/public?x=1", NULL, NULL), 200);
	assert_true(json_is_true(json_object_get(f->body, "success")));
	assert_string_equal(jpath(json_object_get(f->body, "data"), "path", NULL), "/public");
	assert_string_equal(jpath(f->body, "meta", "version"), "9.9.9");
	assert_non_null(jpath(f->body, "meta", "timestamp"));
	assert_string_equal(hdr(f, "X-Content-Type-Options"), "nosniff");
	assert_string_equal(hdr(f, "Cache-Control"), "no-store");
	assert_non_null(strstr(hdr(f, "Content-Security-Policy"), "default-src 'none'"));
	assert_non_null(hdr(f, "X-Request-Id"));
	assert_null(hdr(f, "Vary"));   /* CORS off */
}

static void test_request_id(void **state)
{
	struct fixture *f = *state;
	const char *good[] = {"X-Request-Id", "abc-123_x.y", NULL};
	run(f, "GET", "/public", NULL, good);
	assert_string_equal(hdr(f, "X-Request-Id"), "abc-123_x.y");
	const char *bad[] = {"X-Request-Id", "abc def\"<script>", NULL};
	run(f, "GET", "/public", NULL, bad);
	assert_string_not_equal(hdr(f, "X-Request-Id"), "abc def\"<script>");
	assert_true(strlen(hdr(f, "X-Request-Id")) >= 8);
	char longid[80];
	memset(longid, 'a', 65);
	longid[65] = '\0';
	const char *toolong[] = {"X-Request-Id", longid, NULL};
	run(f, "GET", "/public", NULL, toolong);
	assert_string_not_equal(hdr(f, "X-Request-Id"), longid);
}

static void test_not_found_and_method(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(run(f, "GET", "/api/v1/nope", NULL, NULL), 404);
	assert_true(json_is_false(json_object_get(f->body, "success")));
	assert_string_equal(jpath(f->body, "error", "code"), "NOT_FOUND");
	assert_int_equal(run(f, "DELETE", "/public", NULL, NULL), 405);
	assert_string_equal(jpath(f->body, "error", "code"), "METHOD_NOT_ALLOWED");
	assert_non_null(strstr(hdr(f, "Allow"), "GET"));
	/* under /fhir an unknown path is an OperationOutcome */
	assert_int_equal(run(f, "GET", "/fhir/a/b/c", NULL, NULL), 404);
	assert_string_equal(jpath(f->body, "resourceType", NULL), "OperationOutcome");
	assert_string_equal(f->call.rep.content_type, "application/fhir+json");
	/* traversal */
	assert_int_equal(run(f, "GET", "/api/v1/../public", NULL, NULL), 400);
	assert_int_equal(run(f, "GET", "/api/v1/%2e%2e/x", NULL, NULL), 400);
	assert_int_equal(run(f, "GET", "/public?a=%zz", NULL, NULL), 400);
}

static void test_error_shapes(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(run(f, "GET", "/api/v1/fail", NULL, NULL), 400);
	assert_string_equal(jpath(f->body, "error", "code"), "VALIDATION_ERROR");
	assert_string_equal(jpath(f->body, "error", "message"), "name.family is required");
	assert_string_equal(jpath(json_object_get(f->body, "error"), "details", "field"), "family");
	assert_non_null(jpath(f->body, "meta", "timestamp"));
	assert_string_equal(jpath(f->body, "meta", "version"), "9.9.9");

	assert_int_equal(run(f, "GET", "/fhir/fail", NULL, NULL), 400);
	assert_string_equal(jpath(f->body, "resourceType", NULL), "OperationOutcome");
	json_t *issue = json_array_get(json_object_get(f->body, "issue"), 0);
	assert_string_equal(jpath(issue, "severity", NULL), "error");
	assert_string_equal(jpath(issue, "code", NULL), "invalid");
	assert_string_equal(jpath(issue, "diagnostics", NULL), "name.family is required");
	assert_string_equal(json_string_value(json_array_get(json_object_get(issue, "expression"), 0)),
			    "Patient.name[0].family");

	assert_int_equal(run(f, "GET", "/raw/fail", NULL, NULL), 400);
	assert_string_equal(f->call.rep.content_type, "text/plain; charset=utf-8");
	assert_non_null(strstr(f->call.rep.body.data, "name.family is required"));

	/* 5xx carries no internal detail */
	assert_int_equal(run(f, "GET", "/api/v1/boom", NULL, NULL), 500);
	assert_string_equal(jpath(f->body, "error", "code"), "INTERNAL_ERROR");
	assert_null(strstr(f->call.rep.body.data, "sqlite"));
	assert_null(strstr(f->call.rep.body.data, "secret"));
	assert_null(json_object_get(json_object_get(f->body, "error"), "details"));

	/* a handler that forgets to reply is a 500, not an empty 0 */
	assert_int_equal(run(f, "GET", "/api/v1/noreply", NULL, NULL), 500);
}

static void test_authentication(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, NULL), 401);
	assert_string_equal(jpath(f->body, "error", "code"), "UNAUTHORIZED");
	assert_non_null(strstr(hdr(f, "WWW-Authenticate"), "Bearer"));
	const char *forged[] = {"Authorization", "Bearer forged.token.sig", NULL};
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, forged), 401);
	assert_non_null(strstr(hdr(f, "WWW-Authenticate"), "invalid_token"));
	const char *basic[] = {"Authorization", "Basic ZG9jdG9y", NULL};
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, basic), 401);
	const char *empty[] = {"Authorization", "Bearer ", NULL};
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, empty), 401);
	const char *doc[] = {"Authorization", "bearer doctor", NULL};
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, doc), 200);
	const char *clerk[] = {"Authorization", "Bearer clerk", NULL};
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, clerk), 403);
	assert_string_equal(jpath(f->body, "error", "code"), "FORBIDDEN");
}

static void test_content_type(void **state)
{
	struct fixture *f = *state;
	const char *form[] = {"Authorization", "Bearer doctor", "Content-Type", "text/plain", NULL};
	assert_int_equal(run(f, "POST", "/api/v1/things", "{\"a\":1}", form), 415);
	assert_string_equal(jpath(f->body, "error", "code"), "UNSUPPORTED_MEDIA_TYPE");
	const char *none[] = {"Authorization", "Bearer doctor", NULL};
	assert_int_equal(run(f, "POST", "/api/v1/things", "{\"a\":1}", none), 415);
	/* content type is checked before authentication */
	assert_int_equal(run(f, "POST", "/api/v1/things", "{\"a\":1}", NULL), 415);
	const char *json[] = {"Authorization", "Bearer doctor", "Content-Type", "Application/JSON; charset=utf-8", NULL};
	assert_int_equal(run(f, "POST", "/api/v1/things", "{\"a\":1.50}", json), 201);
	assert_non_null(strstr(f->call.rep.body.data, "\"a\":1.50"));
	const char *fhir[] = {"Authorization", "Bearer doctor", "Content-Type", "application/fhir+json", NULL};
	assert_int_equal(run(f, "POST", "/api/v1/things", "{\"a\":1,\"a\":2}", fhir), 400);
	assert_non_null(strstr(jpath(f->body, "error", "message"), "invalid JSON"));
	assert_int_equal(run(f, "POST", "/api/v1/things", "[1,", fhir), 400);
	/* no body at all: the handler decides (here: 400 "a JSON body is required") */
	assert_int_equal(run(f, "POST", "/api/v1/things", NULL, none), 400);
}

static void test_phi_audit(void **state)
{
	struct fixture *f = *state;
	const char *doc[] = {"Authorization", "Bearer doctor", NULL};
	audits = 0;
	assert_int_equal(run(f, "GET", "/fhir/Observation/o1", NULL, doc), 200);
	assert_int_equal(audits, 1);
	assert_string_equal(last_audit_action, "read");
	assert_int_equal(last_audit.outcome, 200);
	assert_int_equal(last_audit.user_id, 7);
	/* reads are not audited when audit_reads is off */
	f->cfg.audit_reads = false;
	assert_int_equal(run(f, "GET", "/fhir/Observation/o1", NULL, doc), 200);
	assert_int_equal(audits, 1);
	f->cfg.audit_reads = true;
	/* 401 and 403 on PHI routes are audited, with the attempted action */
	assert_int_equal(run(f, "GET", "/fhir/Observation/o1", NULL, NULL), 401);
	assert_int_equal(audits, 2);
	assert_string_equal(last_audit_action, "read");
	assert_int_equal(last_audit.outcome, 401);
	const char *clerk[] = {"Authorization", "Bearer clerk", NULL};
	assert_int_equal(run(f, "GET", "/fhir/Observation/o1", NULL, clerk), 403);
	assert_int_equal(audits, 3);
	assert_int_equal(last_audit.outcome, 403);
	assert_int_equal(last_audit.user_id, 8);
	/* POST _search is a read: read permission suffices, and a form body is the handler's business */
	const char *nurse_form[] = {"Authorization", "Bearer doctor", "Content-Type", "application/x-www-form-urlencoded", NULL};
	assert_int_equal(run(f, "POST", "/fhir/Observation/_search", "code=1", nurse_form), 200);
	/* a failed write attempt is audited with the attempted action */
	assert_int_equal(run(f, "PUT", "/fhir/Observation/o1", "{}", clerk), 415);
	const char *clerk_json[] = {"Authorization", "Bearer clerk", "Content-Type", "application/json", NULL};
	int before = audits;
	assert_int_equal(run(f, "PUT", "/fhir/Observation/o1", "{}", clerk_json), 403);
	assert_int_equal(audits, before + 1);
	assert_string_equal(last_audit_action, "update");
	/* non-PHI routes are not audited */
	before = audits;
	assert_int_equal(run(f, "GET", "/api/v1/secret", NULL, clerk), 403);
	assert_int_equal(audits, before);
}

static void test_cors(void **state)
{
	struct fixture *f = *state;
	config_release(&f->cfg);
	config_defaults(&f->cfg);
	free(f->cfg.cors_origins);
	f->cfg.cors_origins = strdup("https://app.example");
	const char *pre[] = {"Origin", "https://app.example", "Access-Control-Request-Method", "GET", NULL};
	assert_int_equal(run(f, "OPTIONS", "/api/v1/secret", NULL, pre), 204);
	assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "https://app.example");
	assert_non_null(strstr(hdr(f, "Access-Control-Allow-Methods"), "GET"));
	assert_non_null(strstr(hdr(f, "Access-Control-Allow-Headers"), "Authorization"));
	assert_string_equal(hdr(f, "Vary"), "Origin");
	const char *evil[] = {"Origin", "https://evil.example", "Access-Control-Request-Method", "GET", NULL};
	assert_int_equal(run(f, "OPTIONS", "/api/v1/secret", NULL, evil), 204);
	assert_null(hdr(f, "Access-Control-Allow-Origin"));
	assert_null(hdr(f, "Access-Control-Allow-Methods"));
	assert_int_equal(run(f, "OPTIONS", "/api/v1/unknown", NULL, pre), 404);
	const char *simple[] = {"Origin", "https://app.example", NULL};
	assert_int_equal(run(f, "GET", "/public", NULL, simple), 200);
	assert_string_equal(hdr(f, "Access-Control-Allow-Origin"), "https://app.example");
}

static void test_openapi(void **state)
{
	struct fixture *f = *state;
	json_t *doc = http_openapi(f->rt, "1.2.3");
	assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.0.3");
	json_t *paths = json_object_get(doc, "paths");
	json_t *op = json_object_get(json_object_get(paths, "/fhir/{type}/{id}"), "get");
	assert_non_null(op);
	assert_int_equal(json_array_size(json_object_get(op, "parameters")), 2);
	assert_int_equal(json_array_size(json_object_get(op, "security")), 1);
	json_t *pub = json_object_get(json_object_get(paths, "/public"), "get");
	assert_int_equal(json_array_size(json_object_get(pub, "security")), 0);
	assert_non_null(json_object_get(json_object_get(json_object_get(paths, "/api/v1/things"), "post"),
					"requestBody"));
	assert_non_null(json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), "Envelope"));
	json_decref(doc);
}

static void test_metrics_counts(void **state)
{
	struct fixture *f = *state;
	run(f, "GET", "/public", NULL, NULL);
	run(f, "GET", "/public", NULL, NULL);
	run(f, "GET", "/nowhere", NULL, NULL);
	struct buf b = BUF_INIT;
	http_metrics_render(f->rt, &b);
	assert_non_null(strstr(b.data, "medcore_http_requests_total{method=\"GET\",route=\"/public\",status=\"200\"} 2"));
	assert_non_null(strstr(b.data, "route=\"(unmatched)\",status=\"404\"} 1"));
	buf_release(&b);
	/* status slots overflow into "other" */
	struct status_slot slots[HTTP_STATUS_SLOTS];
	_Atomic uint64_t other = 0;
	memset(slots, 0, sizeof(slots));
	for (int s = 0; s < HTTP_STATUS_SLOTS + 3; s++)
		http_count_status(slots, &other, 200 + s);
	http_count_status(slots, &other, 200);
	assert_int_equal(atomic_load(&slots[0].count), 2);
	assert_int_equal(atomic_load(&other), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_public_ok_and_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found_and_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_shapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authentication, setup, teardown),
		cmocka_unit_test_setup_teardown(test_content_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_phi_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_openapi, setup, teardown),
		cmocka_unit_test_setup_teardown(test_metrics_counts, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
