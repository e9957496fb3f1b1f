/* modules/medications/medications.h — prescriptions and dispensing (/api/v1/prescriptions).
 *
 * Record: one FHIR MedicationRequest per prescribed item; the items of one prescription share
 * groupIdentifier {system MED_GROUP_SYSTEM, value <prescription id>} and the prescription id is
 * that value. Each dispense is a FHIR MedicationDispense (authorizingPrescription → the request).
 * Table med_supply (sql/.../0011_meds_lab.sql) holds each request's dispensing budget,
 * quantity × (1 + refills) in thousandths of a unit, and what was dispensed; the dispense unit
 * raises the dispensed amount with one guarded UPDATE, so concurrent dispenses can never exceed
 * the budget (SQLite: one writer; PostgreSQL: the row lock).
 *
 * Routes and who may use them (the dispatcher checks the permission; the unit checks the patient):
 *   POST /api/v1/prescriptions                      prescribe:medication + care relation (or break-glass)
 *   GET  /api/v1/prescriptions/{id}/medications     read:patient_data + care relation; pharmacists
 *   PUT  /api/v1/prescriptions/{id}/dispense        manage:inventory (pharmacists)
 *   GET  /api/v1/prescriptions/pending-dispensing   manage:inventory (pharmacists' work list)
 *   POST /api/v1/prescriptions/{id}/cancel|stop     prescribe:medication + care relation
 * Pharmacists reach a patient through the prescription itself (an order addressed to the
 * pharmacy is their care relation); they are not added to care teams.
 *
 * Errors: malformed body, unknown RxNorm code, route or frequency, non-positive dose/quantity,
 * duration < 1 → 400 (error.details.field names the item field); a patient/encounter/request in the
 * body that does not exist → 422; prescription not found → 404; no care relation → 403; dispensing
 * above the budget, dispensing/cancelling a request that is not active, cancelling after a
 * dispense → 409. Every request is one write unit: a failure changes nothing.
 *
 * Events (same unit): prescription.issued {prescriptionId, medicationRequests, rxnorm[]},
 * prescription.dispensed {prescriptionId, medicationRequest, medicationDispense, rxnorm,
 * quantity, remaining}, prescription.cancelled / prescription.stopped {prescriptionId,
 * medicationRequests}. Ids and codes only; no names, no free text.
 */
#ifndef MC_MODULES_MEDICATIONS_H
#define MC_MODULES_MEDICATIONS_H
#include "http/route.h"

#define MED_GROUP_SYSTEM "urn:medcore:prescription"
#define MED_ITEMS_MAX 20          /* items per prescription or dispense request */
#define MED_PENDING_MAX 200       /* rows in the pending-dispensing work list */

extern const struct route_table medications_routes;

#endif
