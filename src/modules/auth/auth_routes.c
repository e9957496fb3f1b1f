/* modules/auth/auth_routes.c — HTTP glue for accounts and sessions (see auth/auth.h for the rules).
 *
 * Token responses carry Cache-Control: no-store. Error messages are generic: a failed login never
 * says whether the user exists.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/search.h"
#include "http/app.h"
#include "modules/auth/auth_routes.h"

static struct auth_client client_of(const struct req *r)
{
	return (struct auth_client){.request_id = r->request_id, .client_ip = r->client_ip};
}

/* The body as an object; fields of the wrong type are reported by the callers. */
static int body_object(struct req *r, json_t **out)
{
	int rc = req_json(r, out);
	if (rc)
		return rc;
	if (!json_is_object(*out))
		return req_fail(r, MC_EINVAL, "the body must be a JSON object", NULL, NULL);
	return MC_OK;
}

/* Optional string field: MC_OK with *out NULL when absent or null; MC_EINVAL when another type. */
static int str_field(struct req *r, json_t *body, const char *key, const char **out)
{
	json_t *v = json_object_get(body, key);
	*out = NULL;
	if (!v || json_is_null(v))
		return MC_OK;
	if (!json_is_string(v) || mcjson_is_decimal(v))
		return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: must be a string", key), NULL,
				json_pack("{s:s}", "field", key));
	*out = json_string_value(v);
	return MC_OK;
}

static json_t *opt_str(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *time_json(int64_t ms)
{
	char t[32];
	mctime_format_ms(ms, t);
	return json_string(t);
}

static int reply_session(struct req *r, struct reply *rep, const struct auth_session *s)
{
	json_t *user = json_pack("{s:I,s:s,s:s,s:o}", "id", (json_int_t)s->who.user_id, "username", s->who.username,
				 "role", auth_role_name(s->who.role), "patient_id", opt_str(s->who.patient_id));
	json_t *data = json_pack("{s:s,s:s,s:I,s:s,s:o,s:b}", "access_token", s->access_token, "refresh_token",
				 s->refresh_token, "expires_in", (json_int_t)s->expires_in, "token_type", "Bearer",
				 "user", user, "mfa_enrollment_required", s->mfa_enrollment_required);
	reply_header(rep, r, "Cache-Control", "no-store");
	return reply_api(rep, r, 200, data, NULL);
}

static int h_login(struct req *r, struct reply *rep)
{
	json_t *body;
	const char *user, *pw, *totp;
	int rc = body_object(r, &body);
	if (!rc)
		rc = str_field(r, body, "username", &user);
	if (!rc)
		rc = str_field(r, body, "password", &pw);
	if (!rc)
		rc = str_field(r, body, "totp", &totp);
	if (rc)
		return rc;
	if (!user || !pw)
		return req_fail(r, MC_EINVAL, "username and password are required", NULL, NULL);
	struct auth_client c = client_of(r);
	struct auth_session *s = arena_zalloc(r->arena, sizeof(*s));
	const char *detail = NULL;
	rc = auth_login(r->app->auth, user, pw, totp, &c, s, &detail);
	switch (rc) {
	case MC_OK:
		return reply_session(r, rep, s);
	case MC_EINVAL:
		return req_fail(r, rc, "username or password too long", NULL, NULL);
	case MC_EUNAUTH:
		if (detail)
			return req_fail(r, rc,
					strcmp(detail, AUTH_DETAIL_MFA_REQUIRED) ? "the TOTP code is wrong or was already used"
										: "a TOTP code is required",
					NULL, json_pack("{s:s}", "code", detail));
		return req_fail(r, rc, "invalid username or password", NULL, NULL);
	case MC_ELOCKED:
		return req_fail(r, rc, "the account is locked after repeated failures; try again later", NULL, NULL);
	case MC_EUNAVAIL:
		reply_header(rep, r, "Retry-After", "1");
		return req_fail(r, rc, "too many logins in progress; retry shortly", NULL, NULL);
	default:
		return rc;
	}
}

static int h_refresh(struct req *r, struct reply *rep)
{
	json_t *body;
	const char *tok;
	int rc = body_object(r, &body);
	if (!rc)
		rc = str_field(r, body, "refresh_token", &tok);
	if (rc)
		return rc;
	if (!tok)
		return req_fail(r, MC_EINVAL, "refresh_token is required", NULL, json_pack("{s:s}", "field", "refresh_token"));
	struct auth_client c = client_of(r);
	struct auth_session *s = arena_zalloc(r->arena, sizeof(*s));
	rc = auth_refresh(r->app->auth, tok, &c, s);
	if (rc == MC_OK)
		return reply_session(r, rep, s);
	if (rc == MC_EUNAUTH)
		return req_fail(r, rc, "the refresh token is invalid, expired or revoked", NULL, NULL);
	return rc;
}

static int h_logout(struct req *r, struct reply *rep)
{
	const char *tok = NULL;
	if (r->body_len) {
		json_t *body;
		int rc = body_object(r, &body);
		if (!rc)
			rc = str_field(r, body, "refresh_token", &tok);
		if (rc)
			return rc;
	}
	struct auth_client c = client_of(r);
	int rc = auth_logout(r->app->auth, r->who, tok, &c);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:b}", "logged_out", 1), NULL);
}

