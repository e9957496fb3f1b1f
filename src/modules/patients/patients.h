/* modules/patients/patients.h — the patient registry task API (/api/v1/patients), a view over FHIR Patient.
 *
 * Registration assigns a medical record number (MRN): identifier {system MC_MRN_SYSTEM, value
 * "MRN" + 8 digits}, from a sequence kept in table mrn_seq, unique across the site.
 */
#ifndef MC_MODULES_PATIENTS_H
#define MC_MODULES_PATIENTS_H
#include <jansson.h>

#include "fhir/store.h"
#include "http/route.h"

#define MC_MRN_SYSTEM "urn:medcore:mrn"

extern const struct route_table patients_routes;

/* Inside a write unit: allocate the next MRN, add it to patient's identifiers, create the FHIR
 * Patient (patient must already be valid FHIR). mrn receives the MRN (size >= 16). */
int patients_create_txn(struct store_txn *t, json_t *patient, struct fhir_meta *out, char mrn[16]);

#endif
