/* core/id.h — unguessable, time-ordered identifiers and random tokens.
 *
 * mcid_new(): a UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 74 random bits from
 * libsodium's CSPRNG. Time order makes B-tree inserts append-mostly (1.8× faster, DESIGN §8);
 * 74 random bits keep ids unguessable. Text form is 36 lowercase chars, a valid FHIR id.
 * Needs sodium_init() to have run (mc_core_init does it).
 */
#ifndef MC_CORE_ID_H
#define MC_CORE_ID_H
#include <stdbool.h>
#include <stddef.h>

#define MCID_LEN 36

void mcid_new(char out[MCID_LEN + 1]);
/* n random bytes as base64url without padding into out (size >= 4*n/3+4). */
void mcid_token(char *out, size_t outsz, size_t nbytes);
bool mcid_valid_fhir_id(const char *s);  /* [A-Za-z0-9\-\.]{1,64} */

#endif
