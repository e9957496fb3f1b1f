/* modules/lab/lab.h — laboratory orders, specimens and results (/api/v1/lab-orders, /api/v1/lab-results).
 *
 * Record: a lab order is a requisition: one FHIR ServiceRequest per test, all with requisition
 * {system LAB_ORDER_SYSTEM, value <order id>}; the order id is that value. One Specimen per order
 * tracks collection (collected → received, or rejected). Results are one Observation per test and
 * one DiagnosticReport per order grouping them; preliminary → final → amended are new versions of
 * the same resources. Table lab_order / lab_order_test / lab_critical (sql/.../0011_meds_lab.sql)
 * index them for the checks, the work lists and the dashboard.
 *
 * Interpretation (Observation.interpretation, v3 ObservationInterpretation L H LL HH N) is COMPUTED
 * from the shipped LOINC subset (modules/lab/loinc.h) — an interpretation in the input is refused
 * as an unknown field. referenceRange comes from the same table. Results must carry the test's UCUM
 * unit (no conversion). Turnaround (order → first final) is on the final report as extension
 * LAB_TAT_URL (valueDuration in minutes) and in the response as turnaroundMinutes.
 *
 * Who (dispatcher: permission; handler: role and patient):
 *   POST /api/v1/lab-orders                 access:lab_results; doctors, nurses (care relation), integration
 *   POST /api/v1/lab-orders/{id}/specimen   access:lab_results; lab_tech (the order is their relation),
 *                                           doctors/nurses in care
 *   PUT  /api/v1/lab-orders/{id}/status     the same
 *   POST /api/v1/lab-results                access:lab_results; lab_tech and integration only
 *   GET  /api/v1/lab-results/patient/{pid}  access:lab_results; care relation; lab_tech for patients
 *                                           with a lab order
 *   POST /api/v1/lab-results/{id}/acknowledge  access:lab_results; doctors and nurses in care
 *                                           ({id}: a critical Observation)
 * lab_tech holds no right to clinical notes: these routes never return them.
 *
 * Errors: bad body, unknown LOINC, wrong unit, bad status → 400; patient/encounter/order in the body
 * unknown, a test that was not ordered → 422; path id unknown → 404; not in care / wrong role → 403;
 * results for a cancelled (revoked) or on-hold order, a status that goes backwards (preliminary
 * after final, final twice: use amended), specimen steps out of order → 409. One write unit per
 * request: a failure changes nothing.
 *
 * Events (ids and codes only): lab.order.placed, lab.order.status, lab.specimen.updated,
 * lab.result.preliminary, lab.result.final, lab.result.amended, lab.result.critical (one per
 * LL/HH observation), lab.result.critical.acknowledged.
 */
#ifndef MC_MODULES_LAB_H
#define MC_MODULES_LAB_H
#include "http/route.h"

#define LAB_ORDER_SYSTEM "urn:medcore:lab-order"
#define LAB_TAT_URL "urn:medcore:lab-turnaround"
#define LAB_TESTS_MAX 30          /* tests per order, results per request */
#define LAB_HISTORY_MAX 50        /* orders listed per patient */

extern const struct route_table lab_routes;

#endif
