/* modules/clinical/soap.h — consultation notes: SOAP text <-> FHIR Composition (pure, no I/O).
 *
 * A note is a Composition (type LOINC 11488-4 "Consult note") with exactly four sections in this
 * order, each coded with LOINC and holding its text as a generated Narrative:
 *   Subjective 61150-9, Objective 61149-1, Assessment 51848-0, Plan 18776-5.
 * The section text is XHTML-escaped into <div xmlns="http://www.w3.org/1999/xhtml">...</div>;
 * soap_from_composition() reverses exactly that escaping, so text round-trips unchanged.
 * The author is author[0]: Practitioner/<id> when the user is linked to one, and always an
 * identifier {system SOAP_USER_SYSTEM, value "<user id>"} that decides "author only" checks.
 */
#ifndef MC_MODULES_CLINICAL_SOAP_H
#define MC_MODULES_CLINICAL_SOAP_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOAP_USER_SYSTEM "urn:medcore:user"
#define SOAP_AMEND_REASON_URL "https://medcore.dev/fhir/StructureDefinition/amendment-reason"
#define SOAP_TEXT_MAX 20000      /* characters of one section */
#define SOAP_REASON_MAX 1000
#define SOAP_NSECTIONS 4

enum soap_part { SOAP_S, SOAP_O, SOAP_A, SOAP_P };
extern const char *const soap_keys[SOAP_NSECTIONS];   /* "subjective", "objective", ... */

struct soap_note {
	const char *text[SOAP_NSECTIONS];   /* borrowed; NULL = absent */
};

struct soap_author {
	int64_t user_id;
	const char *username;          /* display */
	const char *practitioner_id;   /* "" or NULL when the user has no Practitioner */
};

/* Read the four section fields from a request body. With partial=false at least one must be a
 * non-empty string; with partial=true (amendments) absent fields stay NULL. Each must be a string
 * of at most SOAP_TEXT_MAX bytes. MC_EINVAL with *field set to the offending key. */
int soap_parse(const json_t *body, bool partial, struct soap_note *out, const char **field);

/* A new preliminary Composition (caller owns). date is a FHIR dateTime (borrowed, copied). */
json_t *soap_to_composition(const struct soap_note *n, const char *patient_id, const char *encounter_id,
			    const struct soap_author *a, const char *date);
/* Replace the section texts of comp with the non-NULL texts of n (others are kept). */
void soap_apply(json_t *comp, const struct soap_note *n);
/* The section texts of a Composition this module wrote. Strings are malloc'd into out->text (free
 * with soap_note_free). MC_EINVAL when a section is missing or not our narrative. */
int soap_from_composition(const json_t *comp, struct soap_note *out);
void soap_note_free(struct soap_note *n);
/* Escape text into a Narrative div (caller frees); unescape a div we wrote (caller frees; NULL when
 * the div is not in our form). */
char *soap_div(const char *text);
char *soap_undiv(const char *div);
/* The user id in author[0].identifier, or 0. */
int64_t soap_author_user(const json_t *comp);
/* The API view of a note (caller owns): {id, version, status, patient, encounter, author{...},
 * date, subjective, objective, assessment, plan, signedAt?, amendmentReason?}. */
json_t *soap_view(const json_t *comp);

#endif
