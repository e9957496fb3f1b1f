/* tests/unit/test_read_path.c — the read-path caches and batching must decide exactly as the
 * uncached code: the per-thread verified-token cache (auth/token.c: a cached token still expires,
 * a tampered token never hits, a new key invalidates), the batched read-audit drain (audit/audit.c:
 * one chain-head read per batch, the chain still verifies, mixed with synchronous appends), and
 * request ids (http/dispatch.c: unique, same form as before). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit/audit.h"
#include "auth/auth_int.h"
#include "core/arena.h"
#include "core/err.h"
#include "http/app.h"
#include "http/http_int.h"
#include "store/store.h"

/* ---- verified-token cache ---------------------------------------------------------------------- */

static struct auth *key_auth(const char *key)
{
	struct auth *a = calloc(1, sizeof(*a));
	a->access_ttl_s = 900;
	auth_set_key(a, (const unsigned char *)key, strlen(key));
	return a;
}

static struct auth_principal principal(enum auth_role role, int64_t uid)
{
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	p.user_id = uid;
	p.role = role;
	snprintf(p.username, sizeof(p.username), "user%lld", (long long)uid);
	return p;
}

static void test_token_cache_same_answer(void **state)
{
	(void)state;
	struct auth *a = key_auth("0123456789abcdef0123456789abcdef");
	struct auth_principal p = principal(ROLE_DOCTOR, 7), q1, q2;
	snprintf(p.scope, sizeof(p.scope), "system/Patient.read");
	int64_t now = 1700000000000;
	char tok[AUTH_TOKEN_MAX];
	assert_int_equal(auth_jwt_sign(a, &p, now, tok), MC_OK);
	memset(&q1, 0x11, sizeof(q1));
	memset(&q2, 0x22, sizeof(q2));
	assert_int_equal(auth_jwt_verify(a, tok, now + 1000, false, &q1), MC_OK);   /* miss: full check */
	assert_int_equal(auth_jwt_verify(a, tok, now + 2000, false, &q2), MC_OK);   /* hit */
	assert_int_equal(q2.user_id, 7);
	assert_int_equal(q2.role, ROLE_DOCTOR);
	assert_int_equal(q2.perms, auth_role_perms(ROLE_DOCTOR));
	assert_string_equal(q2.username, "user7");
	assert_string_equal(q2.scope, "system/Patient.read");
	assert_int_equal(q1.expires_ms, q2.expires_ms);
	assert_memory_equal(&q1, &q2, offsetof(struct auth_principal, scope) + strlen(q1.scope) + 1);

	/* a cached token still expires, and is not valid before it was issued (clock skew 60 s) */
	memset(&q2, 0x5a, sizeof(q2));
	assert_int_equal(auth_jwt_verify(a, tok, now + 900 * 1000, false, &q2), MC_EUNAUTH);
	assert_int_equal(q2.user_id, 0x5a5a5a5a5a5a5a5a);   /* nothing filled on failure */
	assert_int_equal(auth_jwt_verify(a, tok, now - 120 * 1000, false, &q2), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, tok, now + 899 * 1000, false, &q2), MC_OK);
	free(a);
}

static void test_token_cache_tampering(void **state)
{
	(void)state;
	struct auth *a = key_auth("0123456789abcdef0123456789abcdef");
	struct auth_principal p = principal(ROLE_NURSE, 42), adm = principal(ROLE_ADMIN, 42), q;
	int64_t now = 1700000000000;
	char tok[AUTH_TOKEN_MAX], other[AUTH_TOKEN_MAX], bad[AUTH_TOKEN_MAX];
	assert_int_equal(auth_jwt_sign(a, &p, now, tok), MC_OK);
	assert_int_equal(auth_jwt_sign(a, &adm, now, other), MC_OK);
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &q), MC_OK);   /* cached now */
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &q), MC_OK);

	/* the admin claims under the cached token's (valid) signature: same slot, must not hit */
	char *t2 = strchr(strchr(tok, '.') + 1, '.');
	char *o2 = strchr(strchr(other, '.') + 1, '.');
	snprintf(bad, sizeof(bad), "%.*s%s", (int)(o2 - other), other, t2);
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* a prefix, and the token with one more character */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[strlen(bad) - 1] = '\0';
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	size_t tl = strlen(tok);
	memcpy(bad, tok, tl);
	bad[tl] = 'A';
	bad[tl + 1] = '\0';
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* one flipped character in the claims */
	snprintf(bad, sizeof(bad), "%s", tok);
	size_t ci = strlen("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.") + 3;
	bad[ci] = bad[ci] == 'A' ? 'B' : 'A';
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* the genuine token still verifies, and still as the nurse */
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &q), MC_OK);
	assert_int_equal(q.role, ROLE_NURSE);

	/* another auth (other key) never sees a's cache entry */
	struct auth *b = key_auth("another key, also 32 bytes long!");
	assert_int_equal(auth_jwt_verify(b, tok, now, false, &q), MC_EUNAUTH);
	/* the same auth re-keyed: the cached token is no longer valid */
	auth_set_key(a, (const unsigned char *)"a third key that is 32 bytes ok!", 32);
	assert_int_equal(auth_jwt_verify(a, tok, now, false, &q), MC_EUNAUTH);
	free(a);
	free(b);
}

