/* events/outbox.c — the outbox (events_emit), the event envelope, checkpoints and one delivery
 * round, which the dispatcher threads, events_catch_up and events_replay share (events/events.h).
 *
 * A delivery round reads up to EVENTS_BATCH_MAX events after the consumer's checkpoint in one read
 * snapshot, hands them to the consumer in order, and advances the checkpoint with a compare-and-set
 * (the stored value must still be the one the round started from; otherwise MC_ECONFLICT and the
 * caller reloads). EVENTS_TXN consumers run inside the write unit that also moves the checkpoint;
 * when the consumer fails at event k, that unit is rolled back, and the k events before it are
 * re-applied with their checkpoint in a second unit (their effects are idempotent by contract).
 * SQL is standard: it runs unchanged on SQLite and PostgreSQL.
 */
#include "events/events_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "store/store.h"

#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- emit ------------------------------------------------------------------------------------ */

static bool name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int events_emit(struct store_txn *t, const char *name, const char *patient_id, const char *resource_type,
		const char *resource_id, json_t *payload)
{
	int rc = MC_EINVAL;
	struct buf js = BUF_INIT, key = BUF_INIT;
	if (!payload)
		payload = json_object();
	if (!json_is_object(payload) || !name_ok(name, EVENTS_NAME_MAX))
		goto out;
	if (patient_id && !patient_id[0])
		patient_id = NULL;
	if ((patient_id && !name_ok(patient_id, EVENTS_ID_MAX)) ||
	    (resource_type && !name_ok(resource_type, EVENTS_ID_MAX)) ||
	    (resource_id && !name_ok(resource_id, EVENTS_ID_MAX)))
		goto out;
	if (resource_type && !json_object_get(payload, "resourceType"))
		json_object_set_new(payload, "resourceType", json_string(resource_type));
	if (resource_id && !json_object_get(payload, "resourceId"))
		json_object_set_new(payload, "resourceId", json_string(resource_id));
	buf_init(&js, EVENTS_PAYLOAD_MAX);
	rc = mcjson_dump(payload, &js);
	if (rc) {
		rc = MC_EINVAL;   /* too big */
		goto out;
	}
	if (patient_id)
		buf_puts(&key, patient_id);
	else if (resource_type && resource_id)
		buf_printf(&key, "%s/%s", resource_type, resource_id);
	else
		buf_puts(&key, name);
	struct store_arg a[] = {SA_TEXT(name), SA_TEXT(patient_id), SA_TEXTN(key.data, key.len),
				SA_TEXTN(js.data, js.len), SA_INT(mctime_now_ms())};
	rc = store_exec(t, "INSERT INTO outbox (name, patient_id, key, payload, created_ms) VALUES ($1, $2, $3, $4, $5)",
			a, NARGS(a));
out:
	if (rc == MC_EINVAL)
		LOGW("events: event rejected", "\"event_name_len\":%zu", name ? strlen(name) : 0);
	json_decref(payload);
	buf_release(&js);
	buf_release(&key);
	return rc;
}

/* ---- envelope -------------------------------------------------------------------------------- */

int events_event_to_json(const struct events_event *ev, struct buf *out)
{
	int rc = buf_printf(out, "{\"seq\":%lld,\"name\":", (long long)ev->seq);
	rc = rc ? rc : buf_json_str(out, ev->name);
	rc = rc ? rc : buf_puts(out, ",\"patient_id\":");
	if (!rc && ev->patient_id)
		rc = buf_json_str(out, ev->patient_id);
	else if (!rc)
		rc = buf_puts(out, "null");
	rc = rc ? rc : buf_puts(out, ",\"key\":");
	rc = rc ? rc : buf_json_str(out, ev->key ? ev->key : "");
	rc = rc ? rc : buf_printf(out, ",\"created_ms\":%lld,\"payload\":", (long long)ev->created_ms);
	/* The payload is stored JSON text written by events_emit: embedded as is. */
	rc = rc ? rc : buf_puts(out, ev->payload && ev->payload[0] ? ev->payload : "{}");
	rc = rc ? rc : buf_putc(out, '}');
	return rc;
}

