/* auth/policy.c — roles, permissions, the FHIR type → permission map, and which patients a
 * principal may reach (DESIGN §4). Pure functions except the care-team / break-glass lookups. */
#include <string.h>

#include "auth/auth.h"
#include "core/err.h"
#include "core/id.h"
#include "core/mctime.h"
#include "store/store.h"

static const char *const role_names[] = {
#define AUTH_X_ROLE(n, s) s,
	AUTH_ROLES(AUTH_X_ROLE)
#undef AUTH_X_ROLE
};

static const char *const perm_names[] = {
#define AUTH_X_PERM(n, s) s,
	AUTH_PERMS(AUTH_X_PERM)
#undef AUTH_X_PERM
};

const char *auth_role_name(enum auth_role r)
{
	return (unsigned)r < ROLE__COUNT ? role_names[r] : "unknown";
}

int auth_role_parse(const char *s, enum auth_role *out)
{
	for (int i = 0; s && i < ROLE__COUNT; i++) {
		if (!strcmp(s, role_names[i])) {
			*out = (enum auth_role)i;
			return MC_OK;
		}
	}
	return MC_EINVAL;
}

const char *auth_perm_name(enum auth_perm p)
{
	return (unsigned)p < PERM__COUNT ? perm_names[p] : "none";
}

int auth_perm_parse(const char *s, enum auth_perm *out)
{
	for (int i = 0; s && i < PERM__COUNT; i++) {
		if (!strcmp(s, perm_names[i])) {
			*out = (enum auth_perm)i;
			return MC_OK;
		}
	}
	return MC_EINVAL;
}

#define B(p) PERM_BIT(PERM_##p)
/* The role table (DESIGN §4). Every role also has SELF. Admins manage users, not charts. */
static const uint64_t role_perms[ROLE__COUNT] = {
	[ROLE_ADMIN] = B(ADMIN_USERS),
	[ROLE_DOCTOR] = B(READ_PATIENT_DATA) | B(WRITE_PATIENT_DATA) | B(READ_DEMOGRAPHICS) |
			B(WRITE_DEMOGRAPHICS) | B(PRESCRIBE_MEDICATION) | B(ACCESS_LAB_RESULTS) |
			B(MANAGE_CARE_TEAM) | B(BREAK_GLASS) | B(CLINICAL_NOTES),
	[ROLE_NURSE] = B(READ_PATIENT_DATA) | B(WRITE_PATIENT_DATA) | B(READ_DEMOGRAPHICS) |
		       B(WRITE_DEMOGRAPHICS) | B(ACCESS_LAB_RESULTS) | B(MANAGE_CARE_TEAM) | B(BREAK_GLASS) |
		       B(CLINICAL_NOTES),
	[ROLE_PHARMACIST] = B(READ_PATIENT_DATA) | B(READ_DEMOGRAPHICS) | B(MANAGE_INVENTORY) | B(BREAK_GLASS),
	[ROLE_LAB_TECH] = B(READ_PATIENT_DATA) | B(WRITE_PATIENT_DATA) | B(ACCESS_LAB_RESULTS) |
			  B(READ_DEMOGRAPHICS),
	[ROLE_RECEPTIONIST] = B(READ_DEMOGRAPHICS) | B(WRITE_DEMOGRAPHICS) | B(MANAGE_CARE_TEAM),
	[ROLE_BILLING] = B(READ_DEMOGRAPHICS),
	/* patients read their own record, notes included (right of access); scope OWN limits it */
	[ROLE_PATIENT] = B(READ_PATIENT_DATA) | B(READ_DEMOGRAPHICS) | B(WRITE_DEMOGRAPHICS) | B(CLINICAL_NOTES),
	[ROLE_DEVICE] = B(WRITE_PATIENT_DATA),
	[ROLE_ANALYST] = B(VIEW_ANALYTICS),
	[ROLE_AUDITOR] = B(READ_AUDIT),
	[ROLE_INTEGRATION] = B(READ_PATIENT_DATA) | B(WRITE_PATIENT_DATA) | B(READ_DEMOGRAPHICS) |
			     B(WRITE_DEMOGRAPHICS) | B(ACCESS_LAB_RESULTS) | B(PRESCRIBE_MEDICATION) |
			     B(CLINICAL_NOTES),
};

uint64_t auth_role_perms(enum auth_role r)
{
	if ((unsigned)r >= ROLE__COUNT)
		return 0;
	return role_perms[r] | B(SELF);
}
#undef B

bool auth_role_is_clinician(enum auth_role r)
{
	return r == ROLE_DOCTOR || r == ROLE_NURSE || r == ROLE_PHARMACIST || r == ROLE_LAB_TECH;
}

/* Administrative resource types: their data is demographics, not the chart. */
static const char *const admin_types[] = {
	"Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "HealthcareService",
	"Schedule", "Slot", "Appointment", "Endpoint", "Group", "RelatedPerson",
};