static void test_token_cache_many(void **state)
{
	(void)state;
	/* more tokens than cache slots, verified round-robin: evictions never change an answer */
	struct auth *a = key_auth("0123456789abcdef0123456789abcdef");
	int64_t now = 1700000000000;
	enum { N = 40 };
	char (*tok)[AUTH_TOKEN_MAX] = calloc(N, AUTH_TOKEN_MAX);
	for (int i = 0; i < N; i++) {
		struct auth_principal p = principal(i % 2 ? ROLE_NURSE : ROLE_DOCTOR, 100 + i);
		assert_int_equal(auth_jwt_sign(a, &p, now, tok[i]), MC_OK);
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			struct auth_principal q;
			assert_int_equal(auth_jwt_verify(a, tok[i], now + round * 1000, false, &q), MC_OK);
			assert_int_equal(q.user_id, 100 + i);
			assert_int_equal(q.role, i % 2 ? ROLE_NURSE : ROLE_DOCTOR);
		}
	}
	/* junk never verifies, cached or not */
	struct auth_principal q;
	assert_int_equal(auth_jwt_verify(a, NULL, now, false, &q), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, "", now, false, &q), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..", now, false, &q), MC_EUNAUTH);
	free(tok);
	free(a);
}

/* ---- batched read-audit drain ------------------------------------------------------------------ */

struct fx {
	char dir[64], url[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_read_path.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	int applied = 0;
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->s) {
		store_close(f->s);
		audit_async_forget(f->s);
	}
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int sync_unit(struct store_txn *t, void *arg)
{
	return audit_append(t, arg);
}

struct count {
	int64_t n, reads, nulls;
};

static int count_unit(struct store_txn *t, void *arg)
{
	struct count *c = arg;
	int rc = store_query_int(t, "SELECT count(*) FROM audit", NULL, 0, &c->n);
	rc = rc ? rc : store_query_int(t, "SELECT count(*) FROM audit WHERE action = 'read'", NULL, 0, &c->reads);
	return rc ? rc : store_query_int(t, "SELECT count(*) FROM audit WHERE patient_id IS NULL", NULL, 0, &c->nulls);
}

static void test_async_batches_chain(void **state)
{
	struct fx *f = *state;
	/* async records in bursts (batches of many records), synchronous appends in between: the
	 * chain must stay dense and verify */
	int total = 0;
	for (int burst = 0; burst < 5; burst++) {
		for (int i = 0; i < 300; i++) {
			char pid[32], rid[32];
			snprintf(pid, sizeof(pid), "p-%d", i % 17);
			snprintf(rid, sizeof(rid), "req-%d-%d", burst, i);
			struct audit_rec r = {.user_id = 5, .username = "integration", .role = "integration",
					      .action = "read", .resource_type = "Patient", .resource_id = pid,
					      .patient_id = i % 10 ? pid : NULL, .outcome = 200, .request_id = rid,
					      .client_ip = "127.0.0.1"};
			assert_int_equal(audit_append_async(f->s, &r), MC_OK);
			total++;
		}
		struct audit_rec w = {.user_id = 1, .username = "admin", .role = "admin", .action = "update",
				      .resource_type = "Patient", .resource_id = "p-1", .patient_id = "p-1",
				      .outcome = 200, .request_id = "w"};
		assert_int_equal(store_write(f->s, sync_unit, &w), MC_OK);
		total++;
	}
	/* store_close runs every queued drain; reopen to look */
	store_close(f->s);
	audit_async_forget(f->s);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	int64_t checked = 0, bad = 0;
	char why[128] = "";
	assert_int_equal(audit_verify(f->s, &checked, &bad, why, sizeof(why)), MC_OK);
	assert_int_equal(checked, total);
	struct count c = {0};
	assert_int_equal(store_read(f->s, count_unit, &c), MC_OK);
	assert_int_equal(c.n, total);
	assert_int_equal(c.reads, 5 * 300);
	assert_int_equal(c.nulls, 5 * 30);   /* NULL stays NULL (not "") */
}

/* ---- request ids ------------------------------------------------------------------------------- */

static const char *no_header(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_request_ids(void **state)
{
	(void)state;
	struct http_service svc;
	memset(&svc, 0, sizeof(svc));
	struct router *rt = NULL;
	char err[128];
	assert_int_equal(router_build(NULL, 0, &rt, err, sizeof(err)), MC_OK);
	svc.router = rt;
	struct http_exchange ex = {.header = no_header};
	enum { N = 2000 };
	char **ids = calloc(N, sizeof(*ids));
	struct http_call *call = calloc(1, sizeof(*call));
	for (int i = 0; i < N; i++) {
		struct arena *a = arena_create();
		http_call_begin(&svc, call, a, "GET", "/nowhere", &ex, "127.0.0.1");
		const char *id = call->req.request_id;
		assert_non_null(id);
		assert_int_equal(strlen(id), 16);
		for (const char *p = id; *p; p++)
			assert_true((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				    *p == '-' || *p == '_');
		ids[i] = strdup(id);
		buf_release(&call->rep.body);
		arena_destroy(a);
	}
	qsort(ids, N, sizeof(*ids), cmp_str);
	for (int i = 1; i < N; i++)
		assert_true(strcmp(ids[i - 1], ids[i]) != 0);
	for (int i = 0; i < N; i++)
		free(ids[i]);
	free(ids);
	free(call);
	router_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_cache_same_answer),
		cmocka_unit_test(test_token_cache_tampering),
		cmocka_unit_test(test_token_cache_many),
		cmocka_unit_test_setup_teardown(test_async_batches_chain, setup, teardown),
		cmocka_unit_test(test_request_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
