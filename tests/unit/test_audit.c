/* tests/unit/test_audit.c — the audit hash chain: append, verify, and detection of edited,
 * removed and reordered records (tampering done with sqlite3 directly); async append; the
 * AuditEvent view of a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>

#include "audit/audit.h"
#include "core/err.h"
#include "core/log.h"
#include "modules/audit/audit_routes.h"
#include "store/store.h"

struct fx {
	char dir[64], path[96], url[128];
	struct store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_audit.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/t.db", f->dir);
	snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	int applied = 0;
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

struct batch {
	int n, first;
};

static int append_unit(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	for (int i = 0; i < b->n; i++) {
		char rid[32];
		snprintf(rid, sizeof(rid), "obs-%d", b->first + i);
		struct audit_rec r = {.user_id = 7, .username = "dr.a", .role = "doctor", .action = i % 2 ? "read" : "create",
				      .resource_type = "Observation", .resource_id = rid, .patient_id = "pat-1",
				      .outcome = i % 2 ? 200 : 201, .request_id = "rq", .client_ip = "10.0.0.1",
				      .reason = i == 3 ? "" : NULL};
		int rc = audit_append(t, &r);
		if (rc)
			return rc;
	}
	return MC_OK;
}

static void append_n(struct fx *f, int n)
{
	struct batch b = {.n = n, .first = 1};
	assert_int_equal(store_write(f->s, append_unit, &b), MC_OK);
}

static int failing_unit(struct store_txn *t, void *arg)
{
	append_unit(t, arg);
	return MC_ECONFLICT;   /* rolled back: its records must not break the chain */
}

/* Run SQL straight on the file (the store is closed around it so nothing is cached). */
static void tamper(struct fx *f, const char *sql)
{
	store_close(f->s);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fprintf(stderr, "tamper: %s\n", err ? err : "?");
	sqlite3_free(err);
	assert_int_equal(rc, SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
}

static void expect_broken(struct fx *f, int64_t seq)
{
	int64_t n = -1, bad = -1;
	char why[96] = "";
	assert_int_equal(audit_verify(f->s, &n, &bad, why, sizeof(why)), MC_ECONFLICT);
	assert_int_equal(bad, seq);
	assert_int_equal(n, seq - 1);
	assert_true(why[0] != '\0');
}

static void test_empty_and_intact(void **state)
{
	struct fx *f = *state;
	int64_t n = -1, bad = -1;
	assert_int_equal(audit_verify(f->s, &n, &bad, NULL, 0), MC_OK);
	assert_int_equal(n, 0);
	append_n(f, 5);
	struct batch b = {.n = 3, .first = 100};
	assert_int_equal(store_write(f->s, failing_unit, &b), MC_ECONFLICT);
	append_n(f, 5);
	assert_int_equal(audit_verify(f->s, &n, &bad, NULL, 0), MC_OK);
	assert_int_equal(n, 10);
	assert_int_equal(bad, -1);
}

static void test_edit_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 10);
	tamper(f, "UPDATE audit SET action = 'read' WHERE seq = 5");   /* record 5 was a create */
	expect_broken(f, 5);
}

static void test_edit_with_rehash_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 10);
	/* the forger also replaces the hash of record 4 — record 5's prev_hash no longer matches */
	tamper(f, "UPDATE audit SET outcome = 500, hash = randomblob(32) WHERE seq = 4");
	expect_broken(f, 4);
	tamper(f, "UPDATE audit SET hash = (SELECT prev_hash FROM audit WHERE seq = 5) WHERE seq = 4");
	expect_broken(f, 4);   /* hash(4) restored, but its content still differs */
}

static void test_null_vs_empty(void **state)
{
	struct fx *f = *state;
	append_n(f, 6);   /* record 4 has reason "" */
	tamper(f, "UPDATE audit SET reason = NULL WHERE seq = 4");
	expect_broken(f, 4);
}

static void test_delete_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 10);
	tamper(f, "DELETE FROM audit WHERE seq = 6");
	expect_broken(f, 6);
}

static void test_delete_first_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 3);
	tamper(f, "DELETE FROM audit WHERE seq = 1");
	expect_broken(f, 1);
}

static void test_swap_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 10);
	tamper(f, "UPDATE audit SET seq = -3 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 7; "
		  "UPDATE audit SET seq = 7 WHERE seq = -3;");
	expect_broken(f, 3);
}

static void test_resequence_detected(void **state)
{
	struct fx *f = *state;
	append_n(f, 5);
	/* remove record 3 and renumber the rest to hide the gap */
	tamper(f, "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3;");
	expect_broken(f, 3);
}

static void test_async(void **state)
{
	struct fx *f = *state;
	append_n(f, 2);
	char big[6000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 20; i++) {
		char rid[16];
		snprintf(rid, sizeof(rid), "p%d", i);
		struct audit_rec r = {.action = "read", .resource_type = "Patient", .resource_id = rid,
				      .patient_id = rid, .outcome = 200, .reason = i == 0 ? big : NULL};
		assert_int_equal(audit_append_async(f->s, &r), MC_OK);
		rid[0] = 'Z';   /* the record was copied */
	}
	store_close(f->s);   /* drains the writer */
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	int64_t n = 0;
	assert_int_equal(audit_verify(f->s, &n, NULL, NULL, 0), MC_OK);
	assert_int_equal(n, 22);
}

static void test_event_json(void **state)
{
	(void)state;
	struct audit_row a = {.seq = 12, .ts_ms = 1700000000123, .user_id = 7, .username = "dr.a", .role = "doctor",
			      .action = "update", .resource_type = "Observation", .resource_id = "o1",
			      .patient_id = "pat-1", .outcome = 200, .client_ip = "10.0.0.1"};
	json_t *ev = audit_event_json(&a);
	assert_string_equal(json_string_value(json_object_get(ev, "resourceType")), "AuditEvent");
	assert_string_equal(json_string_value(json_object_get(ev, "id")), "12");
	assert_string_equal(json_string_value(json_object_get(ev, "action")), "U");
	assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "0");
	assert_string_equal(json_string_value(json_object_get(ev, "recorded")), "2023-11-14T22:13:20.123Z");
	json_t *ent = json_object_get(ev, "entity");
	assert_int_equal(json_array_size(ent), 2);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ent, 0), "what"), "reference")),
			    "Observation/o1");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ent, 1), "what"), "reference")),
			    "Patient/pat-1");
	json_t *agent = json_array_get(json_object_get(ev, "agent"), 0);
	assert_string_equal(json_string_value(json_object_get(json_object_get(agent, "who"), "display")), "dr.a");
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(ev, "source"), "observer"),
							      "display")),
			    "medcore");
	json_decref(ev);

	struct audit_row b = {.seq = 1, .action = "break-glass", .outcome = 403, .reason = "emergency"};
	ev = audit_event_json(&b);
	assert_string_equal(json_string_value(json_object_get(ev, "action")), "E");
	assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "4");
	assert_non_null(json_object_get(ev, "purposeOfEvent"));
	assert_null(json_object_get(ev, "entity"));
	json_decref(ev);
	struct audit_row c = {.seq = 2, .action = "delete", .outcome = 503};
	ev = audit_event_json(&c);
	assert_string_equal(json_string_value(json_object_get(ev, "action")), "D");
	assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "8");
	json_decref(ev);
}

int main(void)
{
	log_min_level = LOG_OFF;
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_and_intact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_edit_with_rehash_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_vs_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_first_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swap_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resequence_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_async, setup, teardown),
		cmocka_unit_test(test_event_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
