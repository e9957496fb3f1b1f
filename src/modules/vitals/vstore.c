/* modules/vitals/vstore.c — time-chunked vitals store (contract and design in vstore.h). */
#include "modules/vitals/vstore.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "store/store.h"

#define MINUTE_MS 60000
#define GRACE_MS 10000                 /* a part stays open this long after its minute ends */
#define CHECKPOINT_DEFAULT_MS 5000
#define LOG_BYTES_CHECKPOINT (32u << 20) /* log bytes that trigger an early checkpoint */
#define RETENTION_EVERY_MS (3600 * 1000)
#define SERIES_BUCKETS_MIN 1024

struct part {
	int64_t minute, seq;
	uint8_t *data;
	size_t len, cap;
	uint32_t n;
	float vmin, vmax;
	double sum;
	int64_t t_first, t_last, prev_ts;
	bool dirty, sealed;
};

struct series {
	struct series *next;
	uint64_t hash;
	enum vitals_param param;
	char patient[65];
	struct part **parts;   /* open parts, in no particular order */
	size_t nparts, capparts;
};

struct vstore {
	struct store *st;
	struct vstore_config cfg;
	pthread_mutex_t mu;            /* readers vs the writer thread's mutations */
	struct series **buckets;
	size_t nbuckets, nseries, nparts;
	int64_t next_log_id;           /* writer thread only */
	_Atomic uint64_t log_bytes;    /* written since the last checkpoint */
	_Atomic uint64_t samples, batches, checkpoints, parts_written, replayed;
	/* background thread */
	pthread_t thr;
	bool thr_started, stopping;
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
};

/* ---- codec ---- */

