/* modules/scheduling/scheduling.h — availability, appointments, waitlist and same-day queue
 * (/api/v1/doctors/{id}/availability..., /api/v1/appointments..., /api/v1/waitlist...,
 * /api/v1/queue/{practitionerId}).
 *
 * Record: FHIR Schedule (one per practitioner), Slot (generated from weekly templates minus
 * exceptions for a horizon, default 8 weeks) and Appointment. Plain tables (sql/.../0009) mirror
 * them for the checks that must be atomic: slot_booking(slot_id PRIMARY KEY) is the double-booking
 * guard — a slot gets at most one row, whichever unit inserts first wins, every other gets 409;
 * sched_appt holds each appointment's patient and interval for the patient-overlap check, done
 * after taking the patient's sched_lock row (SQLite: the single writer serializes units anyway;
 * PostgreSQL: the upsert's row lock serializes units for one patient until commit).
 *
 * Times are UTC; templates are "HH:MM" UTC on ISO weekdays (1 = Monday).
 *
 * Errors: malformed input / times in the past / end before start → 400; an id in the path that does
 * not exist → 404; an id in the body that does not exist (patient, practitioner, slot) → 422 with
 * error.details.field; no slot at the requested time (outside availability) → 422; slot already
 * booked, held for a waitlist offer or no longer offered, patient busy at that time, appointment
 * in the wrong state → 409. A failed request changes nothing (one write unit per request).
 *
 * Reminders: sched_reminder_scan() emits appointment.reminder.due once for every booked
 * appointment starting within the next 24 h. It runs (a) from the scheduling_reminders event
 * consumer, at most once a minute, piggy-backing on the steady stream of domain events (the
 * module has no thread of its own: modules get no start/stop hook, and a thread outliving the
 * store would be unsafe), and (b) on POST /api/v1/appointments/reminders/scan (for a cron job or
 * an operator).
 */
#ifndef MC_MODULES_SCHEDULING_H
#define MC_MODULES_SCHEDULING_H
#include <stdint.h>

#include "events/events.h"
#include "http/route.h"

#define SCHED_HORIZON_WEEKS_DEFAULT 8
#define SCHED_OFFER_MS (30 * 60000LL)       /* a waitlist offer holds the slot this long */
#define SCHED_REMINDER_AHEAD_MS (24 * 3600000LL)
#define SCHED_RANGE_MAX_MS (62 * 86400000LL) /* availability/shift queries span at most this */

extern const struct route_table scheduling_routes;
/* "scheduling_reminders": EVENTS_TXN; runs sched_reminder_scan at most once a minute. */
extern const struct events_consumer scheduling_reminder_consumer;

/* Inside a write unit: emit appointment.reminder.due for booked appointments starting in
 * (now, now + SCHED_REMINDER_AHEAD_MS] not yet reminded (at most 500 per call), mark them.
 * *n (may be NULL) receives how many. */
int sched_reminder_scan(struct store_txn *t, int64_t now_ms, int *n);

#endif
