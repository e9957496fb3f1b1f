/* auth/password.c — password policy and argon2id hashing on a bounded worker pool.
 *
 * Each argon2id hash (libsodium INTERACTIVE limits) costs ~64 MiB and ~120 ms. HTTP threads never
 * hash: they queue a job and wait. At most cfg->login_workers hashes run at once, so memory stays
 * bounded under a login burst; when more than AUTH_LOGIN_QUEUE_MAX jobs wait, new ones are refused
 * (MC_EUNAVAIL) instead of piling up.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "core/err.h"
#include "core/mem.h"

_Static_assert(crypto_pwhash_STRBYTES <= AUTH_PWHASH_MAX, "AUTH_PWHASH_MAX too small");

/* The hash of 32 random bytes nobody knows, made with the same limits as real hashes: unknown
 * usernames are verified against it so they take as long as a wrong password. */
const char auth_dummy_hash[] =
	"$argon2id$v=19$m=65536,t=2,p=1$8OLsVEiDyIl9betLU6kz0Q$EeB0Ef95bhw4H/ZKOr+Vgnb+0Hd5+adQQF7gSxuuLaQ";

int auth_password_policy(const char *pw, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (!pw) {
		*why = "password is required";
		return MC_EINVAL;
	}
	size_t n = strlen(pw);
	if (n < 12) {
		*why = "password must have at least 12 characters";
		return MC_EINVAL;
	}
	if (n > AUTH_PASSWORD_MAX) {
		*why = "password is too long";
		return MC_EINVAL;
	}
	bool upper = false, digit = false, special = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)pw[i];
		if (c >= 'A' && c <= 'Z')
			upper = true;
		else if (c >= '0' && c <= '9')
			digit = true;
		else if (!(c >= 'a' && c <= 'z'))
			special = true;
	}
	if (!upper) {
		*why = "password needs an upper-case letter";
		return MC_EINVAL;
	}
	if (!digit) {
		*why = "password needs a digit";
		return MC_EINVAL;
	}
	if (!special) {
		*why = "password needs a special character";
		return MC_EINVAL;
	}
	return MC_OK;
}

bool auth_username_valid(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (n < 3 || n > AUTH_USERNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (!(isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* ---- the pool ---- */

enum pw_op { PW_HASH, PW_VERIFY };

struct pw_job {
	enum pw_op op;
	const char *password;
	const char *hash;         /* PW_VERIFY input */
	char *out;                /* PW_HASH output, AUTH_PWHASH_MAX */
	int rc;
	bool done;
	struct pw_job *next;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int run_job(enum pw_op op, const char *password, const char *hash, char *out)
{
	if (op == PW_HASH) {
		if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
				      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
			return MC_EUNAVAIL;   /* out of memory for the hash */
		return MC_OK;
	}
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0 ? MC_OK : MC_EUNAUTH;
}

static void *worker(void *arg)
{
	struct auth_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->head)
			break;   /* stop, queue drained */
		struct pw_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->mu);
		int rc = run_job(j->op, j->password, j->hash, j->out);
		pthread_mutex_lock(&j->mu);
		j->rc = rc;
		j->done = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int auth_pool_start(struct auth_pool *p, int nthreads)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->threads = mc_calloc((size_t)nthreads, sizeof(pthread_t));
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			auth_pool_stop(p);
			return MC_EINTERNAL;
		}
		p->nthreads++;
	}
	return MC_OK;
}

void auth_pool_stop(struct auth_pool *p)
{
	if (!p->threads)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
}

static int submit(struct auth *a, enum pw_op op, const char *password, const char *hash, char *out)
{
	if (!a || !a->pool.threads)
		return run_job(op, password, hash, out);
	struct auth_pool *p = &a->pool;
	struct pw_job j = {.op = op, .password = password, .hash = hash, .out = out};
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	pthread_mutex_lock(&p->mu);
	if (p->queued >= AUTH_LOGIN_QUEUE_MAX || p->stop) {
		pthread_mutex_unlock(&p->mu);
		pthread_cond_destroy(&j.cv);
		pthread_mutex_destroy(&j.mu);
		return MC_EUNAVAIL;
	}
	if (p->tail)
		p->tail->next = &j;
	else
		p->head = &j;
	p->tail = &j;
	p->queued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);

	pthread_mutex_lock(&j.mu);
	while (!j.done)
		pthread_cond_wait(&j.cv, &j.mu);
	pthread_mutex_unlock(&j.mu);
	pthread_cond_destroy(&j.cv);
	pthread_mutex_destroy(&j.mu);
	return j.rc;
}

int auth_password_hash(struct auth *a, const char *password, char out[AUTH_PWHASH_MAX])
{
	if (!password || strlen(password) > AUTH_PASSWORD_MAX)
		return MC_EINVAL;
	return submit(a, PW_HASH, password, NULL, out);
}

int auth_password_verify(struct auth *a, const char *hash, const char *password)
{
	if (!hash || !password || strlen(password) > AUTH_PASSWORD_MAX)
		return MC_EUNAUTH;
	return submit(a, PW_VERIFY, password, hash, NULL);
}