int events_event_parse(const char *text, size_t len, struct events_event *ev, json_t **holder)
{
	memset(ev, 0, sizeof(*ev));
	*holder = NULL;
	json_t *j = NULL;
	if (!text || len > (size_t)EVENTS_PAYLOAD_MAX * 2 || mcjson_parse(text, len, &j, NULL))
		return MC_EINVAL;
	json_t *seq = json_object_get(j, "seq"), *cm = json_object_get(j, "created_ms");
	json_t *pid = json_object_get(j, "patient_id"), *pl = json_object_get(j, "payload");
	const char *name = mcjson_str(j, "name"), *key = mcjson_str(j, "key");
	if (!json_is_object(j) || !json_is_integer(seq) || json_integer_value(seq) <= 0 || !json_is_integer(cm) ||
	    !name_ok(name, EVENTS_NAME_MAX) || !key || !json_is_object(pl) || (pid && !json_is_null(pid) && !json_is_string(pid))) {
		json_decref(j);
		return MC_EINVAL;
	}
	/* The holder keeps the envelope and the payload's text alive together. */
	char *pls = mcjson_dumps(pl);
	json_t *text_j = json_string(pls);
	free(pls);
	json_t *h = json_array();
	json_array_append_new(h, j);
	json_array_append_new(h, text_j);
	ev->seq = json_integer_value(seq);
	ev->created_ms = json_integer_value(cm);
	ev->name = name;
	ev->key = key;
	ev->patient_id = json_is_string(pid) ? json_string_value(pid) : NULL;
	ev->payload = json_string_value(text_j);
	*holder = h;
	return MC_OK;
}

int events_consumer_check(const struct events_consumer *c)
{
	if (!c || !c->name || (!c->fn && !c->batch) || (c->batch && (c->flags & EVENTS_TXN)))
		return MC_EINVAL;
	size_t n = strlen(c->name);
	if (n == 0 || n > EVENTS_CONSUMER_NAME_MAX)
		return MC_EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = c->name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
			return MC_EINVAL;
	}
	return MC_OK;
}

/* ---- batches --------------------------------------------------------------------------------- */

void ev_batch_clear(struct ev_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free((char *)b->ev[i].name);
		free((char *)b->ev[i].patient_id);
		free((char *)b->ev[i].key);
		free((char *)b->ev[i].payload);
	}
	b->n = 0;
}

void ev_batch_release(struct ev_batch *b)
{
	ev_batch_clear(b);
	free(b->ev);
	b->ev = NULL;
	b->cap = 0;
}

struct load_ctx {
	struct ev_batch *b;
	int64_t after;
	size_t max;
	int64_t head;
};

static char *dup_col(struct store_rows *r, int col)
{
	const char *v = store_rows_null(r, col) ? NULL : store_rows_text(r, col);
	return v ? mc_strdup(v) : NULL;
}

static int unit_load(struct store_txn *t, void *arg)
{
	struct load_ctx *c = arg;
	struct ev_batch *b = c->b;
	struct store_arg a[] = {SA_INT(c->after), SA_INT((int64_t)c->max)};
	struct store_rows *r;
	int rc = store_query(t,
			     "SELECT seq, name, patient_id, key, payload, created_ms FROM outbox WHERE seq > $1 "
			     "ORDER BY seq LIMIT $2",
			     a, NARGS(a), &r);
	if (rc)
		return rc;
	int st;
	while ((st = store_rows_next(r)) == 1) {
		if (b->n == b->cap) {
			b->cap = b->cap ? b->cap * 2 : 64;
			b->ev = mc_realloc(b->ev, b->cap * sizeof(*b->ev));
		}
		struct events_event *e = &b->ev[b->n++];
		memset(e, 0, sizeof(*e));
		e->seq = store_rows_int(r, 0);
		e->name = dup_col(r, 1);
		e->patient_id = dup_col(r, 2);
		e->key = dup_col(r, 3);
		e->payload = dup_col(r, 4);
		e->created_ms = store_rows_int(r, 5);
		if (!e->name)
			e->name = mc_strdup("");
		if (!e->key)
			e->key = mc_strdup("");
		if (!e->payload)
			e->payload = mc_strdup("{}");
	}
	store_rows_close(r);
	return st < 0 ? -st : MC_OK;
}

