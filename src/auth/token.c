/* auth/token.c — the auth engine's life cycle and HS256 access tokens.
 *
 * Token = base64url(header) "." base64url(claims) "." base64url(HMAC-SHA-256(key, first two parts)).
 * The header is fixed ({"alg":"HS256","typ":"JWT"}) and compared byte for byte, so no "alg"
 * confusion is possible. Claims: sub (user id, string), usr, role, pid, prid, iat, exp, iss
 * "medcore", jti. The key is cfg->token_secret, else 32 random bytes generated once and kept in
 * settings('token_key') as hex.
 *
 * auth_token_verify also checks that the user is still active and has the token's role. To keep
 * that off the database on the hot path, each thread caches (user -> active, role) for
 * AUTH_USER_CACHE_MS: disabling a user or changing a role takes effect within that time.
 *
 * Verified tokens are cached too (per thread, TCACHE_N entries, keyed by the whole token text):
 * a client sends the same token on every request, and HMAC + base64 + JSON parse of the claims
 * cost more than the rest of authentication. A hit needs the very same bytes (compared in
 * constant time), the same key (struct auth gen, renewed by auth_set_key), and the time checks
 * redone against the cached exp/iat/nbf; the user-active check runs on every call as before.
 * Access tokens are stateless (no revocation list), so a hit decides exactly as a full verify.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "store/store.h"

/* base64url of {"alg":"HS256","typ":"JWT"} */
static const char jwt_header[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";
#define JWT_HEADER_LEN (sizeof(jwt_header) - 1)
#define CLAIMS_JSON_MAX 1280   /* room for a scope claim of AUTH_SCOPE_MAX chars */
#define CLAIMS_B64_MAX (CLAIMS_JSON_MAX * 4 / 3 + 4)

int64_t auth_test_now_ms;

int64_t auth_now_ms(void)
{
	return auth_test_now_ms ? auth_test_now_ms : mctime_now_ms();
}

static atomic_uint_fast64_t auth_gens;

void auth_set_key(struct auth *a, const unsigned char *key, size_t len)
{
	/* a new key is a new generation: thread caches (verified tokens, users) must not carry over */
	a->gen = atomic_fetch_add(&auth_gens, 1) + 1;
	crypto_auth_hmacsha256_init(&a->hmac0, key, len);
	/* The TOTP secret key is derived from the token key, domain-separated. Changing the token key
	 * therefore makes enrolled TOTP secrets unreadable: users must re-enrol (user reset-mfa). */
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	static const char ctx[] = "medcore/totp-secret-key/v1";
	crypto_hash_sha256_update(&h, (const unsigned char *)ctx, sizeof(ctx) - 1);
	crypto_hash_sha256_update(&h, key, len);
	crypto_hash_sha256_final(&h, a->totp_key);
}

static void mac(const struct auth *a, const char *data, size_t len, unsigned char out[32])
{
	crypto_auth_hmacsha256_state st = a->hmac0;
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

/* ---- life cycle ---- */

struct key_unit {
	char hex[65];
	char *got;
};

static int key_unit(struct store_txn *t, void *arg)
{
	struct key_unit *k = arg;
	struct store_arg a[2] = {SA_TEXT("token_key"), SA_TEXT(k->hex)};
	int rc = store_exec(t, "INSERT INTO settings(key, value) VALUES($1, $2) ON CONFLICT(key) DO NOTHING", a, 2);
	if (rc)
		return rc;
	return store_query_text(t, "SELECT value FROM settings WHERE key = $1", a, 1, &k->got);
}

int auth_create(const struct mc_config *cfg, struct store *s, struct auth **out)
{
	struct auth *a = mc_calloc(1, sizeof(*a));
	a->store = s;
	a->gen = atomic_fetch_add(&auth_gens, 1) + 1;
	a->access_ttl_s = cfg->access_ttl > 0 ? cfg->access_ttl : 900;
	a->refresh_ttl_s = cfg->refresh_ttl > 0 ? cfg->refresh_ttl : 604800;
	a->lockout_threshold = cfg->lockout_threshold > 0 ? cfg->lockout_threshold : 5;
	a->lockout_ms = (cfg->lockout_minutes > 0 ? cfg->lockout_minutes : 15) * 60000;
	a->break_glass_ms = (cfg->break_glass_minutes > 0 ? cfg->break_glass_minutes : 60) * 60000;
	snprintf(a->mfa_roles, sizeof(a->mfa_roles), "%s", cfg->mfa_roles ? cfg->mfa_roles : "");

	if (cfg->token_secret && strlen(cfg->token_secret) >= 32) {
		auth_set_key(a, (const unsigned char *)cfg->token_secret, strlen(cfg->token_secret));
	} else {
		struct key_unit k = {0};
		unsigned char raw[32];
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2hex(k.hex, sizeof(k.hex), raw, sizeof(raw));
		int rc = store_write(s, key_unit, &k);
		unsigned char key[32];
		size_t klen = 0;
		if (rc == MC_OK && (!k.got || sodium_hex2bin(key, sizeof(key), k.got, strlen(k.got), NULL, &klen, NULL) ||
				    klen != sizeof(key)))
			rc = MC_EINTERNAL;
		if (k.got) {
			sodium_memzero(k.got, strlen(k.got));
			free(k.got);
		}
		sodium_memzero(k.hex, sizeof(k.hex));
		sodium_memzero(raw, sizeof(raw));
		if (rc) {
			LOGE("security: cannot load the token key", "\"code\":\"%s\"", mc_code_name(rc));
			free(a);
			return rc;
		}
		auth_set_key(a, key, sizeof(key));
		sodium_memzero(key, sizeof(key));
	}
	int workers = cfg->login_workers > 0 ? (int)cfg->login_workers : 2;
	int rc = auth_pool_start(&a->pool, workers);
	if (rc) {
		sodium_memzero(a, sizeof(*a));
		free(a);
		return rc;
	}
	*out = a;
	return MC_OK;
}

void auth_destroy(struct auth *a)
{
	if (!a)
		return;
	auth_pool_stop(&a->pool);
	sodium_memzero(a, sizeof(*a));
	free(a);
}

/* ---- signing ---- */

int auth_jwt_sign(struct auth *a, const struct auth_principal *p, int64_t now_ms, char out[AUTH_TOKEN_MAX])
{
	char jti[32];
	mcid_token(jti, sizeof(jti), 16);
	int64_t iat = now_ms / 1000;
	struct buf c;
	buf_init(&c, CLAIMS_JSON_MAX);
	int rc = buf_printf(&c, "{\"sub\":\"%lld\",\"usr\":", (long long)p->user_id);
	rc = rc ? rc : buf_json_str(&c, p->username);
	rc = rc ? rc : buf_printf(&c, ",\"role\":\"%s\",\"pid\":", auth_role_name(p->role));
	rc = rc ? rc : buf_json_str(&c, p->patient_id);
	rc = rc ? rc : buf_puts(&c, ",\"prid\":");
	rc = rc ? rc : buf_json_str(&c, p->practitioner_id);
	if (!rc && p->scope[0]) {
		rc = buf_puts(&c, ",\"scope\":");
		rc = rc ? rc : buf_json_str(&c, p->scope);
	}
	rc = rc ? rc : buf_printf(&c, ",\"iat\":%lld,\"exp\":%lld,\"iss\":\"medcore\",\"jti\":\"%s\"}",
				  (long long)iat, (long long)(iat + a->access_ttl_s), jti);
	if (rc) {
		buf_release(&c);
		return MC_EINVAL;
	}
	size_t n = 0;
	memcpy(out, jwt_header, JWT_HEADER_LEN);
	n = JWT_HEADER_LEN;
	out[n++] = '.';
	sodium_bin2base64(out + n, AUTH_TOKEN_MAX - n, (const unsigned char *)c.data, c.len,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n += strlen(out + n);
	buf_release(&c);
	unsigned char sig[32];
	mac(a, out, n, sig);
	out[n++] = '.';
	sodium_bin2base64(out + n, AUTH_TOKEN_MAX - n, sig, sizeof(sig), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return MC_OK;
}

int auth_token_issue(struct auth *a, const struct auth_principal *p, char out[AUTH_TOKEN_MAX], int64_t *expires_in)
{
	if (expires_in)
		*expires_in = a->access_ttl_s;
	return auth_jwt_sign(a, p, auth_now_ms(), out);
}

/* ---- verification ---- */

struct ucache_ent {
	uint64_t gen;
	int64_t user_id, fetched_ms;
	bool active;
	int role;
};
#define UCACHE_N 64
static _Thread_local struct ucache_ent ucache[UCACHE_N];

void auth_user_cache_forget(int64_t user_id)
{
	ucache[(uint64_t)user_id % UCACHE_N].user_id = 0;
}

struct ustate {
	int64_t id;
	bool found, active;
	int role;
};

static int ustate_unit(struct store_txn *t, void *arg)
{
	struct ustate *u = arg;
	struct store_arg a[1] = {SA_INT(u->id)};
	struct store_rows *r = NULL;
	int rc = store_query(t, "SELECT active, role FROM users WHERE id = $1", a, 1, &r);
	if (rc)
		return rc;
	int st = store_rows_next(r);
	if (st == 1) {
		enum auth_role role;
		u->found = true;
		u->active = store_rows_int(r, 0) != 0;
		u->role = auth_role_parse(store_rows_text(r, 1), &role) == MC_OK ? (int)role : -1;
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

/* *unavail: set when the database could not answer (the caller then says 503, not 401). */
static bool user_ok(struct auth *a, int64_t user_id, enum auth_role role, int64_t now_ms, bool *unavail)
{
	struct ucache_ent *e = &ucache[(uint64_t)user_id % UCACHE_N];
	if (e->gen != a->gen || e->user_id != user_id || now_ms - e->fetched_ms > AUTH_USER_CACHE_MS ||
	    now_ms < e->fetched_ms) {
		struct ustate u = {.id = user_id};
		int rc = store_read(a->store, ustate_unit, &u);
		if (rc != MC_OK) {
			*unavail = rc == MC_EUNAVAIL;
			return false;   /* do not cache errors */
		}
		e->gen = a->gen;
		e->user_id = user_id;
		e->fetched_ms = now_ms;
		e->active = u.found && u.active;
		e->role = u.found ? u.role : -1;
	}
	return e->active && e->role == (int)role;
}

static bool copy_str(char *dst, size_t cap, const json_t *j, bool allow_empty)
{
	const char *s = json_string_value(j);
	if (!s)
		return false;
	size_t n = strlen(s);
	if (n >= cap || (!allow_empty && n == 0))
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

/* ---- verified-token cache (see the file comment) ---- */

#define TCACHE_N 8   /* tokens per thread: a connection-pooling client uses one or a few */

struct tcache_ent {
	uint64_t gen;                  /* 0: empty */
	size_t len;
	int64_t iat_s, exp_s, nbf_s;   /* nbf_s: INT64_MIN when the token has none */
	struct auth_principal p;       /* claims as parsed (perms set, user not yet checked) */
	char tok[AUTH_TOKEN_MAX];
};
/* Heap, one per thread that verifies tokens, freed at thread exit (tcache_key). */
static pthread_once_t tcache_once = PTHREAD_ONCE_INIT;
static pthread_key_t tcache_key;
static _Thread_local struct tcache_ent *tcache;

static void tcache_free(void *v)
{
	sodium_memzero(v, sizeof(struct tcache_ent) * TCACHE_N);
	free(v);
}

static void tcache_key_create(void)
{
	if (pthread_key_create(&tcache_key, tcache_free) != 0)
		abort();   /* no keys left: the process cannot work */
}

/* Slot of a token: FNV-1a over its last bytes (the signature). Not secret: a hit still needs the
 * whole token to match. */
static size_t tcache_slot(const char *token, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	size_t from = len > 16 ? len - 16 : 0;
	for (size_t i = from; i < len; i++)
		h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
	return (size_t)(h % TCACHE_N);
}

static struct tcache_ent *tcache_find(const struct auth *a, const char *token, size_t len)
{
	if (!tcache)
		return NULL;
	struct tcache_ent *e = &tcache[tcache_slot(token, len)];
	if (e->gen != a->gen || e->len != len || sodium_memcmp(e->tok, token, len) != 0)
		return NULL;
	return e;
}

static void tcache_put(const struct auth *a, const char *token, size_t len, int64_t iat_s, int64_t exp_s,
		       int64_t nbf_s, const struct auth_principal *p)
{
	if (!tcache) {
		pthread_once(&tcache_once, tcache_key_create);
		tcache = mc_calloc(TCACHE_N, sizeof(*tcache));
		pthread_setspecific(tcache_key, tcache);
	}
	struct tcache_ent *e = &tcache[tcache_slot(token, len)];
	e->gen = a->gen;
	e->len = len;
	e->iat_s = iat_s;
	e->exp_s = exp_s;
	e->nbf_s = nbf_s;
	e->p = *p;
	memcpy(e->tok, token, len);
}

/* The time rules of a token, applied on every verification (cached or not). */
static bool token_times_ok(int64_t iat_s, int64_t exp_s, int64_t nbf_s, int64_t now_s)
{
	return exp_s > now_s && iat_s <= now_s + 60 && exp_s > iat_s && nbf_s <= now_s + 60;
}

/* Signature and claims of a token of len bytes; on MC_OK *p (user not checked) and the times. */
static int jwt_check(struct auth *a, const char *token, size_t len, int64_t now_s, struct auth_principal *out,
		     int64_t *iat_s, int64_t *exp_s, int64_t *nbf_s)
{
	if (memcmp(token, jwt_header, JWT_HEADER_LEN) || token[JWT_HEADER_LEN] != '.')
		return MC_EUNAUTH;
	const char *claims = token + JWT_HEADER_LEN + 1;
	const char *dot = memchr(claims, '.', len - JWT_HEADER_LEN - 1);
	if (!dot || (size_t)(dot - claims) > CLAIMS_B64_MAX)
		return MC_EUNAUTH;
	const char *sigtxt = dot + 1;
	size_t siglen = len - (size_t)(sigtxt - token);
	unsigned char sig[32], want[32];
	size_t got = 0;
	if (sodium_base642bin(sig, sizeof(sig), sigtxt, siglen, NULL, &got, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING) || got != sizeof(sig))
		return MC_EUNAUTH;
	mac(a, token, (size_t)(dot - token), want);
	if (crypto_verify_32(sig, want) != 0)
		return MC_EUNAUTH;

	/* Signed by us: the claims are ours, but still parse defensively. */
	unsigned char cj[CLAIMS_JSON_MAX];
	if (sodium_base642bin(cj, sizeof(cj), claims, (size_t)(dot - claims), NULL, &got, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return MC_EUNAUTH;
	json_t *j = json_loadb((const char *)cj, got, JSON_REJECT_DUPLICATES, NULL);
	if (!j)
		return MC_EUNAUTH;
	struct auth_principal p;
	memset(&p, 0, sizeof(p));
	int rc = MC_EUNAUTH;
	const char *sub = json_string_value(json_object_get(j, "sub"));
	const char *iss = json_string_value(json_object_get(j, "iss"));
	json_t *iat = json_object_get(j, "iat"), *exp = json_object_get(j, "exp"), *nbf = json_object_get(j, "nbf");
	char *end = NULL;
	if (!sub || !iss || strcmp(iss, "medcore") || !json_is_integer(iat) || !json_is_integer(exp))
		goto done;
	p.user_id = strtoll(sub, &end, 10);
	if (p.user_id <= 0 || !end || *end)
		goto done;
	if (nbf && !json_is_integer(nbf))
		goto done;
	*iat_s = json_integer_value(iat);
	*exp_s = json_integer_value(exp);
	*nbf_s = nbf ? json_integer_value(nbf) : INT64_MIN;
	if (!token_times_ok(*iat_s, *exp_s, *nbf_s, now_s))
		goto done;
	if (!copy_str(p.username, sizeof(p.username), json_object_get(j, "usr"), false) ||
	    !copy_str(p.patient_id, sizeof(p.patient_id), json_object_get(j, "pid"), true) ||
	    !copy_str(p.practitioner_id, sizeof(p.practitioner_id), json_object_get(j, "prid"), true) ||
	    auth_role_parse(json_string_value(json_object_get(j, "role")), &p.role))
		goto done;
	json_t *scope = json_object_get(j, "scope");
	if (scope && (!copy_str(p.scope, sizeof(p.scope), scope, false) || !auth_scope_valid(p.scope)))
		goto done;   /* a scope claim that does not parse must not silently become "no narrowing" */
	p.perms = auth_role_perms(p.role);
	p.expires_ms = *exp_s * 1000;
	*out = p;
	rc = MC_OK;
done:
	json_decref(j);
	return rc;
}

int auth_jwt_verify(struct auth *a, const char *token, int64_t now_ms, bool check_user, struct auth_principal *out)
{
	if (!token)
		return MC_EUNAUTH;
	size_t len = strnlen(token, AUTH_TOKEN_MAX);
	if (len >= AUTH_TOKEN_MAX || len < JWT_HEADER_LEN + 2)
		return MC_EUNAUTH;
	int64_t now_s = now_ms / 1000;
	const struct auth_principal *pp;
	struct auth_principal p;
	const struct tcache_ent *e = tcache_find(a, token, len);
	if (e) {
		if (!token_times_ok(e->iat_s, e->exp_s, e->nbf_s, now_s))
			return MC_EUNAUTH;
		pp = &e->p;
	} else {
		int64_t iat_s, exp_s, nbf_s;
		int rc = jwt_check(a, token, len, now_s, &p, &iat_s, &exp_s, &nbf_s);
		if (rc)
			return rc;
		tcache_put(a, token, len, iat_s, exp_s, nbf_s, &p);
		pp = &p;
	}
	bool unavail = false;
	if (check_user && !user_ok(a, pp->user_id, pp->role, now_ms, &unavail))
		return unavail ? MC_EUNAVAIL : MC_EUNAUTH;
	*out = *pp;
	return MC_OK;
}

int auth_token_verify(struct auth *a, const char *token, struct auth_principal *out)
{
	return auth_jwt_verify(a, token, mctime_now_ms(), true, out);
}
