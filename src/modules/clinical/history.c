/* modules/clinical/history.c — GET /api/v1/patients/{id}/medical-history: one timeline over the
 * patient's compartment (resources.patient_id) — Encounters, Conditions, AllergyIntolerances,
 * consultation notes (Compositions), CarePlans, Procedures, Immunizations, MedicationRequests and
 * Observations other than vital signs (lab results) — newest first, paged.
 *
 * The date of an item is its clinical date, taken from the date index rows (idx_date) the FHIR
 * engine wrote for the type's date search parameter (Encounter period, Condition onset else
 * recorded date, MedicationRequest authoredOn, Composition date, Observation effective, ...),
 * falling back to the time it was recorded. Ordering and paging happen in SQL, so only one page
 * of resources is read and summarized.
 */
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mctime.h"
#include "http/app.h"
#include "modules/clinical/clinical_int.h"

static const char *const all_types[] = {"Encounter", "Condition", "AllergyIntolerance", "Composition", "CarePlan",
					"Procedure", "Immunization", "MedicationRequest", "Observation"};
#define NTYPES (sizeof(all_types) / sizeof(all_types[0]))

/* The first text of a CodeableConcept: text, else the first coding's display, else its code. */
static const char *concept_text(const json_t *cc)
{
	const char *t = mcjson_str(cc, "text");
	if (t)
		return t;
	json_t *c0 = json_array_get(json_object_get(cc, "coding"), 0);
	t = mcjson_str(c0, "display");
	return t ? t : mcjson_str(c0, "code");
}

static const char *code0(const json_t *cc)
{
	return mcjson_str(json_array_get(json_object_get(cc, "coding"), 0), "code");
}

static char *summarize(struct arena *a, const char *type, const json_t *j)
{
	const char *st = mcjson_str(j, "status");
	if (!strcmp(type, "Encounter")) {
		const char *cls = mcjson_str(json_object_get(j, "class"), "display");
		const char *why = concept_text(json_array_get(json_object_get(j, "reasonCode"), 0));
		return arena_printf(a, "%s encounter (%s)%s%s", cls ? cls : "an", st ? st : "unknown", why ? ": " : "",
				    why ? why : "");
	}
	if (!strcmp(type, "Condition")) {
		json_t *code = json_object_get(j, "code");
		const char *c = code0(code), *t = concept_text(code);
		const char *cs = code0(json_object_get(j, "clinicalStatus"));
		return arena_printf(a, "%s%s%s (%s)", c ? c : "", c ? " " : "", t ? t : "condition", cs ? cs : "unknown");
	}
	if (!strcmp(type, "AllergyIntolerance")) {
		const char *t = concept_text(json_object_get(j, "code"));
		const char *cr = mcjson_str(j, "criticality");
		return arena_printf(a, "Allergy: %s%s%s", t ? t : "unknown substance", cr ? ", criticality " : "",
				    cr ? cr : "");
	}
	if (!strcmp(type, "Composition")) {
		const char *t = mcjson_str(j, "title");
		return arena_printf(a, "%s (%s)", t ? t : "Note", st ? st : "unknown");
	}
	if (!strcmp(type, "CarePlan")) {
		const char *t = mcjson_str(j, "title");
		return arena_printf(a, "Care plan: %s (%s)", t ? t : "untitled", st ? st : "unknown");
	}
	if (!strcmp(type, "Procedure") || !strcmp(type, "Immunization")) {
		const char *t = concept_text(json_object_get(j, !strcmp(type, "Procedure") ? "code" : "vaccineCode"));
		return arena_printf(a, "%s: %s (%s)", type, t ? t : "unspecified", st ? st : "unknown");
	}
	if (!strcmp(type, "MedicationRequest")) {
		const char *t = concept_text(json_object_get(j, "medicationCodeableConcept"));
		if (!t)
			t = mcjson_str(json_object_get(j, "medicationReference"), "display");
		return arena_printf(a, "Prescription: %s (%s)", t ? t : "medication", st ? st : "unknown");
	}
	/* Observation */
	const char *t = concept_text(json_object_get(j, "code"));
	json_t *vq = json_object_get(j, "valueQuantity");
	struct buf b = BUF_INIT;
	buf_printf(&b, "%s", t ? t : "Result");
	if (vq) {
		json_t *v = json_object_get(vq, "value");
		const char *lex = mcjson_decimal_text(v);
		const char *unit = mcjson_str(vq, "unit") ? mcjson_str(vq, "unit") : mcjson_str(vq, "code");
		if (lex)
			buf_printf(&b, ": %s", lex);
		else if (json_is_integer(v))
			buf_printf(&b, ": %lld", (long long)json_integer_value(v));
		if (unit)
			buf_printf(&b, " %s", unit);
	} else if (mcjson_str(j, "valueString")) {
		buf_printf(&b, ": %.200s", mcjson_str(j, "valueString"));
	} else if (concept_text(json_object_get(j, "valueCodeableConcept"))) {
		buf_printf(&b, ": %s", concept_text(json_object_get(j, "valueCodeableConcept")));
	}
	buf_printf(&b, " (%s)", st ? st : "unknown");
	char *s = arena_strdup(a, buf_str(&b));
	buf_release(&b);
	return s;
}

struct hist_work {
	struct req *req;
	const char *patient;
	const char *types[NTYPES];
	size_t ntypes;
	int64_t limit, offset, total;
	json_t *items;
	struct clin_err err;
};

