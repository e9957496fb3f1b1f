/* modules/patients/profile.c — profile <-> FHIR Patient mapping. */
#include "modules/patients/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"

static int fail(struct profile_error *err, const char *field, const char *msg)
{
	snprintf(err->field, sizeof(err->field), "%s", field);
	snprintf(err->msg, sizeof(err->msg), "%s", msg);
	return MC_EINVAL;
}

static bool is_str(const json_t *v)
{
	return json_is_string(v) && !mcjson_is_decimal(v) && json_string_length(v) > 0 &&
	       json_string_length(v) <= 1024;
}

/* The first HumanName of pat, created when absent. */
static json_t *first_name(json_t *pat)
{
	json_t *names = json_object_get(pat, "name");
	if (!json_is_array(names)) {
		names = json_array();
		json_object_set_new(pat, "name", names);
	}
	json_t *n = json_array_get(names, 0);
	if (!json_is_object(n)) {
		n = json_object();
		json_array_append_new(names, n);
		json_object_set_new(n, "use", json_string("official"));
	}
	return n;
}

/* Drop empty containers left by removals (FHIR forbids empty objects and arrays). */
static void prune_name(json_t *pat)
{
	json_t *names = json_object_get(pat, "name");
	json_t *n = json_array_get(names, 0);
	if (n && !json_object_get(n, "family") && !json_object_get(n, "given") && !json_object_get(n, "text"))
		json_array_remove(names, 0);
	if (names && json_array_size(names) == 0)
		json_object_del(pat, "name");
}

static int set_given(json_t *pat, const json_t *v, struct profile_error *err, const char *field)
{
	json_t *n = first_name(pat);
	if (json_is_null(v)) {
		json_object_del(n, "given");
		return MC_OK;
	}
	json_t *arr = json_array();
	if (is_str(v)) {
		json_array_append(arr, (json_t *)v);
	} else if (json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= 10) {
		size_t i;
		json_t *g;
		json_array_foreach(v, i, g) {
			if (!is_str(g)) {
				json_decref(arr);
				return fail(err, field, "must be a non-empty string or an array of them");
			}
			json_array_append(arr, g);
		}
	} else {
		json_decref(arr);
		return fail(err, field, "must be a non-empty string or an array of them");
	}
	json_object_set_new(n, "given", arr);
	return MC_OK;
}

static int set_family(json_t *pat, const json_t *v, struct profile_error *err, const char *field)
{
	json_t *n = first_name(pat);
	if (json_is_null(v)) {
		json_object_del(n, "family");
		return MC_OK;
	}
	if (!is_str(v))
		return fail(err, field, "must be a non-empty string");
	json_object_set(n, "family", (json_t *)v);
	return MC_OK;
}

/* Replace (or remove, v == null) the first telecom of `system`. */
static int set_telecom(json_t *pat, const char *system, const json_t *v, struct profile_error *err)
{
	if (!json_is_null(v) && !is_str(v))
		return fail(err, system, "must be a non-empty string");
	json_t *tel = json_object_get(pat, "telecom");
	if (!json_is_array(tel)) {
		if (json_is_null(v))
			return MC_OK;
		tel = json_array();
		json_object_set_new(pat, "telecom", tel);
	}
	size_t i;
	json_t *cp;
	json_array_foreach(tel, i, cp) {
		const char *s = mcjson_str(cp, "system");
		if (s && !strcmp(s, system)) {
			if (json_is_null(v))
				json_array_remove(tel, i);
			else
				json_object_set(cp, "value", (json_t *)v);
			goto done;
		}
	}
	if (!json_is_null(v)) {
		json_t *c = json_pack("{s:s, s:O}", "system", system, "value", v);
		if (!strcmp(system, "phone"))
			json_object_set_new(c, "use", json_string("mobile"));
		json_array_append_new(tel, c);
	}
done:
	if (json_array_size(tel) == 0)
		json_object_del(pat, "telecom");
	return MC_OK;
}

static int set_address(json_t *pat, const json_t *v, struct profile_error *err)
{
	static const char *const keys[] = {"line", "city", "state", "postalCode", "country", "district", NULL};
	if (json_is_null(v)) {
		json_object_del(pat, "address");
		return MC_OK;
	}
	if (!json_is_object(v) || json_object_size(v) == 0)
		return fail(err, "address", "must be an object with line, city, state, postalCode or country");
	json_t *a = json_object();
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x) {
		size_t i = 0;
		while (keys[i] && strcmp(keys[i], k))
			i++;
		char field[64];
		snprintf(field, sizeof(field), "address.%.40s", k);
		if (!keys[i]) {
			json_decref(a);
			return fail(err, field, "unknown address field");
		}
		if (json_is_null(x))
			continue;
		if (!strcmp(k, "line")) {
			json_t *lines = json_array();
			if (is_str(x)) {
				json_array_append(lines, x);
			} else if (json_is_array(x) && json_array_size(x) > 0 && json_array_size(x) <= 5) {
				size_t j;
				json_t *l;
				json_array_foreach(x, j, l) {
					if (!is_str(l)) {
						json_decref(lines);
						json_decref(a);
						return fail(err, field, "must be a string or an array of strings");
					}
					json_array_append(lines, l);
				}
			} else {
				json_decref(lines);
				json_decref(a);
				return fail(err, field, "must be a string or an array of strings");
			}
			json_object_set_new(a, "line", lines);
		} else if (is_str(x)) {
			json_object_set(a, k, x);
		} else {
			json_decref(a);
			return fail(err, field, "must be a non-empty string");
		}
	}
	if (json_object_size(a) == 0) {
		json_decref(a);
		json_object_del(pat, "address");
		return MC_OK;
	}
	json_object_set_new(a, "use", json_string("home"));
	json_object_set_new(pat, "address", json_pack("[o]", a));
	return MC_OK;
}

