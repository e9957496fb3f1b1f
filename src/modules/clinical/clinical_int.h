/* modules/clinical/clinical_int.h — helpers shared by the clinical module's files (not a public
 * API). Memory: every json_t and string they hand out belongs to the request arena (r->arena);
 * nothing needs freeing by the caller. Units of work report a precise client error through
 * struct clin_err, mapped once by clin_fail() after the unit returns.
 */
#ifndef MC_MODULES_CLINICAL_INT_H
#define MC_MODULES_CLINICAL_INT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "fhir/store.h"
#include "http/route.h"
#include "store/store.h"

#define CLIN_TEXT_MAX 2000      /* short free-text fields (reason, descriptions, notes) */
#define CLIN_PAGE_DEFAULT 20
#define CLIN_PAGE_MAX 100
#define CLIN_ITEMS_MAX 20       /* reactions, activities, conditions per request */
#define CLIN_FUTURE_SLACK_MS (5 * 60 * 1000)  /* clock skew allowed for "not in the future" */

/* A client-safe error recorded inside a unit (msg static or arena; field may be NULL). */
struct clin_err {
	const char *msg;
	const char *field;
};

json_t *clin_own(struct req *r, json_t *j);                 /* keep j until the request ends */
/* 400 naming field: req_fail(VALIDATION_ERROR, "<field>: <msg>", details.field). */
int clin_bad(struct req *r, const char *field, const char *msg);
/* Map a unit's result: e->msg when set, else a default message per code. MC_OK passes through. */
int clin_fail(struct req *r, int rc, const struct clin_err *e);
/* Record err and return code (for `return clin_err_set(...)` inside units). */
int clin_err_set(struct clin_err *e, int code, const char *field, const char *msg);
/* The path parameter `name` as a patient id: fills the audit (action, type, patient). NULL after
 * recording a 404 when malformed. */
const char *clin_patient_param(struct req *r, const char *name, const char *action, const char *type);
/* Inside a unit: the Patient exists (else MC_ENOTFOUND "no such patient") and r->who may reach it at
 * level (else MC_EFORBIDDEN). Marks break-the-glass access in the audit reason. */
int clin_gate(struct store_txn *t, struct req *r, const char *patient, enum auth_access level, struct clin_err *e);
/* Inside a unit: the current version of type/id, parsed into *out (arena-owned). MC_ENOTFOUND with
 * "no such <what>" when absent or deleted. */
int clin_load(struct store_txn *t, struct req *r, const char *type, const char *id, const char *what,
	      json_t **out, struct fhir_meta *m, struct clin_err *e);
/* Inside a unit: type/id exists and belongs to patient (400 for another patient's, 400 "no such"). */
int clin_check_owned(struct store_txn *t, struct req *r, const char *type, const char *id, const char *patient,
		     const char *field, json_t **out, struct clin_err *e);
/* fhir_validate; on failure records a 400 listing the issues and returns MC_EINVAL. */
int clin_validate(struct req *r, const json_t *res, const char *type);
const char *clin_now(struct req *r);                          /* ISO instant, arena */
/* A FHIR date or dateTime string field (absent = OK with *out NULL unless required); never after now
 * (+slack) when past_only. *ms (may be NULL) gets the start of the range it covers. */
int clin_date_field(struct req *r, const json_t *obj, const char *field, bool required, bool past_only,
		    const char **out, int64_t *ms);
/* Optional "start" and "end" dates of obj (a Period); end must not be before start. */
int clin_period_fields(struct req *r, const json_t *obj, const char **start, const char **end);
/* An optional string field of at most max bytes (absent/null = NULL). MC_EINVAL recorded otherwise. */
int clin_str_field(struct req *r, const json_t *obj, const char *field, bool required, size_t max, const char **out);
/* Unknown keys of obj (not in allowed, NULL-terminated) -> 400. */
int clin_known_fields(struct req *r, const json_t *obj, const char *const *allowed);
json_t *clin_ref(const char *type, const char *id);           /* {"reference":"Type/id"} (new) */
json_t *clin_concept(const char *system, const char *code, const char *display, const char *text); /* new */
/* Domain event with ids only (inside the unit). */
int clin_event(struct store_txn *t, const char *name, const struct fhir_meta *m);
/* May this principal read or write consultation notes? (doctor, nurse) */
bool clin_notes_role(const struct auth_principal *p);
/* page/limit query arguments (page >= 1, 1 <= limit <= CLIN_PAGE_MAX); unknown keys other than
 * those in extra (NULL-terminated, may be NULL) -> 400. */
int clin_paging(struct req *r, const char *const *extra, int64_t *page, int64_t *limit);
json_t *clin_pagination(int64_t page, int64_t limit, int64_t total);

/* Create a patient-owned resource in one unit: gate, optional prep, fhir_store_create, event. */
struct clin_create;
typedef int clin_prep_fn(struct store_txn *t, struct clin_create *c);
struct clin_create {
	struct req *req;
	const char *patient;
	enum auth_access level;
	const char *type;
	json_t *res;               /* validated; stamped by the store */
	const char *event;         /* domain event name or NULL */
	clin_prep_fn *prep;        /* optional, after the gate, before the write */
	void *arg;
	struct fhir_meta meta;     /* out */
	struct clin_err err;
};
int clin_create_unit(struct store_txn *t, void *arg);
/* Validate c->res, run the unit, reply 201 {data: view(res) or res}. */
int clin_create_reply(struct req *r, struct reply *rep, struct clin_create *c, json_t *(*view)(const json_t *res));

/* List a patient's current resources of one type, newest first, paged. extra_where: fixed SQL
 * appended to the WHERE over alias r (constant text, never input), or NULL. */
int clin_list_reply(struct req *r, struct reply *rep, const char *patient, enum auth_access level, const char *type,
		    const char *extra_where, json_t *(*view)(const json_t *res));

/* The handlers, by file. */
int clin_h_encounter_open(struct req *r, struct reply *rep);
int clin_h_encounter_finish(struct req *r, struct reply *rep);
int clin_h_encounter_get(struct req *r, struct reply *rep);
int clin_h_encounter_list(struct req *r, struct reply *rep);
int clin_h_note_create(struct req *r, struct reply *rep);
int clin_h_note_sign(struct req *r, struct reply *rep);
int clin_h_note_amend(struct req *r, struct reply *rep);
int clin_h_note_get(struct req *r, struct reply *rep);
int clin_h_note_history(struct req *r, struct reply *rep);
int clin_h_note_list(struct req *r, struct reply *rep);
int clin_h_icd10(struct req *r, struct reply *rep);
int clin_h_condition_add(struct req *r, struct reply *rep);
int clin_h_condition_list(struct req *r, struct reply *rep);
int clin_h_problems(struct req *r, struct reply *rep);
int clin_h_allergy_add(struct req *r, struct reply *rep);
int clin_h_allergy_list(struct req *r, struct reply *rep);
int clin_h_careplan_add(struct req *r, struct reply *rep);
int clin_h_careplan_list(struct req *r, struct reply *rep);
int clin_h_family_add(struct req *r, struct reply *rep);
int clin_h_family_list(struct req *r, struct reply *rep);
int clin_h_coverage_add(struct req *r, struct reply *rep);
int clin_h_coverage_list(struct req *r, struct reply *rep);
int clin_h_history(struct req *r, struct reply *rep);

#endif
