/* modules/vitals/ingest.c — vitals ingest: a strict scanner for flat sample objects (NDJSON or a
 * JSON array), per-sample validation, device binding and ownership checks, a per-device token
 * bucket, the durable append, then the sinks. Also the module's start/stop and its route table.
 *
 * Why a hand-written scanner: a sample is a flat object of six known keys; jansson costs about a
 * microsecond per object, the scanner a fraction of that, and it is strict (no unknown or duplicate
 * keys, no comments, no trailing commas, numbers by the JSON grammar).
 *
 * Caches (all guarded by one mutex, bounded, cleared wholesale when full):
 *   device -> bound patient ("" = unbound or unknown), invalidated by vitals_binding_forget() after
 *   bind/unbind commits; user id -> device id (device credentials never move to another device).
 */
#include "modules/vitals/vitals_module.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "http/app.h"
#include "modules/vitals/vitals_int.h"
#include "modules/vitals/vstore.h"
#include "store/store.h"

struct vitals_mod vitals_g;

#define FUTURE_MS 5000
#define ERRORS_LISTED_MAX 100
#define CACHE_MAX 65536
#define CACHE_BUCKETS 4096

enum { F_DEV = 1, F_PAT = 2, F_CODE = 4, F_VAL = 8, F_UNIT = 16, F_TS = 32, F_ALL = 63 };

/* ---- scanner ---- */

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* A JSON string into out (NUL-terminated, at most cap-1 bytes). Only the escapes \" \\ \/ are
 * taken: nothing a device id, patient id, code or unit needs is outside ASCII. */
static int scan_str(const char **pp, const char *end, char *out, size_t cap, const char **why)
{
	const char *p = *pp;
	size_t n = 0;
	if (p >= end || *p != '"') {
		*why = "a string was expected";
		return MC_EINVAL;
	}
	for (p++; p < end && *p != '"'; p++) {
		char c = *p;
		if ((unsigned char)c < 0x20) {
			*why = "control character in a string";
			return MC_EINVAL;
		}
		if (c == '\\') {
			if (++p >= end || (*p != '"' && *p != '\\' && *p != '/')) {
				*why = "unsupported escape in a string";
				return MC_EINVAL;
			}
			c = *p;
		}
		if (n + 1 >= cap) {
			*why = "a string is too long";
			return MC_EINVAL;
		}
		out[n++] = c;
	}
	if (p >= end) {
		*why = "unterminated string";
		return MC_EINVAL;
	}
	out[n] = 0;
	*pp = p + 1;
	return MC_OK;
}