/* Client identifiers replace all identifiers except the MRN, which the server owns. */
static int set_identifiers(json_t *pat, const json_t *v, struct profile_error *err, const char *mrn_system)
{
	json_t *keep = json_array();
	json_t *old = json_object_get(pat, "identifier");
	size_t i;
	json_t *id;
	json_array_foreach(old, i, id) {
		const char *s = mcjson_str(id, "system");
		if (s && !strcmp(s, mrn_system))
			json_array_append(keep, id);
	}
	if (!json_is_null(v)) {
		if (!json_is_array(v) || json_array_size(v) > 20) {
			json_decref(keep);
			return fail(err, "identifiers", "must be an array of {system, value}");
		}
		json_array_foreach(v, i, id) {
			json_t *sys = json_object_get(id, "system"), *val = json_object_get(id, "value");
			if (!json_is_object(id) || !is_str(sys) || !is_str(val) || json_object_size(id) != 2) {
				json_decref(keep);
				return fail(err, "identifiers", "each identifier must be {system, value} strings");
			}
			if (!strcmp(json_string_value(sys), mrn_system)) {
				json_decref(keep);
				return fail(err, "identifiers", "the MRN is assigned by the server");
			}
			json_array_append_new(keep, json_pack("{s:O, s:O}", "system", sys, "value", val));
		}
	}
	if (json_array_size(keep))
		json_object_set_new(pat, "identifier", keep);
	else {
		json_decref(keep);
		json_object_del(pat, "identifier");
	}
	return MC_OK;
}

static int set_contact(json_t *pat, const json_t *v, struct profile_error *err)
{
	if (json_is_null(v)) {
		json_object_del(pat, "contact");
		return MC_OK;
	}
	const json_t *name = json_object_get(v, "name"), *rel = json_object_get(v, "relationship"),
		     *phone = json_object_get(v, "phone");
	size_t known = (name != NULL) + (rel != NULL) + (phone != NULL);
	if (!json_is_object(v) || known == 0 || known != json_object_size(v))
		return fail(err, "emergencyContact", "must be an object with name, relationship and/or phone");
	if ((name && !is_str(name)) || (rel && !is_str(rel)) || (phone && !is_str(phone)))
		return fail(err, "emergencyContact", "name, relationship and phone must be non-empty strings");
	json_t *c = json_object();
	json_t *rels = json_array();
	json_array_append_new(rels, json_pack("{s:[{s:s,s:s}]}", "coding", "system",
					     "http://terminology.hl7.org/CodeSystem/v2-0131", "code", "C"));
	if (rel)
		json_array_append_new(rels, json_pack("{s:O}", "text", rel));
	json_object_set_new(c, "relationship", rels);
	if (name)
		json_object_set_new(c, "name", json_pack("{s:O}", "text", name));
	if (phone)
		json_object_set_new(c, "telecom", json_pack("[{s:s,s:O}]", "system", "phone", "value", phone));
	json_object_set_new(pat, "contact", json_pack("[o]", c));
	return MC_OK;
}

int profile_apply(json_t *pat, const json_t *in, const char *const *ignore, struct profile_error *err)
{
	if (!json_is_object(in))
		return fail(err, "", "the body must be a JSON object");
	const char *k;
	json_t *v;
	int rc = MC_OK;
	json_object_foreach((json_t *)in, k, v) {
		bool skip = false;
		for (size_t i = 0; ignore && ignore[i]; i++)
			skip |= !strcmp(ignore[i], k);
		if (skip)
			continue;
		if (!strcmp(k, "firstName") || !strcmp(k, "given"))
			rc = set_given(pat, v, err, k);
		else if (!strcmp(k, "lastName") || !strcmp(k, "family"))
			rc = set_family(pat, v, err, k);
		else if (!strcmp(k, "birthDate")) {
			if (json_is_null(v))
				json_object_del(pat, "birthDate");
			else if (is_str(v))
				json_object_set(pat, "birthDate", v);   /* format checked by fhir_validate */
			else
				rc = fail(err, k, "must be a date YYYY-MM-DD");
		} else if (!strcmp(k, "gender")) {
			if (json_is_null(v))
				json_object_del(pat, "gender");
			else if (is_str(v))
				json_object_set(pat, "gender", v);      /* code checked by fhir_validate */
			else
				rc = fail(err, k, "must be male, female, other or unknown");
		} else if (!strcmp(k, "phone"))
			rc = set_telecom(pat, "phone", v, err);
		else if (!strcmp(k, "email"))
			rc = set_telecom(pat, "email", v, err);
		else if (!strcmp(k, "address"))
			rc = set_address(pat, v, err);
		else if (!strcmp(k, "identifiers"))
			rc = set_identifiers(pat, v, err, "urn:medcore:mrn");
		else if (!strcmp(k, "emergencyContact"))
			rc = set_contact(pat, v, err);
		else if (!strcmp(k, "active")) {
			if (json_is_boolean(v))
				json_object_set(pat, "active", v);
			else
				rc = fail(err, k, "must be true or false");
		} else {
			char f[64];
			snprintf(f, sizeof(f), "%.60s", k);
			rc = fail(err, f, "unknown field");
		}
		if (rc)
			return rc;
	}
	prune_name(pat);
	return MC_OK;
}

