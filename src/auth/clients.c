/* auth/clients.c — OAuth2 scopes and the client-credentials grant (SMART Backend Services, the
 * simple variant with a client secret).
 *
 * A client is a row of oauth_clients plus a backing users row (role integration, unusable
 * password hash "!client": no password login is possible). Its tokens are ordinary access tokens
 * (token.c) carrying a `scope` claim; auth_token_verify copies it into the principal and the
 * dispatcher narrows every FHIR request with auth_scope_allows(). Disabling the backing user
 * (`medcore user disable --username <client_id>`) stops new and existing tokens within
 * AUTH_USER_CACHE_MS, as for any user.
 *
 * Secrets are 32 random bytes (base64url). Only SHA-256 of a secret is stored: with 256 bits of
 * entropy a slow password hash adds nothing, and the token endpoint stays cheap under load.
 * The compare is constant-time.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth_int.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "store/store.h"

#define CLIENT_NAME_MAX 100
#define SCOPE_ITEM_MAX 96

/* ---- scopes ---- */

struct scope_item {
	char type[65];     /* "*" or a resource type name */
	bool read, write;
};

/* Parse one item "system/Patient.read". false when it is not a resource scope. */
static bool scope_parse(const char *s, size_t n, struct scope_item *out)
{
	memset(out, 0, sizeof(*out));
	const char *slash = memchr(s, '/', n);
	if (!slash)
		return false;
	size_t cl = (size_t)(slash - s);
	if (!((cl == 6 && !strncmp(s, "system", 6)) || (cl == 4 && !strncmp(s, "user", 4)) ||
	      (cl == 7 && !strncmp(s, "patient", 7))))
		return false;
	const char *t = slash + 1, *end = s + n;
	const char *dot = memchr(t, '.', (size_t)(end - t));
	if (!dot)
		return false;
	size_t tl = (size_t)(dot - t);
	if (tl == 0 || tl >= sizeof(out->type))
		return false;
	if (!(tl == 1 && t[0] == '*')) {
		if (t[0] < 'A' || t[0] > 'Z')
			return false;
		for (size_t i = 0; i < tl; i++) {
			char c = t[i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
				return false;
		}
	}
	memcpy(out->type, t, tl);
	out->type[tl] = '\0';
	const char *p = dot + 1;
	size_t pl = (size_t)(end - p);
	if ((pl == 4 && !strncmp(p, "read", 4))) {
		out->read = true;
	} else if (pl == 5 && !strncmp(p, "write", 5)) {
		out->write = true;
	} else if (pl == 1 && p[0] == '*') {
		out->read = out->write = true;
	} else {
		/* SMART v2: letters of "cruds", in that order, each at most once */
		static const char order[] = "cruds";
		size_t k = 0;
		if (pl == 0 || pl > 5)
			return false;
		for (size_t i = 0; i < pl; i++) {
			while (k < 5 && order[k] != p[i])
				k++;
			if (k == 5)
				return false;
			if (p[i] == 'r' || p[i] == 's')
				out->read = true;
			else
				out->write = true;
			k++;
		}
	}
	return true;
}

/* Walk the items of a space-separated list: cb(item, len) for each; stops when cb returns false. */
static bool scope_each(const char *list, bool (*cb)(const char *s, size_t n, void *arg), void *arg)
{
	for (const char *p = list; p && *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n && !cb(p, n, arg))
			return false;
		p += n;
	}
	return true;
}

static bool covers(const struct scope_item *g, const char *type, bool read, bool write)
{
	bool type_ok = !strcmp(g->type, "*") || (type && !strcmp(g->type, type));
	return type_ok && (!read || g->read) && (!write || g->write);
}

struct allow_ctx {
	const char *type;
	bool write, ok;
};

static bool allow_cb(const char *s, size_t n, void *arg)
{
	struct allow_ctx *c = arg;
	struct scope_item it;
	if (n <= SCOPE_ITEM_MAX && scope_parse(s, n, &it) && covers(&it, c->type, !c->write, c->write)) {
		c->ok = true;
		return false;
	}
	return true;
}

bool auth_scope_allows(const struct auth_principal *p, const char *type, bool write)
{
	if (!p)
		return false;
	if (!p->scope[0])
		return true;   /* a user token: RBAC and the patient policy decide alone */
	struct allow_ctx c = {.type = type, .write = write};
	scope_each(p->scope, allow_cb, &c);
	return c.ok;
}

