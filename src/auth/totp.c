/* auth/totp.c — RFC 6238 TOTP (HMAC-SHA-1, 30 s steps, 6 digits, window ±1) and secret sealing.
 *
 * Codes are computed with liboath's oath_totp_generate for each step of the window and compared
 * with sodium_memcmp (constant time) — never liboath's strcmp-based validate. Only steps greater
 * than the user's last accepted step count, so a code cannot be replayed inside its window.
 */
#include <liboath/oath.h>
#include <pthread.h>
#include <string.h>

#include "auth/auth_int.h"
#include "core/err.h"

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static void oath_start(void)
{
	oath_init();
}

int auth_totp_check(const unsigned char *secret, size_t len, int64_t now_s, const char *code,
		    int64_t last_step, int64_t *step)
{
	pthread_once(&oath_once, oath_start);
	if (!code || strlen(code) != AUTH_TOTP_DIGITS || now_s < AUTH_TOTP_STEP)
		return MC_EUNAUTH;
	for (size_t i = 0; i < AUTH_TOTP_DIGITS; i++)
		if (code[i] < '0' || code[i] > '9')
			return MC_EUNAUTH;
	int64_t cur = now_s / AUTH_TOTP_STEP;
	int64_t matched = -1;
	/* Check every step of the window (no early exit) so timing says nothing about which matched. */
	for (int64_t s = cur - 1; s <= cur + 1; s++) {
		char otp[AUTH_TOTP_DIGITS + 1];
		if (oath_totp_generate((const char *)secret, len, (time_t)(s * AUTH_TOTP_STEP), AUTH_TOTP_STEP,
				       OATH_TOTP_DEFAULT_START_TIME, AUTH_TOTP_DIGITS, otp) != OATH_OK)
			return MC_EINTERNAL;
		if (sodium_memcmp(otp, code, AUTH_TOTP_DIGITS) == 0 && s > last_step && matched < 0)
			matched = s;
		sodium_memzero(otp, sizeof(otp));
	}
	if (matched < 0)
		return MC_EUNAUTH;
	*step = matched;
	return MC_OK;
}

int auth_totp_seal(const struct auth *a, const unsigned char *secret, size_t len, char *out, size_t outsz)
{
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 64];
	if (len > 64)
		return MC_EINVAL;
	randombytes_buf(box, crypto_secretbox_NONCEBYTES);
	crypto_secretbox_easy(box + crypto_secretbox_NONCEBYTES, secret, len, box, a->totp_key);
	size_t n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
	if (outsz < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL))
		return MC_EINVAL;
	sodium_bin2base64(out, outsz, box, n, sodium_base64_VARIANT_ORIGINAL);
	return MC_OK;
}

int auth_totp_open(const struct auth *a, const char *sealed, unsigned char *secret, size_t cap, size_t *len)
{
	unsigned char box[crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + 64];
	size_t n = 0;
	if (!sealed || sodium_base642bin(box, sizeof(box), sealed, strlen(sealed), NULL, &n, NULL,
					 sodium_base64_VARIANT_ORIGINAL))
		return MC_EINTERNAL;
	if (n < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
		return MC_EINTERNAL;
	size_t plen = n - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
	if (plen > cap)
		return MC_EINTERNAL;
	if (crypto_secretbox_open_easy(secret, box + crypto_secretbox_NONCEBYTES, n - crypto_secretbox_NONCEBYTES, box,
				       a->totp_key) != 0)
		return MC_EINTERNAL;   /* wrong key (token key changed?) or tampered */
	*len = plen;
	return MC_OK;
}
