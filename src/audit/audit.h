/* audit/audit.h — the append-only, hash-chained audit log.
 *
 * Each record's hash = SHA-256(previous record's hash || canonical bytes of this record), so an
 * edited, removed or reordered record breaks the chain from that point on; audit_verify() finds
 * the first such record. Writes of data are audited in the same transaction as the data
 * (audit_append inside the unit of work); reads are queued (audit_append_async) and committed by
 * the writer's next group commit without making the reader wait.
 * Actor, patient, action, outcome, request id and reason; never clinical values.
 */
#ifndef MC_AUDIT_AUDIT_H
#define MC_AUDIT_AUDIT_H
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_txn;

struct audit_rec {
	int64_t ts_ms;               /* 0 = now */
	int64_t user_id;             /* 0 = anonymous / system */
	const char *username;        /* may be NULL */
	const char *role;            /* may be NULL */
	const char *action;          /* "create" "read" "vread" "update" "delete" "search" "history"
	                                "login" "login-failed" "logout" "break-glass" ... */
	const char *resource_type;   /* may be NULL */
	const char *resource_id;     /* may be NULL */
	const char *patient_id;      /* may be NULL */
	int outcome;                 /* HTTP status of the operation */
	const char *request_id;      /* may be NULL */
	const char *client_ip;       /* may be NULL */
	const char *reason;          /* break-the-glass reason etc.; may be NULL */
};

int audit_append(struct store_txn *t, const struct audit_rec *r);     /* inside a write unit */
int audit_append_async(struct store *s, const struct audit_rec *r);   /* copies r; returns at once */
/* Release the async queue of s. Call after store_close(s) (which runs every queued drain). */
void audit_async_forget(struct store *s);
/* Walk the chain. MC_OK when intact (*checked = records). Otherwise MC_ECONFLICT with *bad_seq the
 * sequence number of the first bad record and why a short reason ("hash mismatch", "gap"...). */
int audit_verify(struct store *s, int64_t *checked, int64_t *bad_seq, char *why, size_t whysz);

#endif