/* WHERE over r (fixed text; the type names are constants of this file, bound as arguments). */
static const char *where_sql(struct hist_work *w)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, "r.patient_id = $1 AND r.deleted = 0 AND r.type IN (");
	for (size_t i = 0; i < w->ntypes; i++)
		buf_printf(&b, "%s$%zu", i ? ", " : "", i + 2);
	buf_puts(&b, ") AND (r.type <> 'Observation' OR r.rkey NOT IN (SELECT rkey FROM idx_token WHERE param = "
		     "'category' AND code = 'vital-signs')) AND (r.type <> 'Composition' OR r.rkey IN (SELECT rkey "
		     "FROM idx_token WHERE param = 'type' AND code = '11488-4'))");
	char *s = arena_strdup(w->req->arena, buf_str(&b));
	buf_release(&b);
	return s;
}

static int hist_unit(struct store_txn *t, void *arg)
{
	struct hist_work *w = arg;
	int rc = clin_gate(t, w->req, w->patient, AUTH_CLINICAL_READ, &w->err);
	if (rc)
		return rc;
	struct store_arg a[NTYPES + 3];
	size_t n = 0;
	a[n++] = SA_TEXT(w->patient);
	for (size_t i = 0; i < w->ntypes; i++)
		a[n++] = SA_TEXT(w->types[i]);
	const char *where = where_sql(w);
	struct arena *ar = w->req->arena;
	rc = store_query_int(t, arena_printf(ar, "SELECT count(*) FROM resources r WHERE %s", where), a, n, &w->total);
	if (rc)
		return rc;
	a[n] = SA_INT(w->limit);
	a[n + 1] = SA_INT(w->offset);
	const char *sql = arena_printf(
		ar,
		"SELECT r.type, r.id, v.json, COALESCE((SELECT min(d.lo) FROM idx_date d WHERE d.rkey = r.rkey AND "
		"d.param = CASE r.type WHEN 'Condition' THEN 'onset-date' WHEN 'MedicationRequest' THEN 'authoredon' "
		"ELSE 'date' END), (SELECT min(d.lo) FROM idx_date d WHERE d.rkey = r.rkey AND d.param = "
		"'recorded-date'), r.last_updated_ms) AS dt FROM resources r JOIN resource_versions v ON v.rkey = "
		"r.rkey AND v.version = r.version WHERE %s ORDER BY dt DESC, r.rkey DESC LIMIT $%zu OFFSET $%zu",
		where, n + 1, n + 2);
	struct store_rows *rows;
	rc = store_query(t, sql, a, n + 2, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		const char *type = store_rows_text(rows, 0), *id = store_rows_text(rows, 1);
		size_t len;
		const char *js = store_rows_blob(rows, 2, &len);
		char ts[32];
		mctime_format_ms(store_rows_int(rows, 3), ts);
		json_t *j = NULL;
		if (!js || mcjson_parse(js, len, &j, NULL))
			continue;
		json_array_append_new(w->items, json_pack("{s:s, s:s, s:s, s:s}", "type", type, "id", id, "date", ts,
							  "summary", summarize(ar, type, j)));
		json_decref(j);
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

int clin_h_history(struct req *r, struct reply *rep)
{
	static const char *const extra[] = {"type", NULL};
	const char *pid = clin_patient_param(r, "id", "search", "Patient");
	if (!pid)
		return MC_ENOTFOUND;
	r->audit.resource_id = pid;
	struct hist_work w = {.req = r, .patient = pid};
	int64_t page, limit;
	int rc = clin_paging(r, extra, &page, &limit);
	if (rc)
		return rc;
	/* type=A,B narrows the timeline; notes only for the roles that read them */
	const char *want = req_query(r, "type");
	for (size_t i = 0; i < NTYPES; i++) {
		if (!strcmp(all_types[i], "Composition") && !clin_notes_role(r->who))
			continue;
		if (want) {
			size_t l = strlen(all_types[i]);
			const char *p = want;
			bool hit = false;
			while (*p && !hit) {
				size_t seg = strcspn(p, ",");
				hit = seg == l && !strncmp(p, all_types[i], l);
				p += seg + (p[seg] == ',');
			}
			if (!hit)
				continue;
		}
		w.types[w.ntypes++] = all_types[i];
	}
	if (want) {
		/* every listed name must be a timeline type */
		const char *p = want;
		while (*p) {
			size_t seg = strcspn(p, ",");
			bool known = false;
			for (size_t i = 0; i < NTYPES && !known; i++)
				known = strlen(all_types[i]) == seg && !strncmp(p, all_types[i], seg);
			if (!known)
				return clin_bad(r, "type", "comma-separated timeline types: Encounter, Condition, "
							   "AllergyIntolerance, Composition, CarePlan, Procedure, "
							   "Immunization, MedicationRequest, Observation");
			p += seg + (p[seg] == ',');
		}
	}
	w.limit = limit;
	w.offset = (page - 1) * limit;
	w.items = clin_own(r, json_array());
	if (w.ntypes == 0)
		return reply_api(rep, r, 200, json_array(), clin_pagination(page, limit, 0));
	rc = clin_fail(r, store_read(r->app->store, hist_unit, &w), &w.err);
	if (rc)
		return rc;
	return reply_api(rep, r, 200, json_incref(w.items), clin_pagination(page, limit, w.total));
}
