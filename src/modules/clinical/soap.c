/* modules/clinical/soap.c — SOAP text <-> FHIR Composition (soap.h). */
#include "modules/clinical/soap.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/mem.h"

#define LOINC "http://loinc.org"
#define DIV_OPEN "<div xmlns=\"http://www.w3.org/1999/xhtml\">"
#define DIV_CLOSE "</div>"

const char *const soap_keys[SOAP_NSECTIONS] = {"subjective", "objective", "assessment", "plan"};
static const char *const sec_title[SOAP_NSECTIONS] = {"Subjective", "Objective", "Assessment", "Plan"};
static const char *const sec_code[SOAP_NSECTIONS] = {"61150-9", "61149-1", "51848-0", "18776-5"};
static const char *const sec_display[SOAP_NSECTIONS] = {"Subjective Narrative", "Objective Narrative",
							"Evaluation note", "Plan of care note"};

int soap_parse(const json_t *body, bool partial, struct soap_note *out, const char **field)
{
	memset(out, 0, sizeof(*out));
	bool any = false;
	for (int i = 0; i < SOAP_NSECTIONS; i++) {
		json_t *v = json_object_get(body, soap_keys[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_string(v) || json_string_length(v) > SOAP_TEXT_MAX) {
			*field = soap_keys[i];
			return MC_EINVAL;
		}
		out->text[i] = json_string_value(v);
		if (out->text[i][0])
			any = true;
	}
	if (!partial && !any) {
		*field = "subjective";
		return MC_EINVAL;
	}
	return MC_OK;
}

char *soap_div(const char *text)
{
	struct buf b = BUF_INIT;
	buf_puts(&b, DIV_OPEN);
	for (const char *p = text ? text : ""; *p; p++) {
		switch (*p) {
		case '&': buf_puts(&b, "&amp;"); break;
		case '<': buf_puts(&b, "&lt;"); break;
		case '>': buf_puts(&b, "&gt;"); break;
		case '"': buf_puts(&b, "&quot;"); break;
		default: buf_putc(&b, *p); break;
		}
	}
	buf_puts(&b, DIV_CLOSE);
	return buf_detach(&b, NULL);
}

char *soap_undiv(const char *div)
{
	size_t lo = strlen(DIV_OPEN), lc = strlen(DIV_CLOSE);
	if (!div || strncmp(div, DIV_OPEN, lo))
		return NULL;
	size_t n = strlen(div);
	if (n < lo + lc || strcmp(div + n - lc, DIV_CLOSE))
		return NULL;
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}};
	struct buf b = BUF_INIT;
	for (const char *p = div + lo, *end = div + n - lc; p < end;) {
		if (*p == '&') {
			bool ok = false;
			for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]) && !ok; i++) {
				size_t el = strlen(ents[i].ent);
				if ((size_t)(end - p) >= el && !strncmp(p, ents[i].ent, el)) {
					buf_putc(&b, ents[i].c);
					p += el;
					ok = true;
				}
			}
			if (!ok) {
				buf_release(&b);
				return NULL;
			}
			continue;
		}
		buf_putc(&b, *p++);
	}
	return buf_detach(&b, NULL);
}

static json_t *section(int i, const char *text)
{
	char *div = soap_div(text);
	json_t *s = json_pack("{s:s, s:{s:[{s:s, s:s, s:s}], s:s}, s:{s:s, s:s}}", "title", sec_title[i], "code",
			      "coding", "system", LOINC, "code", sec_code[i], "display", sec_display[i], "text",
			      sec_title[i], "text", "status", "generated", "div", div);
	free(div);
	return s;
}

json_t *soap_to_composition(const struct soap_note *n, const char *patient_id, const char *encounter_id,
			    const struct soap_author *a, const char *date)
{
	json_t *author = json_pack("{s:{s:s, s:s}, s:s}", "identifier", "system", SOAP_USER_SYSTEM, "value", "",
				   "display", a->username ? a->username : "");
	char uid[24];
	snprintf(uid, sizeof(uid), "%lld", (long long)a->user_id);
	json_object_set_new(json_object_get(author, "identifier"), "value", json_string(uid));
	if (a->practitioner_id && a->practitioner_id[0]) {
		char ref[96];
		snprintf(ref, sizeof(ref), "Practitioner/%s", a->practitioner_id);
		json_object_set_new(author, "reference", json_string(ref));
	}
	json_t *c = json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s}], s:s}, s:[{s:[{s:s, s:s, s:s}]}], s:{s:s}, s:s, "
			      "s:[o], s:s}",
			      "resourceType", "Composition", "status", "preliminary", "type", "coding", "system", LOINC,
			      "code", "11488-4", "display", "Consult note", "text", "Consultation note", "category",
			      "coding", "system", LOINC, "code", "11488-4", "display", "Consult note", "subject",
			      "reference", "", "date", date, "author", author, "title", "Consultation note");
	char ref[96];
	snprintf(ref, sizeof(ref), "Patient/%s", patient_id);
	json_object_set_new(json_object_get(c, "subject"), "reference", json_string(ref));
	if (encounter_id && encounter_id[0]) {
		snprintf(ref, sizeof(ref), "Encounter/%s", encounter_id);
		json_object_set_new(c, "encounter", json_pack("{s:s}", "reference", ref));
	}
	json_t *secs = json_array();
	for (int i = 0; i < SOAP_NSECTIONS; i++)
		json_array_append_new(secs, section(i, n->text[i] ? n->text[i] : ""));
	json_object_set_new(c, "section", secs);
	return c;
}

