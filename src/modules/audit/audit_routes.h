/* modules/audit/audit_routes.h — GET /fhir/AuditEvent (search) and /fhir/AuditEvent/{id}: the
 * audit chain (audit/audit.h) presented as read-only FHIR R4 AuditEvent resources. Writes of
 * AuditEvent are refused by policy (auth_fhir_perm). */
#ifndef MC_MODULES_AUDIT_ROUTES_H
#define MC_MODULES_AUDIT_ROUTES_H
#include <jansson.h>

#include "http/route.h"

extern const struct route_table audit_routes;

/* One audit row as a FHIR AuditEvent (new reference). Strings may be NULL. */
struct audit_row {
	int64_t seq, ts_ms, user_id, outcome;
	const char *username, *role, *action, *resource_type, *resource_id, *patient_id, *request_id,
		*client_ip, *reason;
};
json_t *audit_event_json(const struct audit_row *a);

#endif