static size_t put_varint(uint8_t *o, uint64_t v)
{
	size_t i = 0;
	while (v >= 0x80) {
		o[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	o[i++] = (uint8_t)v;
	return i;
}

static int get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return MC_EINVAL;
		uint8_t b = p[(*pos)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return MC_OK;
		}
	}
	return MC_EINVAL;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

static void put_f32(uint8_t *o, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	o[0] = (uint8_t)u;
	o[1] = (uint8_t)(u >> 8);
	o[2] = (uint8_t)(u >> 16);
	o[3] = (uint8_t)(u >> 24);
}

static float get_f32(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

size_t vstore_codec_put(uint8_t *out, int64_t prev_ts, int64_t ts, float value)
{
	size_t k = put_varint(out, zigzag(ts - prev_ts));
	put_f32(out + k, value);
	return k + 4;
}

int vstore_codec_decode(const uint8_t *p, size_t len, int64_t base_ts, size_t n, struct vstore_point *out)
{
	size_t pos = 0;
	int64_t ts = base_ts;
	for (size_t i = 0; i < n; i++) {
		uint64_t z;
		if (get_varint(p, len, &pos, &z) || len - pos < 4)
			return MC_EINVAL;
		ts += unzigzag(z);
		out[i].ts_ms = ts;
		out[i].value = get_f32(p + pos);
		pos += 4;
	}
	return pos == len ? MC_OK : MC_EINVAL;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- series map (mutations on the writer thread under mu) ---- */

static uint64_t series_hash(const char *patient, enum vitals_param p)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *c = (const unsigned char *)patient; *c; c++)
		h = (h ^ *c) * 1099511628211ull;
	return (h ^ (uint64_t)p) * 1099511628211ull;
}

static struct series *series_find(struct vstore *v, const char *patient, enum vitals_param p, uint64_t h)
{
	for (struct series *s = v->buckets[h & (v->nbuckets - 1)]; s; s = s->next)
		if (s->hash == h && s->param == p && !strcmp(s->patient, patient))
			return s;
	return NULL;
}

static void series_grow(struct vstore *v)
{
	size_t nb = v->nbuckets * 2;
	struct series **b = mc_calloc(nb, sizeof(*b));
	for (size_t i = 0; i < v->nbuckets; i++) {
		struct series *s = v->buckets[i];
		while (s) {
			struct series *nx = s->next;
			s->next = b[s->hash & (nb - 1)];
			b[s->hash & (nb - 1)] = s;
			s = nx;
		}
	}
	free(v->buckets);
	v->buckets = b;
	v->nbuckets = nb;
}

static struct series *series_get(struct vstore *v, const char *patient, enum vitals_param p)
{
	uint64_t h = series_hash(patient, p);
	struct series *s = series_find(v, patient, p, h);
	if (s)
		return s;
	if (v->nseries >= v->nbuckets)
		series_grow(v);
	s = mc_calloc(1, sizeof(*s));
	s->hash = h;
	s->param = p;
	snprintf(s->patient, sizeof(s->patient), "%s", patient);
	s->next = v->buckets[h & (v->nbuckets - 1)];
	v->buckets[h & (v->nbuckets - 1)] = s;
	v->nseries++;
	return s;
}

static void part_free(struct part *pt)
{
	if (pt) {
		free(pt->data);
		free(pt);
	}
}

/* Next free seq of (series, minute): above every part in memory and every stored row. */
static int next_seq(struct store_txn *t, const struct series *s, int64_t minute, int64_t *out)
{
	int64_t best = -1;
	for (size_t i = 0; i < s->nparts; i++)
		if (s->parts[i]->minute == minute && s->parts[i]->seq > best)
			best = s->parts[i]->seq;
	if (best < 0) {
		struct store_arg a[3] = {SA_TEXT(s->patient), SA_TEXT(vitals_param_loinc(s->param)), SA_INT(minute)};
		int64_t m = -1;
		int rc = store_query_int(t,
					 "SELECT COALESCE(MAX(seq), -1) FROM vitals_chunk WHERE patient_id = $1 AND code = $2 "
					 "AND minute = $3",
					 a, 3, &m);
		if (rc && rc != MC_ENOTFOUND)
			return rc;
		best = m;
	}
	*out = best + 1;
	return MC_OK;
}

static int part_for(struct vstore *v, struct store_txn *t, struct series *s, int64_t minute, struct part **out)
{
	for (size_t i = 0; i < s->nparts; i++) {
		struct part *pt = s->parts[i];
		if (pt->minute == minute && !pt->sealed) {
			*out = pt;
			return MC_OK;
		}
	}
	int64_t seq;
	int rc = next_seq(t, s, minute, &seq);
	if (rc)
		return rc;
	struct part *pt = mc_calloc(1, sizeof(*pt));
	pt->minute = minute;
	pt->seq = seq;
	pt->prev_ts = minute * MINUTE_MS;
	if (s->nparts == s->capparts) {
		s->capparts = s->capparts ? s->capparts * 2 : 2;
		s->parts = mc_realloc(s->parts, s->capparts * sizeof(*s->parts));
	}
	s->parts[s->nparts++] = pt;
	v->nparts++;
	*out = pt;
	return MC_OK;
}

static void part_add(struct part *pt, int64_t ts, float val)
{
	if (pt->cap - pt->len < 16) {
		pt->cap = pt->cap ? pt->cap * 2 : 64;
		pt->data = mc_realloc(pt->data, pt->cap);
	}
	pt->len += vstore_codec_put(pt->data + pt->len, pt->prev_ts, ts, val);
	pt->prev_ts = ts;
	if (!pt->n) {
		pt->vmin = pt->vmax = val;
		pt->t_first = pt->t_last = ts;
	} else {
		if (val < pt->vmin)
			pt->vmin = val;
		if (val > pt->vmax)
			pt->vmax = val;
		if (ts < pt->t_first)
			pt->t_first = ts;
		if (ts > pt->t_last)
			pt->t_last = ts;
	}
	pt->sum += val;
	pt->n++;
	pt->dirty = true;
	if (pt->n >= VSTORE_PART_MAX)
		pt->sealed = true;
}

/* Writer thread: append samples to the open parts. */
static int apply(struct vstore *v, struct store_txn *t, const struct vitals_sample *s, size_t n)
{
	int rc = MC_OK;
	pthread_mutex_lock(&v->mu);
	struct series *last = NULL;
	for (size_t i = 0; i < n && !rc; i++) {
		struct series *se = last;
		if (!se || se->param != s[i].param || strcmp(se->patient, s[i].patient_id))
			se = series_get(v, s[i].patient_id, s[i].param);
		last = se;
		struct part *pt;
		rc = part_for(v, t, se, floor_div(s[i].ts_ms, MINUTE_MS), &pt);
		if (!rc)
			part_add(pt, s[i].ts_ms, (float)s[i].value);
	}
	pthread_mutex_unlock(&v->mu);
	return rc;
}

/* ---- the log record of one batch ---- */

struct logrec {
	uint8_t *p;
	size_t len, cap;
};

static void lr_need(struct logrec *r, size_t k)
{
	if (r->cap - r->len < k) {
		while (r->cap - r->len < k)
			r->cap = r->cap ? r->cap * 2 : 4096;
		r->p = mc_realloc(r->p, r->cap);
	}
}

/* npatients, {len, bytes}..., nsamples, {patient index, param, zigzag ts delta, f32}... The
 * patient dictionary is searched from the previous sample's index: batches are grouped. */
static void log_encode(const struct vitals_sample *s, size_t n, struct logrec *r)
{
	uint32_t *idx = mc_malloc(n * sizeof(*idx));
	const char **names = mc_malloc(n * sizeof(*names));
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = np;
		if (i && !strcmp(names[idx[i - 1]], s[i].patient_id))
			k = idx[i - 1];
		else
			for (k = 0; k < np && strcmp(names[k], s[i].patient_id); k++)
				;
		if (k == np)
			names[np++] = s[i].patient_id;
		idx[i] = (uint32_t)k;
	}
	lr_need(r, 10);
	r->len += put_varint(r->p + r->len, np);
	for (size_t k = 0; k < np; k++) {
		size_t l = strlen(names[k]);
		lr_need(r, l + 1);
		r->p[r->len++] = (uint8_t)l;
		memcpy(r->p + r->len, names[k], l);
		r->len += l;
	}
	lr_need(r, 10);
	r->len += put_varint(r->p + r->len, n);
	int64_t prev = 0;
	for (size_t i = 0; i < n; i++) {
		lr_need(r, 32);
		r->len += put_varint(r->p + r->len, idx[i]);
		r->p[r->len++] = (uint8_t)s[i].param;
		r->len += vstore_codec_put(r->p + r->len, prev, s[i].ts_ms, (float)s[i].value);
		prev = s[i].ts_ms;
	}
	free(idx);
	free(names);
}