const char *profile_identifier(const json_t *pat, const char *system)
{
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(pat, "identifier"), i, id) {
		const char *s = mcjson_str(id, "system");
		if (s && !strcmp(s, system))
			return mcjson_str(id, "value");
	}
	return NULL;
}

static const char *telecom(const json_t *pat, const char *system)
{
	size_t i;
	json_t *cp;
	json_array_foreach(json_object_get(pat, "telecom"), i, cp) {
		const char *s = mcjson_str(cp, "system");
		if (s && !strcmp(s, system))
			return mcjson_str(cp, "value");
	}
	return NULL;
}

json_t *profile_from_patient(const json_t *pat, const char *mrn_system)
{
	json_t *p = json_object();
	json_t *meta = json_object_get(pat, "meta");
	json_object_set(p, "id", json_object_get(pat, "id"));
	const char *mrn = profile_identifier(pat, mrn_system);
	json_object_set_new(p, "mrn", mrn ? json_string(mrn) : json_null());
	const char *vid = mcjson_str(meta, "versionId");
	json_object_set_new(p, "version", json_integer(vid ? atoll(vid) : 0));
	json_object_set(p, "lastUpdated", json_object_get(meta, "lastUpdated"));
	json_t *n = json_array_get(json_object_get(pat, "name"), 0);
	json_t *given = json_object_get(n, "given");
	json_object_set_new(p, "firstName", json_array_size(given) ? json_copy(json_array_get(given, 0)) : json_null());
	json_object_set_new(p, "given", given ? json_deep_copy(given) : json_array());
	json_object_set_new(p, "lastName", json_object_get(n, "family") ? json_copy(json_object_get(n, "family"))
									: json_null());
	json_object_set_new(p, "birthDate", json_object_get(pat, "birthDate") ? json_copy(json_object_get(pat, "birthDate"))
									      : json_null());
	json_object_set_new(p, "gender", json_object_get(pat, "gender") ? json_copy(json_object_get(pat, "gender"))
									: json_null());
	const char *ph = telecom(pat, "phone"), *em = telecom(pat, "email");
	json_object_set_new(p, "phone", ph ? json_string(ph) : json_null());
	json_object_set_new(p, "email", em ? json_string(em) : json_null());
	json_t *a = json_array_get(json_object_get(pat, "address"), 0);
	if (a) {
		json_t *ad = json_deep_copy(a);
		json_object_del(ad, "use");
		json_object_set_new(p, "address", ad);
	} else {
		json_object_set_new(p, "address", json_null());
	}
	json_t *ids = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(json_object_get(pat, "identifier"), i, id) {
		const char *s = mcjson_str(id, "system"), *v = mcjson_str(id, "value");
		if (s && v && strcmp(s, mrn_system))
			json_array_append_new(ids, json_pack("{s:s, s:s}", "system", s, "value", v));
	}
	json_object_set_new(p, "identifiers", ids);
	json_t *c = json_array_get(json_object_get(pat, "contact"), 0);
	if (c) {
		json_t *ec = json_object();
		json_t *rels = json_object_get(c, "relationship");
		json_t *r;
		json_array_foreach(rels, i, r) {
			if (mcjson_str(r, "text"))
				json_object_set(ec, "relationship", json_object_get(r, "text"));
		}
		json_t *cn = json_object_get(c, "name");
		if (mcjson_str(cn, "text"))
			json_object_set(ec, "name", json_object_get(cn, "text"));
		const char *cph = telecom(c, "phone");
		if (cph)
			json_object_set_new(ec, "phone", json_string(cph));
		json_object_set_new(p, "emergencyContact", ec);
	} else {
		json_object_set_new(p, "emergencyContact", json_null());
	}
	json_object_set_new(p, "active", json_boolean(mcjson_bool(pat, "active", true)));
	return p;
}

void profile_phone_digits(const char *in, char *out, size_t outsz)
{
	size_t n = 0;
	for (; in && *in && n + 1 < outsz; in++)
		if (*in >= '0' && *in <= '9')
			out[n++] = *in;
	out[n] = '\0';
}
