/* tests/unit/test_http_write.c — req_write against a real SQLite store: the audit record of a PHI
 * write commits with the write, a failed unit leaves no record, non-PHI routes are not audited.
 * Also the health handlers' answers without and with a store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/metrics.h"
#include "audit/audit.h"
#include "http/app.h"
#include "http/http_int.h"
#include "http/server.h"
#include "store/store.h"

static int h_unused(struct req *r, struct reply *rep)
{
	(void)r;
	(void)rep;
	return MC_OK;
}

static const struct route phi_route = {"POST", "/fhir/{type}", h_unused, ROUTE_PHI | ROUTE_WRITE | ROUTE_FHIR,
				       "write:patient_data", 1024, NULL};
static const struct route plain_route = {"POST", "/api/v1/x", h_unused, ROUTE_WRITE, "self", 1024, NULL};

struct fx {
	char dir[64];
	char url[128];
	struct store *store;
	struct mc_config cfg;
	struct app app;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mc-http-write-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	log_min_level = LOG_WARN;
	assert_int_equal(store_open(f->url, &f->store), MC_OK);
	int applied = 0;
	assert_int_equal(store_migrate(f->store, &applied), MC_OK);
	config_defaults(&f->cfg);
	f->app.cfg = &f->cfg;
	f->app.store = f->store;
	f->app.version = "t";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->store);
	config_release(&f->cfg);
	char path[128];
	const char *sfx[] = {"/t.db", "/t.db-wal", "/t.db-shm"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s", f->dir, sfx[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int unit_ok(struct store_txn *t, void *arg)
{
	(void)t;
	struct req *r = arg;
	r->audit.resource_id = "new-id-1";   /* learned inside the unit */
	return MC_OK;
}

static int unit_conflict(struct store_txn *t, void *arg)
{
	(void)t;
	(void)arg;
	return MC_ECONFLICT;
}

static int64_t audit_count(struct store *s)
{
	int64_t checked = -1, bad = 0;
	char why[64];
	assert_int_equal(audit_verify(s, &checked, &bad, why, sizeof(why)), MC_OK);
	return checked;
}

static void init_req(struct req *r, struct arena *a, struct app *app, const struct route *rt,
		     struct auth_principal *who)
{
	memset(r, 0, sizeof(*r));
	r->arena = a;
	r->app = app;
	r->route = rt;
	r->method = "POST";
	r->request_id = "rid-1";
	r->client_ip = "127.0.0.1";
	r->who = who;
	r->nparams = 1;
	r->params[0].key = "type";
	r->params[0].value = "Observation";
}

static void test_phi_write_is_audited(void **state)
{
	struct fx *f = *state;
	struct arena *a = arena_create();
	struct auth_principal who = {.user_id = 5, .role = ROLE_NURSE};
	snprintf(who.username, sizeof(who.username), "nurse1");
	struct req r;
	int64_t before = audit_count(f->store);

	init_req(&r, a, &f->app, &phi_route, &who);
	r.audit.action = "create";
	r.audit.patient_id = "p-1";
	assert_int_equal(req_write(&r, unit_ok, &r), MC_OK);
	assert_true(r.audit.done);
	assert_int_equal(audit_count(f->store), before + 1);

	/* a failing unit rolls back and leaves no record */
	init_req(&r, a, &f->app, &phi_route, &who);
	r.audit.action = "update";
	assert_int_equal(req_write(&r, unit_conflict, &r), MC_ECONFLICT);
	assert_false(r.audit.done);
	assert_int_equal(audit_count(f->store), before + 1);

	/* non-PHI routes, or no action: nothing audited by req_write */
	init_req(&r, a, &f->app, &plain_route, &who);
	r.audit.action = "create";
	assert_int_equal(req_write(&r, unit_ok, &r), MC_OK);
	assert_false(r.audit.done);
	init_req(&r, a, &f->app, &phi_route, &who);
	assert_int_equal(req_write(&r, unit_ok, &r), MC_OK);
	assert_false(r.audit.done);
	assert_int_equal(audit_count(f->store), before + 1);

	/* no store: refused, not crashed */
	struct app nostore = f->app;
	nostore.store = NULL;
	init_req(&r, a, &nostore, &phi_route, &who);
	assert_int_equal(req_write(&r, unit_ok, &r), MC_EUNAVAIL);
	arena_destroy(a);
}

static const struct route *health(const char *pattern)
{
	for (size_t i = 0; i < health_routes.n; i++)
		if (!strcmp(health_routes.routes[i].pattern, pattern))
			return &health_routes.routes[i];
	fail_msg("no health route %s", pattern);
	return NULL;
}

static int call(struct app *app, const char *pattern, struct reply *rep)
{
	struct arena *a = arena_create();
	struct req r;
	memset(&r, 0, sizeof(r));
	r.arena = a;
	r.app = app;
	r.method = "GET";
	memset(rep, 0, sizeof(*rep));
	buf_init(&rep->body, 0);
	int rc = health(pattern)->fn(&r, rep);
	arena_destroy(a);
	return rc;
}

static void test_health(void **state)
{
	struct fx *f = *state;
	struct reply rep;
	assert_int_equal(call(&f->app, "/healthz", &rep), MC_OK);
	assert_int_equal(rep.status, 200);
	assert_string_equal(rep.body.data, "ok");
	buf_release(&rep.body);
	assert_int_equal(call(&f->app, "/readyz", &rep), MC_OK);
	assert_int_equal(rep.status, 200);
	buf_release(&rep.body);
	struct app nostore = f->app;
	nostore.store = NULL;
	assert_int_equal(call(&nostore, "/readyz", &rep), MC_OK);
	assert_int_equal(rep.status, 503);
	buf_release(&rep.body);
	assert_int_equal(call(&f->app, "/metrics", &rep), MC_OK);
	assert_int_equal(rep.status, 200);
	assert_non_null(strstr(rep.body.data, "medcore_store_commits_total"));
	assert_non_null(strstr(rep.body.data, "medcore_process_resident_memory_bytes"));
	buf_release(&rep.body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_phi_write_is_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
