/* Unit tests: OAuth2 scope parsing and narrowing (auth/clients.c), the scope claim round trip
 * (auth/token.c), the client-credentials grant against a real SQLite store, $validate's outcome
 * (fhir/ops.c) and the export helpers (fhir/export.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_int.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "fhir/export.h"
#include "fhir/ops.h"
#include "store/store.h"

static struct auth_principal scoped(const char *scope)
{
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	p.user_id = 7;
	p.role = ROLE_INTEGRATION;
	p.perms = auth_role_perms(ROLE_INTEGRATION);
	snprintf(p.username, sizeof(p.username), "client");
	snprintf(p.scope, sizeof(p.scope), "%s", scope);
	return p;
}

static void test_scope_valid(void **state)
{
	(void)state;
	assert_true(auth_scope_valid("system/Patient.read"));
	assert_true(auth_scope_valid("  system/*.read   user/Observation.write patient/Condition.*  "));
	assert_true(auth_scope_valid("system/Patient.rs system/Observation.cruds"));
	assert_false(auth_scope_valid(""));
	assert_false(auth_scope_valid("   "));
	assert_false(auth_scope_valid("openid"));
	assert_false(auth_scope_valid("system/Patient"));
	assert_false(auth_scope_valid("system/patient.read"));     /* types start upper-case */
	assert_false(auth_scope_valid("admin/Patient.read"));
	assert_false(auth_scope_valid("system/Patient.readwrite"));
	assert_false(auth_scope_valid("system/Patient.sr"));       /* v2 letters in order */
	assert_false(auth_scope_valid("system/Patient.rr"));
	assert_false(auth_scope_valid("system/Pat-ient.read"));
	assert_false(auth_scope_valid("system/.read"));
	char big[AUTH_SCOPE_MAX + 40];
	size_t o = 0;
	while (o + 20 < sizeof(big) - 1) {
		memcpy(big + o, "system/Patient.read ", 20);
		o += 20;
	}
	big[o] = '\0';
	assert_false(auth_scope_valid(big));
}

static void test_scope_allows(void **state)
{
	(void)state;
	struct auth_principal p = scoped("system/Patient.read system/Observation.*");
	assert_true(auth_scope_allows(&p, "Patient", false));
	assert_false(auth_scope_allows(&p, "Patient", true));
	assert_true(auth_scope_allows(&p, "Observation", true));
	assert_true(auth_scope_allows(&p, "Observation", false));
	assert_false(auth_scope_allows(&p, "Condition", false));
	assert_false(auth_scope_allows(&p, NULL, false));   /* every type needs a * scope */
	assert_false(auth_scope_allows(&p, "PatientX", false));

	p = scoped("system/*.read");
	assert_true(auth_scope_allows(&p, "Condition", false));
	assert_true(auth_scope_allows(&p, NULL, false));
	assert_false(auth_scope_allows(&p, "Condition", true));
	assert_false(auth_scope_allows(&p, NULL, true));

	p = scoped("system/Patient.cud");
	assert_false(auth_scope_allows(&p, "Patient", false));
	assert_true(auth_scope_allows(&p, "Patient", true));

	p = scoped("openid system/Patient.s");
	assert_true(auth_scope_allows(&p, "Patient", false));

	p = scoped("");   /* a user token: not narrowed */
	assert_true(auth_scope_allows(&p, "Condition", true));
	assert_true(auth_scope_allows(&p, NULL, true));
	assert_false(auth_scope_allows(NULL, "Patient", false));
}

static void test_scope_subset(void **state)
{
	(void)state;
	const char *g = "system/Patient.read system/Observation.*";
	assert_true(auth_scope_subset("system/Patient.read", g));
	assert_true(auth_scope_subset("system/Observation.write system/Observation.read", g));
	assert_true(auth_scope_subset("system/Observation.cruds", g));
	assert_false(auth_scope_subset("system/Patient.write", g));
	assert_false(auth_scope_subset("system/*.read", g));
	assert_false(auth_scope_subset("system/Condition.read", g));
	assert_false(auth_scope_subset("garbage", g));
	assert_true(auth_scope_subset("system/Condition.read system/*.read", "system/*.*"));
	assert_false(auth_scope_subset("system/*.write", "system/*.read"));
}

