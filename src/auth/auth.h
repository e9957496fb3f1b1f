/* auth/auth.h — users, roles, permissions, tokens, MFA and the access policy.
 *
 * Roles grant permissions (DESIGN §4). A principal is who a request acts as, built from a verified
 * access token; it is plain data, copied freely. On top of RBAC, auth_patient_access() decides
 * *which* patients a principal may reach: a patient user only their own compartment; a clinician
 * patients in their care (care team) or under an active break-the-glass grant; receptionists
 * demographics of any patient; the integration service account everything.
 */
#ifndef MC_AUTH_AUTH_H
#define MC_AUTH_AUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;
struct mc_config;

#define AUTH_ROLES(X)          \
	X(ADMIN, "admin")              \
	X(DOCTOR, "doctor")            \
	X(NURSE, "nurse")              \
	X(PHARMACIST, "pharmacist")    \
	X(LAB_TECH, "lab_tech")        \
	X(RECEPTIONIST, "receptionist")\
	X(BILLING, "billing")          \
	X(PATIENT, "patient")          \
	X(DEVICE, "device")            \
	X(ANALYST, "analyst")          \
	X(AUDITOR, "auditor")          \
	X(INTEGRATION, "integration")

enum auth_role {
#define AUTH_X_ROLE(n, s) ROLE_##n,
	AUTH_ROLES(AUTH_X_ROLE)
#undef AUTH_X_ROLE
	ROLE__COUNT
};

/* Permissions: the wire names are what routes declare. */
#define AUTH_PERMS(X)                                          \
	X(READ_PATIENT_DATA, "read:patient_data")              \
	X(WRITE_PATIENT_DATA, "write:patient_data")            \
	X(READ_DEMOGRAPHICS, "read:demographics")              \
	X(WRITE_DEMOGRAPHICS, "write:demographics")            \
	X(PRESCRIBE_MEDICATION, "prescribe:medication")        \
	X(ACCESS_LAB_RESULTS, "access:lab_results")            \
	X(MANAGE_INVENTORY, "manage:inventory")                \
	X(VIEW_ANALYTICS, "view:analytics")                    \
	X(ADMIN_USERS, "admin:users")                          \
	X(READ_AUDIT, "read:audit")                            \
	X(MANAGE_CARE_TEAM, "manage:care_team")                \
	X(BREAK_GLASS, "break:glass")                          \
	X(SELF, "self")  /* any authenticated user acting on their own account */

enum auth_perm {
#define AUTH_X_PERM(n, s) PERM_##n,
	AUTH_PERMS(AUTH_X_PERM)
#undef AUTH_X_PERM
	PERM__COUNT
};
#define PERM_BIT(p) ((uint64_t)1 << (p))

const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *s, enum auth_role *out);         /* MC_OK / MC_EINVAL */
const char *auth_perm_name(enum auth_perm p);
int auth_perm_parse(const char *s, enum auth_perm *out);         /* MC_OK / MC_EINVAL */
uint64_t auth_role_perms(enum auth_role r);                      /* bit set of PERM_BIT() */
bool auth_role_is_clinician(enum auth_role r);                   /* doctor, nurse, pharmacist, lab_tech */

struct auth_principal {
	int64_t user_id;
	char username[64];
	enum auth_role role;
	uint64_t perms;
	char patient_id[65];       /* the linked FHIR Patient for role patient, else "" */
	char practitioner_id[65];  /* the linked FHIR Practitioner, else "" */
	int64_t expires_ms;
};

static inline bool auth_has(const struct auth_principal *p, enum auth_perm perm)
{
	return p && (p->perms & PERM_BIT(perm));
}

/* ---- the engine ---- */
struct auth;
/* Loads (or on first start generates and stores in settings) the token key; starts the bounded
 * login worker pool (cfg->login_workers). */
int auth_create(const struct mc_config *cfg, struct store *s, struct auth **out);
void auth_destroy(struct auth *a);
/* Verify a bearer access token (HS256 JWT made by this server): signature, exp, nbf, iss; then
 * that the user still exists and is active. MC_EUNAUTH with nothing filled on any failure. */
int auth_token_verify(struct auth *a, const char *token, struct auth_principal *out);

/* FHIR routes: the permission a resource type needs. Administrative types (Patient demographics,
 * Practitioner, Organization, Location, Schedule, Slot, Appointment...) need read/write:demographics;
 * AuditEvent needs read:audit; everything else read/write:patient_data. */
enum auth_perm auth_fhir_perm(const char *type, bool write);

/* ---- which patients (DESIGN §4) ---- */
enum auth_access { AUTH_DEMOGRAPHICS_READ, AUTH_DEMOGRAPHICS_WRITE, AUTH_CLINICAL_READ, AUTH_CLINICAL_WRITE };
/* May p reach patient_id's data at this level? MC_OK or MC_EFORBIDDEN. *break_glass (may be NULL)
 * is set when access is only through an active break-the-glass grant (the caller audits the reason). */
int auth_patient_access(struct store_txn *t, const struct auth_principal *p, const char *patient_id,
			enum auth_access what, bool *break_glass);

/* For searches: which patients' rows p may list.
 *   AUTH_SCOPE_ALL  — no restriction (integration, and receptionists for demographics)
 *   AUTH_SCOPE_NONE — nothing (e.g. admin on charts)
 *   AUTH_SCOPE_OWN  — only p->patient_id
 *   AUTH_SCOPE_CARE — patients in care_team for p->user_id, or with an active break_glass grant:
 *                     use AUTH_CARE_SQL with $U bound to p->user_id and $N to now (ms). */
enum auth_scope { AUTH_SCOPE_ALL, AUTH_SCOPE_NONE, AUTH_SCOPE_OWN, AUTH_SCOPE_CARE };
enum auth_scope auth_patient_scope(const struct auth_principal *p, enum auth_access what);
/* SQL condition "col is a patient in care"; printf with (col, U, N, col, U, N) where U and N are
 * placeholder numbers, e.g. snprintf(buf, n, AUTH_CARE_SQL, "r.patient_id", 3, 4, "r.patient_id", 3, 4) */
#define AUTH_CARE_SQL                                                                                 \
	"(%s IN (SELECT patient_id FROM care_team WHERE user_id = $%d AND active = 1 AND $%d >= 0) OR " \
	"%s IN (SELECT patient_id FROM break_glass WHERE user_id = $%d AND expires_ms > $%d))"

/* Care team (table care_team): add user to patient's care team. Idempotent. Inside a write unit. */
int auth_care_team_add(struct store_txn *t, const char *patient_id, int64_t user_id, const char *added_by);

#endif