int ev_load(struct store *s, int64_t after, size_t max, struct ev_batch *b)
{
	ev_batch_clear(b);
	struct load_ctx c = {b, after, max, 0};
	int rc = store_read(s, unit_load, &c);
	if (rc)
		ev_batch_clear(b);
	return rc;
}

/* ---- checkpoints ----------------------------------------------------------------------------- */

static int unit_head(struct store_txn *t, void *arg)
{
	return store_query_int(t, "SELECT COALESCE(MAX(seq), 0) FROM outbox", NULL, 0, arg);
}

int events_head(struct store *s, int64_t *seq)
{
	*seq = 0;
	return store_read(s, unit_head, seq);
}

struct ckpt_ctx {
	const char *name;
	int64_t seq;
};

static int ckpt_read(struct store_txn *t, const char *name, int64_t *seq)
{
	struct store_arg a = SA_TEXT(name);
	int rc = store_query_int(t, "SELECT seq FROM consumer_offsets WHERE name = $1", &a, 1, seq);
	if (rc == MC_ENOTFOUND) {
		*seq = 0;
		rc = MC_OK;
	}
	return rc;
}

static int unit_ckpt(struct store_txn *t, void *arg)
{
	struct ckpt_ctx *c = arg;
	return ckpt_read(t, c->name, &c->seq);
}

int events_checkpoint(struct store *s, const char *name, int64_t *seq)
{
	struct ckpt_ctx c = {name, 0};
	int rc = store_read(s, unit_ckpt, &c);
	*seq = c.seq;
	return rc;
}

static int ckpt_write(struct store_txn *t, const char *name, int64_t seq)
{
	struct store_arg a[] = {SA_TEXT(name), SA_INT(seq), SA_INT(mctime_now_ms())};
	return store_exec(t,
			  "INSERT INTO consumer_offsets (name, seq, updated_ms) VALUES ($1, $2, $3) "
			  "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, updated_ms = excluded.updated_ms",
			  a, NARGS(a));
}

/* Inside a write unit: move the checkpoint from `from` to `to`; MC_ECONFLICT when it is no longer
 * `from` (someone else moved it: a rebuild, or a second process running the same consumer). */
static int ckpt_cas(struct store_txn *t, const char *name, int64_t from, int64_t to)
{
	int64_t cur;
	int rc = ckpt_read(t, name, &cur);
	if (rc)
		return rc;
	if (cur != from)
		return MC_ECONFLICT;
	return ckpt_write(t, name, to);
}

struct cas_ctx {
	const char *name;
	int64_t from, to;
};

static int unit_cas(struct store_txn *t, void *arg)
{
	struct cas_ctx *c = arg;
	return ckpt_cas(t, c->name, c->from, c->to);
}

/* ---- delivery -------------------------------------------------------------------------------- */

struct txn_ctx {
	const struct events_consumer *c;
	struct events_event *ev;
	size_t n;        /* events to apply */
	int64_t from;    /* checkpoint expected */
	size_t failed_at;
	int failed_rc;
};

static int unit_txn_deliver(struct store_txn *t, void *arg)
{
	struct txn_ctx *x = arg;
	int64_t cur;
	int rc = ckpt_read(t, x->c->name, &cur);
	if (rc)
		return rc;
	if (cur != x->from)
		return MC_ECONFLICT;
	for (size_t i = 0; i < x->n; i++) {
		x->ev[i].txn = t;
		rc = x->c->fn(&x->ev[i], x->c->arg);
		x->ev[i].txn = NULL;
		if (rc) {
			x->failed_at = i;
			x->failed_rc = rc;
			return rc;
		}
	}
	return x->n ? ckpt_write(t, x->c->name, x->ev[x->n - 1].seq) : MC_OK;
}