/* A JSON number (by the grammar) into *v; *integral when it has no fraction or exponent. */
static int scan_num(const char **pp, const char *end, double *v, bool *integral, const char **why)
{
	const char *p = *pp, *s = p;
	*integral = true;
	if (p < end && *p == '-')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		goto bad;
	if (*p == '0')
		p++;
	else
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	if (p < end && *p == '.') {
		*integral = false;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			goto bad;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		*integral = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			goto bad;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	char tmp[48];
	if ((size_t)(p - s) >= sizeof(tmp))
		goto bad;
	memcpy(tmp, s, (size_t)(p - s));
	tmp[p - s] = 0;
	*v = strtod(tmp, NULL);
	if (!isfinite(*v))
		goto bad;
	*pp = p;
	return MC_OK;
bad:
	*why = "invalid number";
	return MC_EINVAL;
}

int vitals_parse_object(const char **pp, const char *end, struct vitals_raw *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	const char *p = skip_ws(*pp, end);
	if (p >= end || *p != '{') {
		*why = "an object was expected";
		return MC_EINVAL;
	}
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}') {
		*pp = p + 1;
		return MC_OK;
	}
	for (;;) {
		char key[16];
		if (scan_str(&p, end, key, sizeof(key), why)) {
			*why = "unknown key";
			return MC_EINVAL;
		}
		p = skip_ws(p, end);
		if (p >= end || *p != ':') {
			*why = "':' expected";
			return MC_EINVAL;
		}
		p = skip_ws(p + 1, end);
		unsigned bit;
		int rc;
		bool integral;
		if (!strcmp(key, "device")) {
			bit = F_DEV;
			rc = scan_str(&p, end, out->device, sizeof(out->device), why);
		} else if (!strcmp(key, "patient")) {
			bit = F_PAT;
			rc = scan_str(&p, end, out->patient, sizeof(out->patient), why);
		} else if (!strcmp(key, "code")) {
			bit = F_CODE;
			rc = scan_str(&p, end, out->code, sizeof(out->code), why);
		} else if (!strcmp(key, "unit")) {
			bit = F_UNIT;
			rc = scan_str(&p, end, out->unit, sizeof(out->unit), why);
		} else if (!strcmp(key, "value")) {
			bit = F_VAL;
			rc = scan_num(&p, end, &out->value, &integral, why);
		} else if (!strcmp(key, "ts")) {
			bit = F_TS;
			if (p < end && *p == '"') {
				char t[48];
				int64_t lo = 0, hi;
				enum mctime_prec prec = MCT_YEAR;
				rc = scan_str(&p, end, t, sizeof(t), why);
				if (!rc && (mctime_parse_fhir(t, &lo, &hi, &prec) || prec < MCT_SECOND || !strchr(t, 'T'))) {
					*why = "ts must be an instant (YYYY-MM-DDThh:mm:ss[.sss]Z) or epoch milliseconds";
					rc = MC_EINVAL;
				}
				out->ts_ms = lo;
			} else {
				double d = 0;
				rc = scan_num(&p, end, &d, &integral, why);
				if (!rc && (!integral || d < 0 || d > 9e15)) {
					*why = "ts must be an instant or integral epoch milliseconds";
					rc = MC_EINVAL;
				}
				out->ts_ms = (int64_t)d;
			}
		} else {
			*why = "unknown key";
			return MC_EINVAL;
		}
		if (rc)
			return rc;
		if (out->have & bit) {
			*why = "duplicate key";
			return MC_EINVAL;
		}
		out->have |= bit;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}') {
			*pp = p + 1;
			return MC_OK;
		}
		*why = "',' or '}' expected";
		return MC_EINVAL;
	}
}

/* ---- validation ---- */

/* Physiologically possible (not "normal") ranges in canonical units. */
static const double range_lo[VP__COUNT] = {
	[VP_HR] = 0, [VP_RR] = 0, [VP_SPO2] = 0, [VP_SYS] = 0, [VP_DIA] = 0, [VP_TEMP] = 20, [VP_ACVPU] = 0, [VP_O2] = 0,
};
static const double range_hi[VP__COUNT] = {
	[VP_HR] = 350, [VP_RR] = 150, [VP_SPO2] = 100, [VP_SYS] = 350, [VP_DIA] = 300, [VP_TEMP] = 46,
	[VP_ACVPU] = 4, [VP_O2] = 80,
};

static bool unit_ok(enum vitals_param p, const char *u)
{
	if (!strcmp(u, vitals_param_unit(p)))
		return true;
	switch (p) {
	case VP_HR: return !strcmp(u, "{beats}/min");
	case VP_RR: return !strcmp(u, "{breaths}/min");
	case VP_ACVPU: return !strcmp(u, "1");
	default: return false;
	}
}

