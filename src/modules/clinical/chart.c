/* modules/clinical/chart.c — the chart: diagnoses (ICD-10-CM Conditions) and the problem list,
 * allergies, care plans, family history with emergency contacts, insurance coverage, ICD-10 search.
 * Each POST builds one FHIR resource from a small, checked body and stores it in one unit with the
 * patient's access check (clinical_int.h); each GET lists the patient's current resources.
 */
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "modules/clinical/clinical_int.h"
#include "modules/clinical/icd10.h"

#define COND_CLIN "http://terminology.hl7.org/CodeSystem/condition-clinical"
#define COND_VER "http://terminology.hl7.org/CodeSystem/condition-ver-status"
#define COND_CAT "http://terminology.hl7.org/CodeSystem/condition-category"
#define AI_CLIN "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
#define AI_VER "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
#define SNOMED "http://snomed.info/sct"
#define ROLECODE "http://terminology.hl7.org/CodeSystem/v3-RoleCode"

/* A string field that must be one of a NULL-terminated list (dflt when absent). */
static int enum_field(struct req *r, const json_t *body, const char *field, const char *const *allowed,
		      const char *dflt, const char **out)
{
	int rc = clin_str_field(r, body, field, false, 64, out);
	if (rc)
		return rc;
	if (!*out) {
		*out = dflt;
		return MC_OK;
	}
	for (size_t i = 0; allowed[i]; i++)
		if (!strcmp(*out, allowed[i]))
			return MC_OK;
	char list[256] = "";
	size_t n = 0;
	for (size_t i = 0; allowed[i] && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", allowed[i]);
	return clin_bad(r, field, arena_printf(r->arena, "must be one of %s", list));
}

/* ---- ICD-10 ---- */

static json_t *icd_json(const struct icd10_entry *e)
{
	return json_pack("{s:s, s:s, s:s}", "code", e->code, "title", e->title, "system", ICD10_SYSTEM);
}

int clin_h_icd10(struct req *r, struct reply *rep)
{
	static const char *const extra[] = {"q", NULL};
	int64_t page, limit;
	int rc = clin_paging(r, extra, &page, &limit);
	if (rc)
		return rc;
	const char *q = req_query(r, "q");
	if (!q || !q[strspn(q, " ")])
		return clin_bad(r, "q", "give the start of a code (E11) or words of the title (diab typ)");
	if (strlen(q) > ICD10_QUERY_MAX)
		return clin_bad(r, "q", "at most 100 characters");
	if (limit > ICD10_RESULTS_MAX)
		limit = ICD10_RESULTS_MAX;
	const struct icd10_entry *hits[ICD10_RESULTS_MAX];
	size_t n = icd10_search(q, hits, (size_t)limit);
	json_t *items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, icd_json(hits[i]));
	return reply_api(rep, r, 200, items, NULL);
}

/* ---- conditions ---- */

struct cond_arg {
	const char *encounter;
};

static int encounter_prep(struct store_txn *t, struct clin_create *c)
{
	struct cond_arg *a = c->arg;
	if (!a->encounter)
		return MC_OK;
	return clin_check_owned(t, c->req, "Encounter", a->encounter, c->patient, "encounter", NULL, &c->err);
}