static int deliver_txn(struct store *s, const struct events_consumer *c, struct ev_batch *b, int64_t *ckpt,
		       size_t *done)
{
	struct txn_ctx x = {c, b->ev, b->n, *ckpt, 0, MC_OK};
	int rc = store_write(s, unit_txn_deliver, &x);
	if (rc == MC_OK) {
		*done = b->n;
		*ckpt = b->n ? b->ev[b->n - 1].seq : *ckpt;
		return MC_OK;
	}
	if (x.failed_rc == MC_OK || x.failed_at == 0)
		return rc;   /* the checkpoint check or the store failed, or the very first event */
	/* Re-apply the events before the failing one, with their checkpoint. */
	struct txn_ctx y = {c, b->ev, x.failed_at, *ckpt, 0, MC_OK};
	int rc2 = store_write(s, unit_txn_deliver, &y);
	if (rc2)
		return rc2;
	*done = x.failed_at;
	*ckpt = b->ev[x.failed_at - 1].seq;
	return rc;
}

static int deliver_plain(struct store *s, const struct events_consumer *c, struct ev_batch *b, int64_t *ckpt,
			 size_t *done)
{
	size_t ok = 0;
	int rc;
	if (c->batch) {
		rc = c->batch(b->ev, b->n, &ok, c->arg);
		if (rc == MC_OK)
			ok = b->n;
		if (ok > b->n)
			ok = b->n;
	} else {
		rc = MC_OK;
		for (; ok < b->n; ok++) {
			rc = c->fn(&b->ev[ok], c->arg);
			if (rc)
				break;
		}
	}
	if (ok) {
		struct cas_ctx x = {c->name, *ckpt, b->ev[ok - 1].seq};
		int rc2 = store_write(s, unit_cas, &x);
		if (rc2)
			return rc2;
		*ckpt = x.to;
	}
	*done = ok;
	return rc;
}

int ev_round(struct store *s, const struct events_consumer *c, struct ev_batch *b, int64_t *ckpt, size_t max,
	     size_t *done)
{
	*done = 0;
	int rc = ev_load(s, *ckpt, max, b);
	if (rc || b->n == 0)
		return rc;
	rc = (c->flags & EVENTS_TXN) ? deliver_txn(s, c, b, ckpt, done) : deliver_plain(s, c, b, ckpt, done);
	ev_batch_clear(b);
	return rc;
}

int events_catch_up(struct store *s, const struct events_consumer *c, int64_t *delivered)
{
	int64_t head, ckpt, total = 0;
	if (delivered)
		*delivered = 0;
	if (events_consumer_check(c))
		return MC_EINVAL;
	int rc = events_head(s, &head);
	if (rc == MC_OK)
		rc = events_checkpoint(s, c->name, &ckpt);
	struct ev_batch b = {0};
	while (rc == MC_OK && ckpt < head) {
		size_t done;
		rc = ev_round(s, c, &b, &ckpt, EVENTS_BATCH_MAX, &done);
		total += (int64_t)done;
		if (rc == MC_OK && done == 0)
			break;   /* nothing more (rows above head vanished? cannot happen; stay safe) */
	}
	ev_batch_release(&b);
	if (delivered)
		*delivered = total;
	return rc;
}

struct reset_ctx {
	const struct events_consumer *c;
	int64_t to;
	bool full;
};

static int unit_reset(struct store_txn *t, void *arg)
{
	struct reset_ctx *x = arg;
	if (x->full && x->c->reset) {
		int rc = x->c->reset(t, x->c->arg);
		if (rc)
			return rc;
	}
	return ckpt_write(t, x->c->name, x->to);
}

int events_replay(struct store *s, const struct events_consumer *c, int64_t from, int64_t *delivered)
{
	if (delivered)
		*delivered = 0;
	if (events_consumer_check(c))
		return MC_EINVAL;
	struct reset_ctx x = {c, from <= 1 ? 0 : from - 1, from <= 1};
	int rc = store_write(s, unit_reset, &x);
	if (rc)
		return rc;
	LOGI("events: consumer checkpoint reset", "\"consumer\":\"%s\",\"checkpoint\":%lld", c->name,
	     (long long)x.to);
	return events_catch_up(s, c, delivered);
}