/* Decode one log record into *out (malloc'd). */
static int log_decode(const uint8_t *p, size_t len, struct vitals_sample **out, size_t *nout)
{
	size_t pos = 0;
	uint64_t np, n;
	*out = NULL;
	*nout = 0;
	if (get_varint(p, len, &pos, &np) || np > VSTORE_BATCH_MAX)
		return MC_EINVAL;
	char(*names)[65] = mc_calloc(np ? np : 1, sizeof(*names));
	int rc = MC_OK;
	for (uint64_t k = 0; k < np && !rc; k++) {
		if (pos >= len || p[pos] > 64 || len - pos - 1 < p[pos]) {
			rc = MC_EINVAL;
			break;
		}
		memcpy(names[k], p + pos + 1, p[pos]);
		pos += 1 + (size_t)p[pos];
	}
	if (!rc && (get_varint(p, len, &pos, &n) || n > VSTORE_BATCH_MAX))
		rc = MC_EINVAL;
	struct vitals_sample *s = NULL;
	if (!rc) {
		s = mc_calloc(n ? n : 1, sizeof(*s));
		int64_t prev = 0;
		for (uint64_t i = 0; i < n && !rc; i++) {
			uint64_t pi, z;
			if (get_varint(p, len, &pos, &pi) || pi >= np || pos >= len || p[pos] >= VP__COUNT) {
				rc = MC_EINVAL;
				break;
			}
			s[i].param = (enum vitals_param)p[pos++];
			if (get_varint(p, len, &pos, &z) || len - pos < 4) {
				rc = MC_EINVAL;
				break;
			}
			prev += unzigzag(z);
			s[i].ts_ms = prev;
			s[i].value = get_f32(p + pos);
			pos += 4;
			memcpy(s[i].patient_id, names[pi], sizeof(s[i].patient_id));
		}
	}
	free(names);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	*nout = n;
	return MC_OK;
}

/* ---- units ---- */

struct append_work {
	struct vstore *v;
	const struct vitals_sample *s;
	size_t n;
	struct logrec rec;
	const struct vstore_srcpos *pos;
	size_t npos;
};

static int srcpos_put(struct store_txn *t, const struct vstore_srcpos *p)
{
	struct store_arg a[3] = {SA_TEXT(p->source), SA_INT(p->partition), SA_INT(p->next_offset)};
	return store_exec(t,
			  "INSERT INTO vitals_source_offset(source, part, next_offset) VALUES($1, $2, $3) "
			  "ON CONFLICT (source, part) DO UPDATE SET next_offset = excluded.next_offset "
			  "WHERE excluded.next_offset > vitals_source_offset.next_offset",
			  a, 3);
}

static int append_unit(struct store_txn *t, void *arg)
{
	struct append_work *w = arg;
	struct vstore *v = w->v;
	int rc = MC_OK;
	for (size_t i = 0; i < w->npos && !rc; i++)
		rc = srcpos_put(t, &w->pos[i]);
	if (rc || !w->n)
		return rc;
	struct store_arg a[2] = {SA_INT(v->next_log_id), SA_BLOB(w->rec.p, w->rec.len)};
	rc = store_exec(t, "INSERT INTO vitals_pending(id, data) VALUES($1, $2)", a, 2);
	if (rc)
		return rc;
	v->next_log_id++;
	return apply(v, t, w->s, w->n);
}

