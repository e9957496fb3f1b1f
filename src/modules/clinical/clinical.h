/* modules/clinical/clinical.h — the clinical record task API: encounters, consultation notes
 * (SOAP Compositions with sign and amend), diagnoses (ICD-10-CM Conditions), allergies, problem
 * list, care plans, family history and emergency contacts, insurance coverage, and the patient's
 * medical-history timeline. Everything is stored as FHIR resources through the versioned store.
 *
 * Access (every route declares its permission; which patient is checked in the unit of work):
 *   clinical reads  read:patient_data  + auth_patient_access(AUTH_CLINICAL_READ)
 *   clinical writes write:patient_data + auth_patient_access(AUTH_CLINICAL_WRITE)
 *   coverage        read/write:demographics (front desk and billing keep insurance)
 *   notes           additionally only the roles doctor and nurse: lab_tech and pharmacist hold
 *                   read:patient_data for their own work but do not read consultation notes
 *                   (receptionists lack read:patient_data altogether). The timeline leaves notes out
 *                   for other roles. NOTE: /fhir/Composition is governed by the generic FHIR policy.
 *   opening an encounter: doctor, nurse or integration, for a patient already in the caller's care
 *                   or through an appointment that names the caller's Practitioner; the caller
 *                   then joins the care team.
 */
#ifndef MC_MODULES_CLINICAL_H
#define MC_MODULES_CLINICAL_H
#include "fhir/store.h"
#include "http/route.h"

extern const struct route_table clinical_routes;

/* Open an in-progress ambulatory Encounter (scheduling's check-in). Inside a write unit.
 * patient_id: must name a live Patient (MC_ENOTFOUND otherwise).
 * appointment_id: NULL/"" or a live Appointment of the same patient (MC_ENOTFOUND / MC_EINVAL);
 *   an Encounter already open (in-progress) for that appointment is returned as is (idempotent
 *   check-in), nothing new is written.
 * practitioner_id: NULL/"" or the Practitioner seeing the patient: recorded as participant, and
 *   every active clinician user linked to that Practitioner joins the patient's care team.
 * Emits "encounter.started" (ids only). *out (may be NULL) receives the Encounter's meta.
 * MC_EINVAL for malformed ids. Strings are borrowed. */
int clinical_encounter_open_txn(struct store_txn *t, const char *patient_id, const char *appointment_id,
				const char *practitioner_id, struct fhir_meta *out);

#endif