static void test_jwt_scope_roundtrip(void **state)
{
	(void)state;
	struct auth *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->access_ttl_s = 900;
	static const unsigned char key[32] = "0123456789abcdef0123456789abcdef";
	auth_set_key(a, key, sizeof(key));
	int64_t now = 1700000000000;

	/* the longest scope we allow still makes a token that fits and verifies */
	struct auth_principal p = scoped("");
	size_t o = 0;
	while (o + 21 <= AUTH_SCOPE_MAX) {
		memcpy(p.scope + o, o ? " system/Patient.read" : "system/Patient.read ", 20);
		o += 20;
	}
	while (o && p.scope[o - 1] == ' ')
		o--;
	p.scope[o] = '\0';
	assert_true(auth_scope_valid(p.scope));
	char tok[AUTH_TOKEN_MAX];
	assert_int_equal(auth_jwt_sign(a, &p, now, tok), MC_OK);
	assert_true(strlen(tok) < AUTH_TOKEN_MAX);
	struct auth_principal got;
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &got), MC_OK);
	assert_string_equal(got.scope, p.scope);
	assert_true(auth_scope_allows(&got, "Patient", false));
	assert_false(auth_scope_allows(&got, "Observation", false));

	/* a user token carries no scope claim and is not narrowed */
	struct auth_principal u = scoped("");
	assert_int_equal(auth_jwt_sign(a, &u, now, tok), MC_OK);
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &got), MC_OK);
	assert_string_equal(got.scope, "");
	assert_null(strstr(tok, "c2NvcGU"));   /* base64url("scope") prefix absent */
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* ---- the grant, against a real store ---- */

struct add_ctx {
	const char *name, *scopes;
	char id[AUTH_CLIENT_ID_MAX], secret[AUTH_CLIENT_SECRET_MAX];
};

static int add_unit(struct store_txn *t, void *arg)
{
	struct add_ctx *c = arg;
	return auth_oauth_client_add(t, c->name, c->scopes, c->id, c->secret);
}