/* Clinicians' narrative notes: only roles that write and read notes (not the lab or the pharmacy,
 * whose read:patient_data is for orders, results and prescriptions). Writing also needs
 * write:patient_data, which the patient-level check adds. */
static const char *const note_types[] = {"Composition", "ClinicalImpression"};

enum auth_perm auth_fhir_perm(const char *type, bool write)
{
	if (type && !strcmp(type, "AuditEvent"))
		return write ? PERM__COUNT : PERM_READ_AUDIT;
	for (size_t i = 0; type && i < sizeof(note_types) / sizeof(note_types[0]); i++)
		if (!strcmp(type, note_types[i]))
			return PERM_CLINICAL_NOTES;
	for (size_t i = 0; type && i < sizeof(admin_types) / sizeof(admin_types[0]); i++)
		if (!strcmp(type, admin_types[i]))
			return write ? PERM_WRITE_DEMOGRAPHICS : PERM_READ_DEMOGRAPHICS;
	return write ? PERM_WRITE_PATIENT_DATA : PERM_READ_PATIENT_DATA;
}

static enum auth_perm access_perm(enum auth_access what)
{
	switch (what) {
	case AUTH_DEMOGRAPHICS_READ: return PERM_READ_DEMOGRAPHICS;
	case AUTH_DEMOGRAPHICS_WRITE: return PERM_WRITE_DEMOGRAPHICS;
	case AUTH_CLINICAL_READ: return PERM_READ_PATIENT_DATA;
	case AUTH_CLINICAL_WRITE: return PERM_WRITE_PATIENT_DATA;
	}
	return PERM__COUNT;
}

enum auth_scope auth_patient_scope(const struct auth_principal *p, enum auth_access what)
{
	/* RBAC first: without the permission no patient is reachable (fail closed). */
	if (!p || !auth_has(p, access_perm(what)))
		return AUTH_SCOPE_NONE;
	bool demo = what == AUTH_DEMOGRAPHICS_READ || what == AUTH_DEMOGRAPHICS_WRITE;
	switch (p->role) {
	case ROLE_PATIENT:
		return p->patient_id[0] ? AUTH_SCOPE_OWN : AUTH_SCOPE_NONE;
	case ROLE_DOCTOR:
	case ROLE_NURSE:
	case ROLE_PHARMACIST:
	case ROLE_LAB_TECH:
		return AUTH_SCOPE_CARE;
	case ROLE_RECEPTIONIST:
	case ROLE_BILLING:
		return demo ? AUTH_SCOPE_ALL : AUTH_SCOPE_NONE;
	case ROLE_INTEGRATION:
		return AUTH_SCOPE_ALL;
	default:
		return AUTH_SCOPE_NONE;
	}
}

int auth_patient_access(struct store_txn *t, const struct auth_principal *p, const char *patient_id,
			enum auth_access what, bool *break_glass)
{
	if (break_glass)
		*break_glass = false;
	if (!patient_id || !patient_id[0])
		return MC_EFORBIDDEN;
	switch (auth_patient_scope(p, what)) {
	case AUTH_SCOPE_ALL:
		return MC_OK;
	case AUTH_SCOPE_NONE:
		return MC_EFORBIDDEN;
	case AUTH_SCOPE_OWN:
		return strcmp(p->patient_id, patient_id) ? MC_EFORBIDDEN : MC_OK;
	case AUTH_SCOPE_CARE:
		break;
	}
	int64_t one = 0;
	struct store_arg a[3] = {SA_TEXT(patient_id), SA_INT(p->user_id), SA_INT(mctime_now_ms())};
	int rc = store_query_int(t, "SELECT 1 FROM care_team WHERE patient_id = $1 AND user_id = $2 AND active = 1",
				 a, 2, &one);
	if (rc == MC_OK)
		return MC_OK;
	if (rc != MC_ENOTFOUND)
		return rc;
	rc = store_query_int(t, "SELECT 1 FROM break_glass WHERE patient_id = $1 AND user_id = $2 AND expires_ms > $3 LIMIT 1",
			     a, 3, &one);
	if (rc == MC_OK) {
		if (break_glass)
			*break_glass = true;
		return MC_OK;
	}
	return rc == MC_ENOTFOUND ? MC_EFORBIDDEN : rc;
}

int auth_care_team_add(struct store_txn *t, const char *patient_id, int64_t user_id, const char *added_by)
{
	if (!patient_id || !mcid_valid_fhir_id(patient_id) || user_id <= 0)
		return MC_EINVAL;
	struct store_arg a[4] = {SA_TEXT(patient_id), SA_INT(user_id), SA_TEXT(added_by), SA_INT(mctime_now_ms())};
	return store_exec(t,
			  "INSERT INTO care_team(patient_id, user_id, active, added_by, added_ms) VALUES($1, $2, 1, $3, $4) "
			  "ON CONFLICT(patient_id, user_id) DO UPDATE SET active = 1",
			  a, 4);
}
