/* tests/unit/test_auth.c — auth/: role table, policy, password policy, JWT, TOTP, and (on a
 * temporary SQLite database) login, lockout, MFA, refresh rotation, break-the-glass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <liboath/oath.h>

#include "audit/audit.h"
#include "auth/auth_int.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "store/store.h"

/* ---- pure: roles and permissions ---------------------------------------------------------------- */

static void test_role_table(void **state)
{
	(void)state;
	for (int r = 0; r < ROLE__COUNT; r++) {
		uint64_t p = auth_role_perms((enum auth_role)r);
		assert_true(p & PERM_BIT(PERM_SELF));
		if (r != ROLE_ADMIN)
			assert_false(p & PERM_BIT(PERM_ADMIN_USERS));
		assert_false(p & PERM_BIT(PERM__COUNT));   /* the "none" permission */
		enum auth_role back;
		assert_int_equal(auth_role_parse(auth_role_name((enum auth_role)r), &back), MC_OK);
		assert_int_equal(back, r);
	}
	assert_true(auth_role_perms(ROLE_ADMIN) & PERM_BIT(PERM_ADMIN_USERS));
	assert_false(auth_role_perms(ROLE_ADMIN) & PERM_BIT(PERM_READ_PATIENT_DATA));
	assert_false(auth_role_perms(ROLE_RECEPTIONIST) & PERM_BIT(PERM_READ_PATIENT_DATA));
	assert_true(auth_role_perms(ROLE_RECEPTIONIST) & PERM_BIT(PERM_WRITE_DEMOGRAPHICS));
	assert_true(auth_role_perms(ROLE_DOCTOR) & PERM_BIT(PERM_PRESCRIBE_MEDICATION));
	assert_false(auth_role_perms(ROLE_NURSE) & PERM_BIT(PERM_PRESCRIBE_MEDICATION));
	assert_true(auth_role_perms(ROLE_AUDITOR) & PERM_BIT(PERM_READ_AUDIT));
	assert_false(auth_role_perms(ROLE_DOCTOR) & PERM_BIT(PERM_READ_AUDIT));
	assert_false(auth_role_perms(ROLE_PATIENT) & PERM_BIT(PERM_WRITE_PATIENT_DATA));
	assert_int_equal(auth_role_perms((enum auth_role)99), 0);
	enum auth_role r;
	enum auth_perm p;
	assert_int_equal(auth_role_parse("root", &r), MC_EINVAL);
	assert_int_equal(auth_role_parse(NULL, &r), MC_EINVAL);
	assert_int_equal(auth_role_parse("Admin", &r), MC_EINVAL);
	assert_int_equal(auth_perm_parse("read:audit", &p), MC_OK);
	assert_int_equal(p, PERM_READ_AUDIT);
	assert_int_equal(auth_perm_parse("read:everything", &p), MC_EINVAL);
	assert_string_equal(auth_perm_name(PERM__COUNT), "none");
	assert_true(auth_role_is_clinician(ROLE_LAB_TECH));
	assert_false(auth_role_is_clinician(ROLE_RECEPTIONIST));
}

static void test_fhir_perm(void **state)
{
	(void)state;
	assert_int_equal(auth_fhir_perm("Patient", false), PERM_READ_DEMOGRAPHICS);
	assert_int_equal(auth_fhir_perm("Appointment", true), PERM_WRITE_DEMOGRAPHICS);
	assert_int_equal(auth_fhir_perm("Observation", false), PERM_READ_PATIENT_DATA);
	assert_int_equal(auth_fhir_perm("MedicationRequest", true), PERM_WRITE_PATIENT_DATA);
	assert_int_equal(auth_fhir_perm("AuditEvent", false), PERM_READ_AUDIT);
	assert_int_equal(auth_fhir_perm("AuditEvent", true), PERM__COUNT);
	struct auth_principal admin = {.role = ROLE_ADMIN, .perms = auth_role_perms(ROLE_ADMIN)};
	assert_false(auth_has(&admin, auth_fhir_perm("AuditEvent", true)));
	assert_int_equal(auth_fhir_perm(NULL, false), PERM_READ_PATIENT_DATA);
}

