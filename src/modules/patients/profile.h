/* modules/patients/profile.h — the task API's patient profile, mapped to and from FHIR Patient.
 *
 * The profile is a view: it is built from the stored Patient, and an edit is applied onto the
 * stored Patient (elements the profile does not know, e.g. extensions written through /fhir, are
 * kept). Pure functions, no I/O.
 *
 * Profile fields (all optional on input unless noted):
 *   firstName | given (string or array), lastName | family, birthDate (YYYY-MM-DD), gender,
 *   phone, email, address {line (string|array), city, state, postalCode, country},
 *   identifiers [{system, value}], emergencyContact {name, relationship, phone}, active (bool).
 * A field set to null on update removes it.
 */
#ifndef MC_MODULES_PATIENTS_PROFILE_H
#define MC_MODULES_PATIENTS_PROFILE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct profile_error {
	char field[64];   /* offending profile field, e.g. "address.city" */
	char msg[128];    /* safe for clients */
};

/* Apply profile fields from `in` onto the FHIR Patient `pat` (modified in place). Keys listed in
 * `ignore` (NULL-terminated, may be NULL) are skipped (e.g. "force", "version"). Unknown keys and
 * wrong types → MC_EINVAL with err filled. */
int profile_apply(json_t *pat, const json_t *in, const char *const *ignore, struct profile_error *err);
/* A new profile object (caller owns) from a stored Patient; mrn_system picks the MRN identifier. */
json_t *profile_from_patient(const json_t *pat, const char *mrn_system);
/* The value of the first identifier with this system, or NULL (borrowed). */
const char *profile_identifier(const json_t *pat, const char *system);
/* Digits of a phone number only ("+1 (555) 010-2000" → "15550102000"), into out. */
void profile_phone_digits(const char *in, char *out, size_t outsz);

#endif
