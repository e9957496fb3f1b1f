/* modules/vitals/query.c — reading vitals: GET /api/v1/patients/{id}/vitals (raw samples or 1m/1h
 * rollups) and GET /api/v1/patients/{id}/vitals/fhir (a searchset Bundle of vital-signs
 * Observations built from samples). The FHIR view is its own route on purpose: the generic
 * /fhir/Observation search sees only stored Observation resources, and merging a time series into
 * its paging and indexes would cost every Observation search; it is noted in the module header.
 *
 * Access: clinical read on that patient (auth_patient_access inside one snapshot with the patient
 * check); a break-the-glass reach is audited with its flag. Raw responses are written straight
 * into the reply buffer: a day of 1 Hz samples is 86,400 points, too many to build as jansson
 * objects within the latency budget.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/mctime.h"
#include "fhir/store.h"
#include "http/app.h"
#include "modules/vitals/vitals_int.h"
#include "modules/vitals/vstore.h"
#include "store/store.h"

#define HOUR_MS 3600000
#define DAY_MS 86400000
#define FHIR_COUNT_DEFAULT 100
#define FHIR_COUNT_MAX 1000
#define ROLLUP_SPAN_MAX_MS (400LL * DAY_MS)

static const char *const param_text[VP__COUNT] = {
#define VITALS_X_TEXT(n, loinc, ucum, text) [VP_##n] = text,
	VITALS_PARAMS(VITALS_X_TEXT)
#undef VITALS_X_TEXT
};

struct access_work {
	struct req *req;
	const char *patient;
	bool glass;
};

static int access_unit(struct store_txn *t, void *arg)
{
	struct access_work *w = arg;
	struct fhir_stored st;
	int rc = fhir_store_read(t, w->req->arena, "Patient", w->patient, 0, &st);
	if (rc == MC_EGONE)
		rc = MC_ENOTFOUND;
	if (rc)
		return rc;
	return auth_patient_access(t, w->req->who, w->patient, AUTH_CLINICAL_READ, &w->glass);
}

/* Common preamble: patient param, audit fields, access. Returns the patient id or NULL (failed). */
static const char *patient_access(struct req *r, int *rc)
{
	const char *id = req_param(r, "id");
	r->audit.action = "read";
	r->audit.resource_type = "Observation";
	r->audit.patient_id = id;
	if (!id || !mcid_valid_fhir_id(id)) {
		*rc = req_fail(r, MC_ENOTFOUND, "no such patient", NULL, NULL);
		return NULL;
	}
	if (!vitals_g.vs) {
		*rc = MC_EUNAVAIL;
		return NULL;
	}
	struct access_work w = {.req = r, .patient = id};
	int x = store_read(r->app->store, access_unit, &w);
	if (x == MC_ENOTFOUND)
		*rc = req_fail(r, x, "no such patient", NULL, NULL);
	else if (x == MC_EFORBIDDEN)
		*rc = req_fail(r, x, "this patient is not in your care", NULL, NULL);
	else
		*rc = x;
	if (x)
		return NULL;
	if (w.glass)
		r->audit.reason = "break-the-glass";
	return id;
}

/* epoch ms or a FHIR instant/dateTime (its start). */
static int parse_time(const char *s, int64_t *out)
{
	if (!s || !*s)
		return MC_EINVAL;
	char *e;
	if (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-')) {
		long long v = strtoll(s, &e, 10);
		if (*e || v < 0)
			return MC_EINVAL;
		*out = v;
		return MC_OK;
	}
	int64_t hi;
	return mctime_parse_fhir(s, out, &hi, NULL);
}