static void test_client_credentials(void **state)
{
	(void)state;
	char dir[] = "/tmp/medcore-ops-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char url[160], path[128];
	snprintf(path, sizeof(path), "%s/t.db", dir);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct store *s = NULL;
	assert_int_equal(store_open(url, &s), MC_OK);
	int applied = 0;
	assert_int_equal(store_migrate(s, &applied), MC_OK);
	struct mc_config cfg;
	config_defaults(&cfg);
	cfg.login_workers = 1;
	struct auth *a = NULL;
	assert_int_equal(auth_create(&cfg, s, &a), MC_OK);

	struct add_ctx bad = {.name = "x", .scopes = "nonsense"};
	assert_int_equal(store_write(s, add_unit, &bad), MC_EINVAL);
	struct add_ctx noname = {.name = "", .scopes = "system/Patient.read"};
	assert_int_equal(store_write(s, add_unit, &noname), MC_EINVAL);
	struct add_ctx c = {.name = "lab", .scopes = "system/Patient.read   system/Observation.*"};
	assert_int_equal(store_write(s, add_unit, &c), MC_OK);
	assert_int_equal(strncmp(c.id, "mc-", 3), 0);
	assert_true(strlen(c.secret) >= 43);

	struct auth_token_grant g;
	const char *err = NULL;
	assert_int_equal(auth_client_credentials(a, c.id, c.secret, NULL, NULL, &g, &err), MC_OK);
	assert_null(err);
	assert_string_equal(g.scope, "system/Patient.read system/Observation.*");
	assert_int_equal(g.expires_in, 900);
	struct auth_principal p;
	assert_int_equal(auth_token_verify(a, g.access_token, &p), MC_OK);
	assert_int_equal(p.role, ROLE_INTEGRATION);
	assert_string_equal(p.username, c.id);
	assert_string_equal(p.scope, g.scope);

	assert_int_equal(auth_client_credentials(a, c.id, c.secret, "system/Patient.read", NULL, &g, &err), MC_OK);
	assert_string_equal(g.scope, "system/Patient.read");

	assert_int_equal(auth_client_credentials(a, c.id, "wrong", NULL, NULL, &g, &err), MC_EUNAUTH);
	assert_string_equal(err, "invalid_client");
	assert_int_equal(auth_client_credentials(a, "mc-unknown", c.secret, NULL, NULL, &g, &err), MC_EUNAUTH);
	assert_string_equal(err, "invalid_client");
	assert_int_equal(auth_client_credentials(a, c.id, "", NULL, NULL, &g, &err), MC_EUNAUTH);
	assert_int_equal(auth_client_credentials(a, NULL, NULL, NULL, NULL, &g, &err), MC_EUNAUTH);
	assert_int_equal(auth_client_credentials(a, c.id, c.secret, "system/Condition.read", NULL, &g, &err), MC_EINVAL);
	assert_string_equal(err, "invalid_scope");
	assert_int_equal(auth_client_credentials(a, c.id, c.secret, "system/*.read", NULL, &g, &err), MC_EINVAL);
	assert_int_equal(auth_client_credentials(a, c.id, c.secret, "bogus", NULL, &g, &err), MC_EINVAL);

	/* no password login for the backing user */
	struct auth_session *sess = calloc(1, sizeof(*sess));
	const char *detail = NULL;
	assert_int_equal(auth_login(a, c.id, c.secret, NULL, NULL, sess, &detail), MC_EUNAUTH);
	free(sess);

	auth_destroy(a);
	store_close(s);
	config_release(&cfg);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- $validate ---- */

static json_t *parse(const char *txt)
{
	json_t *j = NULL;
	assert_int_equal(mcjson_parse(txt, strlen(txt), &j, NULL), MC_OK);
	return j;
}

static const char *first_sev(json_t *oo)
{
	return mcjson_str(json_array_get(json_object_get(oo, "issue"), 0), "severity");
}

static void test_validate_outcome(void **state)
{
	(void)state;
	json_t *good = parse("{\"resourceType\":\"Patient\",\"id\":\"a1\",\"gender\":\"male\",\"birthDate\":\"1970-01-01\"}");
	json_t *oo = fhir_validate_outcome(good, "Patient", NULL, NULL);
	assert_string_equal(mcjson_str(oo, "resourceType"), "OperationOutcome");
	assert_string_equal(first_sev(oo), "information");
	json_decref(oo);
	oo = fhir_validate_outcome(good, "Patient", "a1", "update");
	assert_string_equal(first_sev(oo), "information");
	json_decref(oo);
	oo = fhir_validate_outcome(good, "Patient", "other", "update");   /* id mismatch */
	assert_string_equal(first_sev(oo), "error");
	json_decref(oo);
	oo = fhir_validate_outcome(good, "Observation", NULL, NULL);        /* wrong type */
	assert_string_equal(first_sev(oo), "error");
	json_decref(oo);
	oo = fhir_validate_outcome(good, "Patient", NULL, "destroy");       /* bad mode */
	assert_string_equal(first_sev(oo), "error");
	json_decref(oo);
	oo = fhir_validate_outcome(NULL, "Patient", "a1", "delete");        /* delete needs no body */
	assert_string_equal(first_sev(oo), "information");
	json_decref(oo);
	json_decref(good);

	json_t *bad = parse("{\"resourceType\":\"Patient\",\"gender\":\"robot\",\"unknownThing\":1,"
			    "\"birthDate\":\"1970-13-45\"}");
	oo = fhir_validate_outcome(bad, "Patient", NULL, NULL);
	json_t *issues = json_object_get(oo, "issue");
	assert_true(json_array_size(issues) >= 3);
	for (size_t i = 0; i < json_array_size(issues); i++)
		assert_string_equal(mcjson_str(json_array_get(issues, i), "severity"), "error");
	json_decref(oo);
	json_decref(bad);

	json_t *arr = parse("[1,2]");
	oo = fhir_validate_outcome(arr, "Patient", NULL, NULL);
	assert_string_equal(first_sev(oo), "error");
	json_decref(oo);
	json_decref(arr);
}

/* ---- export helpers ---- */

static void test_export_names_and_dir(void **state)
{
	(void)state;
	assert_true(fhir_export_file_name_valid("Patient.ndjson"));
	assert_true(fhir_export_file_name_valid("Observation.2.ndjson"));
	assert_true(fhir_export_file_name_valid("Observation.123456.ndjson"));
	assert_false(fhir_export_file_name_valid("Observation.0.ndjson"));
	assert_false(fhir_export_file_name_valid("observation.ndjson"));
	assert_false(fhir_export_file_name_valid("../x.ndjson"));
	assert_false(fhir_export_file_name_valid("Patient.ndjson/"));
	assert_false(fhir_export_file_name_valid("Patient.json"));
	assert_false(fhir_export_file_name_valid(".ndjson"));
	assert_false(fhir_export_file_name_valid("Patient..ndjson"));
	assert_false(fhir_export_file_name_valid(NULL));

	struct mc_config cfg;
	config_defaults(&cfg);
	char out[256];
	free(cfg.db);
	cfg.db = strdup("sqlite:/var/lib/medcore/m.db");
	assert_int_equal(fhir_export_dir(&cfg, out, sizeof(out)), MC_OK);
	assert_string_equal(out, "/var/lib/medcore/m.db-export");
	free(cfg.export_dir);
	cfg.export_dir = strdup("/srv/exports");
	assert_int_equal(fhir_export_dir(&cfg, out, sizeof(out)), MC_OK);
	assert_string_equal(out, "/srv/exports");
	char tiny[4];
	assert_int_equal(fhir_export_dir(&cfg, tiny, sizeof(tiny)), MC_ETOOBIG);
	free(cfg.export_dir);
	cfg.export_dir = strdup("");
	free(cfg.db);
	cfg.db = strdup("postgres://x");
	assert_int_equal(fhir_export_dir(&cfg, out, sizeof(out)), MC_OK);
	assert_string_equal(out, "medcore-export");
	config_release(&cfg);
	fhir_export_shutdown();   /* never started: a no-op */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scope_valid),	    cmocka_unit_test(test_scope_allows),
		cmocka_unit_test(test_scope_subset),	    cmocka_unit_test(test_jwt_scope_roundtrip),
		cmocka_unit_test(test_client_credentials), cmocka_unit_test(test_validate_outcome),
		cmocka_unit_test(test_export_names_and_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
