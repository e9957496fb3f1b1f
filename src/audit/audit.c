/* audit/audit.c — the hash-chained audit log.
 *
 * hash(n) = SHA-256(hash(n-1) || canon(n)), hash(0) = 32 zero bytes. canon() is a fixed,
 * length-prefixed serialization of every column except the hashes, in column order:
 *   "medcore-audit-v1" | seq i64 | ts_ms i64 | user_id i64 | username s | role s | action s |
 *   resource_type s | resource_id s | patient_id s | outcome i64 | request_id s | client_ip s | reason s
 * where i64 is 8 bytes big-endian and s is one byte 0 (NULL) or 1 followed by a 4-byte big-endian
 * length and the bytes — so NULL and "" differ and no field can bleed into the next.
 * seq numbers are dense (1, 2, 3 ...): a removed record leaves a gap verify detects. Removing the
 * newest records (truncation) is not detectable from the table alone.
 */
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "store/store.h"

#define AUDIT_FIELD_MAX 4096   /* longer strings are cut: the audit log is not a data store */

static void put_i64(crypto_hash_sha256_state *h, int64_t v)
{
	unsigned char b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
	crypto_hash_sha256_update(h, b, 8);
}

static void put_str(crypto_hash_sha256_state *h, const char *s, size_t n)
{
	unsigned char b[5] = {0};
	if (!s) {
		crypto_hash_sha256_update(h, b, 1);
		return;
	}
	b[0] = 1;
	for (int i = 0; i < 4; i++)
		b[1 + i] = (unsigned char)((uint32_t)n >> (24 - 8 * i));
	crypto_hash_sha256_update(h, b, 5);
	crypto_hash_sha256_update(h, (const unsigned char *)s, n);
}

/* A record as stored: strings with explicit lengths. */
struct canon {
	int64_t seq, ts_ms, user_id, outcome;
	const char *s[9];   /* username role action resource_type resource_id patient_id request_id client_ip reason */
	size_t n[9];
};

static void canon_hash(const unsigned char prev[32], const struct canon *c, unsigned char out[32])
{
	static const char tag[] = "medcore-audit-v1";
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, prev, 32);
	crypto_hash_sha256_update(&h, (const unsigned char *)tag, sizeof(tag) - 1);
	put_i64(&h, c->seq);
	put_i64(&h, c->ts_ms);
	put_i64(&h, c->user_id);
	for (int i = 0; i < 6; i++)
		put_str(&h, c->s[i], c->n[i]);
	put_i64(&h, c->outcome);
	for (int i = 6; i < 9; i++)
		put_str(&h, c->s[i], c->n[i]);
	crypto_hash_sha256_final(&h, out);
}

static size_t cut(const char *s)
{
	return s ? strnlen(s, AUDIT_FIELD_MAX) : 0;
}