/* code=8867-4,8310-5 or http://loinc.org|8867-4; absent = every parameter. */
static int parse_codes(struct req *r, bool want[VP__COUNT])
{
	bool any = false;
	memset(want, 0, sizeof(bool) * VP__COUNT);
	for (size_t i = 0; i < r->nquery; i++) {
		if (strcmp(r->query[i].key, "code"))
			continue;
		const char *p = r->query[i].value;
		while (*p) {
			size_t n = strcspn(p, ",");
			char c[64];
			if (n >= sizeof(c))
				return MC_EINVAL;
			memcpy(c, p, n);
			c[n] = 0;
			const char *code = c;
			if (!strncmp(c, "http://loinc.org|", 17))
				code = c + 17;
			if (!strcmp(code, "2708-6"))
				code = "59408-5";
			enum vitals_param vp;
			if (vitals_param_from_loinc(code, &vp))
				return MC_EINVAL;
			want[vp] = any = true;
			p += n;
			if (*p == ',')
				p++;
		}
	}
	if (!any)
		for (int i = 0; i < VP__COUNT; i++)
			want[i] = true;
	return MC_OK;
}

static void put_num(struct buf *b, double v)
{
	char t[40];
	int n;
	if (v == floor(v) && fabs(v) < 1e15)
		n = snprintf(t, sizeof(t), "%lld", (long long)v);
	else
		n = snprintf(t, sizeof(t), "%.7g", v);
	buf_append(b, t, (size_t)n);
}