static struct auth_principal who(enum auth_role r, int64_t id, const char *pid)
{
	struct auth_principal p = {.user_id = id, .role = r, .perms = auth_role_perms(r)};
	snprintf(p.username, sizeof(p.username), "user%lld", (long long)id);
	snprintf(p.patient_id, sizeof(p.patient_id), "%s", pid ? pid : "");
	return p;
}

static void test_scope(void **state)
{
	(void)state;
	struct auth_principal pat = who(ROLE_PATIENT, 1, "p1"), doc = who(ROLE_DOCTOR, 2, NULL),
			      rec = who(ROLE_RECEPTIONIST, 3, NULL), bil = who(ROLE_BILLING, 4, NULL),
			      adm = who(ROLE_ADMIN, 5, NULL), integ = who(ROLE_INTEGRATION, 6, NULL),
			      nopid = who(ROLE_PATIENT, 7, NULL);
	assert_int_equal(auth_patient_scope(&pat, AUTH_CLINICAL_READ), AUTH_SCOPE_OWN);
	assert_int_equal(auth_patient_scope(&pat, AUTH_CLINICAL_WRITE), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&nopid, AUTH_CLINICAL_READ), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&doc, AUTH_CLINICAL_WRITE), AUTH_SCOPE_CARE);
	assert_int_equal(auth_patient_scope(&rec, AUTH_DEMOGRAPHICS_WRITE), AUTH_SCOPE_ALL);
	assert_int_equal(auth_patient_scope(&rec, AUTH_CLINICAL_READ), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&bil, AUTH_DEMOGRAPHICS_READ), AUTH_SCOPE_ALL);
	assert_int_equal(auth_patient_scope(&bil, AUTH_DEMOGRAPHICS_WRITE), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&adm, AUTH_CLINICAL_READ), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&adm, AUTH_DEMOGRAPHICS_READ), AUTH_SCOPE_NONE);
	assert_int_equal(auth_patient_scope(&integ, AUTH_CLINICAL_WRITE), AUTH_SCOPE_ALL);
	assert_int_equal(auth_patient_scope(NULL, AUTH_CLINICAL_READ), AUTH_SCOPE_NONE);
	/* No database needed for these answers. */
	assert_int_equal(auth_patient_access(NULL, &pat, "p1", AUTH_CLINICAL_READ, NULL), MC_OK);
	assert_int_equal(auth_patient_access(NULL, &pat, "p2", AUTH_CLINICAL_READ, NULL), MC_EFORBIDDEN);
	assert_int_equal(auth_patient_access(NULL, &rec, "p2", AUTH_CLINICAL_READ, NULL), MC_EFORBIDDEN);
	assert_int_equal(auth_patient_access(NULL, &rec, "p2", AUTH_DEMOGRAPHICS_READ, NULL), MC_OK);
	assert_int_equal(auth_patient_access(NULL, &integ, "p2", AUTH_CLINICAL_WRITE, NULL), MC_OK);
	assert_int_equal(auth_patient_access(NULL, &integ, "", AUTH_CLINICAL_WRITE, NULL), MC_EFORBIDDEN);
}

static void test_password_policy(void **state)
{
	(void)state;
	const char *why = NULL;
	assert_int_equal(auth_password_policy("Correct-Horse-9", &why), MC_OK);
	assert_int_equal(auth_password_policy("Sh0rt!pass", &why), MC_EINVAL);   /* 10 chars */
	assert_non_null(why);
	assert_int_equal(auth_password_policy("nouppercase-123", &why), MC_EINVAL);
	assert_int_equal(auth_password_policy("NoDigitsHere-!!", &why), MC_EINVAL);
	assert_int_equal(auth_password_policy("NoSpecials12345", &why), MC_EINVAL);
	assert_int_equal(auth_password_policy(NULL, &why), MC_EINVAL);
	assert_int_equal(auth_password_policy("", NULL), MC_EINVAL);
	char big[AUTH_PASSWORD_MAX + 10];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[0] = '1';
	big[1] = '!';
	assert_int_equal(auth_password_policy(big, &why), MC_EINVAL);
	assert_true(auth_username_valid("dr.who@example"));
	assert_false(auth_username_valid("ab"));
	assert_false(auth_username_valid("has space"));
	assert_false(auth_username_valid("semi;colon"));
	assert_false(auth_username_valid(NULL));
}