static json_t *perms_json(uint64_t perms)
{
	json_t *a = json_array();
	for (int p = 0; p < PERM__COUNT; p++)
		if (perms & PERM_BIT(p))
			json_array_append_new(a, json_string(auth_perm_name((enum auth_perm)p)));
	return a;
}

static json_t *user_json(const struct auth_user_info *u)
{
	return json_pack("{s:I,s:s,s:s,s:b,s:b,s:o,s:o,s:o}", "id", (json_int_t)u->id, "username", u->username, "role",
			 auth_role_name(u->role), "active", u->active, "mfa_enabled", u->totp_enabled, "patient_id",
			 opt_str(u->patient_id), "practitioner_id", opt_str(u->practitioner_id), "created",
			 time_json(u->created_ms));
}

static int h_me(struct req *r, struct reply *rep)
{
	struct auth_user_info u;
	int rc = auth_user_get(r->app->auth, r->who->user_id, &u);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, MC_EUNAUTH, "the account no longer exists", NULL, NULL);
	if (rc)
		return rc;
	json_t *data = user_json(&u);
	bool need = !u.totp_enabled && r->app->cfg && config_list_has(r->app->cfg->mfa_roles, auth_role_name(u.role));
	json_object_set_new(data, "permissions", perms_json(auth_role_perms(u.role)));
	json_object_set_new(data, "mfa_enrollment_required", json_boolean(need));
	return reply_api(rep, r, 200, data, NULL);
}

static int h_mfa_enroll(struct req *r, struct reply *rep)
{
	char secret[64], uri[AUTH_OTPAUTH_MAX];
	int rc = auth_mfa_enroll(r->app->auth, r->who, secret, uri);
	if (rc == MC_ECONFLICT)
		return req_fail(r, rc, "TOTP is already enabled; an administrator must reset it first", NULL, NULL);
	if (rc)
		return rc;
	json_t *data = json_pack("{s:s,s:s,s:i,s:i}", "secret", secret, "otpauth_uri", uri, "digits", 6, "period", 30);
	sodium_memzero(secret, sizeof(secret));
	sodium_memzero(uri, sizeof(uri));
	reply_header(rep, r, "Cache-Control", "no-store");
	return reply_api(rep, r, 200, data, NULL);
}

static int h_mfa_verify(struct req *r, struct reply *rep)
{
	json_t *body;
	const char *code;
	int rc = body_object(r, &body);
	if (!rc)
		rc = str_field(r, body, "code", &code);
	if (rc)
		return rc;
	if (!code)
		return req_fail(r, MC_EINVAL, "code is required", NULL, json_pack("{s:s}", "field", "code"));
	struct auth_client c = client_of(r);
	rc = auth_mfa_verify(r->app->auth, r->who, code, &c);
	if (rc == MC_EPRECOND)
		return req_fail(r, rc, "no TOTP enrolment is pending: call mfa/enroll first", NULL, NULL);
	if (rc == MC_EUNAUTH)
		return req_fail(r, rc, "the TOTP code is wrong or was already used", NULL,
				json_pack("{s:s}", "code", AUTH_DETAIL_MFA_INVALID));
	if (rc == MC_EINVAL)
		return req_fail(r, rc, "code: must be 6 digits", NULL, NULL);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_pack("{s:b}", "mfa_enabled", 1), NULL);
}