int clin_h_condition_add(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"icd10", "clinicalStatus", "verificationStatus", "onset", "abatement",
					     "category", "encounter", "note", NULL};
	static const char *const clin[] = {"active", "recurrence", "relapse", "inactive", "remission", "resolved", NULL};
	static const char *const ver[] = {"unconfirmed", "provisional", "differential", "confirmed", NULL};
	static const char *const cats[] = {"problem-list-item", "encounter-diagnosis", NULL};
	const char *pid = clin_patient_param(r, "id", "create", "Condition");
	if (!pid)
		return MC_ENOTFOUND;
	json_t *body;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	const char *code_in = NULL, *cs = NULL, *vs = NULL, *onset = NULL, *abate = NULL, *cat = NULL, *note = NULL;
	struct cond_arg ca = {0};
	int64_t onset_ms = 0, abate_ms = 0;
	if (!rc)
		rc = clin_str_field(r, body, "icd10", true, 32, &code_in);
	if (!rc)
		rc = enum_field(r, body, "clinicalStatus", clin, "active", &cs);
	if (!rc)
		rc = enum_field(r, body, "verificationStatus", ver, "confirmed", &vs);
	if (!rc)
		rc = clin_date_field(r, body, "onset", false, true, &onset, &onset_ms);
	if (!rc)
		rc = clin_date_field(r, body, "abatement", false, true, &abate, &abate_ms);
	if (!rc)
		rc = clin_str_field(r, body, "encounter", false, 64, &ca.encounter);
	if (!rc)
		rc = enum_field(r, body, "category", cats, NULL, &cat);
	if (!rc)
		rc = clin_str_field(r, body, "note", false, CLIN_TEXT_MAX, &note);
	if (rc)
		return rc;
	char code[ICD10_CODE_MAX];
	if (icd10_normalize(code_in, code))
		return req_fail(r, MC_EINVAL,
				"icd10: not an ICD-10-CM code; expected a letter (not U), two characters and an optional "
				"dot with up to 4 more, e.g. E11.9",
				NULL, json_pack("{s:s, s:s}", "field", "icd10", "hint", "GET /api/v1/icd10?q=<code or words>"));
	const struct icd10_entry *e = icd10_lookup(code);
	if (!e) {
		/* suggest the nearest codes of the subset (same category) */
		char cat3[4] = {code[0], code[1], code[2], '\0'};
		const struct icd10_entry *sug[5];
		size_t ns = icd10_search(cat3, sug, 5);
		json_t *s = json_array();
		for (size_t i = 0; i < ns; i++)
			json_array_append_new(s, icd_json(sug[i]));
		return req_fail(r, MC_EINVAL, "icd10: code not in the supported ICD-10-CM list", NULL,
				json_pack("{s:s, s:s, s:o}", "field", "icd10", "hint",
					  "search with GET /api/v1/icd10?q=<code or words>", "suggestions", s));
	}
	if (ca.encounter && !mcid_valid_fhir_id(ca.encounter))
		return clin_bad(r, "encounter", "no such Encounter");
	if (abate && onset && abate_ms < onset_ms)
		return clin_bad(r, "abatement", "must not be before onset");
	if (abate && (!strcmp(cs, "active") || !strcmp(cs, "recurrence") || !strcmp(cs, "relapse")))
		return clin_bad(r, "abatement", "an active condition has no abatement; set clinicalStatus resolved, "
						"inactive or remission");
	if (!cat)
		cat = ca.encounter ? "encounter-diagnosis" : "problem-list-item";
	json_t *c = clin_own(r, json_pack("{s:s, s:o, s:o, s:[o], s:o, s:o, s:s}", "resourceType", "Condition",
					  "clinicalStatus", clin_concept(COND_CLIN, cs, NULL, NULL), "verificationStatus",
					  clin_concept(COND_VER, vs, NULL, NULL), "category",
					  clin_concept(COND_CAT, cat, NULL, NULL), "code",
					  clin_concept(ICD10_SYSTEM, e->code, e->title, e->title), "subject",
					  clin_ref("Patient", pid), "recordedDate", clin_now(r)));
	if (onset)
		json_object_set_new(c, "onsetDateTime", json_string(onset));
	if (abate)
		json_object_set_new(c, "abatementDateTime", json_string(abate));
	if (ca.encounter)
		json_object_set_new(c, "encounter", clin_ref("Encounter", ca.encounter));
	if (r->who->practitioner_id[0])
		json_object_set_new(c, "recorder", clin_ref("Practitioner", r->who->practitioner_id));
	if (note)
		json_object_set_new(c, "note", json_pack("[{s:s}]", "text", note));
	struct clin_create cc = {.patient = pid, .level = AUTH_CLINICAL_WRITE, .type = "Condition", .res = c,
				 .event = "diagnosis.recorded", .prep = encounter_prep, .arg = &ca};
	return clin_create_reply(r, rep, &cc, NULL);
}