static void put_i64(struct buf *b, int64_t v)
{
	char t[24];
	int i = 23;
	bool neg = v < 0;
	uint64_t u = neg ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	t[i] = 0;
	do {
		t[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		t[--i] = '-';
	buf_append(b, t + i, (size_t)(23 - i));
}

int vitals_h_query(struct req *r, struct reply *rep)
{
	int rc;
	const char *pat = patient_access(r, &rc);
	if (!pat)
		return rc;
	bool want[VP__COUNT];
	if (parse_codes(r, want))
		return req_fail(r, MC_EINVAL, "code: a supported vital sign LOINC code (or a comma list)", "code", NULL);
	const char *res = req_query(r, "resolution");
	int64_t bucket = 0;   /* 0 = raw */
	if (!res || !strcmp(res, "raw"))
		res = "raw";
	else if (!strcmp(res, "1m"))
		bucket = 60000;
	else if (!strcmp(res, "1h"))
		bucket = HOUR_MS;
	else
		return req_fail(r, MC_EINVAL, "resolution must be raw, 1m or 1h", "resolution", NULL);
	int64_t to = mctime_now_ms(), from;
	const char *qt = req_query(r, "to"), *qf = req_query(r, "from");
	if (qt && parse_time(qt, &to))
		return req_fail(r, MC_EINVAL, "to: epoch milliseconds or a FHIR instant", "to", NULL);
	from = to - (bucket ? DAY_MS : HOUR_MS);
	if (qf && parse_time(qf, &from))
		return req_fail(r, MC_EINVAL, "from: epoch milliseconds or a FHIR instant", "from", NULL);
	if (from > to)
		return req_fail(r, MC_EINVAL, "from must not be after to", "from", NULL);
	if (bucket && to - from > ROLLUP_SPAN_MAX_MS)
		return req_fail(r, MC_EINVAL, "the range is too long (at most 400 days)", "from", NULL);

	struct buf *b = &rep->body;
	buf_reset(b);
	buf_puts(b, "{\"success\":true,\"data\":{\"patient\":");
	buf_json_str(b, pat);
	buf_printf(b, ",\"resolution\":\"%s\",\"from\":", res);
	put_i64(b, from);
	buf_puts(b, ",\"to\":");
	put_i64(b, to);
	buf_puts(b, ",\"series\":[");
	bool first = true;
	for (int p = 0; p < VP__COUNT; p++) {
		if (!want[p])
			continue;
		buf_printf(b, "%s{\"code\":\"%s\",\"unit\":\"%s\",", first ? "" : ",", vitals_param_loinc(p),
			   vitals_param_unit(p));
		first = false;
		if (!bucket) {
			struct vstore_point *pts;
			size_t n;
			rc = vstore_range(vitals_g.vs, pat, (enum vitals_param)p, from, to, 0, &pts, &n);
			if (rc == MC_ETOOBIG)
				return req_fail(r, rc, "too many samples: narrow the range or use resolution=1m", NULL, NULL);
			if (rc)
				return rc;
			buf_puts(b, "\"points\":[");
			for (size_t i = 0; i < n; i++) {
				buf_puts(b, i ? ",[" : "[");
				put_i64(b, pts[i].ts_ms);
				buf_putc(b, ',');
				put_num(b, pts[i].value);
				buf_putc(b, ']');
			}
			free(pts);
		} else {
			struct vstore_bucket *bk;
			size_t n;
			rc = vstore_rollup(vitals_g.vs, pat, (enum vitals_param)p, from, to, bucket, 0, &bk, &n);
			if (rc)
				return rc == MC_ETOOBIG ? req_fail(r, rc, "too many buckets: narrow the range", NULL, NULL) : rc;
			buf_puts(b, "\"buckets\":[");
			for (size_t i = 0; i < n; i++) {
				buf_puts(b, i ? ",{\"t\":" : "{\"t\":");
				put_i64(b, bk[i].t0_ms);
				buf_puts(b, ",\"count\":");
				put_i64(b, bk[i].count);
				buf_puts(b, ",\"min\":");
				put_num(b, bk[i].min);
				buf_puts(b, ",\"max\":");
				put_num(b, bk[i].max);
				buf_puts(b, ",\"mean\":");
				put_num(b, round(bk[i].mean * 1000) / 1000);
				buf_putc(b, '}');
			}
			free(bk);
		}
		buf_puts(b, "]}");
	}
	char ts[32];
	mctime_format_ms(mctime_now_ms(), ts);
	buf_printf(b, "]},\"meta\":{\"timestamp\":\"%s\",\"version\":", ts);
	buf_json_str(b, r->app && r->app->version ? r->app->version : "");
	buf_puts(b, ",\"requestId\":");
	rc = buf_json_str(b, r->request_id ? r->request_id : "");
	if (rc)
		return req_fail(r, MC_ETOOBIG, "the response is too large: narrow the range", NULL, NULL);
	rep->status = 200;
	rep->content_type = "application/json";
	return buf_puts(b, "}}") ? MC_ETOOBIG : MC_OK;
}

/* ---- FHIR view ---- */

struct obs {
	enum vitals_param p;
	int64_t ts;
	double v;
};

static int obs_cmp_desc(const void *a, const void *b)
{
	const struct obs *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts < y->ts ? 1 : -1;
	return (int)x->p - (int)y->p;
}

/* date=ge2024-05-01&date=lt2024-05-02 (prefixes eq ge gt le lt; none = eq). */
static int parse_dates(struct req *r, int64_t *from, int64_t *to)
{
	for (size_t i = 0; i < r->nquery; i++) {
		if (strcmp(r->query[i].key, "date"))
			continue;
		const char *s = r->query[i].value;
		char pre[3] = "eq";
		if (strlen(s) > 2 && s[0] >= 'a' && s[0] <= 'z') {
			memcpy(pre, s, 2);
			s += 2;
		}
		int64_t lo, hi;
		if (mctime_parse_fhir(s, &lo, &hi, NULL))
			return MC_EINVAL;
		if (!strcmp(pre, "ge") || !strcmp(pre, "sa")) {
			if (lo > *from)
				*from = lo;
		} else if (!strcmp(pre, "gt")) {
			if (hi > *from)
				*from = hi;
		} else if (!strcmp(pre, "le")) {
			if (hi - 1 < *to)
				*to = hi - 1;
		} else if (!strcmp(pre, "lt") || !strcmp(pre, "eb")) {
			if (lo - 1 < *to)
				*to = lo - 1;
		} else if (!strcmp(pre, "eq")) {
			if (lo > *from)
				*from = lo;
			if (hi - 1 < *to)
				*to = hi - 1;
		} else {
			return MC_EINVAL;
		}
	}
	return MC_OK;
}

int vitals_h_fhir(struct req *r, struct reply *rep)
{
	int rc;
	const char *pat = patient_access(r, &rc);
	if (!pat)
		return rc;
	r->audit.action = "search";
	bool want[VP__COUNT];
	if (parse_codes(r, want))
		return req_fail(r, MC_EINVAL, "code: a supported vital sign LOINC code", "code", NULL);
	int64_t now = mctime_now_ms();
	int64_t from = now - DAY_MS, to = now + 5000;
	bool has_date = false;
	for (size_t i = 0; i < r->nquery; i++)
		has_date = has_date || !strcmp(r->query[i].key, "date");
	if (has_date) {
		from = now - vitals_g.retention_ms;
		if (parse_dates(r, &from, &to))
			return req_fail(r, MC_EINVAL, "date: a FHIR date with an optional prefix (ge, gt, le, lt, eq)", "date",
					NULL);
	}
	const char *qc = req_query(r, "_count");
	long count = FHIR_COUNT_DEFAULT;
	if (qc) {
		char *e;
		count = strtol(qc, &e, 10);
		if (*e || count < 0 || count > FHIR_COUNT_MAX)
			return req_fail(r, MC_EINVAL, "_count must be 0..1000", "_count", NULL);
	}
	struct obs *all = NULL;
	size_t n = 0, cap = 0;
	for (int p = 0; p < VP__COUNT && from <= to; p++) {
		if (!want[p])
			continue;
		struct vstore_point *pts;
		size_t k;
		rc = vstore_range(vitals_g.vs, pat, (enum vitals_param)p, from, to, 0, &pts, &k);
		if (rc) {
			free(all);
			return rc == MC_ETOOBIG ? req_fail(r, rc, "too many samples: narrow the date range", NULL, NULL) : rc;
		}
		if (n + k > cap) {
			cap = (n + k) * 2;
			all = realloc(all, cap * sizeof(*all));
			if (!all)
				abort();
		}
		for (size_t i = 0; i < k; i++)
			all[n++] = (struct obs){(enum vitals_param)p, pts[i].ts_ms, pts[i].value};
		free(pts);
	}
	if (n)
		qsort(all, n, sizeof(*all), obs_cmp_desc);
	json_t *bundle = json_pack("{s:s, s:s, s:I, s:[]}", "resourceType", "Bundle", "type", "searchset", "total",
				   (json_int_t)n, "entry");
	json_t *entries = json_object_get(bundle, "entry");
	uint32_t ph = 2166136261u;
	for (const char *c = pat; *c; c++)
		ph = (ph ^ (unsigned char)*c) * 16777619u;
	for (size_t i = 0; i < n && i < (size_t)count; i++) {
		char id[64], when[32], ref[96], num[40];
		snprintf(id, sizeof(id), "vs-%08x-%d-%" PRId64, ph, (int)all[i].p, all[i].ts);
		mctime_format_ms(all[i].ts, when);
		snprintf(ref, sizeof(ref), "Patient/%s", pat);
		double v = all[i].v;
		if (v == floor(v))
			snprintf(num, sizeof(num), "%lld", (long long)v);
		else
			snprintf(num, sizeof(num), "%.7g", v);
		json_t *o = json_pack(
			"{s:s, s:s, s:s, s:[{s:[{s:s, s:s, s:s}]}], s:{s:[{s:s, s:s, s:s}], s:s}, s:{s:s}, s:s, "
			"s:{s:o, s:s, s:s, s:s}}",
			"resourceType", "Observation", "id", id, "status", "final", "category", "coding", "system",
			"http://terminology.hl7.org/CodeSystem/observation-category", "code", "vital-signs", "display",
			"Vital Signs", "code", "coding", "system", "http://loinc.org", "code", vitals_param_loinc(all[i].p),
			"display", param_text[all[i].p], "text", param_text[all[i].p], "subject", "reference", ref,
			"effectiveDateTime", when, "valueQuantity", "value", mcjson_decimal(num), "unit",
			vitals_param_unit(all[i].p), "system", "http://unitsofmeasure.org", "code",
			vitals_param_unit(all[i].p));
		json_array_append_new(entries, json_pack("{s:o, s:{s:s}}", "resource", o, "search", "mode", "match"));
	}
	free(all);
	rc = reply_fhir_json(rep, 200, bundle);
	json_decref(bundle);
	return rc;
}