/* The newest record's hash and the next seq (32 zero bytes and 1 for an empty log). */
static int chain_head(struct store_txn *t, unsigned char prev[32], int64_t *next_seq)
{
	struct store_rows *rows = NULL;
	int rc = store_query(t, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", NULL, 0, &rows);
	if (rc)
		return rc;
	int st = store_rows_next(rows);
	if (st == 1) {
		size_t hl = 0;
		const void *hp = store_rows_blob(rows, 1, &hl);
		if (!hp || hl != 32) {
			long long head = (long long)store_rows_int(rows, 0);
			store_rows_close(rows);
			LOGE("audit: chain head has a malformed hash", "\"seq\":%lld", head);
			return MC_EINTERNAL;
		}
		memcpy(prev, hp, 32);
		*next_seq = store_rows_int(rows, 0) + 1;
	}
	store_rows_close(rows);
	return st < 0 ? -st : MC_OK;
}

#define AUDIT_COLS 15

/* Append r as record seq after the record whose hash is prev; prev becomes r's hash. */
static int chain_insert(struct store_txn *t, const struct audit_rec *r, int64_t seq, unsigned char prev[32])
{
	unsigned char hash[32];
	struct canon c = {.seq = seq, .ts_ms = r->ts_ms ? r->ts_ms : mctime_now_ms(), .user_id = r->user_id,
			  .outcome = r->outcome};
	const char *f[9] = {r->username, r->role, r->action ? r->action : "unknown", r->resource_type,
			    r->resource_id, r->patient_id, r->request_id, r->client_ip, r->reason};
	for (int i = 0; i < 9; i++) {
		c.s[i] = f[i];
		c.n[i] = cut(f[i]);
	}
	canon_hash(prev, &c, hash);
	struct store_arg a[AUDIT_COLS] = {
		SA_INT(c.seq), SA_INT(c.ts_ms), SA_INT(c.user_id),
		f[0] ? SA_TEXTN(f[0], c.n[0]) : SA_NULL(), f[1] ? SA_TEXTN(f[1], c.n[1]) : SA_NULL(),
		f[2] ? SA_TEXTN(f[2], c.n[2]) : SA_NULL(), f[3] ? SA_TEXTN(f[3], c.n[3]) : SA_NULL(),
		f[4] ? SA_TEXTN(f[4], c.n[4]) : SA_NULL(), f[5] ? SA_TEXTN(f[5], c.n[5]) : SA_NULL(),
		SA_INT(c.outcome),
		f[6] ? SA_TEXTN(f[6], c.n[6]) : SA_NULL(), f[7] ? SA_TEXTN(f[7], c.n[7]) : SA_NULL(),
		f[8] ? SA_TEXTN(f[8], c.n[8]) : SA_NULL(),
		SA_BLOB(prev, 32), SA_BLOB(hash, 32),
	};
	int rc = store_exec(t,
			    "INSERT INTO audit(seq, ts_ms, user_id, username, role, action, resource_type, "
			    "resource_id, patient_id, outcome, request_id, client_ip, reason, prev_hash, hash) "
			    "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
			    a, AUDIT_COLS);
	if (rc == MC_OK)
		memcpy(prev, hash, 32);
	return rc;
}

int audit_append(struct store_txn *t, const struct audit_rec *r)
{
	unsigned char prev[32] = {0};
	int64_t seq = 1;
	/* Read inside this unit: correct even when an earlier unit of the batch rolled back. */
	int rc = chain_head(t, prev, &seq);
	return rc ? rc : chain_insert(t, r, seq, prev);
}

/* ---- async: copies queued per store, appended in batches ----
 *
 * At tens of thousands of audited reads a second, one writer unit per record would spend the
 * writer on savepoints and wake-ups. Records are queued per store instead, and at most one drain
 * unit per store that has not yet taken its records is queued to the writer at a time: it appends
 * everything pending when it runs (up to ASYNC_BATCH), so the batch grows with the load, reading
 * the chain head once per batch. A record is durable with the writer's
 * next commit after its drain unit runs; a crash before that loses only read-audit records that
 * were never acknowledged as durable to anyone. */

#define ASYNC_BATCH 4096

struct async_rec {
	struct async_rec *next;
	struct audit_rec r;
	char text[];   /* the strings, NUL-separated */
};

struct async_queue {
	struct async_queue *next;
	struct store *s;
	struct async_rec *head, *tail;
	bool scheduled;              /* a drain unit is queued or running */
};

static pthread_mutex_t async_mu = PTHREAD_MUTEX_INITIALIZER;
static struct async_queue *async_queues;

/* under async_mu */
static struct async_queue *queue_of(struct store *s)
{
	for (struct async_queue *q = async_queues; q; q = q->next)
		if (q->s == s)
			return q;
	struct async_queue *q = mc_calloc(1, sizeof(*q));
	q->s = s;
	q->next = async_queues;
	async_queues = q;
	return q;
}

static void free_recs(struct async_rec *r)
{
	for (struct async_rec *n; r; r = n) {
		n = r->next;
		free(r);
	}
}

/* Append the records of list as seq, seq+1, ... after the record whose hash is prev, reading the
 * chain head once per batch. (A multi-row INSERT was tried and is slower on SQLite: a statement
 * that may fail half-way opens a statement journal, and releasing it inside the writer's per-unit
 * savepoint cost more than the statements it saved.) */
static int chain_insert_all(struct store_txn *t, const struct async_rec *list, int64_t seq, unsigned char prev[32])
{
	for (const struct async_rec *rec = list; rec; rec = rec->next, seq++) {
		int rc = chain_insert(t, &rec->r, seq, prev);
		if (rc)
			return rc;
	}
	return MC_OK;
}

/* The drain unit's argument: the records it took, for the done callback to free. */
struct drain {
	struct async_queue *q;
	struct async_rec *taken;
	bool ran;                    /* drain_unit ran (took the records, cleared q->scheduled) */
};

static void schedule_locked(struct async_queue *q);

static int drain_unit(struct store_txn *t, void *arg)
{
	struct drain *d = arg;
	pthread_mutex_lock(&async_mu);
	struct async_rec *head = d->q->head, *last = NULL;
	size_t n = 0;
	for (struct async_rec *r = head; r && n < ASYNC_BATCH; r = r->next, n++)
		last = r;
	if (last) {
		d->q->head = last->next;
		if (!d->q->head)
			d->q->tail = NULL;
		last->next = NULL;
	}
	d->taken = last ? head : NULL;
	d->ran = true;
	/* From here a record appended is not in this unit: let it schedule the next one now, while
	 * the store still takes writes (a reschedule from drain_done could come after store_close
	 * began, and those records would be lost). More than a batch pending: queue the next unit at
	 * once (the writer thread never waits for queue space). */
	d->q->scheduled = false;
	schedule_locked(d->q);
	pthread_mutex_unlock(&async_mu);
	if (!d->taken)
		return MC_OK;
	/* The chain head is read once per batch, inside this unit (the same rule as audit_append:
	 * correct even when an earlier unit of the writer's batch rolled back); every record then
	 * extends the chain in memory. The writer runs one unit at a time, so nothing else appends
	 * between these records. */
	unsigned char prev[32] = {0};
	int64_t seq = 1;
	int rc = chain_head(t, prev, &seq);
	return rc ? rc : chain_insert_all(t, d->taken, seq, prev);
}

static void drain_done(void *arg, int rc)
{
	struct drain *d = arg;
	if (rc)
		LOGE("audit: queued records failed", "\"code\":\"%s\"", mc_code_name(rc));
	free_recs(d->taken);
	if (!d->ran) {
		/* the writer failed the unit without running it (BEGIN failed): hand on the queue */
		pthread_mutex_lock(&async_mu);
		d->q->scheduled = false;
		schedule_locked(d->q);
		pthread_mutex_unlock(&async_mu);
	}
	free(d);
}

/* under async_mu. store_write_async never runs the unit inline, so holding the lock is safe. */
static void schedule_locked(struct async_queue *q)
{
	if (q->scheduled || !q->head)
		return;
	struct drain *d = mc_calloc(1, sizeof(*d));
	d->q = q;
	if (store_write_async(q->s, drain_unit, d, drain_done) != MC_OK) {
		LOGE("audit: records could not be queued (store closing)", "%s", "");
		free_recs(q->head);
		q->head = q->tail = NULL;
		free(d);
		return;
	}
	q->scheduled = true;
}

int audit_append_async(struct store *s, const struct audit_rec *r)
{
	const char *f[9] = {r->username, r->role, r->action, r->resource_type, r->resource_id,
			    r->patient_id, r->request_id, r->client_ip, r->reason};
	size_t total = 0;
	for (int i = 0; i < 9; i++)
		total += f[i] ? cut(f[i]) + 1 : 0;
	struct async_rec *c = mc_malloc(sizeof(*c) + total + 1);
	c->next = NULL;
	c->r = *r;
	if (!c->r.ts_ms)
		c->r.ts_ms = mctime_now_ms();   /* the time of the event, not of the commit */
	const char **dst[9] = {&c->r.username, &c->r.role, &c->r.action, &c->r.resource_type, &c->r.resource_id,
			       &c->r.patient_id, &c->r.request_id, &c->r.client_ip, &c->r.reason};
	char *p = c->text;
	for (int i = 0; i < 9; i++) {
		if (!f[i]) {
			*dst[i] = NULL;
			continue;
		}
		size_t n = cut(f[i]);
		memcpy(p, f[i], n);
		p[n] = '\0';
		*dst[i] = p;
		p += n + 1;
	}
	pthread_mutex_lock(&async_mu);
	struct async_queue *q = queue_of(s);
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	schedule_locked(q);
	bool queued = q->head != NULL;
	pthread_mutex_unlock(&async_mu);
	return queued ? MC_OK : MC_EUNAVAIL;
}

void audit_async_forget(struct store *s)
{
	pthread_mutex_lock(&async_mu);
	for (struct async_queue **pq = &async_queues; *pq; pq = &(*pq)->next) {
		struct async_queue *q = *pq;
		if (q->s != s)
			continue;
		*pq = q->next;
		free_recs(q->head);
		free(q);
		break;
	}
	pthread_mutex_unlock(&async_mu);
}

/* ---- verify ---- */

struct verify {
	int64_t checked, bad_seq;
	char why[64];
	int bad;
};

static int verify_unit(struct store_txn *t, void *arg)
{
	struct verify *v = arg;
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT seq, ts_ms, user_id, username, role, action, resource_type, resource_id, patient_id, "
			     "outcome, request_id, client_ip, reason, prev_hash, hash FROM audit ORDER BY seq",
			     NULL, 0, &rows);
	if (rc)
		return rc;
	unsigned char prev[32] = {0}, want[32];
	int64_t expect = 1;
	int st;
	while ((st = store_rows_next(rows)) == 1) {
		struct canon c = {.seq = store_rows_int(rows, 0), .ts_ms = store_rows_int(rows, 1),
				  .user_id = store_rows_int(rows, 2), .outcome = store_rows_int(rows, 9)};
		static const int cols[9] = {3, 4, 5, 6, 7, 8, 10, 11, 12};
		for (int i = 0; i < 9; i++) {
			if (store_rows_null(rows, cols[i])) {
				c.s[i] = NULL;
				c.n[i] = 0;
			} else {
				c.s[i] = store_rows_text(rows, cols[i]);
				c.n[i] = c.s[i] ? strlen(c.s[i]) : 0;
			}
		}
		size_t pl = 0, hl = 0;
		const void *ph = store_rows_blob(rows, 13, &pl);
		const void *hh = store_rows_blob(rows, 14, &hl);
		const char *why = NULL;
		int64_t at = c.seq;
		if (c.seq != expect) {
			why = c.seq > expect ? "record missing (gap in sequence)" : "sequence out of order";
			at = c.seq > expect ? expect : c.seq;
		} else if (!ph || pl != 32 || sodium_memcmp(ph, prev, 32)) {
			why = "prev_hash does not match the previous record";
		} else {
			canon_hash(prev, &c, want);
			if (!hh || hl != 32 || sodium_memcmp(hh, want, 32))
				why = "hash mismatch (record altered)";
		}
		if (why) {
			v->bad = 1;
			v->bad_seq = at;
			snprintf(v->why, sizeof(v->why), "%s", why);
			break;
		}
		memcpy(prev, hh, 32);
		expect++;
		v->checked++;
	}
	store_rows_close(rows);
	return st < 0 ? -st : MC_OK;
}

int audit_verify(struct store *s, int64_t *checked, int64_t *bad_seq, char *why, size_t whysz)
{
	struct verify v = {0};
	int rc = store_read(s, verify_unit, &v);
	if (checked)
		*checked = v.checked;
	if (rc)
		return rc;
	if (v.bad) {
		if (bad_seq)
			*bad_seq = v.bad_seq;
		if (why && whysz)
			snprintf(why, whysz, "%s", v.why);
		return MC_ECONFLICT;
	}
	return MC_OK;
}