static int write_part(struct store_txn *t, const struct series *s, const struct part *pt)
{
	struct store_arg a[11] = {
		SA_TEXT(s->patient), SA_TEXT(vitals_param_loinc(s->param)), SA_INT(pt->minute), SA_INT(pt->seq),
		SA_INT(pt->n), SA_REAL(pt->vmin), SA_REAL(pt->vmax), SA_REAL(pt->sum), SA_INT(pt->t_first),
		SA_INT(pt->t_last), SA_BLOB(pt->data, pt->len),
	};
	return store_exec(t,
			  "INSERT INTO vitals_chunk(patient_id, code, minute, seq, n, vmin, vmax, vsum, t_first, t_last, data) "
			  "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
			  "ON CONFLICT(patient_id, code, minute, seq) DO UPDATE SET n = excluded.n, vmin = excluded.vmin, "
			  "vmax = excluded.vmax, vsum = excluded.vsum, t_first = excluded.t_first, t_last = excluded.t_last, "
			  "data = excluded.data",
			  a, 11);
}

/* Writer thread: write dirty parts, trim the log, then drop finished parts from memory. Reading
 * parts needs no lock here (only this thread mutates); clearing and freeing does. */
static int checkpoint_unit(struct store_txn *t, void *arg)
{
	struct vstore *v = arg;
	uint64_t written = 0;
	for (size_t b = 0; b < v->nbuckets; b++)
		for (struct series *s = v->buckets[b]; s; s = s->next)
			for (size_t i = 0; i < s->nparts; i++) {
				if (!s->parts[i]->dirty)
					continue;
				int rc = write_part(t, s, s->parts[i]);
				if (rc)
					return rc;
				written++;
			}
	int rc = store_exec(t, "DELETE FROM vitals_pending", NULL, 0);
	if (rc)
		return rc;
	int64_t now = mctime_now_ms();
	pthread_mutex_lock(&v->mu);
	for (size_t b = 0; b < v->nbuckets; b++)
		for (struct series *s = v->buckets[b]; s; s = s->next) {
			size_t k = 0;
			for (size_t i = 0; i < s->nparts; i++) {
				struct part *pt = s->parts[i];
				pt->dirty = false;
				if (pt->sealed || (pt->minute + 1) * MINUTE_MS + GRACE_MS < now) {
					part_free(pt);
					v->nparts--;
				} else {
					s->parts[k++] = pt;
				}
			}
			s->nparts = k;
		}
	pthread_mutex_unlock(&v->mu);
	v->log_bytes = 0;
	v->parts_written += written;
	v->checkpoints++;
	return MC_OK;
}

struct replay_work {
	struct vstore *v;
	uint64_t samples;
};

static int replay_unit(struct store_txn *t, void *arg)
{
	struct replay_work *w = arg;
	struct vstore *v = w->v;
	int64_t maxid = 0;
	int rc = store_query_int(t, "SELECT COALESCE(MAX(id), 0) FROM vitals_pending", NULL, 0, &maxid);
	if (rc)
		return rc;
	v->next_log_id = maxid + 1;
	struct store_rows *rows;
	rc = store_query(t, "SELECT data FROM vitals_pending ORDER BY id", NULL, 0, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		size_t len;
		const uint8_t *p = store_rows_blob(rows, 0, &len);
		struct vitals_sample *s;
		size_t n;
		if (log_decode(p, len, &s, &n)) {
			LOGE("vitals: a log record is corrupt; skipped", "%s", "\"component\":\"vstore\"");
			continue;
		}
		rc = apply(v, t, s, n);
		free(s);
		if (rc) {
			store_rows_close(rows);
			return rc;
		}
		w->samples += n;
	}
	store_rows_close(rows);
	if (step < 0)
		return -step;
	return w->samples ? checkpoint_unit(t, v) : MC_OK;
}

/* ---- schema ---- */

static const char *const schema_sqlite[] = {
	"CREATE TABLE IF NOT EXISTS vitals_chunk (patient_id TEXT NOT NULL, code TEXT NOT NULL, "
	"minute INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL, vmin REAL NOT NULL, vmax REAL NOT NULL, "
	"vsum REAL NOT NULL, t_first INTEGER NOT NULL, t_last INTEGER NOT NULL, data BLOB NOT NULL, "
	"UNIQUE (patient_id, code, minute, seq))",
	"CREATE INDEX IF NOT EXISTS vitals_chunk_minute ON vitals_chunk(minute)",
	"CREATE TABLE IF NOT EXISTS vitals_pending (id INTEGER PRIMARY KEY, data BLOB NOT NULL)",
	("CREATE TABLE IF NOT EXISTS vitals_source_offset (source TEXT NOT NULL, part INTEGER NOT NULL, "
	 "next_offset INTEGER NOT NULL, PRIMARY KEY (source, part))"),
};