int clin_h_condition_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "Condition");
	return pid ? clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "Condition", NULL, NULL) : MC_ENOTFOUND;
}

int clin_h_problems(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "Condition");
	return pid ? clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "Condition",
				     " AND r.rkey IN (SELECT rkey FROM idx_token WHERE param = 'category' AND "
				     "code = 'problem-list-item') AND r.rkey IN (SELECT rkey FROM idx_token WHERE "
				     "param = 'clinical-status' AND code IN ('active', 'recurrence', 'relapse'))",
				     NULL)
		   : MC_ENOTFOUND;
}

/* ---- allergies ---- */

/* substance: "text" or {code, system?, display?, text?} */
static int substance(struct req *r, const json_t *body, json_t **out)
{
	json_t *s = json_object_get(body, "substance");
	if (json_is_string(s)) {
		const char *t;
		int rc = clin_str_field(r, body, "substance", true, 200, &t);
		if (rc)
			return rc;
		*out = clin_concept(NULL, NULL, NULL, t);
		return MC_OK;
	}
	if (!json_is_object(s))
		return clin_bad(r, "substance", "is required: a name, or {code, system?, display?}");
	static const char *const f[] = {"code", "system", "display", "text", NULL};
	const char *code, *sys, *disp, *text;
	int rc = clin_known_fields(r, s, f);
	if (!rc)
		rc = clin_str_field(r, s, "code", true, 64, &code);
	if (!rc)
		rc = clin_str_field(r, s, "system", false, 200, &sys);
	if (!rc)
		rc = clin_str_field(r, s, "display", false, 200, &disp);
	if (!rc)
		rc = clin_str_field(r, s, "text", false, 200, &text);
	if (rc)
		return rc;
	if (sys && strncmp(sys, "http://", 7) && strncmp(sys, "https://", 8) && strncmp(sys, "urn:", 4))
		return clin_bad(r, "substance.system", "must be a URI");
	*out = clin_concept(sys ? sys : SNOMED, code, disp, text ? text : disp);
	return MC_OK;
}

static int reactions(struct req *r, const json_t *body, json_t **out)
{
	static const char *const sev[] = {"mild", "moderate", "severe", NULL};
	static const char *const f[] = {"manifestation", "severity", "onset", "description", NULL};
	json_t *rs = json_object_get(body, "reactions");
	*out = NULL;
	if (!rs || json_is_null(rs))
		return MC_OK;
	if (!json_is_array(rs) || json_array_size(rs) > CLIN_ITEMS_MAX)
		return clin_bad(r, "reactions", "must be an array of at most 20 {manifestation, severity?}");
	json_t *arr = clin_own(r, json_array());
	size_t i;
	json_t *x;
	json_array_foreach(rs, i, x) {
		const char *man, *sv, *onset, *desc;
		int rc = clin_known_fields(r, x, f);
		if (!rc)
			rc = clin_str_field(r, x, "manifestation", true, 200, &man);
		if (!rc)
			rc = enum_field(r, x, "severity", sev, NULL, &sv);
		if (!rc)
			rc = clin_date_field(r, x, "onset", false, true, &onset, NULL);
		if (!rc)
			rc = clin_str_field(r, x, "description", false, CLIN_TEXT_MAX, &desc);
		if (rc)
			return rc;
		json_t *re = json_pack("{s:[o]}", "manifestation", clin_concept(NULL, NULL, NULL, man));
		if (sv)
			json_object_set_new(re, "severity", json_string(sv));
		if (onset)
			json_object_set_new(re, "onset", json_string(onset));
		if (desc)
			json_object_set_new(re, "description", json_string(desc));
		json_array_append_new(arr, re);
	}
	*out = arr;
	return MC_OK;
}

