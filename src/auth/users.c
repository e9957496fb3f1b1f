/* auth/users.c — the account domain: users, login with lockout and TOTP, refresh-token rotation,
 * logout, MFA enrolment, break-the-glass grants.
 *
 * Every state change and its audit record are written in one unit (store_write). Units that record
 * a *failure* (failed login, refresh-token reuse) still return MC_OK so the writer commits them; the
 * outcome travels back in the unit's context struct.
 */
#include <liboath/oath.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth_int.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/mem.h"
#include "core/log.h"
#include "store/store.h"

#define REASON_MIN 10
#define REASON_MAX 1000

static void audit_who(struct audit_rec *r, const struct auth_principal *p)
{
	r->user_id = p->user_id;
	r->username = p->username;
	r->role = auth_role_name(p->role);
}

static void audit_client(struct audit_rec *r, const struct auth_client *c)
{
	if (c) {
		r->request_id = c->request_id;
		r->client_ip = c->client_ip;
	}
}

static void copy_text(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static bool config_list_has_role(const struct auth *a, enum auth_role r)
{
	return config_list_has(a->mfa_roles, auth_role_name(r));
}

static bool valid_opt_id(const char *id)
{
	return !id || !id[0] || mcid_valid_fhir_id(id);
}

/* ---- user rows ---- */

#define USER_COLS "id, username, role, active, totp_enabled, patient_id, practitioner_id, created_ms"

static void row_user(struct store_rows *r, struct auth_user_info *u)
{
	memset(u, 0, sizeof(*u));
	u->id = store_rows_int(r, 0);
	copy_text(u->username, sizeof(u->username), store_rows_text(r, 1));
	if (auth_role_parse(store_rows_text(r, 2), &u->role))
		u->role = ROLE__COUNT;   /* unknown role in the table: has no permissions */
	u->active = store_rows_int(r, 3) != 0;
	u->totp_enabled = store_rows_int(r, 4) != 0;
	copy_text(u->patient_id, sizeof(u->patient_id), store_rows_text(r, 5));
	copy_text(u->practitioner_id, sizeof(u->practitioner_id), store_rows_text(r, 6));
	u->created_ms = store_rows_int(r, 7);
}

static void principal_of(const struct auth_user_info *u, int64_t expires_ms, struct auth_principal *p)
{
	memset(p, 0, sizeof(*p));
	p->user_id = u->id;
	copy_text(p->username, sizeof(p->username), u->username);
	p->role = u->role;
	p->perms = auth_role_perms(u->role);
	copy_text(p->patient_id, sizeof(p->patient_id), u->patient_id);
	copy_text(p->practitioner_id, sizeof(p->practitioner_id), u->practitioner_id);
	p->expires_ms = expires_ms;
}

int auth_user_create(struct store_txn *t, const char *username, const char *password_hash, enum auth_role role,
		     const char *patient_id, const char *practitioner_id, int64_t *id)
{
	if (!auth_username_valid(username) || !password_hash || !password_hash[0] || (unsigned)role >= ROLE__COUNT ||
	    !valid_opt_id(patient_id) || !valid_opt_id(practitioner_id))
		return MC_EINVAL;
	struct store_arg a[6] = {
		SA_TEXT(username), SA_TEXT(auth_role_name(role)), SA_TEXT(password_hash),
		patient_id && patient_id[0] ? SA_TEXT(patient_id) : SA_NULL(),
		practitioner_id && practitioner_id[0] ? SA_TEXT(practitioner_id) : SA_NULL(),
		SA_INT(auth_now_ms()),
	};
	int64_t got = 0;
	int rc = store_query_int(t,
				 "INSERT INTO users(username, role, password_hash, active, patient_id, practitioner_id, created_ms) "
				 "VALUES($1, $2, $3, 1, $4, $5, $6) RETURNING id",
				 a, 6, &got);
	if (rc == MC_OK && id)
		*id = got;
	return rc;
}

static int user_update(struct store_txn *t, const char *sql, const char *username)
{
	struct store_arg a[1] = {SA_TEXT(username)};
	int rc = store_exec(t, sql, a, 1);
	if (rc)
		return rc;
	return store_changes(t) > 0 ? MC_OK : MC_ENOTFOUND;
}

int auth_user_set_active(struct store_txn *t, const char *username, bool active)
{
	return user_update(t, active ? "UPDATE users SET active = 1, failed_count = 0, locked_until_ms = 0 WHERE username = $1"
				     : "UPDATE users SET active = 0 WHERE username = $1",
			   username);
}

int auth_user_reset_mfa(struct store_txn *t, const char *username)
{
	return user_update(t, "UPDATE users SET totp_secret = NULL, totp_enabled = 0, totp_last_step = 0 WHERE username = $1",
			   username);
}

struct get_ctx {
	int64_t id;
	struct auth_user_info *out;
	bool found;
};

static int get_unit(struct store_txn *t, void *arg)
{
	struct get_ctx *g = arg;
	struct store_arg a[1] = {SA_INT(g->id)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT " USER_COLS " FROM users WHERE id = $1", a, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1) {
		row_user(r, g->out);
		g->found = true;
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

int auth_user_get(struct auth *a, int64_t id, struct auth_user_info *out)
{
	struct get_ctx g = {.id = id, .out = out};
	int rc = store_read(a->store, get_unit, &g);
	if (rc)
		return rc;
	return g.found ? MC_OK : MC_ENOTFOUND;
}

struct list_ctx {
	int64_t after;
	int limit;
	int (*cb)(const struct auth_user_info *u, void *arg);
	void *arg;
};

static int list_unit(struct store_txn *t, void *arg)
{
	struct list_ctx *l = arg;
	struct store_arg a[2] = {SA_INT(l->after), SA_INT(l->limit)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT " USER_COLS " FROM users WHERE id > $1 ORDER BY id LIMIT $2", a, 2, &r);
	if (rc)
		return rc;
	int st;
	while ((st = store_rows_next(r)) == 1) {
		struct auth_user_info u;
		row_user(r, &u);
		if (l->cb(&u, l->arg))
			break;
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

int auth_user_list(struct auth *a, int64_t after_id, int limit, int (*cb)(const struct auth_user_info *u, void *arg),
		   void *arg)
{
	if (limit < 1 || limit > 1000)
		return MC_EINVAL;
	struct list_ctx l = {.after = after_id, .limit = limit, .cb = cb, .arg = arg};
	return store_read(a->store, list_unit, &l);
}

/* ---- refresh tokens ---- */

static void token_hash(const char *token, unsigned char out[32])
{
	crypto_hash_sha256(out, (const unsigned char *)token, strlen(token));
}

/* A new refresh token in family (inside a unit). out receives the token text. */
static int refresh_new(struct auth *a, struct store_txn *t, int64_t user_id, const char *family, int64_t now,
		       char out[AUTH_REFRESH_LEN + 1])
{
	mcid_token(out, AUTH_REFRESH_LEN + 1, 32);
	unsigned char h[32];
	token_hash(out, h);
	struct store_arg args[5] = {SA_BLOB(h, 32), SA_INT(user_id), SA_TEXT(family), SA_INT(now),
				    SA_INT(now + a->refresh_ttl_s * 1000)};
	return store_exec(t,
			  "INSERT INTO refresh_tokens(hash, user_id, family_id, created_ms, expires_ms, revoked) "
			  "VALUES($1, $2, $3, $4, $5, 0)",
			  args, 5);
}

static int family_revoke(struct store_txn *t, const char *family)
{
	struct store_arg a[1] = {SA_TEXT(family)};
	return store_exec(t, "UPDATE refresh_tokens SET revoked = 1 WHERE family_id = $1", a, 1);
}

/* ---- login ---- */

struct login_ctx {
	struct auth *a;
	const char *username, *totp;
	const struct auth_client *c;
	bool pw_ok;
	int64_t now;
	/* results */
	int result;
	const char *detail;
	struct auth_session *out;
};

struct login_row {
	bool found;
	struct auth_user_info u;
	char hash[AUTH_PWHASH_MAX];
	char *totp_secret;        /* malloc'd or NULL */
	int64_t totp_last_step, failed_count, locked_until_ms;
};

static int login_row_read(struct store_txn *t, const char *username, struct login_row *lr)
{
	struct store_arg a[1] = {SA_TEXT(username)};
	struct store_rows *r = NULL;
	int rc = store_query(t,
			     "SELECT " USER_COLS ", password_hash, totp_secret, totp_last_step, failed_count, locked_until_ms "
			     "FROM users WHERE username = $1",
			     a, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1) {
		lr->found = true;
		row_user(r, &lr->u);
		copy_text(lr->hash, sizeof(lr->hash), store_rows_text(r, 8));
		lr->totp_secret = store_rows_null(r, 9) ? NULL : mc_strdup(store_rows_text(r, 9));
		lr->totp_last_step = store_rows_int(r, 10);
		lr->failed_count = store_rows_int(r, 11);
		lr->locked_until_ms = store_rows_int(r, 12);
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

static void login_row_release(struct login_row *lr)
{
	if (lr->totp_secret) {
		sodium_memzero(lr->totp_secret, strlen(lr->totp_secret));
		free(lr->totp_secret);
		lr->totp_secret = NULL;
	}
	sodium_memzero(lr->hash, sizeof(lr->hash));
}

static int read_login_unit(struct store_txn *t, void *arg)
{
	struct login_row *lr = arg;
	return login_row_read(t, lr->u.username, lr);
}

/* Record a failure: counts towards lockout when count is set. */
static int login_fail(struct login_ctx *l, struct store_txn *t, const struct login_row *lr, bool count, int outcome,
		      const char *why)
{
	struct auth *a = l->a;
	struct audit_rec ar = {.action = "login-failed", .username = l->username, .outcome = outcome, .reason = why};
	audit_client(&ar, l->c);
	if (lr->found) {
		ar.user_id = lr->u.id;
		ar.role = auth_role_name(lr->u.role);
	}
	if (lr->found && count) {
		int64_t n = lr->failed_count + 1, until = 0;
		if (n >= a->lockout_threshold) {
			until = l->now + a->lockout_ms;
			n = 0;
			ar.reason = "account locked after repeated failures";
			LOGW("security: account locked", "\"user_id\":%lld", (long long)lr->u.id);
		}
		struct store_arg args[3] = {SA_INT(lr->u.id), SA_INT(n), SA_INT(until)};
		int rc = until ? store_exec(t, "UPDATE users SET failed_count = $2, locked_until_ms = $3 WHERE id = $1", args, 3)
			       : store_exec(t, "UPDATE users SET failed_count = $2 WHERE id = $1", args, 2);
		if (rc)
			return rc;
	}
	l->result = outcome == 423 ? MC_ELOCKED : MC_EUNAUTH;
	return audit_append(t, &ar);
}

static int login_unit(struct store_txn *t, void *arg)
{
	struct login_ctx *l = arg;
	struct auth *a = l->a;
	struct login_row lr = {0};
	int rc = login_row_read(t, l->username, &lr);
	if (rc)
		goto out;
	if (!lr.found) {
		rc = login_fail(l, t, &lr, false, 401, "unknown user");
		goto out;
	}
	if (lr.locked_until_ms > l->now) {
		rc = login_fail(l, t, &lr, false, 423, "account locked");
		goto out;
	}
	if (!l->pw_ok) {
		rc = login_fail(l, t, &lr, true, 401, "wrong password");
		goto out;
	}
	if (!lr.u.active || lr.u.role >= ROLE__COUNT) {
		rc = login_fail(l, t, &lr, false, 401, "account disabled");
		goto out;
	}
	int64_t step = lr.totp_last_step;
	if (lr.u.totp_enabled) {
		if (!l->totp || !l->totp[0]) {
			l->detail = AUTH_DETAIL_MFA_REQUIRED;
			rc = login_fail(l, t, &lr, false, 401, "totp code missing");
			goto out;
		}
		unsigned char secret[64];
		size_t slen = 0;
		rc = auth_totp_open(a, lr.totp_secret, secret, sizeof(secret), &slen);
		if (rc == MC_OK)
			rc = auth_totp_check(secret, slen, l->now / 1000, l->totp, lr.totp_last_step, &step);
		sodium_memzero(secret, sizeof(secret));
		if (rc) {
			l->detail = AUTH_DETAIL_MFA_INVALID;
			rc = login_fail(l, t, &lr, true, 401, "totp code wrong or replayed");
			goto out;
		}
	}
	struct store_arg ua[2] = {SA_INT(step), SA_INT(lr.u.id)};
	rc = store_exec(t, "UPDATE users SET failed_count = 0, locked_until_ms = 0, totp_last_step = $1 WHERE id = $2",
			ua, 2);
	if (rc)
		goto out;
	char family[MCID_LEN + 1];
	mcid_new(family);
	rc = refresh_new(a, t, lr.u.id, family, l->now, l->out->refresh_token);
	if (rc)
		goto out;
	principal_of(&lr.u, l->now + a->access_ttl_s * 1000, &l->out->who);
	l->out->mfa_enrollment_required = !lr.u.totp_enabled && config_list_has_role(a, lr.u.role);
	struct audit_rec ar = {.action = "login", .outcome = 200};
	audit_who(&ar, &l->out->who);
	audit_client(&ar, l->c);
	rc = audit_append(t, &ar);
	l->result = MC_OK;
out:
	login_row_release(&lr);
	return rc;
}

int auth_login(struct auth *a, const char *username, const char *password, const char *totp,
	       const struct auth_client *c, struct auth_session *out, const char **detail)
{
	const char *dummy;
	if (!detail)
		detail = &dummy;
	*detail = NULL;
	memset(out, 0, sizeof(*out));
	if (!username || !password || strlen(username) > 256 || strlen(password) > AUTH_PASSWORD_MAX ||
	    (totp && strlen(totp) > 16))
		return MC_EINVAL;
	int64_t now = auth_now_ms();
	/* Read first (no writer round trip) to pick the hash, and to skip hashing while locked. */
	struct login_row lr = {0};
	bool plausible = auth_username_valid(username);
	if (plausible) {
		copy_text(lr.u.username, sizeof(lr.u.username), username);
		int rc = store_read(a->store, read_login_unit, &lr);
		if (rc) {
			login_row_release(&lr);
			return rc;
		}
	}
	bool locked = lr.found && lr.locked_until_ms > now;
	bool pw_ok = false;
	if (!locked) {
		/* Unknown users are checked against a dummy hash so they take as long as a wrong password. */
		int rc = auth_password_verify(a, lr.found ? lr.hash : auth_dummy_hash, password);
		if (rc == MC_EUNAVAIL) {
			login_row_release(&lr);
			return rc;
		}
		pw_ok = rc == MC_OK && lr.found;
	}
	login_row_release(&lr);
	struct login_ctx l = {.a = a, .username = username, .totp = totp, .c = c, .pw_ok = pw_ok, .now = now,
			      .result = MC_EINTERNAL, .out = out};
	int rc = store_write(a->store, login_unit, &l);
	if (rc == MC_OK)
		rc = l.result;
	*detail = l.detail;
	if (rc == MC_OK)
		rc = auth_jwt_sign(a, &out->who, now, out->access_token);
	if (rc == MC_OK) {
		out->expires_in = a->access_ttl_s;
	} else {
		sodium_memzero(out, sizeof(*out));
	}
	return rc;
}

/* ---- refresh / logout ---- */

struct refresh_ctx {
	struct auth *a;
	const char *token;
	const struct auth_client *c;
	int64_t now;
	int result;
	struct auth_session *out;
};

static int refresh_unit(struct store_txn *t, void *arg)
{
	struct refresh_ctx *x = arg;
	unsigned char h[32];
	token_hash(x->token, h);
	struct store_arg ha[1] = {SA_BLOB(h, 32)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT user_id, family_id, expires_ms, used_ms, revoked FROM refresh_tokens WHERE hash = $1",
			     ha, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st != 1) {
		store_rows_close(r);
		return st < 0 ? -st : MC_OK;   /* unknown: x->result stays EUNAUTH */
	}
	int64_t user_id = store_rows_int(r, 0);
	char family[MCID_LEN + 1];
	copy_text(family, sizeof(family), store_rows_text(r, 1));
	int64_t expires = store_rows_int(r, 2);
	bool used = !store_rows_null(r, 3), revoked = store_rows_int(r, 4) != 0;
	store_rows_close(r);
	if (revoked || expires <= x->now)
		return MC_OK;

	struct store_arg ia[1] = {SA_INT(user_id)};
	struct auth_user_info u;
	bool found = false;
	rc = store_query(t, "SELECT " USER_COLS " FROM users WHERE id = $1", ia, 1, &r);
	if (rc)
		return rc;
	st = store_rows_next(r);
	if (st == 1) {
		row_user(r, &u);
		found = true;
	}
	store_rows_close(r);
	if (st < 0)
		return -st;

	struct audit_rec ar = {.action = "refresh", .outcome = 200, .user_id = user_id};
	audit_client(&ar, x->c);
	if (found) {
		ar.username = u.username;
		ar.role = auth_role_name(u.role);
	}
	if (used || !found || !u.active) {
		/* A used token presented again means it was stolen (or the client is broken): end the
		 * whole session family so neither party can continue. */
		rc = family_revoke(t, family);
		if (rc)
			return rc;
		ar.action = used ? "refresh-reuse" : "refresh-failed";
		ar.outcome = 401;
		ar.reason = used ? "refresh token reused: family revoked" : "account disabled";
		if (used)
			LOGW("security: refresh token reuse, family revoked", "\"user_id\":%lld", (long long)user_id);
		return audit_append(t, &ar);
	}
	struct store_arg ua[2] = {SA_INT(x->now), SA_BLOB(h, 32)};
	rc = store_exec(t, "UPDATE refresh_tokens SET used_ms = $1 WHERE hash = $2", ua, 2);
	if (rc)
		return rc;
	rc = refresh_new(x->a, t, user_id, family, x->now, x->out->refresh_token);
	if (rc)
		return rc;
	principal_of(&u, x->now + x->a->access_ttl_s * 1000, &x->out->who);
	x->out->mfa_enrollment_required = !u.totp_enabled && config_list_has_role(x->a, u.role);
	rc = audit_append(t, &ar);
	if (rc == MC_OK)
		x->result = MC_OK;
	return rc;
}

int auth_refresh(struct auth *a, const char *refresh_token, const struct auth_client *c, struct auth_session *out)
{
	memset(out, 0, sizeof(*out));
	if (!refresh_token || strlen(refresh_token) != AUTH_REFRESH_LEN)
		return MC_EUNAUTH;
	int64_t now = auth_now_ms();
	struct refresh_ctx x = {.a = a, .token = refresh_token, .c = c, .now = now, .result = MC_EUNAUTH, .out = out};
	int rc = store_write(a->store, refresh_unit, &x);
	if (rc == MC_OK)
		rc = x.result;
	if (rc == MC_OK)
		rc = auth_jwt_sign(a, &out->who, now, out->access_token);
	if (rc == MC_OK)
		out->expires_in = a->access_ttl_s;
	else
		sodium_memzero(out, sizeof(*out));
	return rc == MC_OK ? MC_OK : rc == MC_EUNAVAIL ? rc : MC_EUNAUTH;
}

struct logout_ctx {
	const struct auth_principal *who;
	const char *token;
	const struct auth_client *c;
};

static int logout_unit(struct store_txn *t, void *arg)
{
	struct logout_ctx *x = arg;
	unsigned char h[32];
	token_hash(x->token, h);
	struct store_arg a[2] = {SA_BLOB(h, 32), SA_INT(x->who->user_id)};
	char *family = NULL;
	int rc = store_query_text(t, "SELECT family_id FROM refresh_tokens WHERE hash = $1 AND user_id = $2", a, 2, &family);
	if (rc == MC_ENOTFOUND)
		return MC_OK;   /* not this user's token, or unknown: nothing to revoke */
	if (rc)
		return rc;
	rc = family_revoke(t, family);
	free(family);
	if (rc)
		return rc;
	struct audit_rec ar = {.action = "logout", .outcome = 200};
	audit_who(&ar, x->who);
	audit_client(&ar, x->c);
	return audit_append(t, &ar);
}

int auth_logout(struct auth *a, const struct auth_principal *who, const char *refresh_token, const struct auth_client *c)
{
	if (!who)
		return MC_EUNAUTH;
	if (!refresh_token || strlen(refresh_token) != AUTH_REFRESH_LEN)
		return MC_OK;
	struct logout_ctx x = {.who = who, .token = refresh_token, .c = c};
	return store_write(a->store, logout_unit, &x);
}

/* ---- admin user creation ---- */

struct create_ctx {
	const struct auth_principal *who;
	const char *username, *hash, *patient_id, *practitioner_id;
	enum auth_role role;
	const struct auth_client *c;
	int64_t id;
};

static int create_unit(struct store_txn *t, void *arg)
{
	struct create_ctx *x = arg;
	int rc = auth_user_create(t, x->username, x->hash, x->role, x->patient_id, x->practitioner_id, &x->id);
	if (rc)
		return rc;
	char idtxt[24];
	snprintf(idtxt, sizeof(idtxt), "%lld", (long long)x->id);
	struct audit_rec ar = {.action = "user-create", .resource_type = "User", .resource_id = idtxt, .outcome = 201};
	audit_who(&ar, x->who);
	audit_client(&ar, x->c);
	return audit_append(t, &ar);
}

int auth_admin_user_create(struct auth *a, const struct auth_principal *who, const char *username, const char *password,
			   const char *role, const char *patient_id, const char *practitioner_id,
			   const struct auth_client *c, int64_t *id, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	*why = NULL;
	if (!who || !auth_has(who, PERM_ADMIN_USERS))
		return MC_EFORBIDDEN;
	enum auth_role r;
	if (!auth_username_valid(username)) {
		*why = "username must be 3-63 characters of letters, digits, . _ @ -";
		return MC_EINVAL;
	}
	if (auth_role_parse(role, &r)) {
		*why = "unknown role";
		return MC_EINVAL;
	}
	if (!valid_opt_id(patient_id) || !valid_opt_id(practitioner_id)) {
		*why = "patient_id and practitioner_id must be FHIR ids";
		return MC_EINVAL;
	}
	if (r == ROLE_PATIENT && (!patient_id || !patient_id[0])) {
		*why = "a patient user needs patient_id";
		return MC_EINVAL;
	}
	int rc = auth_password_policy(password, why);
	if (rc)
		return rc;
	char hash[AUTH_PWHASH_MAX];
	rc = auth_password_hash(a, password, hash);
	if (rc)
		return rc;
	struct create_ctx x = {.who = who, .username = username, .hash = hash, .patient_id = patient_id,
			       .practitioner_id = practitioner_id, .role = r, .c = c};
	rc = store_write(a->store, create_unit, &x);
	if (rc == MC_ECONFLICT)
		*why = "username is taken";
	if (rc == MC_OK && id)
		*id = x.id;
	return rc;
}

/* ---- MFA ---- */

struct mfa_ctx {
	struct auth *a;
	const struct auth_principal *who;
	const struct auth_client *c;
	const char *code;
	const char *sealed;
	int result;
};

static int enroll_unit(struct store_txn *t, void *arg)
{
	struct mfa_ctx *x = arg;
	struct store_arg a[2] = {SA_INT(x->who->user_id), SA_TEXT(x->sealed)};
	int64_t enabled = 0;
	int rc = store_query_int(t, "SELECT totp_enabled FROM users WHERE id = $1 AND active = 1", a, 1, &enabled);
	if (rc)
		return rc == MC_ENOTFOUND ? MC_EUNAUTH : rc;
	if (enabled)
		return MC_ECONFLICT;
	rc = store_exec(t, "UPDATE users SET totp_secret = $2, totp_enabled = 0, totp_last_step = 0 WHERE id = $1", a, 2);
	if (rc)
		return rc;
	struct audit_rec ar = {.action = "mfa-enroll", .outcome = 200};
	audit_who(&ar, x->who);
	audit_client(&ar, x->c);
	return audit_append(t, &ar);
}

int auth_mfa_enroll(struct auth *a, const struct auth_principal *who, char secret_b32[64], char uri[AUTH_OTPAUTH_MAX])
{
	unsigned char secret[AUTH_TOTP_SECRET_BYTES];
	char sealed[128];
	randombytes_buf(secret, sizeof(secret));
	int rc = auth_totp_seal(a, secret, sizeof(secret), sealed, sizeof(sealed));
	char *b32 = NULL;
	size_t b32len = 0;
	if (rc == MC_OK && (oath_base32_encode((const char *)secret, sizeof(secret), &b32, &b32len) != OATH_OK ||
			    b32len >= 64))
		rc = MC_EINTERNAL;
	sodium_memzero(secret, sizeof(secret));
	if (rc == MC_OK) {
		struct mfa_ctx x = {.a = a, .who = who, .sealed = sealed};
		rc = store_write(a->store, enroll_unit, &x);
	}
	if (rc == MC_OK) {
		memcpy(secret_b32, b32, b32len);
		secret_b32[b32len] = '\0';
		/* The label is issuer:username; '@' is the only username character to escape. */
		char label[3 * AUTH_USERNAME_MAX + 1];
		size_t k = 0;
		for (const char *p = who->username; *p && k + 4 < sizeof(label); p++) {
			if (*p == '@') {
				memcpy(label + k, "%40", 3);
				k += 3;
			} else {
				label[k++] = *p;
			}
		}
		label[k] = '\0';
		snprintf(uri, AUTH_OTPAUTH_MAX, "otpauth://totp/medcore:%s?secret=%s&issuer=medcore&algorithm=SHA1&digits=%d&period=%d",
			 label, secret_b32, AUTH_TOTP_DIGITS, AUTH_TOTP_STEP);
	}
	if (b32) {
		sodium_memzero(b32, b32len);
		free(b32);
	}
	return rc;
}

static int verify_unit(struct store_txn *t, void *arg)
{
	struct mfa_ctx *x = arg;
	struct store_arg a[1] = {SA_INT(x->who->user_id)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT totp_secret, totp_last_step FROM users WHERE id = $1 AND active = 1", a, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st != 1 || store_rows_null(r, 0)) {
		store_rows_close(r);
		return st < 0 ? -st : MC_EPRECOND;
	}
	unsigned char secret[64];
	size_t slen = 0;
	int64_t step = 0, last = store_rows_int(r, 1);
	rc = auth_totp_open(x->a, store_rows_text(r, 0), secret, sizeof(secret), &slen);
	store_rows_close(r);
	if (rc == MC_OK)
		rc = auth_totp_check(secret, slen, auth_now_ms() / 1000, x->code, last, &step);
	sodium_memzero(secret, sizeof(secret));
	struct audit_rec ar = {.action = "mfa-verify", .outcome = 200};
	audit_who(&ar, x->who);
	audit_client(&ar, x->c);
	if (rc) {
		x->result = MC_EUNAUTH;
		ar.outcome = 401;
		ar.reason = "totp code wrong or replayed";
		return audit_append(t, &ar);
	}
	struct store_arg ua[2] = {SA_INT(x->who->user_id), SA_INT(step)};
	rc = store_exec(t, "UPDATE users SET totp_enabled = 1, totp_last_step = $2 WHERE id = $1", ua, 2);
	if (rc)
		return rc;
	x->result = MC_OK;
	return audit_append(t, &ar);
}

int auth_mfa_verify(struct auth *a, const struct auth_principal *who, const char *code, const struct auth_client *c)
{
	if (!code || strlen(code) > 16)
		return MC_EINVAL;
	struct mfa_ctx x = {.a = a, .who = who, .c = c, .code = code, .result = MC_EINTERNAL};
	int rc = store_write(a->store, verify_unit, &x);
	return rc ? rc : x.result;
}

/* ---- break the glass ---- */

struct bg_ctx {
	struct auth *a;
	const struct auth_principal *who;
	const char *reason;
	const struct auth_client *c;
	struct auth_grant *g;
};

static int bg_unit(struct store_txn *t, void *arg)
{
	struct bg_ctx *x = arg;
	struct store_arg a[5] = {SA_INT(x->who->user_id), SA_TEXT(x->g->patient_id), SA_TEXT(x->reason),
				 SA_INT(x->g->granted_ms), SA_INT(x->g->expires_ms)};
	int rc = store_query_int(t,
				 "INSERT INTO break_glass(user_id, patient_id, reason, granted_ms, expires_ms, reviewed) "
				 "VALUES($1, $2, $3, $4, $5, 0) RETURNING id",
				 a, 5, &x->g->id);
	if (rc)
		return rc;
	char idtxt[24];
	snprintf(idtxt, sizeof(idtxt), "%lld", (long long)x->g->id);
	struct audit_rec ar = {.action = "break-glass", .resource_type = "Patient", .resource_id = x->g->patient_id,
			       .patient_id = x->g->patient_id, .outcome = 201, .reason = x->reason};
	audit_who(&ar, x->who);
	audit_client(&ar, x->c);
	LOGW("security: break-the-glass grant", "\"user_id\":%lld,\"grant\":%s", (long long)x->who->user_id, idtxt);
	return audit_append(t, &ar);
}

int auth_break_glass(struct auth *a, const struct auth_principal *who, const char *patient_id, const char *reason,
		     const struct auth_client *c, struct auth_grant *out, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	*why = NULL;
	if (!who || !auth_has(who, PERM_BREAK_GLASS))
		return MC_EFORBIDDEN;
	if (!patient_id || !mcid_valid_fhir_id(patient_id)) {
		*why = "patient must be a Patient id";
		return MC_EINVAL;
	}
	/* Count non-blank characters: "          " is not a reason. */
	size_t n = reason ? strlen(reason) : 0, meaningful = 0;
	for (size_t i = 0; i < n; i++)
		if (reason[i] != ' ' && reason[i] != '\t' && reason[i] != '\n' && reason[i] != '\r')
			meaningful++;
	if (meaningful < REASON_MIN) {
		*why = "reason must have at least 10 characters";
		return MC_EINVAL;
	}
	if (n > REASON_MAX) {
		*why = "reason is too long (1000 characters at most)";
		return MC_EINVAL;
	}
	memset(out, 0, sizeof(*out));
	copy_text(out->patient_id, sizeof(out->patient_id), patient_id);
	out->granted_ms = auth_now_ms();
	out->expires_ms = out->granted_ms + a->break_glass_ms;
	struct bg_ctx x = {.a = a, .who = who, .reason = reason, .c = c, .g = out};
	return store_write(a->store, bg_unit, &x);
}