static const char *const schema_pg[] = {
	"CREATE TABLE IF NOT EXISTS vitals_chunk (patient_id TEXT NOT NULL, code TEXT NOT NULL, "
	"minute BIGINT NOT NULL, seq BIGINT NOT NULL, n BIGINT NOT NULL, vmin DOUBLE PRECISION NOT NULL, "
	"vmax DOUBLE PRECISION NOT NULL, vsum DOUBLE PRECISION NOT NULL, t_first BIGINT NOT NULL, "
	"t_last BIGINT NOT NULL, data BYTEA NOT NULL, UNIQUE (patient_id, code, minute, seq))",
	"CREATE INDEX IF NOT EXISTS vitals_chunk_minute ON vitals_chunk(minute)",
	"CREATE TABLE IF NOT EXISTS vitals_pending (id BIGINT PRIMARY KEY, data BYTEA NOT NULL)",
	("CREATE TABLE IF NOT EXISTS vitals_source_offset (source TEXT NOT NULL, part INTEGER NOT NULL, "
	 "next_offset BIGINT NOT NULL, PRIMARY KEY (source, part))"),
};

static int schema_unit(struct store_txn *t, void *arg)
{
	const struct store *st = arg;
	bool pg = !strcmp(store_backend_name(st), "postgres");
	const char *const *ddl = pg ? schema_pg : schema_sqlite;
	size_t nddl = pg ? sizeof(schema_pg) / sizeof(schema_pg[0]) : sizeof(schema_sqlite) / sizeof(schema_sqlite[0]);
	for (size_t i = 0; i < nddl; i++) {
		int rc = store_exec(t, ddl[i], NULL, 0);
		if (rc)
			return rc;
	}
	return MC_OK;
}

/* ---- background thread ---- */

static void *bg_main(void *arg)
{
	struct vstore *v = arg;
	int64_t last_ck = mctime_mono_us(), last_ret = 0;
	pthread_mutex_lock(&v->bg_mu);
	while (!v->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 200 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&v->bg_cv, &v->bg_mu, &ts);
		if (v->stopping)
			break;
		int64_t now = mctime_mono_us();
		bool due = (now - last_ck) / 1000 >= v->cfg.checkpoint_ms || v->log_bytes >= LOG_BYTES_CHECKPOINT;
		bool ret_due = !last_ret || (now - last_ret) / 1000 >= RETENTION_EVERY_MS;
		pthread_mutex_unlock(&v->bg_mu);
		if (due) {
			if (vstore_checkpoint(v))
				LOGW("vitals: checkpoint failed; retrying", "%s", "\"component\":\"vstore\"");
			last_ck = now;
		}
		if (ret_due) {
			vstore_retention_run(v, mctime_now_ms(), NULL);
			last_ret = now;
		}
		pthread_mutex_lock(&v->bg_mu);
	}
	pthread_mutex_unlock(&v->bg_mu);
	return NULL;
}

/* ---- public ---- */

int vstore_open(const char *url, const struct vstore_config *cfg, struct vstore **out)
{
	*out = NULL;
	if (!url || !cfg || cfg->retention_days <= 0)
		return MC_EINVAL;
	struct store *st;
	int rc = store_open(url, &st);
	if (rc)
		return rc;
	struct vstore *v = mc_calloc(1, sizeof(*v));
	v->st = st;
	v->cfg = *cfg;
	if (v->cfg.checkpoint_ms <= 0)
		v->cfg.checkpoint_ms = CHECKPOINT_DEFAULT_MS;
	pthread_mutex_init(&v->mu, NULL);
	pthread_mutex_init(&v->bg_mu, NULL);
	pthread_cond_init(&v->bg_cv, NULL);
	v->nbuckets = SERIES_BUCKETS_MIN;
	v->buckets = mc_calloc(v->nbuckets, sizeof(*v->buckets));
	rc = store_write(st, schema_unit, st);
	struct replay_work rw = {.v = v};
	if (!rc)
		rc = store_write(st, replay_unit, &rw);
	if (rc) {
		v->cfg.background = false;
		vstore_close(v);
		return rc;
	}
	v->replayed = rw.samples;
	if (rw.samples)
		LOGI("vitals: log replayed", "\"samples\":%llu", (unsigned long long)rw.samples);
	if (v->cfg.background && pthread_create(&v->thr, NULL, bg_main, v) == 0)
		v->thr_started = true;
	*out = v;
	return MC_OK;
}

struct store *vstore_store(struct vstore *v) { return v ? v->st : NULL; }