int clin_h_allergy_add(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"substance", "criticality", "type", "category", "clinicalStatus",
					     "verificationStatus", "reactions", "onset", "note", NULL};
	static const char *const crit[] = {"low", "high", "unable-to-assess", NULL};
	static const char *const types[] = {"allergy", "intolerance", NULL};
	static const char *const cats[] = {"food", "medication", "environment", "biologic", NULL};
	static const char *const clin[] = {"active", "inactive", "resolved", NULL};
	static const char *const ver[] = {"unconfirmed", "confirmed", "refuted", NULL};
	const char *pid = clin_patient_param(r, "id", "create", "AllergyIntolerance");
	if (!pid)
		return MC_ENOTFOUND;
	json_t *body, *subst = NULL, *reacts = NULL;
	const char *cr = NULL, *ty = NULL, *cat = NULL, *cs = NULL, *vs = NULL, *onset = NULL, *note = NULL;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	if (!rc)
		rc = substance(r, body, &subst);
	clin_own(r, subst);
	if (!rc)
		rc = enum_field(r, body, "criticality", crit, NULL, &cr);
	if (!rc)
		rc = enum_field(r, body, "type", types, NULL, &ty);
	if (!rc)
		rc = enum_field(r, body, "category", cats, NULL, &cat);
	if (!rc)
		rc = enum_field(r, body, "clinicalStatus", clin, "active", &cs);
	if (!rc)
		rc = enum_field(r, body, "verificationStatus", ver, "confirmed", &vs);
	if (!rc)
		rc = reactions(r, body, &reacts);
	if (!rc)
		rc = clin_date_field(r, body, "onset", false, true, &onset, NULL);
	if (!rc)
		rc = clin_str_field(r, body, "note", false, CLIN_TEXT_MAX, &note);
	if (rc)
		return rc;
	json_t *a = clin_own(r, json_pack("{s:s, s:o, s:o, s:O, s:o, s:s}", "resourceType", "AllergyIntolerance",
					  "clinicalStatus", clin_concept(AI_CLIN, cs, NULL, NULL), "verificationStatus",
					  clin_concept(AI_VER, vs, NULL, NULL), "code", subst, "patient",
					  clin_ref("Patient", pid), "recordedDate", clin_now(r)));
	if (cr)
		json_object_set_new(a, "criticality", json_string(cr));
	if (ty)
		json_object_set_new(a, "type", json_string(ty));
	if (cat)
		json_object_set_new(a, "category", json_pack("[s]", cat));
	if (onset)
		json_object_set_new(a, "onsetDateTime", json_string(onset));
	if (reacts)
		json_object_set(a, "reaction", reacts);
	if (r->who->practitioner_id[0])
		json_object_set_new(a, "recorder", clin_ref("Practitioner", r->who->practitioner_id));
	if (note)
		json_object_set_new(a, "note", json_pack("[{s:s}]", "text", note));
	struct clin_create cc = {.patient = pid, .level = AUTH_CLINICAL_WRITE, .type = "AllergyIntolerance",
				 .res = a, .event = "allergy.recorded"};
	return clin_create_reply(r, rep, &cc, NULL);
}

int clin_h_allergy_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "AllergyIntolerance");
	return pid ? clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "AllergyIntolerance", NULL, NULL) : MC_ENOTFOUND;
}

/* ---- care plans ---- */

struct plan_arg {
	const char **conditions;
	size_t n;
};

static int plan_prep(struct store_txn *t, struct clin_create *c)
{
	struct plan_arg *a = c->arg;
	for (size_t i = 0; i < a->n; i++) {
		int rc = clin_check_owned(t, c->req, "Condition", a->conditions[i], c->patient, "addresses", NULL, &c->err);
		if (rc)
			return rc;
	}
	return MC_OK;
}