int vitals_validate(const struct vitals_raw *r, int64_t now_ms, int64_t retention_ms, struct vitals_sample *out,
		    const char **code, const char **why)
{
	if ((r->have & F_ALL) != F_ALL) {
		*code = "MISSING_FIELD";
		*why = "device, patient, code, value, unit and ts are required";
		return MC_EINVAL;
	}
	if (!mcid_valid_fhir_id(r->device) || !mcid_valid_fhir_id(r->patient)) {
		*code = "INVALID_ID";
		*why = "device and patient must be FHIR ids";
		return MC_EINVAL;
	}
	enum vitals_param p;
	const char *loinc = !strcmp(r->code, "2708-6") ? "59408-5" : r->code;   /* SaO2 → SpO2 */
	if (vitals_param_from_loinc(loinc, &p)) {
		*code = "UNKNOWN_CODE";
		*why = "code is not a supported vital sign LOINC code";
		return MC_EINVAL;
	}
	double v = r->value;
	if (p == VP_TEMP && !strcmp(r->unit, "[degF]")) {
		v = (v - 32.0) * 5.0 / 9.0;
	} else if (!unit_ok(p, r->unit)) {
		*code = "BAD_UNIT";
		*why = "unit does not match the code";
		return MC_EINVAL;
	}
	if (!(v >= range_lo[p] && v <= range_hi[p]) || (p == VP_ACVPU && v != floor(v))) {
		*code = "OUT_OF_RANGE";
		*why = "value is not physiologically possible";
		return MC_EINVAL;
	}
	if (r->ts_ms > now_ms + FUTURE_MS) {
		*code = "BAD_TIMESTAMP";
		*why = "ts is in the future";
		return MC_EINVAL;
	}
	if (r->ts_ms < now_ms - retention_ms) {
		*code = "BAD_TIMESTAMP";
		*why = "ts is older than the retention window";
		return MC_EINVAL;
	}
	memcpy(out->patient_id, r->patient, sizeof(out->patient_id));
	memcpy(out->device_id, r->device, sizeof(out->device_id));
	out->param = p;
	out->value = v;
	out->ts_ms = r->ts_ms;
	return MC_OK;
}

/* ---- caches ---- */

struct centry {
	struct centry *next;
	char key[72];
	char val[65];
	double tokens;      /* rate table only */
	int64_t last_us;
};