static void test_password_hash_verify(void **state)
{
	(void)state;
	char h[AUTH_PWHASH_MAX];
	assert_int_equal(auth_password_hash(NULL, "Correct-Horse-9", h), MC_OK);
	assert_int_equal(auth_password_verify(NULL, h, "Correct-Horse-9"), MC_OK);
	assert_int_equal(auth_password_verify(NULL, h, "correct-Horse-9"), MC_EUNAUTH);
	assert_int_equal(auth_password_verify(NULL, "garbage", "x"), MC_EUNAUTH);
	assert_int_equal(auth_password_verify(NULL, auth_dummy_hash, "anything"), MC_EUNAUTH);
}

/* ---- JWT (no database: check_user = false) ------------------------------------------------------ */

static struct auth *key_only_auth(void)
{
	struct auth *a = calloc(1, sizeof(*a));
	a->access_ttl_s = 900;
	auth_set_key(a, (const unsigned char *)"0123456789abcdef0123456789abcdef", 32);
	return a;
}

static void test_jwt(void **state)
{
	(void)state;
	struct auth *a = key_only_auth();
	struct auth_principal p = who(ROLE_NURSE, 42, NULL), q;
	snprintf(p.practitioner_id, sizeof(p.practitioner_id), "prac-1");
	int64_t now = 1700000000000;
	char tok[AUTH_TOKEN_MAX];
	assert_int_equal(auth_jwt_sign(a, &p, now, tok), MC_OK);
	assert_true(!strncmp(tok, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37));
	assert_int_equal(auth_jwt_verify(a, tok, now + 1000, false, &q), MC_OK);
	assert_int_equal(q.user_id, 42);
	assert_string_equal(q.username, "user42");
	assert_int_equal(q.role, ROLE_NURSE);
	assert_int_equal(q.perms, auth_role_perms(ROLE_NURSE));
	assert_string_equal(q.practitioner_id, "prac-1");
	assert_string_equal(q.patient_id, "");
	assert_int_equal(q.expires_ms, (now / 1000 + 900) * 1000);

	/* expired, and not yet issued */
	memset(&q, 0x5a, sizeof(q));
	assert_int_equal(auth_jwt_verify(a, tok, now + 900 * 1000, false, &q), MC_EUNAUTH);
	assert_int_equal(q.user_id, 0x5a5a5a5a5a5a5a5a);   /* nothing filled on failure */
	assert_int_equal(auth_jwt_verify(a, tok, now - 120 * 1000, false, &q), MC_EUNAUTH);

	char *dot1 = strchr(tok, '.'), *dot2 = strchr(dot1 + 1, '.');
	char bad[AUTH_TOKEN_MAX];
	/* tampered signature */
	snprintf(bad, sizeof(bad), "%s", tok);
	size_t si = (size_t)(dot2 - tok) + 5;
	bad[si] = bad[si] == 'A' ? 'B' : 'A';
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* truncated signature */
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[strlen(bad) - 2] = '\0';
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* tampered header: alg none */
	snprintf(bad, sizeof(bad), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%s", dot1);
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* tampered claims: the same claims with role admin, old signature */
	struct auth_principal adm = p;
	adm.role = ROLE_ADMIN;
	char other[AUTH_TOKEN_MAX];
	assert_int_equal(auth_jwt_sign(a, &adm, now, other), MC_OK);
	char *o1 = strchr(other, '.'), *o2 = strchr(o1 + 1, '.');
	snprintf(bad, sizeof(bad), "%.*s%s", (int)(o2 - other), other, dot2);
	assert_int_equal(auth_jwt_verify(a, bad, now, false, &q), MC_EUNAUTH);
	/* a different key */
	struct auth *b = key_only_auth();
	auth_set_key(b, (const unsigned char *)"another key, also 32 bytes long!", 32);
	assert_int_equal(auth_jwt_verify(b, tok, now, false, &q), MC_EUNAUTH);
	/* junk */
	assert_int_equal(auth_jwt_verify(a, NULL, now, false, &q), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, "", now, false, &q), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, "a.b.c", now, false, &q), MC_EUNAUTH);
	assert_int_equal(auth_jwt_verify(a, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..", now, false, &q), MC_EUNAUTH);
	char *huge = malloc(5000);
	memset(huge, 'a', 4999);
	huge[4999] = '\0';
	assert_int_equal(auth_jwt_verify(a, huge, now, false, &q), MC_EUNAUTH);
	free(huge);
	free(a);
	free(b);
}

/* ---- TOTP: RFC 6238 appendix B (SHA-1 secret "12345678901234567890"), 6 digits ------------------ */

static void test_totp(void **state)
{
	(void)state;
	const unsigned char *k = (const unsigned char *)"12345678901234567890";
	int64_t step = 0;
	assert_int_equal(auth_totp_check(k, 20, 59, "287082", 0, &step), MC_OK);   /* 94287082 */
	assert_int_equal(step, 1);
	assert_int_equal(auth_totp_check(k, 20, 59, "287082", 1, &step), MC_EUNAUTH);   /* replay */
	assert_int_equal(auth_totp_check(k, 20, 1111111109, "081804", 0, &step), MC_OK);   /* 07081804 */
	assert_int_equal(step, 1111111109 / 30);
	assert_int_equal(auth_totp_check(k, 20, 1111111109, "081804", step, &step), MC_EUNAUTH);
	/* window: the code is still good one step later, not two */
	assert_int_equal(auth_totp_check(k, 20, 1111111109 + 30, "081804", 0, &step), MC_OK);
	assert_int_equal(auth_totp_check(k, 20, 1111111109 + 61, "081804", 0, &step), MC_EUNAUTH);
	assert_int_equal(auth_totp_check(k, 20, 1234567890, "005924", 0, &step), MC_OK);   /* 89005924 */
	assert_int_equal(auth_totp_check(k, 20, 1234567890, "005925", 0, &step), MC_EUNAUTH);
	assert_int_equal(auth_totp_check(k, 20, 1234567890, "00592", 0, &step), MC_EUNAUTH);
	assert_int_equal(auth_totp_check(k, 20, 1234567890, "0059244", 0, &step), MC_EUNAUTH);
	assert_int_equal(auth_totp_check(k, 20, 1234567890, "00592a", 0, &step), MC_EUNAUTH);
	assert_int_equal(auth_totp_check(k, 20, 1234567890, NULL, 0, &step), MC_EUNAUTH);

	struct auth *a = key_only_auth();
	char sealed[128];
	unsigned char back[64];
	size_t n = 0;
	assert_int_equal(auth_totp_seal(a, k, 20, sealed, sizeof(sealed)), MC_OK);
	assert_null(strstr(sealed, "1234567890"));
	assert_int_equal(auth_totp_open(a, sealed, back, sizeof(back), &n), MC_OK);
	assert_int_equal(n, 20);
	assert_memory_equal(back, k, 20);
	sealed[5] = sealed[5] == 'A' ? 'B' : 'A';
	assert_int_equal(auth_totp_open(a, sealed, back, sizeof(back), &n), MC_EINTERNAL);
	free(a);
}

/* ---- with a database ---------------------------------------------------------------------------- */

struct fx {
	char dir[64], url[128];
	struct mc_config cfg;
	struct store *s;
	struct auth *a;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_auth.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->url, sizeof(f->url), "sqlite:%s/t.db", f->dir);
	assert_int_equal(store_open(f->url, &f->s), MC_OK);
	int applied = 0;
	assert_int_equal(store_migrate(f->s, &applied), MC_OK);
	config_defaults(&f->cfg);
	f->cfg.lockout_threshold = 3;
	f->cfg.login_workers = 2;
	assert_int_equal(auth_create(&f->cfg, f->s, &f->a), MC_OK);
	auth_test_now_ms = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	auth_destroy(f->a);
	store_close(f->s);
	config_release(&f->cfg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	auth_test_now_ms = 0;
	return 0;
}

struct mk {
	const char *user, *hash, *pid;
	enum auth_role role;
	int64_t id;
};

static int mk_unit(struct store_txn *t, void *arg)
{
	struct mk *m = arg;
	return auth_user_create(t, m->user, m->hash, m->role, m->pid, NULL, &m->id);
}

static int64_t mkuser(struct fx *f, const char *user, enum auth_role role, const char *pid)
{
	static char hash[AUTH_PWHASH_MAX];
	if (!hash[0])
		assert_int_equal(auth_password_hash(f->a, "Correct-Horse-9", hash), MC_OK);
	struct mk m = {.user = user, .hash = hash, .pid = pid, .role = role};
	assert_int_equal(store_write(f->s, mk_unit, &m), MC_OK);
	assert_true(m.id > 0);
	return m.id;
}

static const struct auth_client cli = {"req-1", "127.0.0.1"};

static void test_login_and_verify(void **state)
{
	struct fx *f = *state;
	int64_t id = mkuser(f, "nurse.joy", ROLE_NURSE, NULL);
	struct auth_session s;
	const char *detail = NULL;
	assert_int_equal(auth_login(f->a, "nurse.joy", "Correct-Horse-9", NULL, &cli, &s, &detail), MC_OK);
	assert_null(detail);
	assert_int_equal(s.who.user_id, id);
	assert_int_equal(s.expires_in, 900);
	assert_false(s.mfa_enrollment_required);
	assert_int_equal(strlen(s.refresh_token), AUTH_REFRESH_LEN);
	struct auth_principal p;
	assert_int_equal(auth_token_verify(f->a, s.access_token, &p), MC_OK);
	assert_string_equal(p.username, "nurse.joy");
	assert_int_equal(p.role, ROLE_NURSE);

	/* wrong password, unknown user: the same answer */
	assert_int_equal(auth_login(f->a, "nurse.joy", "Wrong-Horse-99", NULL, &cli, &s, &detail), MC_EUNAUTH);
	assert_int_equal(auth_login(f->a, "nobody.here", "Correct-Horse-9", NULL, &cli, &s, &detail), MC_EUNAUTH);
	assert_int_equal(auth_login(f->a, "bad user!", "Correct-Horse-9", NULL, &cli, &s, &detail), MC_EUNAUTH);
	assert_int_equal(auth_login(f->a, NULL, "x", NULL, &cli, &s, &detail), MC_EINVAL);

}

static int disable_unit(struct store_txn *t, void *arg)
{
	return auth_user_set_active(t, arg, false);
}

static void test_disabled_user(void **state)
{
	struct fx *f = *state;
	mkuser(f, "dr.house", ROLE_DOCTOR, NULL);
	struct auth_session s;
	struct auth_principal p;
	assert_int_equal(auth_login(f->a, "dr.house", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_OK);
	assert_int_equal(auth_token_verify(f->a, s.access_token, &p), MC_OK);
	assert_int_equal(store_write(f->s, disable_unit, "dr.house"), MC_OK);
	assert_int_equal(store_write(f->s, disable_unit, "no.such.user"), MC_ENOTFOUND);
	auth_user_cache_forget(s.who.user_id);
	assert_int_equal(auth_token_verify(f->a, s.access_token, &p), MC_EUNAUTH);
	assert_int_equal(auth_login(f->a, "dr.house", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_EUNAUTH);
	assert_int_equal(auth_refresh(f->a, s.refresh_token, &cli, &s), MC_EUNAUTH);
}

static void test_lockout(void **state)
{
	struct fx *f = *state;
	mkuser(f, "lab.tech", ROLE_LAB_TECH, NULL);
	struct auth_session s;
	for (int i = 0; i < 3; i++)
		assert_int_equal(auth_login(f->a, "lab.tech", "Wrong-Horse-99", NULL, &cli, &s, NULL), MC_EUNAUTH);
	/* locked: even the right password is refused */
	assert_int_equal(auth_login(f->a, "lab.tech", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_ELOCKED);
	/* after cfg->lockout_minutes it opens again */
	auth_test_now_ms = mctime_now_ms() + f->cfg.lockout_minutes * 60000 + 1000;
	assert_int_equal(auth_login(f->a, "lab.tech", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_OK);
	/* a success resets the count: two failures do not lock */
	for (int i = 0; i < 2; i++)
		assert_int_equal(auth_login(f->a, "lab.tech", "Wrong-Horse-99", NULL, &cli, &s, NULL), MC_EUNAUTH);
	assert_int_equal(auth_login(f->a, "lab.tech", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_OK);
	int64_t checked = 0;
	assert_int_equal(audit_verify(f->s, &checked, NULL, NULL, 0), MC_OK);
	assert_int_equal(checked, 8);   /* every attempt is audited */
}

static void test_refresh_rotation(void **state)
{
	struct fx *f = *state;
	mkuser(f, "pharma", ROLE_PHARMACIST, NULL);
	struct auth_session s1, s2, s3, s4;
	assert_int_equal(auth_login(f->a, "pharma", "Correct-Horse-9", NULL, &cli, &s1, NULL), MC_OK);
	assert_int_equal(auth_refresh(f->a, s1.refresh_token, &cli, &s2), MC_OK);
	assert_string_not_equal(s1.refresh_token, s2.refresh_token);
	assert_int_equal(s2.who.role, ROLE_PHARMACIST);
	struct auth_principal p;
	assert_int_equal(auth_token_verify(f->a, s2.access_token, &p), MC_OK);
	assert_int_equal(auth_refresh(f->a, s2.refresh_token, &cli, &s3), MC_OK);
	/* s1's token again: reuse — the whole family dies */
	assert_int_equal(auth_refresh(f->a, s1.refresh_token, &cli, &s4), MC_EUNAUTH);
	assert_int_equal(auth_refresh(f->a, s3.refresh_token, &cli, &s4), MC_EUNAUTH);
	/* junk */
	assert_int_equal(auth_refresh(f->a, "short", &cli, &s4), MC_EUNAUTH);
	assert_int_equal(auth_refresh(f->a, NULL, &cli, &s4), MC_EUNAUTH);
	assert_int_equal(auth_refresh(f->a, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &cli, &s4), MC_EUNAUTH);

	/* logout revokes; another user's token is left alone */
	assert_int_equal(auth_login(f->a, "pharma", "Correct-Horse-9", NULL, &cli, &s1, NULL), MC_OK);
	struct auth_principal stranger = who(ROLE_PHARMACIST, 9999, NULL);
	assert_int_equal(auth_logout(f->a, &stranger, s1.refresh_token, &cli), MC_OK);
	assert_int_equal(auth_refresh(f->a, s1.refresh_token, &cli, &s2), MC_OK);
	assert_int_equal(auth_logout(f->a, &s2.who, s2.refresh_token, &cli), MC_OK);
	assert_int_equal(auth_refresh(f->a, s2.refresh_token, &cli, &s3), MC_EUNAUTH);

	/* expiry */
	assert_int_equal(auth_login(f->a, "pharma", "Correct-Horse-9", NULL, &cli, &s1, NULL), MC_OK);
	auth_test_now_ms = mctime_now_ms() + f->cfg.refresh_ttl * 1000 + 1000;
	assert_int_equal(auth_refresh(f->a, s1.refresh_token, &cli, &s2), MC_EUNAUTH);
}

static void test_mfa(void **state)
{
	struct fx *f = *state;
	mkuser(f, "admin1", ROLE_ADMIN, NULL);
	struct auth_session s;
	const char *detail = NULL;
	assert_int_equal(auth_login(f->a, "admin1", "Correct-Horse-9", NULL, &cli, &s, &detail), MC_OK);
	assert_true(s.mfa_enrollment_required);   /* admin is in the default mfa_roles */
	struct auth_principal me = s.who;

	assert_int_equal(auth_mfa_verify(f->a, &me, "123456", &cli), MC_EPRECOND);
	char secret[64], uri[AUTH_OTPAUTH_MAX];
	assert_int_equal(auth_mfa_enroll(f->a, &me, secret, uri), MC_OK);
	assert_non_null(strstr(uri, "otpauth://totp/medcore:admin1?secret="));
	assert_non_null(strstr(uri, secret));
	char *key = NULL;
	size_t klen = 0;
	assert_int_equal(oath_base32_decode(secret, strlen(secret), &key, &klen), OATH_OK);
	assert_int_equal(klen, 20);

	int64_t t0 = mctime_now_ms();
	auth_test_now_ms = t0;
	char code[8];
	assert_int_equal(oath_totp_generate(key, klen, (time_t)(t0 / 1000), 30, 0, 6, code), OATH_OK);
	char wrong[8];
	snprintf(wrong, sizeof(wrong), "%06d", (atoi(code) + 1) % 1000000);
	assert_int_equal(auth_mfa_verify(f->a, &me, wrong, &cli), MC_EUNAUTH);
	assert_int_equal(auth_mfa_verify(f->a, &me, code, &cli), MC_OK);
	assert_int_equal(auth_mfa_enroll(f->a, &me, secret, uri), MC_ECONFLICT);

	/* now TOTP is mandatory */
	assert_int_equal(auth_login(f->a, "admin1", "Correct-Horse-9", NULL, &cli, &s, &detail), MC_EUNAUTH);
	assert_string_equal(detail, AUTH_DETAIL_MFA_REQUIRED);
	/* the code used for enrolment cannot be replayed */
	assert_int_equal(auth_login(f->a, "admin1", "Correct-Horse-9", code, &cli, &s, &detail), MC_EUNAUTH);
	assert_string_equal(detail, AUTH_DETAIL_MFA_INVALID);
	/* wrong password with a good code: still the plain answer */
	auth_test_now_ms = t0 + 60000;
	assert_int_equal(oath_totp_generate(key, klen, (time_t)(auth_test_now_ms / 1000), 30, 0, 6, code), OATH_OK);
	assert_int_equal(auth_login(f->a, "admin1", "Wrong-Horse-99", code, &cli, &s, &detail), MC_EUNAUTH);
	assert_null(detail);
	assert_int_equal(auth_login(f->a, "admin1", "Correct-Horse-9", code, &cli, &s, &detail), MC_OK);
	assert_false(s.mfa_enrollment_required);
	assert_int_equal(auth_login(f->a, "admin1", "Correct-Horse-9", code, &cli, &s, &detail), MC_EUNAUTH);
	free(key);
}

struct access_ctx {
	const struct auth_principal *p;
	const char *pid;
	enum auth_access what;
	bool bg;
	int rc;
};

static int access_unit(struct store_txn *t, void *arg)
{
	struct access_ctx *x = arg;
	x->rc = auth_patient_access(t, x->p, x->pid, x->what, &x->bg);
	return MC_OK;
}

static int team_unit(struct store_txn *t, void *arg)
{
	const struct auth_principal *p = arg;
	return auth_care_team_add(t, "pat-team", p->user_id, "tester");
}

static void test_break_glass_and_care(void **state)
{
	struct fx *f = *state;
	mkuser(f, "dr.strange", ROLE_DOCTOR, NULL);
	struct auth_session s;
	assert_int_equal(auth_login(f->a, "dr.strange", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_OK);
	struct auth_principal doc = s.who;
	struct access_ctx x = {.p = &doc, .pid = "pat-1", .what = AUTH_CLINICAL_READ};
	assert_int_equal(store_read(f->s, access_unit, &x), MC_OK);
	assert_int_equal(x.rc, MC_EFORBIDDEN);

	struct auth_grant g;
	const char *why = NULL;
	assert_int_equal(auth_break_glass(f->a, &doc, "pat-1", "too short", &cli, &g, &why), MC_EINVAL);
	assert_non_null(why);
	assert_int_equal(auth_break_glass(f->a, &doc, "pat-1", "            ", &cli, &g, &why), MC_EINVAL);
	assert_int_equal(auth_break_glass(f->a, &doc, "bad id!", "unconscious in ER, no records", &cli, &g, &why),
			 MC_EINVAL);
	struct auth_principal rec = who(ROLE_RECEPTIONIST, 77, NULL);
	assert_int_equal(auth_break_glass(f->a, &rec, "pat-1", "unconscious in ER, no records", &cli, &g, &why),
			 MC_EFORBIDDEN);
	assert_int_equal(auth_break_glass(f->a, &doc, "pat-1", "unconscious in ER, no records", &cli, &g, &why), MC_OK);
	assert_true(g.id > 0);
	assert_int_equal(g.expires_ms - g.granted_ms, f->cfg.break_glass_minutes * 60000);
	assert_int_equal(store_read(f->s, access_unit, &x), MC_OK);
	assert_int_equal(x.rc, MC_OK);
	assert_true(x.bg);
	x.pid = "pat-2";
	assert_int_equal(store_read(f->s, access_unit, &x), MC_OK);
	assert_int_equal(x.rc, MC_EFORBIDDEN);

	/* care team: access without break-glass */
	assert_int_equal(store_write(f->s, team_unit, &doc), MC_OK);
	assert_int_equal(store_write(f->s, team_unit, &doc), MC_OK);   /* idempotent */
	x.pid = "pat-team";
	x.what = AUTH_CLINICAL_WRITE;
	assert_int_equal(store_read(f->s, access_unit, &x), MC_OK);
	assert_int_equal(x.rc, MC_OK);
	assert_false(x.bg);
	int64_t n = 0;
	assert_int_equal(audit_verify(f->s, &n, NULL, NULL, 0), MC_OK);
	assert_int_equal(n, 2);   /* login + break-glass */
}

static int count_cb(const struct auth_user_info *u, void *arg)
{
	(void)u;
	(*(int *)arg)++;
	return 0;
}

static void test_admin_create(void **state)
{
	struct fx *f = *state;
	struct auth_principal adm = who(ROLE_ADMIN, 1, NULL), doc = who(ROLE_DOCTOR, 2, NULL);
	int64_t id = 0;
	const char *why = NULL;
	assert_int_equal(auth_admin_user_create(f->a, &doc, "newbie", "Correct-Horse-9", "nurse", NULL, NULL, &cli, &id, &why),
			 MC_EFORBIDDEN);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "newbie", "weak", "nurse", NULL, NULL, &cli, &id, &why), MC_EINVAL);
	assert_non_null(why);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "newbie", "Correct-Horse-9", "wizard", NULL, NULL, &cli, &id, &why),
			 MC_EINVAL);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "pat", "Correct-Horse-9", "patient", NULL, NULL, &cli, &id, &why),
			 MC_EINVAL);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "newbie", "Correct-Horse-9", "nurse", NULL, "prac/../x", &cli, &id,
						&why),
			 MC_EINVAL);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "newbie", "Correct-Horse-9", "nurse", NULL, "prac-7", &cli, &id, &why),
			 MC_OK);
	assert_true(id > 0);
	assert_int_equal(auth_admin_user_create(f->a, &adm, "newbie", "Correct-Horse-9", "nurse", NULL, NULL, &cli, &id, &why),
			 MC_ECONFLICT);
	struct auth_user_info u;
	assert_int_equal(auth_user_get(f->a, id, &u), MC_OK);
	assert_string_equal(u.username, "newbie");
	assert_string_equal(u.practitioner_id, "prac-7");
	assert_int_equal(u.role, ROLE_NURSE);
	assert_true(u.active);
	assert_int_equal(auth_user_get(f->a, 424242, &u), MC_ENOTFOUND);
	int count = 0;
	assert_int_equal(auth_user_list(f->a, 0, 10, count_cb, &count), MC_OK);
	assert_int_equal(count, 1);
	assert_int_equal(auth_user_list(f->a, 0, 0, count_cb, &count), MC_EINVAL);
	struct auth_session s;
	assert_int_equal(auth_login(f->a, "newbie", "Correct-Horse-9", NULL, &cli, &s, NULL), MC_OK);
	assert_string_equal(s.who.practitioner_id, "prac-7");
}