int clin_h_careplan_add(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"title", "description", "status", "intent", "start", "end", "activities",
					     "addresses", NULL};
	static const char *const sts[] = {"draft", "active", "on-hold", "completed", NULL};
	static const char *const intents[] = {"proposal", "plan", "order", "option", NULL};
	static const char *const act_sts[] = {"not-started", "scheduled", "in-progress", "on-hold", "completed",
					      "cancelled", NULL};
	static const char *const act_f[] = {"description", "status", "scheduled", NULL};
	const char *pid = clin_patient_param(r, "id", "create", "CarePlan");
	if (!pid)
		return MC_ENOTFOUND;
	json_t *body;
	const char *title = NULL, *desc = NULL, *st = NULL, *intent = NULL, *start = NULL, *end = NULL;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	if (!rc)
		rc = clin_str_field(r, body, "title", true, 200, &title);
	if (!rc)
		rc = clin_str_field(r, body, "description", false, CLIN_TEXT_MAX, &desc);
	if (!rc)
		rc = enum_field(r, body, "status", sts, "active", &st);
	if (!rc)
		rc = enum_field(r, body, "intent", intents, "plan", &intent);
	if (!rc)
		rc = clin_period_fields(r, body, &start, &end);
	if (rc)
		return rc;
	json_t *acts = json_object_get(body, "activities");
	if (acts && (!json_is_array(acts) || json_array_size(acts) > CLIN_ITEMS_MAX))
		return clin_bad(r, "activities", "must be an array of at most 20 {description, status?, scheduled?}");
	json_t *cp = clin_own(r, json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "resourceType", "CarePlan", "status", st,
					   "intent", intent, "title", title, "subject", clin_ref("Patient", pid), "created",
					   clin_now(r)));
	if (desc)
		json_object_set_new(cp, "description", json_string(desc));
	if (start || end) {
		json_t *p = json_object();
		if (start)
			json_object_set_new(p, "start", json_string(start));
		if (end)
			json_object_set_new(p, "end", json_string(end));
		json_object_set_new(cp, "period", p);
	}
	json_t *out = json_array();
	json_object_set_new(cp, "activity", out);
	size_t i;
	json_t *x;
	json_array_foreach(acts, i, x) {
		const char *d, *as, *sch;
		rc = clin_known_fields(r, x, act_f);
		if (!rc)
			rc = clin_str_field(r, x, "description", true, CLIN_TEXT_MAX, &d);
		if (!rc)
			rc = enum_field(r, x, "status", act_sts, "not-started", &as);
		if (!rc)
			rc = clin_str_field(r, x, "scheduled", false, 200, &sch);
		if (rc)
			return rc;
		json_t *det = json_pack("{s:s, s:s}", "status", as, "description", d);
		if (sch)
			json_object_set_new(det, "scheduledString", json_string(sch));
		json_array_append_new(out, json_pack("{s:o}", "detail", det));
	}
	if (!json_array_size(out))
		json_object_del(cp, "activity");
	json_t *addr = json_object_get(body, "addresses");
	struct plan_arg pa = {0};
	if (addr) {
		if (!json_is_array(addr) || json_array_size(addr) > CLIN_ITEMS_MAX)
			return clin_bad(r, "addresses", "must be an array of at most 20 Condition ids");
		pa.conditions = arena_zalloc(r->arena, sizeof(char *) * (json_array_size(addr) + 1));
		json_t *refs = json_array();
		json_object_set_new(cp, "addresses", refs);
		json_array_foreach(addr, i, x) {
			if (!json_is_string(x) || !mcid_valid_fhir_id(json_string_value(x)))
				return clin_bad(r, "addresses", "no such Condition");
			pa.conditions[pa.n++] = json_string_value(x);
			json_array_append_new(refs, clin_ref("Condition", json_string_value(x)));
		}
	}
	struct clin_create cc = {.patient = pid, .level = AUTH_CLINICAL_WRITE, .type = "CarePlan", .res = cp,
				 .event = "careplan.created", .prep = plan_prep, .arg = &pa};
	return clin_create_reply(r, rep, &cc, NULL);
}

int clin_h_careplan_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "CarePlan");
	return pid ? clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "CarePlan", NULL, NULL) : MC_ENOTFOUND;
}