void vstore_close(struct vstore *v)
{
	if (!v)
		return;
	if (v->thr_started) {
		pthread_mutex_lock(&v->bg_mu);
		v->stopping = true;
		pthread_cond_signal(&v->bg_cv);
		pthread_mutex_unlock(&v->bg_mu);
		pthread_join(v->thr, NULL);
	}
	if (v->nparts && store_write(v->st, checkpoint_unit, v))
		LOGW("vitals: final checkpoint failed; the log keeps the samples", "%s", "\"component\":\"vstore\"");
	store_close(v->st);
	for (size_t b = 0; b < v->nbuckets; b++) {
		struct series *s = v->buckets[b];
		while (s) {
			struct series *nx = s->next;
			for (size_t i = 0; i < s->nparts; i++)
				part_free(s->parts[i]);
			free(s->parts);
			free(s);
			s = nx;
		}
	}
	free(v->buckets);
	pthread_mutex_destroy(&v->mu);
	pthread_mutex_destroy(&v->bg_mu);
	pthread_cond_destroy(&v->bg_cv);
	free(v);
}

int vstore_append(struct vstore *v, const struct vitals_sample *s, size_t n)
{
	if (!n)
		return MC_EINVAL;
	return vstore_append_at(v, s, n, NULL, 0);
}

#define SRCPOS_MAX 4096

int vstore_append_at(struct vstore *v, const struct vitals_sample *s, size_t n, const struct vstore_srcpos *pos,
		     size_t npos)
{
	if (!v || (n && !s) || (!n && !npos) || n > VSTORE_BATCH_MAX || (npos && !pos) || npos > SRCPOS_MAX)
		return MC_EINVAL;
	for (size_t i = 0; i < n; i++)
		if ((unsigned)s[i].param >= VP__COUNT || !mcid_valid_fhir_id(s[i].patient_id))
			return MC_EINVAL;
	for (size_t i = 0; i < npos; i++)
		if (!pos[i].source[0] || !memchr(pos[i].source, 0, sizeof(pos[i].source)) || pos[i].next_offset < 0)
			return MC_EINVAL;
	struct append_work w = {.v = v, .s = s, .n = n, .pos = pos, .npos = npos};
	if (n)
		log_encode(s, n, &w.rec);
	size_t bytes = w.rec.len;
	int rc = store_write(v->st, append_unit, &w);
	free(w.rec.p);
	if (rc || !n)
		return rc;
	v->samples += n;
	v->batches++;
	uint64_t logged = atomic_fetch_add(&v->log_bytes, bytes) + bytes;
	if (logged >= LOG_BYTES_CHECKPOINT && v->thr_started) {
		pthread_mutex_lock(&v->bg_mu);
		pthread_cond_signal(&v->bg_cv);
		pthread_mutex_unlock(&v->bg_mu);
	}
	return MC_OK;
}

struct srcpos_read {
	const char *source;
	int32_t partition;
	int64_t next;
};

static int srcpos_unit(struct store_txn *t, void *arg)
{
	struct srcpos_read *r = arg;
	struct store_arg a[2] = {SA_TEXT(r->source), SA_INT(r->partition)};
	return store_query_int(t, "SELECT next_offset FROM vitals_source_offset WHERE source = $1 AND part = $2", a, 2,
			       &r->next);
}

int vstore_srcpos_get(struct vstore *v, const char *source, int32_t partition, int64_t *next_offset)
{
	if (!v || !source || !next_offset)
		return MC_EINVAL;
	struct srcpos_read r = {source, partition, 0};
	int rc = store_read(v->st, srcpos_unit, &r);
	if (!rc)
		*next_offset = r.next;
	return rc;
}

int vstore_checkpoint(struct vstore *v)
{
	if (!v)
		return MC_EINVAL;
	/* The checkpoint is one unit on the same writer as ingest: while it runs, ingest waits. Its
	 * duration is what bounds the tail of ingest (and so of alert) latency under load. */
	int64_t t0 = mctime_mono_us();
	int rc = store_write(v->st, checkpoint_unit, v);
	struct metric *m = metrics_histogram("medcore_vitals_checkpoint_seconds", "vitals store checkpoint unit", NULL);
	if (m)
		metrics_observe(m, (double)(mctime_mono_us() - t0) / 1e6);
	return rc;
}

struct retention_work {
	int64_t cutoff_minute, deleted;
};

static int retention_unit(struct store_txn *t, void *arg)
{
	struct retention_work *w = arg;
	struct store_arg a[1] = {SA_INT(w->cutoff_minute)};
	int rc = store_exec(t, "DELETE FROM vitals_chunk WHERE minute < $1", a, 1);
	if (!rc)
		w->deleted = store_changes(t);
	return rc;
}

int vstore_retention_run(struct vstore *v, int64_t now_ms, int64_t *deleted)
{
	if (!v)
		return MC_EINVAL;
	struct retention_work w = {.cutoff_minute = floor_div(now_ms - v->cfg.retention_days * 86400000, MINUTE_MS)};
	int rc = store_write(v->st, retention_unit, &w);
	if (deleted)
		*deleted = rc ? 0 : w.deleted;
	return rc;
}

/* ---- reads ---- */