void soap_apply(json_t *comp, const struct soap_note *n)
{
	json_t *secs = json_object_get(comp, "section");
	for (int i = 0; i < SOAP_NSECTIONS; i++) {
		if (!n->text[i])
			continue;
		if (json_array_size(secs) == SOAP_NSECTIONS)
			json_array_set_new(secs, (size_t)i, section(i, n->text[i]));
	}
}

static const char *sec_code_of(const json_t *s)
{
	return mcjson_str(json_array_get(json_object_get(json_object_get(s, "code"), "coding"), 0), "code");
}

void soap_note_free(struct soap_note *n)
{
	for (int i = 0; i < SOAP_NSECTIONS; i++) {
		free((char *)n->text[i]);
		n->text[i] = NULL;
	}
}

int soap_from_composition(const json_t *comp, struct soap_note *out)
{
	memset(out, 0, sizeof(*out));
	json_t *secs = json_object_get(comp, "section");
	if (json_array_size(secs) != SOAP_NSECTIONS)
		return MC_EINVAL;
	for (int i = 0; i < SOAP_NSECTIONS; i++) {
		json_t *s = json_array_get(secs, (size_t)i);
		const char *code = sec_code_of(s);
		char *t = soap_undiv(mcjson_str(json_object_get(s, "text"), "div"));
		if (!code || strcmp(code, sec_code[i]) || !t) {
			free(t);
			soap_note_free(out);
			return MC_EINVAL;
		}
		out->text[i] = t;
	}
	return MC_OK;
}

int64_t soap_author_user(const json_t *comp)
{
	json_t *id = json_object_get(json_array_get(json_object_get(comp, "author"), 0), "identifier");
	const char *sys = mcjson_str(id, "system"), *v = mcjson_str(id, "value");
	if (!sys || strcmp(sys, SOAP_USER_SYSTEM) || !v)
		return 0;
	char *end;
	long long u = strtoll(v, &end, 10);
	return *end || u <= 0 ? 0 : (int64_t)u;
}

/* "Patient/abc" -> "abc" (borrowed), NULL otherwise. */
static const char *ref_id(const json_t *ref, const char *type)
{
	const char *s = mcjson_str(ref, "reference");
	size_t n = strlen(type);
	if (!s || strncmp(s, type, n) || s[n] != '/')
		return NULL;
	return s + n + 1;
}

json_t *soap_view(const json_t *comp)
{
	json_t *a = json_array_get(json_object_get(comp, "author"), 0);
	json_t *v = json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?}", "id", mcjson_str(comp, "id"), "status",
			      mcjson_str(comp, "status"), "patient", ref_id(json_object_get(comp, "subject"), "Patient"),
			      "encounter", ref_id(json_object_get(comp, "encounter"), "Encounter"), "date",
			      mcjson_str(comp, "date"));
	const char *ver = mcjson_str(json_object_get(comp, "meta"), "versionId");
	if (ver)
		json_object_set_new(v, "version", json_integer(strtoll(ver, NULL, 10)));
	json_object_set_new(v, "author", json_pack("{s:I, s:s?, s:s?}", "userId", (json_int_t)soap_author_user(comp),
						   "username", mcjson_str(a, "display"), "practitioner",
						   ref_id(a, "Practitioner")));
	struct soap_note n;
	if (soap_from_composition(comp, &n) == MC_OK) {
		for (int i = 0; i < SOAP_NSECTIONS; i++)
			json_object_set_new(v, soap_keys[i], json_string(n.text[i]));
		soap_note_free(&n);
	}
	json_t *att = json_array_get(json_object_get(comp, "attester"), 0);
	if (att)
		json_object_set_new(v, "signedAt", json_string(mcjson_str(att, "time") ? mcjson_str(att, "time") : ""));
	json_t *ext;
	size_t i;
	json_array_foreach(json_object_get(comp, "extension"), i, ext) {
		const char *url = mcjson_str(ext, "url");
		if (url && !strcmp(url, SOAP_AMEND_REASON_URL))
			json_object_set_new(v, "amendmentReason", json_string(mcjson_str(ext, "valueString")));
	}
	return v;
}