/* ---- family members and emergency contacts ---- */

static const struct {
	const char *code, *display, *alias;
} relations[] = {
	{"MTH", "mother", "mother"},   {"FTH", "father", "father"},       {"BRO", "brother", "brother"},
	{"SIS", "sister", "sister"},   {"SIB", "sibling", "sibling"},     {"SON", "natural son", "son"},
	{"DAU", "natural daughter", "daughter"}, {"CHILD", "child", "child"}, {"SPS", "spouse", "spouse"},
	{"GRMTH", "grandmother", "grandmother"}, {"GRFTH", "grandfather", "grandfather"},
	{"AUNT", "aunt", "aunt"},      {"UNCLE", "uncle", "uncle"},       {"COUSN", "cousin", "cousin"},
	{"FAMMEMB", "family member", "family"},
};

struct family_arg {
	json_t *related;            /* RelatedPerson to create too, or NULL */
	struct fhir_meta rmeta;     /* out */
};

static int family_prep(struct store_txn *t, struct clin_create *c)
{
	struct family_arg *a = c->arg;
	if (!a->related)
		return MC_OK;
	int rc = fhir_store_create(t, "RelatedPerson", a->related, &a->rmeta);
	return rc ? rc : clin_event(t, "patient.contact.added", &a->rmeta);
}

static json_t *family_view_of(const json_t *fmh, const struct family_arg *a)
{
	json_t *v = json_pack("{s:O}", "familyMemberHistory", fmh);
	if (a->related)
		json_object_set(v, "relatedPerson", a->related);
	return v;
}