struct cache {
	struct centry *b[CACHE_BUCKETS];
	size_t n;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache bindings, rates;
static uint64_t bindings_gen;   /* bumped by every forget (under cache_mu) */

static unsigned chash(const char *k)
{
	uint32_t h = 2166136261u;
	for (; *k; k++)
		h = (h ^ (unsigned char)*k) * 16777619u;
	return h & (CACHE_BUCKETS - 1);
}

static void cache_clear(struct cache *c)
{
	for (size_t i = 0; i < CACHE_BUCKETS; i++) {
		struct centry *e = c->b[i];
		while (e) {
			struct centry *nx = e->next;
			free(e);
			e = nx;
		}
		c->b[i] = NULL;
	}
	c->n = 0;
}

static struct centry *cache_find(struct cache *c, const char *key)
{
	for (struct centry *e = c->b[chash(key)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static struct centry *cache_put(struct cache *c, const char *key)
{
	struct centry *e = cache_find(c, key);
	if (e)
		return e;
	if (c->n >= CACHE_MAX)
		cache_clear(c);
	e = mc_calloc(1, sizeof(*e));
	snprintf(e->key, sizeof(e->key), "%s", key);
	unsigned h = chash(key);
	e->next = c->b[h];
	c->b[h] = e;
	c->n++;
	return e;
}

void vitals_binding_forget(const char *device_id)
{
	char key[72];
	snprintf(key, sizeof(key), "d:%s", device_id);
	pthread_mutex_lock(&cache_mu);
	struct centry **pp = &bindings.b[chash(key)];
	while (*pp) {
		if (!strcmp((*pp)->key, key)) {
			struct centry *e = *pp;
			*pp = e->next;
			free(e);
			bindings.n--;
			break;
		}
		pp = &(*pp)->next;
	}
	bindings_gen++;
	pthread_mutex_unlock(&cache_mu);
}

struct lookup_work {
	const char *sql;
	struct store_arg arg;
	char out[65];
};

static int lookup_unit(struct store_txn *t, void *arg)
{
	struct lookup_work *w = arg;
	char *s = NULL;
	int rc = store_query_text(t, w->sql, &w->arg, 1, &s);
	if (rc == MC_OK)
		snprintf(w->out, sizeof(w->out), "%s", s ? s : "");
	free(s);
	return rc == MC_ENOTFOUND ? MC_OK : rc;
}

/* key "d:<device>" → bound patient, "u:<user id>" → linked device; "" when none. */
static int cached_lookup(const char *key, const char *sql, struct store_arg arg, char out[65])
{
	pthread_mutex_lock(&cache_mu);
	struct centry *e = cache_find(&bindings, key);
	if (e) {
		memcpy(out, e->val, 65);
		pthread_mutex_unlock(&cache_mu);
		return MC_OK;
	}
	uint64_t gen = bindings_gen;
	pthread_mutex_unlock(&cache_mu);
	struct lookup_work w = {.sql = sql, .arg = arg};
	int rc = store_read(vitals_g.app->store, lookup_unit, &w);
	if (rc)
		return rc;
	memcpy(out, w.out, 65);
	/* A bind racing this lookup forgets the key after its commit; caching a value read before that
	 * commit would pin a stale binding, so it is cached only when no forget happened meanwhile. */
	pthread_mutex_lock(&cache_mu);
	if (gen == bindings_gen)
		memcpy(cache_put(&bindings, key)->val, w.out, 65);
	pthread_mutex_unlock(&cache_mu);
	return MC_OK;
}

static int bound_patient(const char *device, char out[65])
{
	char key[72];
	snprintf(key, sizeof(key), "d:%s", device);
	return cached_lookup(key, "SELECT COALESCE(patient_id, '') FROM vitals_device WHERE device_id = $1",
			     SA_TEXT(device), out);
}

static int user_device(int64_t user_id, char out[65])
{
	char key[72];
	snprintf(key, sizeof(key), "u:%lld", (long long)user_id);
	return cached_lookup(key, "SELECT device_id FROM vitals_device WHERE user_id = $1", SA_INT(user_id), out);
}

/* Token buckets: take need[i] tokens from each device at once, or none. */
struct devcount {
	const char *device;
	size_t n;
};

static bool rate_take(const struct devcount *d, size_t nd)
{
	int64_t now = mctime_mono_us();
	bool ok = true;
	pthread_mutex_lock(&cache_mu);
	struct centry **e = mc_malloc((nd ? nd : 1) * sizeof(*e));
	for (size_t i = 0; i < nd; i++) {
		bool fresh = !cache_find(&rates, d[i].device);
		e[i] = cache_put(&rates, d[i].device);
		if (fresh) {
			e[i]->tokens = vitals_g.burst;
			e[i]->last_us = now;
		}
		e[i]->tokens += (double)(now - e[i]->last_us) / 1e6 * vitals_g.rate;
		if (e[i]->tokens > vitals_g.burst)
			e[i]->tokens = vitals_g.burst;
		e[i]->last_us = now;
		if (e[i]->tokens < (double)d[i].n)
			ok = false;
	}
	for (size_t i = 0; ok && i < nd; i++)
		e[i]->tokens -= (double)d[i].n;
	free(e);
	pthread_mutex_unlock(&cache_mu);
	return ok;
}

/* ---- the batch ---- */

struct access_work {
	const struct auth_principal *who;
	const char *patient;
};

static int access_unit(struct store_txn *t, void *arg)
{
	struct access_work *w = arg;
	return auth_patient_access(t, w->who, w->patient, AUTH_CLINICAL_WRITE, NULL);
}

struct vitals_batch {
	const struct auth_principal *who;
	int64_t now;
	char my_device[65];
	const char *only_device;   /* Kafka: the message key; every sample must name it */
	struct vitals_sample *ok;
	size_t nok, cap, index, nerr;
	json_t *errors;            /* HTTP reports; NULL = count only */
	const char *first_code;    /* the first rejection's code of the current body (static) */
	/* last answers, batches are usually one device and patient */
	char last_dev[65], last_dev_pat[65];
	char allowed[8][65];
	size_t nallowed;
	int fatal;   /* a store failure: the batch fails as a whole */
};

static void reject(struct vitals_batch *b, const char *code, const char *why)
{
	if (!b->first_code)
		b->first_code = code;
	if (b->nerr++ < ERRORS_LISTED_MAX && b->errors)
		json_array_append_new(b->errors, json_pack("{s:I, s:s, s:s}", "index", (json_int_t)b->index, "code", code,
							   "message", why));
}

static bool clinician_may(struct vitals_batch *b, const char *patient)
{
	for (size_t i = 0; i < b->nallowed; i++)
		if (!strcmp(b->allowed[i], patient))
			return true;
	struct access_work w = {b->who, patient};
	int rc = store_read(vitals_g.app->store, access_unit, &w);
	if (rc && rc != MC_EFORBIDDEN)
		b->fatal = rc;
	if (rc)
		return false;
	if (b->nallowed < 8)
		snprintf(b->allowed[b->nallowed++], 65, "%s", patient);
	return true;
}

static void take_sample(struct vitals_batch *b, const struct vitals_raw *raw)
{
	const char *code, *why;
	if (b->nok == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 64;
		b->ok = mc_realloc(b->ok, b->cap * sizeof(*b->ok));
	}
	struct vitals_sample *s = &b->ok[b->nok];
	if (vitals_validate(raw, b->now, vitals_g.retention_ms, s, &code, &why)) {
		reject(b, code, why);
		return;
	}
	if (b->who->role == ROLE_DEVICE && strcmp(b->my_device, s->device_id)) {
		reject(b, "NOT_YOUR_DEVICE", "a device may post only its own samples");
		return;
	}
	if (b->only_device && strcmp(b->only_device, s->device_id)) {
		reject(b, "DEVICE_MISMATCH", "the sample names another device than the message key");
		return;
	}
	if (strcmp(b->last_dev, s->device_id)) {
		int rc = bound_patient(s->device_id, b->last_dev_pat);
		if (rc) {
			b->fatal = rc;
			b->last_dev[0] = 0;
			return;
		}
		memcpy(b->last_dev, s->device_id, sizeof(b->last_dev));
	}
	if (!b->last_dev_pat[0] || strcmp(b->last_dev_pat, s->patient_id)) {
		reject(b, "DEVICE_NOT_BOUND", "the device is not bound to this patient");
		return;
	}
	if (auth_role_is_clinician(b->who->role) && !clinician_may(b, s->patient_id)) {
		reject(b, "FORBIDDEN", "this patient is not in your care");
		return;
	}
	s->received_us = mctime_mono_us();
	b->nok++;
}

static int cmp_dev(const void *x, const void *y)
{
	const struct vitals_sample *const *a = x, *const *c = y;
	return strcmp((*a)->device_id, (*c)->device_id);
}

static int check_rates(struct vitals_batch *b)
{
	if (!b->nok)
		return MC_OK;
	const struct vitals_sample **v = mc_malloc(b->nok * sizeof(*v));
	for (size_t i = 0; i < b->nok; i++)
		v[i] = &b->ok[i];
	bool one = true;
	for (size_t i = 1; i < b->nok && one; i++)
		one = !strcmp(v[0]->device_id, v[i]->device_id);
	if (!one)
		qsort(v, b->nok, sizeof(*v), cmp_dev);
	struct devcount *d = mc_malloc(b->nok * sizeof(*d));
	size_t nd = 0;
	for (size_t i = 0; i < b->nok; i++) {
		if (nd && !strcmp(d[nd - 1].device, v[i]->device_id))
			d[nd - 1].n++;
		else
			d[nd++] = (struct devcount){v[i]->device_id, 1};
	}
	bool ok = rate_take(d, nd);
	free(d);
	free(v);
	return ok ? MC_OK : MC_ERATE;
}

/* Parse one body into b (index counts from where it stands). MC_OK, MC_EINVAL (malformed array),
 * MC_ETOOBIG, or b->fatal. */
static int parse_body(struct vitals_batch *b, const char *body, size_t len, enum vitals_body fmt)
{
	const char *p = body, *end = body + len;
	int rc = MC_OK;
	struct vitals_raw raw;
	const char *why;
	size_t first = b->index;
	if (fmt == VB_AUTO) {
		const char *q = skip_ws(p, end);
		fmt = VB_NDJSON;
		if (q < end && *q == '[') {
			fmt = VB_ARRAY;
		} else if (q < end && *q == '{') {
			/* one object, possibly spread over lines */
			const char *r = q;
			if (!vitals_parse_object(&r, end, &raw, &why) && skip_ws(r, end) == end) {
				take_sample(b, &raw);
				b->index++;
				return b->fatal;
			}
		}
	}
	if (fmt == VB_NDJSON) {
		while (p < end && !b->fatal) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			const char *le = nl ? nl : end;
			const char *q = skip_ws(p, le);
			p = nl ? nl + 1 : end;
			if (q == le)
				continue;
			if (b->index - first >= VITALS_BATCH_MAX) {
				rc = MC_ETOOBIG;
				break;
			}
			if (vitals_parse_object(&q, le, &raw, &why))
				reject(b, "INVALID_JSON", why);
			else if (skip_ws(q, le) != le)
				reject(b, "INVALID_JSON", "characters after the object");
			else
				take_sample(b, &raw);
			b->index++;
		}
	} else {
		p = skip_ws(p, end);
		if (p >= end || *p != '[')
			rc = MC_EINVAL;
		else
			p = skip_ws(p + 1, end);
		if (!rc && p < end && *p == ']')
			p++;
		else
			while (!rc && !b->fatal) {
				if (b->index - first >= VITALS_BATCH_MAX) {
					rc = MC_ETOOBIG;
					break;
				}
				if (vitals_parse_object(&p, end, &raw, &why)) {
					rc = MC_EINVAL;
					break;
				}
				take_sample(b, &raw);
				b->index++;
				p = skip_ws(p, end);
				if (p < end && *p == ',') {
					p = skip_ws(p + 1, end);
				} else if (p < end && *p == ']') {
					p++;
					break;
				} else {
					rc = MC_EINVAL;
				}
			}
		if (!rc && skip_ws(p, end) != end)
			rc = MC_EINVAL;
	}
	if (!rc && b->fatal)
		rc = b->fatal;
	if (!rc && b->index == first)
		rc = MC_EINVAL;
	return rc;
}

static int batch_start(struct vitals_batch *b, const struct auth_principal *who)
{
	memset(b, 0, sizeof(*b));
	b->who = who;
	b->now = mctime_now_ms();
	if (who->role == ROLE_DEVICE)
		return user_device(who->user_id, b->my_device);
	return MC_OK;
}

struct vitals_batch *vitals_batch_new(const struct auth_principal *who)
{
	if (!vitals_g.vs || !vitals_g.app || !who)
		return NULL;
	struct vitals_batch *b = mc_malloc(sizeof(*b));
	if (batch_start(b, who)) {
		free(b);
		return NULL;
	}
	return b;
}

int vitals_batch_add(struct vitals_batch *b, const char *body, size_t len, enum vitals_body fmt,
		     const char *only_device, size_t *accepted, size_t *rejected)
{
	size_t nok0 = b->nok, nerr0 = b->nerr, idx0 = b->index;
	if (accepted)
		*accepted = 0;
	if (rejected)
		*rejected = 0;
	b->only_device = only_device;
	b->first_code = NULL;
	int rc = body && len ? parse_body(b, body, len, fmt) : MC_EINVAL;
	b->only_device = NULL;
	if (rc) {   /* the body as a whole is refused: forget what it added */
		b->nok = nok0;
		b->nerr = nerr0;
		b->index = idx0;
		b->fatal = 0;
		return rc;
	}
	if (accepted)
		*accepted = b->nok - nok0;
	if (rejected)
		*rejected = b->nerr - nerr0;
	return MC_OK;
}

size_t vitals_batch_samples(const struct vitals_batch *b) { return b ? b->nok : 0; }
const char *vitals_batch_first_reject(const struct vitals_batch *b) { return b ? b->first_code : NULL; }

int vitals_batch_commit(struct vitals_batch *b, const struct vstore_srcpos *pos, size_t npos)
{
	if (!b->nok && !npos)
		return MC_OK;
	int rc = vstore_append_at(vitals_g.vs, b->ok, b->nok, pos, npos);
	if (!rc)
		vitals_sinks_publish(b->ok, b->nok);
	return rc;
}

void vitals_batch_reset(struct vitals_batch *b)
{
	b->nok = b->index = b->nerr = 0;
	b->now = mctime_now_ms();
	b->fatal = 0;
}

void vitals_batch_free(struct vitals_batch *b)
{
	if (!b)
		return;
	free(b->ok);
	free(b);
}

int vitals_ingest_batch(const struct auth_principal *who, const char *body, size_t len, bool ndjson, json_t **report)
{
	if (report)
		*report = NULL;
	if (!vitals_g.vs || !vitals_g.app || !who)
		return MC_EUNAVAIL;
	if (!body || !len)
		return MC_EINVAL;
	struct vitals_batch b;
	int rc = batch_start(&b, who);
	if (rc)
		return rc;
	b.errors = json_array();
	/* one sample per line or per object: at most len/8 of them, capped */
	b.cap = len / 8 + 1;
	if (b.cap > VITALS_BATCH_MAX)
		b.cap = VITALS_BATCH_MAX;
	b.ok = mc_malloc(b.cap * sizeof(*b.ok));
	rc = parse_body(&b, body, len, ndjson ? VB_NDJSON : VB_ARRAY);
	if (!rc)
		rc = check_rates(&b);
	if (!rc && b.nok)
		rc = vitals_batch_commit(&b, NULL, 0);
	if (!rc && !b.nok)
		rc = MC_EUNPROC;
	if ((rc == MC_OK || rc == MC_EUNPROC) && report)
		*report = json_pack("{s:I, s:I, s:o}", "accepted", (json_int_t)b.nok, "rejected", (json_int_t)b.nerr,
				    "errors", b.errors);
	else
		json_decref(b.errors);
	free(b.ok);
	return rc;
}

/* ---- HTTP ---- */

static void json_free_cb(void *p) { json_decref(p); }

static int h_ingest(struct req *r, struct reply *rep)
{
	r->audit.action = "create";
	r->audit.resource_type = "Observation";
	const char *ct = r->content_type;
	bool nd;
	if (ct && (!strcmp(ct, "application/x-ndjson") || !strcmp(ct, "application/ndjson")))
		nd = true;
	else if (ct && !strcmp(ct, "application/json"))
		nd = false;
	else
		return req_fail(r, MC_EMEDIA, "send application/x-ndjson or a JSON array (application/json)", NULL, NULL);
	json_t *report = NULL;
	int rc = vitals_ingest_batch(r->who, r->body, r->body_len, nd, &report);
	if (report)
		arena_defer(r->arena, json_free_cb, report);
	switch (rc) {
	case MC_OK:
		return reply_api(rep, r, 200, json_incref(report), NULL);
	case MC_EUNPROC:
		return req_fail(r, rc, "no sample was accepted", NULL, json_incref(report));
	case MC_ERATE:
		reply_header(rep, r, "Retry-After", "1");
		return req_fail(r, rc, "a device in this batch is over its sample rate", NULL, NULL);
	case MC_ETOOBIG:
		return req_fail(r, rc, "too many samples in one batch", NULL, NULL);
	case MC_EINVAL:
		return req_fail(r, rc, nd ? "empty batch" : "the body must be a JSON array of sample objects", NULL, NULL);
	default:
		return rc;
	}
}

static const struct route routes[] = {
	{"POST", "/api/v1/vitals", h_ingest, ROUTE_WRITE | ROUTE_PHI | ROUTE_BODY_ANY, "write:patient_data", 64u << 20,
	 "Ingest vitals samples (NDJSON or JSON array); per-sample errors reported by index"},
	{"POST", "/api/v1/devices", vitals_h_device_create, ROUTE_WRITE | ROUTE_PHI, "write:patient_data", 4096,
	 "Register a monitoring device (FHIR Device), optionally linking a device-role user"},
	{"PUT", "/api/v1/devices/{id}/bind", vitals_h_device_bind, ROUTE_WRITE | ROUTE_PHI, "write:patient_data", 4096,
	 "Bind a device to a patient"},
	{"PUT", "/api/v1/devices/{id}/unbind", vitals_h_device_unbind, ROUTE_WRITE | ROUTE_PHI, "write:patient_data",
	 4096, "Unbind a device from its patient (discharge)"},
	{"GET", "/api/v1/patients/{id}/vitals", vitals_h_query, ROUTE_PHI, "read:patient_data", 0,
	 "A patient's vitals: raw samples or 1m/1h rollups"},
	{"GET", "/api/v1/patients/{id}/vitals/fhir", vitals_h_fhir, ROUTE_PHI | ROUTE_FHIR, "read:patient_data", 0,
	 "A patient's vitals as a Bundle of vital-signs Observations"},
};

const struct route_table vitals_routes = {routes, sizeof(routes) / sizeof(routes[0])};

/* ---- start/stop ---- */

static void set_limits(const struct app *app)
{
	const struct mc_config *c = app ? app->cfg : NULL;
	int64_t days = c && c->vitals_retention_days > 0 ? c->vitals_retention_days : 30;
	vitals_g.retention_ms = days * 86400000;
	vitals_g.rate = c && c->vitals_device_rate > 0 ? (double)c->vitals_device_rate : 50;
	vitals_g.burst = c && c->vitals_device_burst > 0 ? (double)c->vitals_device_burst : 500;
}

int vitals_module_start_with(const struct app *app, struct vstore *vs)
{
	vitals_g.app = app;
	vitals_g.vs = vs;
	vitals_g.owned = false;
	set_limits(app);
	return MC_OK;
}

int vitals_module_start(const struct app *app)
{
	const struct mc_config *c = app->cfg;
	char *url;
	if (c->vitals_db && *c->vitals_db)
		url = mc_strdup(c->vitals_db);
	else if (!strncmp(c->db, "sqlite:", 7)) {
		size_t n = strlen(c->db) + 16;
		url = mc_malloc(n);
		snprintf(url, n, "%s-vitals.db", c->db);
	} else
		url = mc_strdup(c->db);
	struct vstore_config vc = {.retention_days = c->vitals_retention_days > 0 ? c->vitals_retention_days : 30,
				   .background = true};
	struct vstore *vs;
	int rc = vstore_open(url, &vc, &vs);
	free(url);
	if (rc) {
		LOGE("vitals: the vitals store could not be opened", "\"code\":\"%s\"", mc_code_name(rc));
		return rc;
	}
	vitals_module_start_with(app, vs);
	vitals_g.owned = true;
	return MC_OK;
}

void vitals_module_stop(void)
{
	vitals_kafka_stop();   /* before the store closes: it stores what is in hand */
	if (vitals_g.owned)
		vstore_close(vitals_g.vs);
	memset(&vitals_g, 0, sizeof(vitals_g));
	pthread_mutex_lock(&cache_mu);
	cache_clear(&bindings);
	cache_clear(&rates);
	pthread_mutex_unlock(&cache_mu);
}