static int h_break_glass(struct req *r, struct reply *rep)
{
	json_t *body;
	const char *patient, *reason;
	int rc = body_object(r, &body);
	if (!rc)
		rc = str_field(r, body, "patient", &patient);
	if (!rc)
		rc = str_field(r, body, "reason", &reason);
	if (rc)
		return rc;
	if (patient && !strncmp(patient, "Patient/", 8))
		patient += 8;
	struct auth_client c = client_of(r);
	struct auth_grant g;
	const char *why = NULL;
	rc = auth_break_glass(r->app->auth, r->who, patient, reason, &c, &g, &why);
	if (rc == MC_EINVAL)
		return req_fail(r, rc, why ? why : "invalid request", NULL, NULL);
	if (rc == MC_EFORBIDDEN)
		return req_fail(r, rc, "this role may not break the glass", NULL, NULL);
	if (rc)
		return rc;
	json_t *data = json_pack("{s:I,s:s,s:s,s:o,s:o}", "id", (json_int_t)g.id, "patient", g.patient_id, "reason",
				 reason, "granted", time_json(g.granted_ms), "expires", time_json(g.expires_ms));
	return reply_api(rep, r, 201, data, NULL);
}

static int h_users_create(struct req *r, struct reply *rep)
{
	json_t *body;
	const char *user, *pw, *role, *pid, *prid;
	int rc = body_object(r, &body);
	if (!rc)
		rc = str_field(r, body, "username", &user);
	if (!rc)
		rc = str_field(r, body, "password", &pw);
	if (!rc)
		rc = str_field(r, body, "role", &role);
	if (!rc)
		rc = str_field(r, body, "patient_id", &pid);
	if (!rc)
		rc = str_field(r, body, "practitioner_id", &prid);
	if (rc)
		return rc;
	if (!user || !pw || !role)
		return req_fail(r, MC_EINVAL, "username, password and role are required", NULL, NULL);
	struct auth_client c = client_of(r);
	int64_t id = 0;
	const char *why = NULL;
	rc = auth_admin_user_create(r->app->auth, r->who, user, pw, role, pid, prid, &c, &id, &why);
	if (rc == MC_EINVAL || rc == MC_ECONFLICT)
		return req_fail(r, rc, why ? why : "invalid user", NULL, NULL);
	if (rc == MC_EUNAVAIL) {
		reply_header(rep, r, "Retry-After", "1");
		return req_fail(r, rc, "the password hashing queue is full; retry shortly", NULL, NULL);
	}
	if (rc)
		return rc;
	struct auth_user_info u;
	rc = auth_user_get(r->app->auth, id, &u);
	if (rc)
		return rc;
	return reply_api(rep, r, 201, user_json(&u), NULL);
}

struct list_acc {
	json_t *items;
	int64_t last;
};

static int list_cb(const struct auth_user_info *u, void *arg)
{
	struct list_acc *l = arg;
	json_array_append_new(l->items, user_json(u));
	l->last = u->id;
	return 0;
}

static int int_query(struct req *r, const char *name, int64_t lo, int64_t hi, int64_t dflt, int64_t *out)
{
	const char *v = req_query(r, name);
	*out = dflt;
	if (!v)
		return MC_OK;
	char *end = NULL;
	long long x = strtoll(v, &end, 10);
	if (!v[0] || *end || x < lo || x > hi)
		return req_fail(r, MC_EINVAL, arena_printf(r->arena, "%s: must be an integer from %lld to %lld", name,
							   (long long)lo, (long long)hi),
				NULL, json_pack("{s:s}", "field", name));
	*out = x;
	return MC_OK;
}