int clin_h_family_add(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"name", "relationship", "sex", "deceased", "conditions", "emergencyContact",
					     "note", NULL};
	static const char *const sexes[] = {"male", "female", "other", "unknown", NULL};
	static const char *const ec_f[] = {"phone", "email", NULL};
	static const char *const cond_f[] = {"icd10", "onsetAge", "note", NULL};
	const char *pid = clin_patient_param(r, "id", "create", "FamilyMemberHistory");
	if (!pid)
		return MC_ENOTFOUND;
	json_t *body;
	const char *name = NULL, *rel = NULL, *sex = NULL, *note = NULL;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	if (!rc)
		rc = clin_str_field(r, body, "name", false, 200, &name);
	if (!rc)
		rc = clin_str_field(r, body, "relationship", true, 32, &rel);
	if (!rc)
		rc = enum_field(r, body, "sex", sexes, NULL, &sex);
	if (!rc)
		rc = clin_str_field(r, body, "note", false, CLIN_TEXT_MAX, &note);
	if (rc)
		return rc;
	size_t ri = 0, nrel = sizeof(relations) / sizeof(relations[0]);
	while (ri < nrel && strcasecmp(rel, relations[ri].code) && strcasecmp(rel, relations[ri].alias))
		ri++;
	if (ri == nrel)
		return clin_bad(r, "relationship", "one of mother, father, brother, sister, sibling, son, daughter, child, "
						   "spouse, grandmother, grandfather, aunt, uncle, cousin, family (or the v3 "
						   "RoleCode: MTH, FTH, ...)");
	json_t *dec = json_object_get(body, "deceased");
	if (dec && !json_is_boolean(dec))
		return clin_bad(r, "deceased", "must be true or false");
	json_t *f = clin_own(r, json_pack("{s:s, s:s, s:o, s:o, s:s}", "resourceType", "FamilyMemberHistory", "status",
					  "completed", "patient", clin_ref("Patient", pid), "relationship",
					  clin_concept(ROLECODE, relations[ri].code, relations[ri].display, relations[ri].alias),
					  "date", clin_now(r)));
	if (name)
		json_object_set_new(f, "name", json_string(name));
	if (sex)
		json_object_set_new(f, "sex", clin_concept("http://hl7.org/fhir/administrative-gender", sex, NULL, NULL));
	if (dec)
		json_object_set(f, "deceasedBoolean", dec);
	if (note)
		json_object_set_new(f, "note", json_pack("[{s:s}]", "text", note));
	json_t *conds = json_object_get(body, "conditions");
	if (conds && (!json_is_array(conds) || json_array_size(conds) > CLIN_ITEMS_MAX))
		return clin_bad(r, "conditions", "must be an array of at most 20 {icd10, onsetAge?, note?}");
	size_t i;
	json_t *x;
	json_t *carr = json_array();
	json_object_set_new(f, "condition", carr);
	json_array_foreach(conds, i, x) {
		const char *ci, *cn;
		rc = clin_known_fields(r, x, cond_f);
		if (!rc)
			rc = clin_str_field(r, x, "icd10", true, 32, &ci);
		if (!rc)
			rc = clin_str_field(r, x, "note", false, CLIN_TEXT_MAX, &cn);
		if (rc)
			return rc;
		char code[ICD10_CODE_MAX];
		const struct icd10_entry *e = icd10_normalize(ci, code) ? NULL : icd10_lookup(code);
		if (!e)
			return req_fail(r, MC_EINVAL, "conditions.icd10: not a code of the supported ICD-10-CM list", NULL,
					json_pack("{s:s, s:s}", "field", "conditions.icd10", "hint",
						  "search with GET /api/v1/icd10?q=<code or words>"));
		json_t *c = json_pack("{s:o}", "code", clin_concept(ICD10_SYSTEM, e->code, e->title, e->title));
		json_t *age = json_object_get(x, "onsetAge");
		if (age) {
			if (!json_is_integer(age) || json_integer_value(age) < 0 || json_integer_value(age) > 130) {
				json_decref(c);
				return clin_bad(r, "conditions.onsetAge", "must be an age in years, 0 to 130");
			}
			json_object_set_new(c, "onsetAge",
					    json_pack("{s:I, s:s, s:s, s:s}", "value", (json_int_t)json_integer_value(age),
						      "unit", "a", "system", "http://unitsofmeasure.org", "code", "a"));
		}
		if (cn)
			json_object_set_new(c, "note", json_pack("[{s:s}]", "text", cn));
		json_array_append_new(carr, c);
	}
	if (!json_array_size(carr))
		json_object_del(f, "condition");

	struct family_arg fa = {0};
	json_t *ec = json_object_get(body, "emergencyContact");
	if (ec && !json_is_null(ec)) {
		const char *phone, *email;
		rc = clin_known_fields(r, ec, ec_f);
		if (!rc)
			rc = clin_str_field(r, ec, "phone", true, 40, &phone);
		if (!rc)
			rc = clin_str_field(r, ec, "email", false, 200, &email);
		if (rc)
			return rc;
		if (!name)
			return clin_bad(r, "name", "an emergency contact needs a name");
		fa.related = clin_own(r, json_pack("{s:s, s:b, s:o, s:[o, {s:[{s:s, s:s}]}], s:[{s:s}], s:[{s:s, s:s, s:s}]}",
						   "resourceType", "RelatedPerson", "active", 1, "patient",
						   clin_ref("Patient", pid), "relationship",
						   clin_concept(ROLECODE, relations[ri].code, relations[ri].display, NULL),
						   "coding", "system", "http://terminology.hl7.org/CodeSystem/v2-0131", "code",
						   "C", "name", "text", name, "telecom", "system", "phone", "value", phone, "use",
						   "mobile"));
		if (email)
			json_array_append_new(json_object_get(fa.related, "telecom"),
					      json_pack("{s:s, s:s}", "system", "email", "value", email));
		if (clin_validate(r, fa.related, "RelatedPerson"))
			return MC_EINVAL;
	}
	struct clin_create cc = {.patient = pid, .level = AUTH_CLINICAL_WRITE, .type = "FamilyMemberHistory", .res = f,
				 .event = "family-history.recorded", .prep = family_prep, .arg = &fa};
	rc = clin_validate(r, f, "FamilyMemberHistory");
	if (rc)
		return rc;
	cc.req = r;
	r->audit.action = "create";
	rc = clin_fail(r, req_write(r, clin_create_unit, &cc), &cc.err);
	if (rc)
		return rc;
	reply_header(rep, r, "Location", arena_printf(r->arena, "/fhir/FamilyMemberHistory/%s", cc.meta.id));
	return reply_api(rep, r, 201, family_view_of(f, &fa), NULL);
}

