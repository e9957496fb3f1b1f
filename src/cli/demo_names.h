/* cli/demo_names.h — synthetic demo people: a seeded PRNG, name/address tables and builders of
 * FHIR Practitioner and Patient resources (used by `medcore demo`).
 *
 * Everything here is pure and deterministic: the same (seed, index) always gives the same Patient,
 * whatever the total count or the thread that builds it, so `medcore demo --seed S` reproduces its
 * data (ids and MRNs, assigned by the store, are the exception). Names come from a dozen cultures and
 * deliberately include diacritics (José, Zoë, Müller, Ólafsdóttir, Nguyễn) so accent-insensitive
 * search can be tried on realistic data. All phone numbers, e-mail domains (example.org/.com/.net)
 * and national identifiers are fictional; they belong to no real person.
 *
 * Thread-safe: the tables are const and the builders keep no state.
 */
#ifndef MC_CLI_DEMO_NAMES_H
#define MC_CLI_DEMO_NAMES_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* splitmix64: tiny, fast, statistically good enough for demo data, and the same on every platform. */
struct demo_rng {
	uint64_t state;
};
void demo_rng_seed(struct demo_rng *r, uint64_t seed);
uint64_t demo_rng_next(struct demo_rng *r);
/* Uniform-enough integer in [0, n); n == 0 gives 0. */
uint32_t demo_rng_below(struct demo_rng *r, uint32_t n);

/* The national identifier system used for demo patients (values look like "DE-123456789"). */
#define DEMO_NATIONAL_ID_SYSTEM "urn:medcore:demo:national-id"
#define DEMO_NPI_SYSTEM "http://hl7.org/fhir/sid/us-npi"

/* Practitioners: a fixed staff list. Index DEMO_PRACT_DOCTOR is the one the demo doctor user is
 * linked to, DEMO_PRACT_NURSE the demo nurse's. */
#define DEMO_PRACTITIONERS 7
#define DEMO_PRACT_DOCTOR 0
#define DEMO_PRACT_NURSE 1
/* A new Practitioner (no id) for i < DEMO_PRACTITIONERS, NULL otherwise. Caller json_decref()s. */
json_t *demo_practitioner_new(size_t i);

/* A new Patient (no id, no MRN: patients_create_txn adds it) for patient number `index` under
 * `seed`. gp_ids (may be NULL when n_gp is 0) are Practitioner ids; when given, the patient's
 * generalPractitioner references one of them. Caller json_decref()s. Never NULL. */
json_t *demo_patient_new(uint64_t seed, uint64_t index, const char *const *gp_ids, size_t n_gp);

/* NPI (10 digits, Luhn check digit over "80840" + the first nine, as CMS defines it).
 * demo_npi_make writes the NPI for a nine-digit base (100000000..999999999) into out. */
void demo_npi_make(uint32_t base9, char out[11]);
bool demo_npi_valid(const char *npi);

/* Lower-case ASCII form of a UTF-8 name for e-mail local parts: Latin letters lose their
 * diacritics (é→e, ß→ss, Ø→o, Đ→d, ễ→e), ASCII letters and digits are kept, everything else is
 * dropped. Always NUL-terminates (outsz >= 1); returns the length written. */
size_t demo_ascii_fold(const char *in, char *out, size_t outsz);

#endif