/* A part as a reader sees it: a copy of a memory part, or a stored row. */
struct rpart {
	int64_t minute, seq, n;
	double vmin, vmax, sum;
	uint8_t *data;   /* malloc'd copy; NULL for rollup reads */
	size_t len;
};

struct rset {
	struct rpart *v;
	size_t n, cap;
};

static void rset_add(struct rset *r, const struct rpart *p)
{
	/* the same part in memory and on disk: keep the larger (parts only grow) */
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].minute == p->minute && r->v[i].seq == p->seq) {
			if (p->n > r->v[i].n) {
				free(r->v[i].data);
				r->v[i] = *p;
			} else {
				free(p->data);
			}
			return;
		}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = mc_realloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = *p;
}

static void rset_free(struct rset *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].data);
	free(r->v);
}

/* The memory parts of the series in [m0, m1], added before the database rows (see vstore.h). */
static size_t mem_parts(struct vstore *v, const char *patient, enum vitals_param p, int64_t m0, int64_t m1,
			bool with_data, struct rset *r)
{
	size_t added = 0;
	pthread_mutex_lock(&v->mu);
	struct series *s = series_find(v, patient, p, series_hash(patient, p));
	for (size_t i = 0; s && i < s->nparts; i++) {
		struct part *pt = s->parts[i];
		if (pt->minute < m0 || pt->minute > m1 || !pt->n)
			continue;
		struct rpart rp = {pt->minute, pt->seq, pt->n, pt->vmin, pt->vmax, pt->sum, NULL, pt->len};
		if (with_data) {
			rp.data = mc_malloc(pt->len ? pt->len : 1);
			memcpy(rp.data, pt->data, pt->len);
		}
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->v = mc_realloc(r->v, r->cap * sizeof(*r->v));
		}
		r->v[r->n++] = rp;
		added++;
	}
	pthread_mutex_unlock(&v->mu);
	return added;
}

struct read_work {
	const char *patient;
	enum vitals_param p;
	int64_t m0, m1;
	bool with_data;
	size_t nmem;
	struct rset *r;
};

static int read_unit(struct store_txn *t, void *arg)
{
	struct read_work *w = arg;
	struct store_arg a[4] = {SA_TEXT(w->patient), SA_TEXT(vitals_param_loinc(w->p)), SA_INT(w->m0), SA_INT(w->m1)};
	struct store_rows *rows;
	int rc = store_query(t,
			     w->with_data ? "SELECT minute, seq, n, vmin, vmax, vsum, data FROM vitals_chunk WHERE "
					    "patient_id = $1 AND code = $2 AND minute >= $3 AND minute <= $4"
					  : "SELECT minute, seq, n, vmin, vmax, vsum FROM vitals_chunk WHERE "
					    "patient_id = $1 AND code = $2 AND minute >= $3 AND minute <= $4",
			     a, 4, &rows);
	if (rc)
		return rc;
	int step;
	while ((step = store_rows_next(rows)) == 1) {
		struct rpart rp = {store_rows_int(rows, 0), store_rows_int(rows, 1), store_rows_int(rows, 2),
				   store_rows_real(rows, 3), store_rows_real(rows, 4), store_rows_real(rows, 5), NULL, 0};
		if (rp.n <= 0 || rp.n > VSTORE_PART_MAX)
			continue;
		if (w->with_data) {
			size_t len;
			const void *d = store_rows_blob(rows, 6, &len);
			rp.data = mc_malloc(len ? len : 1);
			if (len)
				memcpy(rp.data, d, len);
			rp.len = len;
		}
		if (w->nmem)
			rset_add(w->r, &rp);
		else {
			if (w->r->n == w->r->cap) {
				w->r->cap = w->r->cap ? w->r->cap * 2 : 64;
				w->r->v = mc_realloc(w->r->v, w->r->cap * sizeof(*w->r->v));
			}
			w->r->v[w->r->n++] = rp;
		}
	}
	store_rows_close(rows);
	return step < 0 ? -step : MC_OK;
}

static int load_parts(struct vstore *v, const char *patient, enum vitals_param p, int64_t from_ms, int64_t to_ms,
		      bool with_data, struct rset *r)
{
	struct read_work w = {patient, p, floor_div(from_ms, MINUTE_MS), floor_div(to_ms, MINUTE_MS), with_data, 0, r};
	w.nmem = mem_parts(v, patient, p, w.m0, w.m1, with_data, r);
	return store_read(v->st, read_unit, &w);
}

static int point_cmp(const void *a, const void *b)
{
	const struct vstore_point *x = a, *y = b;
	return (x->ts_ms > y->ts_ms) - (x->ts_ms < y->ts_ms);
}