int clin_h_family_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "FamilyMemberHistory");
	return pid ? clin_list_reply(r, rep, pid, AUTH_CLINICAL_READ, "FamilyMemberHistory", NULL, NULL) : MC_ENOTFOUND;
}

/* ---- coverage ---- */

int clin_h_coverage_add(struct req *r, struct reply *rep)
{
	static const char *const fields[] = {"payor", "memberId", "plan", "group", "relationship", "status", "start",
					     "end", NULL};
	static const char *const rels[] = {"self", "spouse", "child", "other", NULL};
	static const char *const sts[] = {"active", "cancelled", "draft", NULL};
	const char *pid = clin_patient_param(r, "id", "create", "Coverage");
	if (!pid)
		return MC_ENOTFOUND;
	json_t *body;
	const char *payor = NULL, *member = NULL, *plan = NULL, *group = NULL, *rel = NULL, *st = NULL, *start = NULL,
		   *end = NULL;
	int rc = req_json(r, &body);
	if (!rc)
		rc = clin_known_fields(r, body, fields);
	if (!rc)
		rc = clin_str_field(r, body, "payor", true, 200, &payor);
	if (!rc)
		rc = clin_str_field(r, body, "memberId", true, 64, &member);
	if (!rc)
		rc = clin_str_field(r, body, "plan", false, 200, &plan);
	if (!rc)
		rc = clin_str_field(r, body, "group", false, 200, &group);
	if (!rc)
		rc = enum_field(r, body, "relationship", rels, "self", &rel);
	if (!rc)
		rc = enum_field(r, body, "status", sts, "active", &st);
	if (!rc)
		rc = clin_period_fields(r, body, &start, &end);
	if (rc)
		return rc;
	json_t *c = clin_own(r, json_pack("{s:s, s:s, s:s, s:o, s:o, s:[{s:s}]}", "resourceType", "Coverage", "status",
					  st, "subscriberId", member, "beneficiary", clin_ref("Patient", pid),
					  "relationship",
					  clin_concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", rel,
						       NULL, NULL),
					  "payor", "display", payor));
	if (start || end) {
		json_t *p = json_object();
		if (start)
			json_object_set_new(p, "start", json_string(start));
		if (end)
			json_object_set_new(p, "end", json_string(end));
		json_object_set_new(c, "period", p);
	}
	json_t *cls = json_array();
	if (plan)
		json_array_append_new(cls, json_pack("{s:o, s:s}", "type",
						     clin_concept("http://terminology.hl7.org/CodeSystem/coverage-class",
								  "plan", NULL, NULL),
						     "value", plan));
	if (group)
		json_array_append_new(cls, json_pack("{s:o, s:s}", "type",
						     clin_concept("http://terminology.hl7.org/CodeSystem/coverage-class",
								  "group", NULL, NULL),
						     "value", group));
	if (json_array_size(cls))
		json_object_set_new(c, "class", cls);
	else
		json_decref(cls);
	struct clin_create cc = {.patient = pid, .level = AUTH_DEMOGRAPHICS_WRITE, .type = "Coverage", .res = c,
				 .event = "coverage.recorded"};
	return clin_create_reply(r, rep, &cc, NULL);
}

int clin_h_coverage_list(struct req *r, struct reply *rep)
{
	const char *pid = clin_patient_param(r, "id", "search", "Coverage");
	return pid ? clin_list_reply(r, rep, pid, AUTH_DEMOGRAPHICS_READ, "Coverage", NULL, NULL) : MC_ENOTFOUND;
}
