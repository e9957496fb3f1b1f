/* auth/auth_int.h — internals shared by the auth/ files and their unit tests. Not for other layers.
 *
 * struct auth is created once per process (auth_create) and read-only afterwards, except for the
 * login pool, which has its own lock.
 */
#ifndef MC_AUTH_AUTH_INT_H
#define MC_AUTH_AUTH_INT_H
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"

#define AUTH_LOGIN_QUEUE_MAX 256   /* logins waiting for a hash worker beyond this get 503 */
#define AUTH_USER_CACHE_MS 3000    /* how stale a cached (user -> active, role) may be */
#define AUTH_TOTP_STEP 30
#define AUTH_TOTP_DIGITS 6
#define AUTH_TOTP_SECRET_BYTES 20

struct pw_job;

struct auth_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;          /* workers wait here for jobs */
	struct pw_job *head, *tail;
	int queued;
	bool stop;
	int nthreads;
	pthread_t *threads;
};

struct auth {
	struct store *store;
	uint64_t gen;                               /* distinguishes instances in thread caches */
	crypto_auth_hmacsha256_state hmac0;         /* HMAC state after keying; copied per token */
	unsigned char totp_key[crypto_secretbox_KEYBYTES]; /* derived from the token key */
	int64_t access_ttl_s, refresh_ttl_s;
	int64_t lockout_threshold, lockout_ms, break_glass_ms;
	char mfa_roles[256];
	struct auth_pool pool;
};

/* JWT (token.c). now_ms lets tests check expiry; auth_token_verify uses the clock. */
int auth_jwt_sign(struct auth *a, const struct auth_principal *p, int64_t now_ms, char out[AUTH_TOKEN_MAX]);
int auth_jwt_verify(struct auth *a, const char *token, int64_t now_ms, bool check_user,
		    struct auth_principal *out);
void auth_user_cache_forget(int64_t user_id);   /* this thread's cache entry */

/* Key set-up (token.c): key bytes of any length >= 32. */
void auth_set_key(struct auth *a, const unsigned char *key, size_t len);

/* TOTP (totp.c). Checks code against the steps at now_s -1, 0, +1 that are > last_step, with a
 * constant-time compare. MC_OK with *step the matched step, else MC_EUNAUTH. */
int auth_totp_check(const unsigned char *secret, size_t len, int64_t now_s, const char *code,
		    int64_t last_step, int64_t *step);
/* Secret storage: base64(nonce || secretbox(secret)) under a->totp_key. */
int auth_totp_seal(const struct auth *a, const unsigned char *secret, size_t len, char *out, size_t outsz);
int auth_totp_open(const struct auth *a, const char *sealed, unsigned char *secret, size_t cap, size_t *len);

/* Password pool (password.c). */
int auth_pool_start(struct auth_pool *p, int nthreads);
void auth_pool_stop(struct auth_pool *p);
/* Verify on the pool (a may be NULL: inline). MC_OK match, MC_EUNAUTH mismatch, MC_EUNAVAIL full. */
int auth_password_verify(struct auth *a, const char *hash, const char *password);
extern const char auth_dummy_hash[];   /* verified against for unknown users (equal timing) */

/* Time source for tests: when non-zero, used instead of the clock by login/refresh/TOTP. */
extern int64_t auth_test_now_ms;
int64_t auth_now_ms(void);

#endif