static bool valid_cb(const char *s, size_t n, void *arg)
{
	int *count = arg;
	struct scope_item it;
	if (n > SCOPE_ITEM_MAX || !scope_parse(s, n, &it))
		return false;
	(*count)++;
	return true;
}

bool auth_scope_valid(const char *scopes)
{
	int count = 0;
	if (!scopes || strlen(scopes) > AUTH_SCOPE_MAX)
		return false;
	return scope_each(scopes, valid_cb, &count) && count > 0;
}

struct subset_ctx {
	const char *granted;
};

struct one_ctx {
	const struct scope_item *want;
	bool ok;
};

static bool one_cb(const char *s, size_t n, void *arg)
{
	struct one_ctx *c = arg;
	struct scope_item g;
	if (n <= SCOPE_ITEM_MAX && scope_parse(s, n, &g) &&
	    covers(&g, strcmp(c->want->type, "*") ? c->want->type : NULL, c->want->read, c->want->write) &&
	    (strcmp(c->want->type, "*") || !strcmp(g.type, "*"))) {
		c->ok = true;
		return false;
	}
	return true;
}

static bool subset_cb(const char *s, size_t n, void *arg)
{
	struct subset_ctx *c = arg;
	struct scope_item want;
	if (n > SCOPE_ITEM_MAX || !scope_parse(s, n, &want))
		return false;
	struct one_ctx o = {.want = &want};
	scope_each(c->granted, one_cb, &o);
	return o.ok;
}

bool auth_scope_subset(const char *requested, const char *granted)
{
	if (!auth_scope_valid(requested) || !auth_scope_valid(granted))
		return false;
	struct subset_ctx c = {.granted = granted};
	return scope_each(requested, subset_cb, &c);
}

/* "system/Patient.read   system/Patient.write" -> "system/Patient.read system/Patient.write" */
static void scope_normalize(const char *in, char out[AUTH_SCOPE_MAX + 1])
{
	size_t o = 0;
	for (const char *p = in; *p;) {
		while (*p == ' ')
			p++;
		size_t n = strcspn(p, " ");
		if (n && o + n + (o ? 1 : 0) <= AUTH_SCOPE_MAX) {
			if (o)
				out[o++] = ' ';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	out[o] = '\0';
}

/* ---- clients ---- */

static void secret_hash(const char *secret, char hex[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)secret, strlen(secret));
	sodium_bin2hex(hex, 65, h, sizeof(h));
}

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n < 1 || n > CLIENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
			return false;
	return true;
}

int auth_oauth_client_add(struct store_txn *t, const char *name, const char *scopes,
			  char client_id[AUTH_CLIENT_ID_MAX], char secret[AUTH_CLIENT_SECRET_MAX])
{
	if (!name_valid(name) || !auth_scope_valid(scopes))
		return MC_EINVAL;
	char norm[AUTH_SCOPE_MAX + 1];
	scope_normalize(scopes, norm);
	char tok[40];
	mcid_token(tok, sizeof(tok), 16);
	snprintf(client_id, AUTH_CLIENT_ID_MAX, "mc-%s", tok);
	mcid_token(secret, AUTH_CLIENT_SECRET_MAX, 32);
	char hex[65];
	secret_hash(secret, hex);
	int64_t uid = 0;
	int rc = auth_user_create(t, client_id, "!client", ROLE_INTEGRATION, NULL, NULL, &uid);
	if (rc)
		return rc;
	struct store_arg a[6] = {SA_TEXT(client_id), SA_INT(uid), SA_TEXT(name), SA_TEXT(hex), SA_TEXT(norm),
				 SA_INT(auth_now_ms())};
	rc = store_exec(t,
			"INSERT INTO oauth_clients(client_id, user_id, name, secret_hash, scopes, active, created_ms) "
			"VALUES($1, $2, $3, $4, $5, 1, $6)",
			a, 6);
	sodium_memzero(hex, sizeof(hex));
	return rc;
}

struct cc_unit {
	const char *client_id, *secret, *scope;
	const struct auth_client *c;
	struct auth_principal p;
	const char *err;
	int rc;
};

/* Look the client up, check the secret and the scope, audit the outcome. Returns MC_OK even when
 * the grant is refused (u->rc says why) so that the failure's audit record commits. */
