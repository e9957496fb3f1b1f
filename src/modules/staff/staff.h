/* modules/staff/staff.h — the staff directory and shift roster (/api/v1/staff...).
 *
 * A staff record is a FHIR Practitioner plus one PractitionerRole (specialty codes, Location
 * references), linked to a user account (users.practitioner_id, so the user's next token carries
 * the practitioner id). Table staff indexes them for listing; staff_shift holds shift blocks
 * (plain rows: a roster is not a FHIR shape). Overlapping shifts of one practitioner → 409,
 * decided inside the write unit after taking the practitioner's sched_lock row.
 */
#ifndef MC_MODULES_STAFF_H
#define MC_MODULES_STAFF_H
#include "http/route.h"

#define STAFF_SPECIALTY_SYSTEM "http://snomed.info/sct"
#define STAFF_LIST_MAX 100
#define STAFF_SHIFT_MAX_MS (24 * 3600000LL)   /* one shift block lasts at most a day */

extern const struct route_table staff_routes;

#endif
