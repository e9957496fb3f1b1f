/* http/write.c — req_write: a handler's durable unit of work, with its audit record appended in
 * the same transaction (DESIGN §3: data and audit commit together or not at all). */
#include <string.h>

#include "core/err.h"
#include "http/app.h"
#include "http/http_int.h"
#include "store/store.h"

struct write_unit {
	store_work_fn *fn;
	void *arg;
	bool audit;              /* append the request's audit record after fn succeeds */
	struct req *req;         /* the request thread waits in store_write while the unit runs */
};

/* Runs on the writer thread. */
static int write_unit_run(struct store_txn *t, void *arg)
{
	struct write_unit *u = arg;
	int rc = u->fn(t, u->arg);
	if (rc == MC_OK && u->audit) {
		/* built after fn so that what fn learned (a new resource id) is recorded */
		struct audit_rec rec;
		http_audit_rec(u->req, strcmp(u->req->audit.action, "create") ? 200 : 201, &rec);
		rc = audit_append(t, &rec);
	}
	return rc;
}

int req_write(struct req *r, store_work_fn *fn, void *arg)
{
	if (!r->app || !r->app->store)
		return MC_EUNAVAIL;
	struct write_unit u = {.fn = fn, .arg = arg, .req = r};
	/* the action must be known before the unit starts; fn may still fill ids and the patient */
	u.audit = r->route && (r->route->flags & ROUTE_PHI) && r->audit.action && !r->audit.done;
	int rc = store_write(r->app->store, write_unit_run, &u);
	if (rc == MC_OK && u.audit)
		r->audit.done = true;
	return rc;
}
