/* modules/dashboard/dashboard.h — GET /api/v1/dashboard/doctor: one call with what a doctor needs
 * at the start of a session.
 *
 *   appointments      today's Appointments (UTC day, or ?date=YYYY-MM-DD) with the doctor's
 *                     Practitioner as a participant, found through the FHIR search engine
 *                     (practitioner=Practitioner/<id>&date=<day>, sorted by date); empty when the
 *                     user is not linked to a Practitioner
 *   newResults        patients in the doctor's care with lab results entered since the doctor's
 *                     previous dashboard view (table dashboard_seen; the view is recorded after
 *                     the answer is built)
 *   criticalResults   unacknowledged LL/HH results of patients in the doctor's care
 *                     (acknowledge: POST /api/v1/lab-results/{id}/acknowledge)
 *   pendingCosign     Compositions with status preliminary on patients in the doctor's care
 *                     whose author is someone else (notes awaiting co-signature)
 * Permission read:patient_data, role doctor; every list is limited to DASH_LIST_MAX entries.
 */
#ifndef MC_MODULES_DASHBOARD_H
#define MC_MODULES_DASHBOARD_H
#include "http/route.h"

#define DASH_LIST_MAX 100

extern const struct route_table dashboard_routes;

#endif