static int cc_unit(struct store_txn *t, void *arg)
{
	struct cc_unit *u = arg;
	struct store_arg a[1] = {SA_TEXT(u->client_id)};
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT c.secret_hash, c.scopes, c.active, u.id, u.username, u.active FROM oauth_clients c "
			     "JOIN users u ON u.id = c.user_id WHERE c.client_id = $1",
			     a, 1, &rows);
	if (rc)
		return rc;
	char want[65] = "", granted[AUTH_SCOPE_MAX + 1] = "";
	bool found = false, active = false;
	int st = store_rows_next(rows);
	if (st == 1) {
		found = true;
		snprintf(want, sizeof(want), "%s", store_rows_text(rows, 0) ? store_rows_text(rows, 0) : "");
		snprintf(granted, sizeof(granted), "%s", store_rows_text(rows, 1) ? store_rows_text(rows, 1) : "");
		active = store_rows_int(rows, 2) != 0 && store_rows_int(rows, 5) != 0;
		u->p.user_id = store_rows_int(rows, 3);
		snprintf(u->p.username, sizeof(u->p.username), "%s", store_rows_text(rows, 4) ? store_rows_text(rows, 4) : "");
	}
	store_rows_close(rows);
	if (st < 0)
		return -st;

	char got[65];
	secret_hash(u->secret ? u->secret : "", got);
	/* compare even for unknown clients, so both paths take the same time */
	bool secret_ok = sodium_memcmp(got, found ? want : "0000000000000000000000000000000000000000000000000000000000000000", 64) == 0;
	struct audit_rec ar = {.action = "client-token", .outcome = 200, .resource_type = "Client",
			       .request_id = u->c ? u->c->request_id : NULL, .client_ip = u->c ? u->c->client_ip : NULL};
	if (!found || !active || !secret_ok) {
		u->rc = MC_EUNAUTH;
		u->err = "invalid_client";
		ar.action = "client-token-failed";
		ar.outcome = 401;
		ar.reason = "invalid client credentials";
		ar.resource_id = NULL;   /* an unknown client_id is caller input: not recorded */
		if (found) {
			ar.user_id = u->p.user_id;
			ar.username = u->p.username;
		}
		return audit_append(t, &ar);
	}
	const char *req = u->scope && u->scope[0] ? u->scope : granted;
	if (strlen(req) > AUTH_SCOPE_MAX || !auth_scope_valid(req) || !auth_scope_subset(req, granted)) {
		u->rc = MC_EINVAL;
		u->err = "invalid_scope";
		ar.action = "client-token-failed";
		ar.outcome = 400;
		ar.reason = "scope not allowed";
		ar.user_id = u->p.user_id;
		ar.username = u->p.username;
		return audit_append(t, &ar);
	}
	u->p.role = ROLE_INTEGRATION;
	u->p.perms = auth_role_perms(ROLE_INTEGRATION);
	scope_normalize(req, u->p.scope);
	ar.user_id = u->p.user_id;
	ar.username = u->p.username;
	ar.role = auth_role_name(ROLE_INTEGRATION);
	ar.resource_id = u->p.username;
	u->rc = MC_OK;
	return audit_append(t, &ar);
}

int auth_client_credentials(struct auth *a, const char *client_id, const char *secret, const char *scope,
			    const struct auth_client *c, struct auth_token_grant *out, const char **oauth_error)
{
	*oauth_error = "invalid_request";
	if (!client_id || !client_id[0] || !secret || !secret[0]) {
		*oauth_error = "invalid_client";
		return MC_EUNAUTH;
	}
	if (strlen(client_id) >= AUTH_CLIENT_ID_MAX || strlen(secret) >= AUTH_CLIENT_SECRET_MAX) {
		*oauth_error = "invalid_client";
		return MC_EUNAUTH;
	}
	if (scope && strlen(scope) > AUTH_SCOPE_MAX) {
		*oauth_error = "invalid_scope";
		return MC_EINVAL;
	}
	struct cc_unit u = {.client_id = client_id, .secret = secret, .scope = scope, .c = c};
	int rc = store_write(a->store, cc_unit, &u);
	if (rc)
		return rc;
	if (u.rc) {
		*oauth_error = u.err;
		if (u.rc == MC_EUNAUTH)
			LOGW("security: client authentication failed", "%s", "\"grant\":\"client_credentials\"");
		return u.rc;
	}
	memset(out, 0, sizeof(*out));
	rc = auth_token_issue(a, &u.p, out->access_token, &out->expires_in);
	if (rc)
		return rc;
	memcpy(out->scope, u.p.scope, sizeof(out->scope));
	*oauth_error = NULL;
	return MC_OK;
}