static int h_users_list(struct req *r, struct reply *rep)
{
	int64_t limit, after;
	int64_t max = r->app->cfg && r->app->cfg->page_max > 0 ? r->app->cfg->page_max : 1000;
	if (max > 1000)
		max = 1000;
	int rc = int_query(r, "limit", 1, max, max < 100 ? max : 100, &limit);
	if (!rc)
		rc = int_query(r, "after", 0, INT64_MAX, 0, &after);
	if (rc)
		return rc;
	struct list_acc l = {.items = json_array(), .last = 0};
	rc = auth_user_list(r->app->auth, after, (int)limit, list_cb, &l);
	if (rc) {
		json_decref(l.items);
		return rc;
	}
	json_t *pg = json_pack("{s:I,s:I}", "limit", (json_int_t)limit, "count", (json_int_t)json_array_size(l.items));
	if ((int64_t)json_array_size(l.items) == limit)
		json_object_set_new(pg, "next_after", json_integer(l.last));
	return reply_api(rep, r, 200, l.items, pg);
}

/* ---- OAuth2 token endpoint (RFC 6749 §4.4, client credentials) ----
 * Answers follow RFC 6749 §5: the token JSON or {"error": ...} with 400/401, never the /api/v1
 * envelope, so standard OAuth2 clients understand them. */

static int oauth_error(struct req *r, struct reply *rep, int status, const char *err, const char *desc)
{
	json_t *j = json_pack("{s:s,s:s}", "error", err, "error_description", desc);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (status == 401)
		reply_header(rep, r, "WWW-Authenticate", "Basic realm=\"medcore\", error=\"invalid_client\"");
	reply_header(rep, r, "Cache-Control", "no-store");
	reply_header(rep, r, "Pragma", "no-cache");
	int rc = reply_text(rep, status, "application/json", txt ? txt : "{}");
	free(txt);
	return rc;
}

/* "Basic base64(id:secret)" -> id and secret (arena strings, form-decoded per RFC 6749 §2.3.1).
 * false when the header is not a well-formed Basic credential. */
static bool basic_credentials(struct req *r, const char *h, const char **id, const char **secret)
{
	if (strncasecmp(h, "Basic ", 6))
		return false;
	h += 6;
	while (*h == ' ')
		h++;
	size_t n = strlen(h);
	if (!n || n > 512)
		return false;
	unsigned char raw[400];
	size_t got = 0;
	if (sodium_base642bin(raw, sizeof(raw) - 1, h, n, NULL, &got, NULL, sodium_base64_VARIANT_ORIGINAL))
		return false;
	raw[got] = '\0';
	if (memchr(raw, '\0', got))
		return false;
	char *colon = strchr((char *)raw, ':');
	if (!colon)
		return false;
	struct kv *kv = NULL;
	size_t nkv = 0;
	/* reuse the form decoder: "a=<id>&b=<secret>" is not needed, decode each part on its own */
	const char *parts[2] = {(const char *)raw, colon + 1};
	size_t lens[2] = {(size_t)(colon - (char *)raw), got - (size_t)(colon + 1 - (char *)raw)};
	const char *out[2];
	for (int i = 0; i < 2; i++) {
		char *tmp = arena_printf(r->arena, "v=%.*s", (int)lens[i], parts[i]);
		if (fhir_form_parse(r->arena, tmp, strlen(tmp), 1, &kv, &nkv) || nkv != 1)
			return false;
		out[i] = kv[0].value ? kv[0].value : "";
	}
	sodium_memzero(raw, sizeof(raw));
	*id = out[0];
	*secret = out[1];
	return true;
}