int vstore_range(struct vstore *v, const char *patient, enum vitals_param p, int64_t from_ms, int64_t to_ms,
		 size_t max, struct vstore_point **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!v || !patient || (unsigned)p >= VP__COUNT || from_ms > to_ms)
		return MC_EINVAL;
	if (!max || max > VSTORE_RANGE_MAX)
		max = VSTORE_RANGE_MAX;
	struct rset r = {0};
	int rc = load_parts(v, patient, p, from_ms, to_ms, true, &r);
	size_t total = 0;
	for (size_t i = 0; !rc && i < r.n; i++)
		total += (size_t)r.v[i].n;
	struct vstore_point *pts = NULL;
	size_t k = 0;
	if (!rc && total) {
		pts = mc_malloc(total * sizeof(*pts));
		for (size_t i = 0; i < r.n && !rc; i++) {
			if (vstore_codec_decode(r.v[i].data, r.v[i].len, r.v[i].minute * MINUTE_MS, (size_t)r.v[i].n,
						pts + k)) {
				LOGE("vitals: a stored part is corrupt; skipped", "%s", "\"component\":\"vstore\"");
				continue;
			}
			size_t base = k;
			for (size_t j = 0; j < (size_t)r.v[i].n; j++)
				if (pts[base + j].ts_ms >= from_ms && pts[base + j].ts_ms <= to_ms)
					pts[k++] = pts[base + j];
		}
	}
	rset_free(&r);
	if (!rc && k > max)
		rc = MC_ETOOBIG;
	if (rc) {
		free(pts);
		return rc;
	}
	bool sorted = true;
	for (size_t i = 1; i < k && sorted; i++)
		sorted = pts[i - 1].ts_ms <= pts[i].ts_ms;
	if (!sorted)
		qsort(pts, k, sizeof(*pts), point_cmp);
	if (!k) {
		free(pts);
		pts = NULL;
	}
	*out = pts;
	*n = k;
	return MC_OK;
}

static int rpart_cmp(const void *a, const void *b)
{
	const struct rpart *x = a, *y = b;
	return (x->minute > y->minute) - (x->minute < y->minute);
}

int vstore_rollup(struct vstore *v, const char *patient, enum vitals_param p, int64_t from_ms, int64_t to_ms,
		  int64_t bucket_ms, size_t max, struct vstore_bucket **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!v || !patient || (unsigned)p >= VP__COUNT || from_ms > to_ms || bucket_ms < MINUTE_MS ||
	    bucket_ms % MINUTE_MS)
		return MC_EINVAL;
	if (!max || max > VSTORE_RANGE_MAX)
		max = VSTORE_RANGE_MAX;
	struct rset r = {0};
	/* minutes whose start lies in [from, to] */
	int64_t f = floor_div(from_ms + MINUTE_MS - 1, MINUTE_MS) * MINUTE_MS;
	int rc = f <= to_ms ? load_parts(v, patient, p, f, to_ms, false, &r) : MC_OK;
	if (rc) {
		rset_free(&r);
		return rc;
	}
	if (r.n)   /* qsort(NULL, 0) is undefined */
		qsort(r.v, r.n, sizeof(*r.v), rpart_cmp);
	struct vstore_bucket *b = NULL;
	size_t k = 0, cap = 0;
	for (size_t i = 0; i < r.n; i++) {
		int64_t t0 = floor_div(r.v[i].minute * MINUTE_MS, bucket_ms) * bucket_ms;
		if (!k || b[k - 1].t0_ms != t0) {
			if (k == max) {
				rc = MC_ETOOBIG;
				break;
			}
			if (k == cap) {
				cap = cap ? cap * 2 : 64;
				b = mc_realloc(b, cap * sizeof(*b));
			}
			b[k++] = (struct vstore_bucket){t0, 0, r.v[i].vmin, r.v[i].vmax, 0};
		}
		struct vstore_bucket *x = &b[k - 1];
		x->count += r.v[i].n;
		x->mean += r.v[i].sum;   /* a sum until the end */
		if (r.v[i].vmin < x->min)
			x->min = r.v[i].vmin;
		if (r.v[i].vmax > x->max)
			x->max = r.v[i].vmax;
	}
	rset_free(&r);
	if (rc) {
		free(b);
		return rc;
	}
	for (size_t i = 0; i < k; i++)
		b[i].mean = b[i].count ? b[i].mean / (double)b[i].count : 0;
	*out = b;
	*n = k;
	return MC_OK;
}

void vstore_stats(struct vstore *v, struct vstore_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!v)
		return;
	out->samples = v->samples;
	out->batches = v->batches;
	out->checkpoints = v->checkpoints;
	out->parts_written = v->parts_written;
	out->replayed = v->replayed;
	pthread_mutex_lock(&v->mu);
	out->series = v->nseries;
	out->parts_in_memory = v->nparts;
	pthread_mutex_unlock(&v->mu);
}
