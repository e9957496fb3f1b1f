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
	X(CLINICAL_NOTES, "access:clinical_notes")  /* notes: Composition, ClinicalImpression */ \
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

#define AUTH_SCOPE_MAX 512

struct auth_principal {
	int64_t user_id;
	char username[64];
	enum auth_role role;
	uint64_t perms;
	char patient_id[65];       /* the linked FHIR Patient for role patient, else "" */
	char practitioner_id[65];  /* the linked FHIR Practitioner, else "" */
	int64_t expires_ms;
	/* OAuth2 scopes granted to the token ("system/Patient.read system/Observation.write"), at most
	 * AUTH_SCOPE_MAX chars; "" = a user token, not narrowed. Scopes only ever narrow what the
	 * role allows (auth_scope_allows), never widen it. */
	char scope[AUTH_SCOPE_MAX + 1];
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
 * that the user still exists and is active. MC_EUNAUTH with nothing filled on any failure, except
 * MC_EUNAVAIL when the database could not answer the user check. */
int auth_token_verify(struct auth *a, const char *token, struct auth_principal *out);

/* FHIR routes: the permission a resource type needs. Administrative types (Patient demographics,
 * Practitioner, Organization, Location, Schedule, Slot, Appointment...) need read/write:demographics;
 * AuditEvent needs read:audit; everything else read/write:patient_data. */
enum auth_perm auth_fhir_perm(const char *type, bool write);
/* Writes of AuditEvent return PERM__COUNT: a permission no role holds (auth_has() is false), so the
 * write fails closed; auth_perm_name(PERM__COUNT) is "none". */

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

/* ---- users and passwords (used by the demo loader and the CLI) ---- */
#define AUTH_PWHASH_MAX 128      /* >= crypto_pwhash_STRBYTES; static-asserted in password.c */
#define AUTH_PASSWORD_MAX 1024   /* longer passwords are rejected before hashing */
#define AUTH_USERNAME_MAX 63     /* usernames: 3..63 of [A-Za-z0-9._@-] */

/* Password policy: length 12..AUTH_PASSWORD_MAX, at least one upper-case letter, one digit and one
 * character that is neither a letter nor a digit. MC_OK or MC_EINVAL with a client-safe reason in
 * why (may be NULL). */
int auth_password_policy(const char *password, const char **why);
bool auth_username_valid(const char *username);
/* argon2id (crypto_pwhash_str, INTERACTIVE limits). With a != NULL the hash runs on a's bounded
 * login pool (MC_EUNAVAIL when its queue is full); with NULL on the calling thread (CLI, demo).
 * out must hold crypto_pwhash_STRBYTES (<= AUTH_PWHASH_MAX). Does not check the policy. */
int auth_password_hash(struct auth *a, const char *password, char out[AUTH_PWHASH_MAX]);
/* Insert a user (inside a write unit). patient_id/practitioner_id may be NULL. MC_ECONFLICT when
 * the username is taken, MC_EINVAL for a bad username or ids. *id receives the new user id. */
int auth_user_create(struct store_txn *t, const char *username, const char *password_hash,
		     enum auth_role role, const char *patient_id, const char *practitioner_id, int64_t *id);
/* CLI operations on one user (inside a write unit): MC_ENOTFOUND when no such user. */
int auth_user_set_active(struct store_txn *t, const char *username, bool active);
int auth_user_reset_mfa(struct store_txn *t, const char *username);

/* ---- tokens ---- */
#define AUTH_TOKEN_MAX 2048      /* an access token is always shorter (scope claim included) */
#define AUTH_REFRESH_LEN 43      /* base64url of 32 random bytes */
/* Sign an access token for p (expires after cfg->access_ttl). */
int auth_token_issue(struct auth *a, const struct auth_principal *p, char out[AUTH_TOKEN_MAX],
		     int64_t *expires_in);

/* ---- login, refresh, logout, MFA, break-the-glass (the /api/v1/auth domain steps) ----
 * Every outcome is audited inside the same write as its state change. Strings are borrowed. */
struct auth_client {
	const char *request_id;     /* may be NULL */
	const char *client_ip;      /* may be NULL */
};

struct auth_session {
	char access_token[AUTH_TOKEN_MAX];
	char refresh_token[AUTH_REFRESH_LEN + 1];
	int64_t expires_in;                 /* seconds */
	struct auth_principal who;
	/* The user's role is listed in cfg->mfa_roles but no TOTP is enrolled yet: the login succeeds
	 * (so the user can enrol through POST /api/v1/auth/mfa/enroll) and the response says
	 * mfa_enrollment_required: true. Once enrolled, TOTP is mandatory. */
	bool mfa_enrollment_required;
};

/* Detail codes a failed login/refresh reports (the /api/v1 error.details.code). */
#define AUTH_DETAIL_MFA_REQUIRED "MFA_REQUIRED"
#define AUTH_DETAIL_MFA_INVALID "MFA_INVALID"

/* Log in. MC_OK fills *out. MC_EUNAUTH for unknown user, wrong password, inactive user (all the
 * same answer, similar time) or a missing/wrong TOTP code (*detail = AUTH_DETAIL_MFA_*); MC_ELOCKED
 * while locked (cfg->lockout_threshold consecutive failures lock for cfg->lockout_minutes);
 * MC_EUNAVAIL when the login pool queue is full; MC_EINVAL for absurd input sizes.
 * totp may be NULL. *detail (may be NULL) is a static string or NULL. */
int auth_login(struct auth *a, const char *username, const char *password, const char *totp,
	       const struct auth_client *c, struct auth_session *out, const char **detail);
/* Rotate a refresh token: the presented one is marked used and a new one in the same family is
 * issued with a new access token. Presenting an already-used token revokes the whole family.
 * MC_EUNAUTH on any failure. */
int auth_refresh(struct auth *a, const char *refresh_token, const struct auth_client *c,
		 struct auth_session *out);
/* Revoke the family of refresh_token if it belongs to who. MC_OK also when it is unknown. */
int auth_logout(struct auth *a, const struct auth_principal *who, const char *refresh_token,
		const struct auth_client *c);

struct auth_user_info {
	int64_t id;
	char username[AUTH_USERNAME_MAX + 1];
	enum auth_role role;
	bool active, totp_enabled;
	char patient_id[65], practitioner_id[65];
	int64_t created_ms;
};
int auth_user_get(struct auth *a, int64_t id, struct auth_user_info *out);   /* MC_ENOTFOUND */
/* Page through users ordered by id: cb is called once per user; a non-zero return stops. */
int auth_user_list(struct auth *a, int64_t after_id, int limit,
		   int (*cb)(const struct auth_user_info *u, void *arg), void *arg);
/* Admin creation: checks username, role, ids and the password policy (MC_EINVAL, *why set),
 * hashes on the pool, inserts and audits ("user-create" by who). MC_ECONFLICT if taken. */
int auth_admin_user_create(struct auth *a, const struct auth_principal *who, const char *username,
			   const char *password, const char *role, const char *patient_id,
			   const char *practitioner_id, const struct auth_client *c, int64_t *id,
			   const char **why);

/* TOTP enrolment: a new secret is stored (encrypted) but not enabled until auth_mfa_verify.
 * secret_b32 receives the base32 secret, uri the otpauth:// URI. MC_ECONFLICT when already on. */
#define AUTH_OTPAUTH_MAX 512
int auth_mfa_enroll(struct auth *a, const struct auth_principal *who, char secret_b32[64],
		    char uri[AUTH_OTPAUTH_MAX]);
/* Check code against the pending (or enabled) secret and enable TOTP. MC_EUNAUTH on a wrong or
 * replayed code, MC_EPRECOND when no enrolment is pending. */
int auth_mfa_verify(struct auth *a, const struct auth_principal *who, const char *code,
		    const struct auth_client *c);

struct auth_grant {
	int64_t id;
	char patient_id[65];
	int64_t granted_ms, expires_ms;
};
/* Break the glass: reason must have >= 10 characters (<= 1000); grant lasts
 * cfg->break_glass_minutes; audited as "break-glass" with the reason. Needs PERM_BREAK_GLASS. */
int auth_break_glass(struct auth *a, const struct auth_principal *who, const char *patient_id,
		     const char *reason, const struct auth_client *c, struct auth_grant *out,
		     const char **why);

/* ---- OAuth2 scopes and the client-credentials grant (clients.c) ----
 * Scope syntax (SMART on FHIR): "<context>/<Type|*>.<read|write|*>" or the v2 form
 * "<context>/<Type|*>.<letters of cruds>", context system, user or patient, separated by spaces.
 * A read needs r or s (or "read", "*"); a write needs c, u or d (or "write", "*"). Other scopes
 * (openid, launch...) grant nothing here. */

/* May p act on resources of type (NULL = every type: only a "*" scope allows it)? True when p
 * carries no scopes (RBAC alone decides), else when one granted scope covers type and the
 * access. Callers check RBAC as well: this only narrows. */
bool auth_scope_allows(const struct auth_principal *p, const char *type, bool write);
/* Is every space-separated item of scopes a well-formed resource scope, with at least one item
 * and at most AUTH_SCOPE_MAX chars? */
bool auth_scope_valid(const char *scopes);
/* Is every item of requested covered by an item of granted (same or wider type and access)? */
bool auth_scope_subset(const char *requested, const char *granted);

#define AUTH_CLIENT_ID_MAX 48      /* "mc-" + base64url(16 bytes) fits */
#define AUTH_CLIENT_SECRET_MAX 64  /* base64url(32 bytes) = 43 chars */
/* Register a client (inside a write unit): creates the backing integration user (unusable
 * password) and the oauth_clients row; writes a new random client_id and secret. The secret is
 * stored only as SHA-256 and cannot be shown again. MC_EINVAL for a bad name (1..100 printable
 * chars) or scopes (auth_scope_valid). Audited as "client-create" by the caller. */
int auth_oauth_client_add(struct store_txn *t, const char *name, const char *scopes,
			  char client_id[AUTH_CLIENT_ID_MAX], char secret[AUTH_CLIENT_SECRET_MAX]);

struct auth_token_grant {
	char access_token[AUTH_TOKEN_MAX];
	int64_t expires_in;                 /* seconds */
	char scope[AUTH_SCOPE_MAX + 1];     /* what was granted */
};
/* Client-credentials grant (RFC 6749 §4.4). scope NULL or "" = everything registered.
 * MC_OK fills *out. MC_EUNAUTH: unknown/inactive client or wrong secret (*oauth_error
 * "invalid_client"); MC_EINVAL: malformed or wider-than-registered scope ("invalid_scope").
 * The outcome is audited ("client-token" / "client-token-failed"). Strings are borrowed. */
int auth_client_credentials(struct auth *a, const char *client_id, const char *secret, const char *scope,
			    const struct auth_client *c, struct auth_token_grant *out, const char **oauth_error);

#endif