static void test_token_key_persisted(void **state)
{
	struct fx *f = *state;
	struct auth_principal p = who(ROLE_NURSE, 5, NULL), q;
	char tok[AUTH_TOKEN_MAX];
	int64_t exp = 0;
	assert_int_equal(auth_token_issue(f->a, &p, tok, &exp), MC_OK);
	assert_int_equal(exp, 900);
	/* a second engine on the same database loads the same generated key */
	struct auth *b = NULL;
	assert_int_equal(auth_create(&f->cfg, f->s, &b), MC_OK);
	assert_int_equal(auth_jwt_verify(b, tok, mctime_now_ms(), false, &q), MC_OK);
	auth_destroy(b);
	/* a configured secret replaces it */
	struct mc_config c2 = f->cfg;
	c2.token_secret = "a configured secret of 32+ bytes....";
	assert_int_equal(auth_create(&c2, f->s, &b), MC_OK);
	assert_int_equal(auth_jwt_verify(b, tok, mctime_now_ms(), false, &q), MC_EUNAUTH);
	auth_destroy(b);
}

int main(void)
{
	log_min_level = LOG_OFF;
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_role_table),
		cmocka_unit_test(test_fhir_perm),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_password_policy),
		cmocka_unit_test(test_password_hash_verify),
		cmocka_unit_test(test_jwt),
		cmocka_unit_test(test_totp),
		cmocka_unit_test_setup_teardown(test_login_and_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lockout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mfa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_break_glass_and_care, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_token_key_persisted, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