static int h_token(struct req *r, struct reply *rep)
{
	if (!r->content_type || strcmp(r->content_type, "application/x-www-form-urlencoded"))
		return oauth_error(r, rep, 400, "invalid_request", "the body must be application/x-www-form-urlencoded");
	struct kv *form = NULL;
	size_t nf = 0;
	if (!r->body || fhir_form_parse(r->arena, r->body, r->body_len, 20, &form, &nf))
		return oauth_error(r, rep, 400, "invalid_request", "the form body is malformed");
	const char *grant = NULL, *id = NULL, *secret = NULL, *scope = NULL;
	for (size_t i = 0; i < nf; i++) {
		const char *k = form[i].key, *v = form[i].value ? form[i].value : "";
		const char **dst = !strcmp(k, "grant_type")	? &grant
				   : !strcmp(k, "client_id")	? &id
				   : !strcmp(k, "client_secret") ? &secret
				   : !strcmp(k, "scope")	? &scope
								: NULL;
		if (!dst)
			continue;   /* RFC 6749 §3.2: unknown parameters are ignored */
		if (*dst)
			return oauth_error(r, rep, 400, "invalid_request", "a parameter is repeated");
		*dst = v;
	}
	const char *auth = req_header(r, "Authorization");
	if (auth) {
		const char *bid, *bsecret;
		if (!basic_credentials(r, auth, &bid, &bsecret))
			return oauth_error(r, rep, 401, "invalid_client", "malformed client credentials");
		if (secret || (id && strcmp(id, bid)))
			return oauth_error(r, rep, 400, "invalid_request", "use one client authentication method");
		id = bid;
		secret = bsecret;
	}
	if (!grant)
		return oauth_error(r, rep, 400, "invalid_request", "grant_type is required");
	if (strcmp(grant, "client_credentials"))
		return oauth_error(r, rep, 400, "unsupported_grant_type", "only client_credentials is supported");
	struct auth_client c = client_of(r);
	struct auth_token_grant *g = arena_zalloc(r->arena, sizeof(*g));
	const char *err = NULL;
	int rc = auth_client_credentials(r->app->auth, id, secret, scope, &c, g, &err);
	if (rc == MC_EUNAUTH)
		return oauth_error(r, rep, 401, "invalid_client", "client authentication failed");
	if (rc == MC_EINVAL)
		return oauth_error(r, rep, 400, err ? err : "invalid_request",
				   "the requested scope is malformed or exceeds the client's registration");
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s,s:s,s:I,s:s}", "access_token", g->access_token, "token_type", "bearer",
			      "expires_in", (json_int_t)g->expires_in, "scope", g->scope);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	sodium_memzero(g->access_token, sizeof(g->access_token));
	reply_header(rep, r, "Cache-Control", "no-store");
	reply_header(rep, r, "Pragma", "no-cache");
	rc = reply_text(rep, 200, "application/json", txt ? txt : "{}");
	if (txt) {
		sodium_memzero(txt, strlen(txt));
		free(txt);
	}
	return rc;
}

static const struct route routes[] = {
	{"POST", "/api/v1/auth/login", h_login, ROUTE_PUBLIC | ROUTE_WRITE, NULL, 4096,
	 "Log in with username, password and (when enabled) a TOTP code"},
	{"POST", "/api/v1/auth/token", h_token, ROUTE_PUBLIC, NULL, 4096,
	 "OAuth2 token endpoint: client_credentials grant (form body, client secret in the body or HTTP Basic)"},
	{"POST", "/api/v1/auth/refresh", h_refresh, ROUTE_PUBLIC | ROUTE_WRITE, NULL, 4096,
	 "Exchange a refresh token for new tokens (rotation; reuse revokes the session)"},
	{"POST", "/api/v1/auth/logout", h_logout, ROUTE_WRITE, "self", 4096, "Revoke the session of a refresh token"},
	{"GET", "/api/v1/auth/me", h_me, 0, "self", 0, "The signed-in user and their permissions"},
	{"POST", "/api/v1/auth/mfa/enroll", h_mfa_enroll, ROUTE_WRITE, "self", 1024,
	 "Start TOTP enrolment: returns the secret and an otpauth:// URI"},
	{"POST", "/api/v1/auth/mfa/verify", h_mfa_verify, ROUTE_WRITE, "self", 1024,
	 "Confirm TOTP enrolment with a current code"},
	{"POST", "/api/v1/auth/break-glass", h_break_glass, ROUTE_WRITE, "break:glass", 4096,
	 "Emergency access to a patient outside your care, with a stated reason (audited)"},
	{"POST", "/api/v1/admin/users", h_users_create, ROUTE_WRITE, "admin:users", 4096, "Create a user"},
	{"GET", "/api/v1/admin/users", h_users_list, 0, "admin:users", 0, "List users (paged by id: after, limit)"},
};

const struct route_table auth_routes = {routes, sizeof(routes) / sizeof(routes[0])};
