/* fhir/export.c — bulk data export: job table, the one worker thread, the status/file routes
 * (fhir/export.h).
 *
 * Job life: queued (kick-off) -> running (worker) -> done | error; DELETE removes the row and the
 * files whatever the state (a running job notices between batches). The worker's final update is
 * conditional on the row still being 'running', so a cancel that races with the end wins and the
 * worker removes the files itself.
 * Stored JSON is compact (mcjson_dump: no raw newlines), so each resource is one NDJSON line as is.
 */
#include "fhir/export.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "fhir/resource.h"
#include "fhir/search.h"
#include "fhir/store.h"
#include "http/app.h"

#define FHIR_CT "application/fhir+json; charset=utf-8"
#define JOB_ID_MAX (MCID_LEN + 1)
#define TYPES_MAX 8192          /* bytes of the _type list */
#define PATH_MAX_EXPORT 1024

/* ---- the worker's shared state ---- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, stop, wake;
	pthread_t thread;
	struct store *store;
	char dir[PATH_MAX_EXPORT];
	char running[JOB_ID_MAX];    /* the job being written, "" when idle */
	char cancel[JOB_ID_MAX];     /* a DELETE asked the running job to stop */
	char progress[160];          /* X-Progress of the running job */
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* ---- small helpers ---- */

int fhir_export_dir(const struct mc_config *cfg, char *out, size_t n)
{
	int w;
	if (cfg && cfg->export_dir && cfg->export_dir[0])
		w = snprintf(out, n, "%s", cfg->export_dir);
	else if (cfg && cfg->db && !strncmp(cfg->db, "sqlite:", 7) && cfg->db[7])
		w = snprintf(out, n, "%s-export", cfg->db + 7);
	else
		w = snprintf(out, n, "medcore-export");
	return w < 0 || (size_t)w >= n ? MC_ETOOBIG : MC_OK;
}

bool fhir_export_file_name_valid(const char *name)
{
	/* <Type>.ndjson or <Type>.<n>.ndjson; Type letters only */
	size_t i = 0;
	if (!name || name[0] < 'A' || name[0] > 'Z')
		return false;
	while ((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= 'a' && name[i] <= 'z'))
		i++;
	if (i > 64 || name[i] != '.')
		return false;
	i++;
	if (name[i] >= '1' && name[i] <= '9') {
		size_t d = 0;
		while (name[i] >= '0' && name[i] <= '9' && d < 6) {
			i++;
			d++;
		}
		if (name[i] != '.')
			return false;
		i++;
	}
	return !strcmp(name + i, "ndjson");
}

static void rm_job_dir(const char *job)
{
	char path[PATH_MAX_EXPORT + 64];
	snprintf(path, sizeof(path), "%s/%s", W.dir, job);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!fhir_export_file_name_valid(e->d_name))
				continue;   /* only what the worker wrote */
			char f[PATH_MAX_EXPORT + 400];
			snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
			unlink(f);
		}
		closedir(d);
	}
	rmdir(path);
}

static bool cancelled(const char *job)
{
	pthread_mutex_lock(&W.mu);
	bool c = W.stop || !strcmp(W.cancel, job);
	pthread_mutex_unlock(&W.mu);
	return c;
}

static void set_progress(const char *fmt, const char *type, int i, int n, long long count)
{
	pthread_mutex_lock(&W.mu);
	snprintf(W.progress, sizeof(W.progress), fmt, type, i, n, count);
	pthread_mutex_unlock(&W.mu);
}

/* ---- job rows ---- */

struct job {
	char id[JOB_ID_MAX];
	struct auth_principal who;
	char kind[16];
	char group_id[65];
	char *types;           /* malloc'd comma list ("" = all) */
	int64_t since_ms, tx_ms;
};

static int pick_unit(struct store_txn *t, void *arg)
{
	struct job *j = arg;
	struct store_rows *rows = NULL;
	int rc = store_query(t,
			     "SELECT id, owner_user_id, owner_username, owner_role, owner_patient, owner_scope, kind, "
			     "COALESCE(group_id, ''), types, since_ms FROM export_jobs WHERE status = 'queued' "
			     "ORDER BY created_ms, id LIMIT 1",
			     NULL, 0, &rows);
	if (rc)
		return rc;
	int st = store_rows_next(rows);
	if (st != 1) {
		store_rows_close(rows);
		return st < 0 ? -st : MC_ENOTFOUND;
	}
	snprintf(j->id, sizeof(j->id), "%s", store_rows_text(rows, 0));
	j->who.user_id = store_rows_int(rows, 1);
	snprintf(j->who.username, sizeof(j->who.username), "%s", store_rows_text(rows, 2));
	enum auth_role role = ROLE_PATIENT;
	bool role_ok = auth_role_parse(store_rows_text(rows, 3), &role) == MC_OK;
	j->who.role = role;
	j->who.perms = role_ok ? auth_role_perms(role) : 0;
	snprintf(j->who.patient_id, sizeof(j->who.patient_id), "%s", store_rows_text(rows, 4));
	snprintf(j->who.scope, sizeof(j->who.scope), "%s", store_rows_text(rows, 5));
	snprintf(j->kind, sizeof(j->kind), "%s", store_rows_text(rows, 6));
	snprintf(j->group_id, sizeof(j->group_id), "%s", store_rows_text(rows, 7));
	j->types = strdup(store_rows_text(rows, 8) ? store_rows_text(rows, 8) : "");
	if (!j->types)
		abort();
	j->since_ms = store_rows_int(rows, 9);
	store_rows_close(rows);
	j->tx_ms = mctime_now_ms();
	struct store_arg a[2] = {SA_TEXT(j->id), SA_INT(j->tx_ms)};
	return store_exec(t, "UPDATE export_jobs SET status = 'running', tx_time_ms = $2 WHERE id = $1", a, 2);
}

struct finish {
	const char *id, *status, *progress, *output;
	bool updated;
};

static int finish_unit(struct store_txn *t, void *arg)
{
	struct finish *f = arg;
	struct store_arg a[5] = {SA_TEXT(f->id), SA_TEXT(f->status), SA_TEXT(f->progress), SA_TEXT(f->output),
				 SA_INT(mctime_now_ms())};
	int rc = store_exec(t,
			    "UPDATE export_jobs SET status = $2, progress = $3, output = $4, finished_ms = $5 "
			    "WHERE id = $1 AND status = 'running'",
			    a, 5);
	f->updated = rc == MC_OK && store_changes(t) > 0;
	return rc;
}

static int requeue_unit(struct store_txn *t, void *arg)
{
	(void)arg;
	return store_exec(t, "UPDATE export_jobs SET status = 'queued' WHERE status = 'running'", NULL, 0);
}

/* ---- the worker ---- */

struct batch {
	const struct job *j;
	const char *type, *pid;
	int64_t after;          /* keyset: rkey > after */
	FILE *f;
	size_t bytes;
	long long count, written_in_batch;
	int rc_io;
};

static int batch_unit(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	struct fhir_sql q;
	fhir_sql_init(&q);
	int rc = buf_puts(&q.sql, "SELECT r.rkey, v.json FROM resources r JOIN resource_versions v ON v.rkey = r.rkey "
				  "AND v.version = r.version WHERE r.deleted = 0 AND r.type = ");
	rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(b->type));
	rc = rc ? rc : buf_puts(&q.sql, " AND r.rkey > ");
	rc = rc ? rc : fhir_sql_arg(&q, SA_INT(b->after));
	if (!rc && b->j->since_ms > 0) {
		rc = buf_puts(&q.sql, " AND r.last_updated_ms >= ");
		rc = rc ? rc : fhir_sql_arg(&q, SA_INT(b->j->since_ms));
	}
	if (!rc && b->pid) {
		rc = buf_puts(&q.sql, " AND r.patient_id = ");
		rc = rc ? rc : fhir_sql_arg(&q, SA_TEXT(b->pid));
	} else if (!rc && !strcmp(b->j->kind, "patient")) {
		rc = buf_puts(&q.sql, " AND r.patient_id IS NOT NULL");
	}
	bool demo = auth_fhir_perm(b->type, false) == PERM_READ_DEMOGRAPHICS;
	struct fhir_access acc = {
		.scope = auth_patient_scope(&b->j->who, demo ? AUTH_DEMOGRAPHICS_READ : AUTH_CLINICAL_READ),
		.patient_id = b->j->who.patient_id,
		.user_id = b->j->who.user_id,
	};
	rc = rc ? rc : fhir_access_sql(&q, &acc, b->type);
	rc = rc ? rc : buf_printf(&q.sql, " ORDER BY r.rkey LIMIT %d", EXPORT_BATCH);
	struct store_rows *rows = NULL;
	if (!rc)
		rc = store_query(t, q.sql.data, q.args, q.nargs, &rows);
	int st = 0;
	b->written_in_batch = 0;
	while (!rc && (st = store_rows_next(rows)) == 1) {
		b->after = store_rows_int(rows, 0);
		size_t len = 0;
		const void *json = store_rows_blob(rows, 1, &len);
		if (!json || !len)
			continue;
		if (fwrite(json, 1, len, b->f) != len || fputc('\n', b->f) == EOF) {
			b->rc_io = MC_EINTERNAL;
			break;
		}
		b->bytes += len + 1;
		b->count++;
		b->written_in_batch++;
	}
	if (!rc && st < 0)
		rc = -st;
	store_rows_close(rows);
	fhir_sql_release(&q);
	return rc;
}

/* Group members: Group.member[].entity references to Patient ("Patient/<id>"). */
struct group_ctx {
	const char *gid;
	char **pids;
	size_t n;
};

static int group_unit(struct store_txn *t, void *arg)
{
	struct group_ctx *g = arg;
	struct arena *a = arena_create();
	struct fhir_stored st;
	int rc = fhir_store_read(t, a, "Group", g->gid, 0, &st);
	json_t *res = NULL;
	if (rc == MC_OK && mcjson_parse(st.json, st.json_len, &res, NULL))
		rc = MC_EINTERNAL;
	json_t *mem = rc == MC_OK ? json_object_get(res, "member") : NULL;
	size_t cap = json_array_size(mem) < EXPORT_GROUP_MAX ? json_array_size(mem) : EXPORT_GROUP_MAX;
	g->pids = calloc(cap + 1, sizeof(*g->pids));
	if (!g->pids)
		abort();
	for (size_t i = 0; i < cap; i++) {
		const char *ref = mcjson_str(json_object_get(json_array_get(mem, i), "entity"), "reference");
		if (ref && !strncmp(ref, "Patient/", 8) && mcid_valid_fhir_id(ref + 8)) {
			g->pids[g->n] = strdup(ref + 8);
			if (!g->pids[g->n])
				abort();
			g->n++;
		}
	}
	json_decref(res);
	arena_destroy(a);
	return rc;
}

struct out_file {
	char type[65];
	char name[96];
	long long count;
};

/* Write every type of job j into W.dir/<id>/. MC_OK and *out (a JSON array of {type, file,
 * count}) on success; MC_ECONFLICT when cancelled or stopping. */
static int run_job(struct job *j, json_t **out, const char **why)
{
	*out = NULL;
	*why = "the export failed";
	char jdir[PATH_MAX_EXPORT + 64];
	snprintf(jdir, sizeof(jdir), "%s/%s", W.dir, j->id);
	if (mkdir(jdir, 0700) && errno != EEXIST)
		return MC_EINTERNAL;

	/* the types: the requested ones, else every type (patient/group: the compartment types) */
	const char *const *all = fhir_resource_types();
	size_t nall = 0;
	while (all && all[nall])
		nall++;
	const char **types = calloc(nall + 1, sizeof(*types));
	if (!types)
		abort();
	size_t nt = 0;
	for (size_t i = 0; i < nall; i++) {
		const char *ty = all[i];
		if (!strcmp(ty, "AuditEvent"))
			continue;
		if (j->types[0]) {
			/* exact item of the comma list */
			size_t tl = strlen(ty);
			bool listed = false;
			for (const char *p = j->types; *p;) {
				size_t n = strcspn(p, ",");
				if (n == tl && !strncmp(p, ty, tl))
					listed = true;
				p += n;
				if (*p == ',')
					p++;
			}
			if (!listed)
				continue;
		}
		if (strcmp(j->kind, "system") && !fhir_type_in_patient_compartment(ty))
			continue;
		if (!auth_scope_allows(&j->who, ty, false))
			continue;
		types[nt++] = ty;
	}

	struct group_ctx g = {.gid = j->group_id};
	int rc = MC_OK;
	if (!strcmp(j->kind, "group")) {
		rc = store_read(W.store, group_unit, &g);
		if (rc == MC_ENOTFOUND || rc == MC_EGONE)
			*why = "the Group was not found";
	}
	json_t *output = json_array();
	for (size_t ti = 0; !rc && ti < nt; ti++) {
		struct out_file of = {.count = 0};
		snprintf(of.type, sizeof(of.type), "%s", types[ti]);
		int part = 1;
		struct batch b = {.j = j, .type = types[ti]};
		size_t members = !strcmp(j->kind, "group") ? g.n : 1;
		for (size_t m = 0; !rc && m < members; m++) {
			b.pid = !strcmp(j->kind, "group") ? g.pids[m] : NULL;
			b.after = 0;
			do {
				if (cancelled(j->id)) {
					rc = MC_ECONFLICT;
					break;
				}
				if (!b.f) {
					if (part == 1)
						snprintf(of.name, sizeof(of.name), "%s.ndjson", types[ti]);
					else
						snprintf(of.name, sizeof(of.name), "%s.%d.ndjson", types[ti], part);
					char path[PATH_MAX_EXPORT + 200];
					snprintf(path, sizeof(path), "%s/%s", jdir, of.name);
					b.f = fopen(path, "wbx");
					if (!b.f) {
						rc = MC_EINTERNAL;
						break;
					}
					b.bytes = 0;
					b.count = 0;
				}
				set_progress("exporting %s (type %d of %d, %lld written)", types[ti], (int)ti + 1, (int)nt,
					     b.count);
				rc = store_read(W.store, batch_unit, &b);
				rc = rc ? rc : b.rc_io;
				if (!rc && b.bytes >= EXPORT_FILE_MAX) {
					/* close this part; the next batch opens the next one */
					if (fclose(b.f))
						rc = MC_EINTERNAL;
					b.f = NULL;
					json_array_append_new(output, json_pack("{s:s,s:s,s:I}", "type", of.type, "file",
										of.name, "count", (json_int_t)b.count));
					part++;
				}
			} while (!rc && b.written_in_batch == EXPORT_BATCH);
		}
		if (b.f) {
			if (fclose(b.f) && !rc)
				rc = MC_EINTERNAL;
			char path[PATH_MAX_EXPORT + 200];
			snprintf(path, sizeof(path), "%s/%s", jdir, of.name);
			if (!rc && b.count > 0)
				json_array_append_new(output, json_pack("{s:s,s:s,s:I}", "type", of.type, "file", of.name,
									"count", (json_int_t)b.count));
			else
				unlink(path);   /* empty files are not listed (Bulk Data IG) */
		}
	}
	for (size_t i = 0; i < g.n; i++)
		free(g.pids[i]);
	free(g.pids);
	free(types);
	if (rc) {
		json_decref(output);
		return rc;
	}
	*out = output;
	return MC_OK;
}

static void *worker_main(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_mutex_lock(&W.mu);
		if (W.stop) {
			pthread_mutex_unlock(&W.mu);
			break;
		}
		W.wake = false;
		pthread_mutex_unlock(&W.mu);

		struct job j;
		memset(&j, 0, sizeof(j));
		int rc = store_write(W.store, pick_unit, &j);
		if (rc == MC_OK) {
			pthread_mutex_lock(&W.mu);
			snprintf(W.running, sizeof(W.running), "%s", j.id);
			snprintf(W.progress, sizeof(W.progress), "starting");
			pthread_mutex_unlock(&W.mu);
			LOGI("export: job started", "\"job\":\"%s\"", j.id);
			json_t *out = NULL;
			const char *why = NULL;
			rc = run_job(&j, &out, &why);
			bool stopping;
			pthread_mutex_lock(&W.mu);
			stopping = W.stop;
			pthread_mutex_unlock(&W.mu);
			if (rc == MC_ECONFLICT && stopping) {
				/* shutting down: the row stays 'running' and is re-queued at the next start */
				rm_job_dir(j.id);
			} else {
				char *txt = out ? mcjson_dumps(out) : NULL;
				struct finish f = {.id = j.id, .status = rc ? "error" : "done",
						   .progress = rc ? why : "done", .output = txt};
				int frc = store_write(W.store, finish_unit, &f);
				if (frc || !f.updated || rc)
					rm_job_dir(j.id);   /* cancelled meanwhile, or failed: no files kept */
				LOGI("export: job finished", "\"job\":\"%s\",\"status\":\"%s\"", j.id,
				     rc ? "error" : f.updated ? "done" : "cancelled");
				free(txt);
			}
			json_decref(out);
			free(j.types);
			pthread_mutex_lock(&W.mu);
			W.running[0] = '\0';
			if (!strcmp(W.cancel, j.id))
				W.cancel[0] = '\0';
			pthread_mutex_unlock(&W.mu);
			continue;   /* look for the next job at once */
		}
		free(j.types);
		if (rc != MC_ENOTFOUND)
			LOGE("export: cannot pick a job", "\"code\":\"%s\"", mc_code_name(rc));
		pthread_mutex_lock(&W.mu);
		if (!W.stop && !W.wake) {
			/* woken by kick-offs; the timeout also picks up jobs another process queued */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 2;
			pthread_cond_timedwait(&W.cv, &W.mu, &ts);
		}
		pthread_mutex_unlock(&W.mu);
	}
	return NULL;
}

/* Start the worker on first use. MC_EUNAVAIL when the directory or thread cannot be made. */
static int ensure_worker(struct req *r)
{
	int rc = MC_OK;
	pthread_mutex_lock(&W.mu);
	if (!W.started) {
		if (!r->app || !r->app->store || fhir_export_dir(r->app->cfg, W.dir, sizeof(W.dir))) {
			rc = MC_EUNAVAIL;
		} else if (mkdir(W.dir, 0700) && errno != EEXIST) {
			LOGE("export: cannot create the export directory", "\"errno\":%d", errno);
			rc = MC_EUNAVAIL;
		} else {
			W.store = r->app->store;
			W.stop = false;
			if (store_write(W.store, requeue_unit, NULL) != MC_OK ||
			    pthread_create(&W.thread, NULL, worker_main, NULL) != 0)
				rc = MC_EUNAVAIL;
			else
				W.started = true;
		}
	}
	pthread_mutex_unlock(&W.mu);
	return rc;
}

void fhir_export_shutdown(void)
{
	pthread_mutex_lock(&W.mu);
	bool started = W.started;
	W.stop = true;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
	if (started)
		pthread_join(W.thread, NULL);
	pthread_mutex_lock(&W.mu);
	W.started = false;
	W.stop = false;
	W.store = NULL;
	pthread_mutex_unlock(&W.mu);
}

/* ---- kick-off ---- */

struct kick {
	struct req *r;
	const char *id, *kind, *group_id, *types, *request;
	int64_t since_ms;
};

static int kick_unit(struct store_txn *t, void *arg)
{
	struct kick *k = arg;
	struct req *r = k->r;
	int64_t n = 0;
	int rc = store_query_int(t, "SELECT count(*) FROM export_jobs WHERE status IN ('queued', 'running')", NULL, 0, &n);
	if (rc)
		return rc;
	if (n >= EXPORT_QUEUE_MAX)
		return req_fail(r, MC_ERATE, "Too many exports are waiting; retry later", NULL, NULL);
	if (k->group_id) {
		struct fhir_stored st;
		rc = fhir_store_read(t, r->arena, "Group", k->group_id, 0, &st);
		if (rc == MC_ENOTFOUND || rc == MC_EGONE)
			return req_fail(r, MC_ENOTFOUND, "Group not found", NULL, NULL);
		if (rc)
			return rc;
	}
	const struct auth_principal *p = r->who;
	struct store_arg a[12] = {
		SA_TEXT(k->id),		SA_INT(p->user_id),	 SA_TEXT(p->username),
		SA_TEXT(auth_role_name(p->role)), SA_TEXT(p->patient_id), SA_TEXT(p->scope),
		SA_TEXT(k->kind),	SA_TEXT(k->group_id),	 SA_TEXT(k->types),
		SA_INT(k->since_ms),	SA_TEXT(k->request),	 SA_INT(mctime_now_ms()),
	};
	return store_exec(t,
			  "INSERT INTO export_jobs(id, owner_user_id, owner_username, owner_role, owner_patient, "
			  "owner_scope, kind, group_id, types, since_ms, request, status, created_ms) "
			  "VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12)",
			  a, 12);
}

static bool prefer_async(struct req *r)
{
	const char *p = req_header(r, "Prefer");
	return p && strstr(p, "respond-async");
}

int fhir_export_h_kickoff(struct req *r, struct reply *rep)
{
	struct kick k = {.r = r, .kind = "system", .types = ""};
	const char *pat = r->route ? r->route->pattern : "";
	if (!strcmp(pat, "/fhir/Patient/$export")) {
		k.kind = "patient";
		r->audit.resource_type = "Patient";
	} else if (!strcmp(pat, "/fhir/Group/{id}/$export")) {
		k.kind = "group";
		k.group_id = req_param(r, "id");
		r->audit.resource_type = "Group";
		r->audit.resource_id = k.group_id;
		if (!k.group_id || !mcid_valid_fhir_id(k.group_id))
			return req_fail(r, MC_ENOTFOUND, "Group not found", NULL, NULL);
	}
	r->audit.action = "export";
	if (!prefer_async(r))
		return req_fail(r, MC_EINVAL, "Bulk export needs the header Prefer: respond-async", NULL, NULL);
	if (auth_patient_scope(r->who, AUTH_CLINICAL_READ) != AUTH_SCOPE_ALL)
		return req_fail(r, MC_EFORBIDDEN, "Bulk export needs access to every patient's data", NULL, NULL);
	for (size_t i = 0; i < r->nquery; i++) {
		const char *key = r->query[i].key, *v = r->query[i].value ? r->query[i].value : "";
		if (!strcmp(key, "_outputFormat")) {
			if (strcmp(v, "application/fhir+ndjson") && strcmp(v, "application/ndjson") && strcmp(v, "ndjson"))
				return req_fail(r, MC_EINVAL, "_outputFormat must be application/fhir+ndjson", NULL, NULL);
		} else if (!strcmp(key, "_since")) {
			int64_t lo, hi;
			if (mctime_parse_fhir(v, &lo, &hi, NULL))
				return req_fail(r, MC_EINVAL, "_since must be a FHIR instant", NULL, NULL);
			k.since_ms = lo;
		} else if (!strcmp(key, "_type")) {
			if (strlen(v) > TYPES_MAX)
				return req_fail(r, MC_EINVAL, "_type is too long", NULL, NULL);
			char *dup = arena_strdup(r->arena, v);
			for (char *p = dup; *p;) {
				size_t n = strcspn(p, ",");
				char save = p[n];
				p[n] = '\0';
				bool ok = fhir_type_is_resource(p) && strcmp(p, "AuditEvent");
				p[n] = save;
				if (!ok)
					return req_fail(r, MC_EINVAL, "_type must list resource types served here", NULL, NULL);
				p += n;
				if (*p == ',')
					p++;
			}
			k.types = k.types[0] ? arena_printf(r->arena, "%s,%s", k.types, v) : v;
		} else if (strcmp(key, "_format")) {
			return req_fail(r, MC_EINVAL, "Unsupported export parameter (supported: _type, _since, _outputFormat)",
					NULL, NULL);
		}
	}
	int rc = ensure_worker(r);
	if (rc)
		return req_fail(r, rc, "Bulk export is not available", NULL, NULL);
	char id[MCID_LEN + 1];
	mcid_new(id);
	k.id = id;
	struct buf req_url = BUF_INIT;
	buf_printf(&req_url, "%s%s", r->base_url, r->path);
	for (size_t i = 0; i < r->nquery; i++) {
		buf_printf(&req_url, "%c%s=", i ? '&' : '?', r->query[i].key);
		fhir_url_encode(&req_url, r->query[i].value ? r->query[i].value : "");
	}
	k.request = arena_strdup(r->arena, buf_str(&req_url));
	buf_release(&req_url);
	rc = req_write(r, kick_unit, &k);
	if (rc == MC_ERATE)
		reply_header(rep, r, "Retry-After", "30");
	if (rc)
		return rc;
	pthread_mutex_lock(&W.mu);
	W.wake = true;
	pthread_cond_broadcast(&W.cv);
	pthread_mutex_unlock(&W.mu);
	reply_header(rep, r, "Content-Location", arena_printf(r->arena, "%s/fhir/$export-status/%s", r->base_url, id));
	json_t *oo = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome", "issue", "severity",
			       "information", "code", "informational", "diagnostics", "export started");
	rc = reply_fhir_json(rep, 202, oo);
	json_decref(oo);
	return rc;
}

/* ---- status, cancel, files ---- */

struct jrow {
	struct req *r;
	const char *id;
	int64_t owner, tx_ms;
	char status[16];
	const char *progress, *output, *request;
};

static int jrow_unit(struct store_txn *t, void *arg)
{
	struct jrow *j = arg;
	struct store_arg a[1] = {SA_TEXT(j->id)};
	struct store_rows *rows = NULL;
	int rc = store_query(t, "SELECT owner_user_id, status, progress, output, request, tx_time_ms FROM export_jobs "
				"WHERE id = $1",
			     a, 1, &rows);
	if (rc)
		return rc;
	int st = store_rows_next(rows);
	if (st == 1) {
		struct arena *ar = j->r->arena;
		j->owner = store_rows_int(rows, 0);
		snprintf(j->status, sizeof(j->status), "%s", store_rows_text(rows, 1));
		j->progress = arena_strdup(ar, store_rows_text(rows, 2) ? store_rows_text(rows, 2) : "");
		j->output = store_rows_text(rows, 3) ? arena_strdup(ar, store_rows_text(rows, 3)) : NULL;
		j->request = arena_strdup(ar, store_rows_text(rows, 4) ? store_rows_text(rows, 4) : "");
		j->tx_ms = store_rows_int(rows, 5);
	}
	store_rows_close(rows);
	return st == 1 ? MC_OK : st < 0 ? -st : MC_ENOTFOUND;
}

/* Load the job named by {job} and check the caller owns it. */
static int load_owned(struct req *r, struct jrow *j)
{
	memset(j, 0, sizeof(*j));
	j->r = r;
	j->id = req_param(r, "job");
	if (!j->id || !mcid_valid_fhir_id(j->id))
		return req_fail(r, MC_ENOTFOUND, "Export job not found", NULL, NULL);
	int rc = store_read(r->app->store, jrow_unit, j);
	if (rc == MC_ENOTFOUND)
		return req_fail(r, rc, "Export job not found", NULL, NULL);
	if (rc)
		return rc;
	if (!r->who || j->owner != r->who->user_id)
		return req_fail(r, MC_EFORBIDDEN, "Only the user who started an export may see it", NULL, NULL);
	return MC_OK;
}

int fhir_export_h_status(struct req *r, struct reply *rep)
{
	struct jrow j;
	int rc = load_owned(r, &j);
	if (rc)
		return rc;
	rc = ensure_worker(r);   /* after a restart, resumes queued jobs */
	if (rc)
		return req_fail(r, rc, "Bulk export is not available", NULL, NULL);
	if (!strcmp(j.status, "queued") || !strcmp(j.status, "running")) {
		char prog[160] = "queued";
		pthread_mutex_lock(&W.mu);
		if (!strcmp(W.running, j.id))
			snprintf(prog, sizeof(prog), "%s", W.progress);
		pthread_mutex_unlock(&W.mu);
		reply_header(rep, r, "X-Progress", prog);
		reply_header(rep, r, "Retry-After", "1");
		buf_reset(&rep->body);
		rep->status = 202;
		rep->content_type = NULL;
		return MC_OK;
	}
	if (strcmp(j.status, "done")) {
		json_t *oo = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome", "issue", "severity",
				       "error", "code", "exception", "diagnostics",
				       j.progress[0] ? j.progress : "the export failed");
		rc = reply_fhir_json(rep, 500, oo);
		json_decref(oo);
		return rc;
	}
	json_t *files = NULL;
	if (!j.output || mcjson_parse(j.output, strlen(j.output), &files, NULL))
		return MC_EINTERNAL;
	json_t *output = json_array();
	for (size_t i = 0; i < json_array_size(files); i++) {
		json_t *f = json_array_get(files, i);
		const char *name = mcjson_str(f, "file");
		char *url = arena_printf(r->arena, "%s/fhir/$export-file/%s/%s", r->base_url, j.id, name ? name : "");
		json_array_append_new(output, json_pack("{s:s,s:s,s:I}", "type", mcjson_str(f, "type"), "url", url,
							"count", (json_int_t)mcjson_int(f, "count", 0)));
	}
	json_decref(files);
	char tx[32];
	mctime_format_ms(j.tx_ms, tx);
	json_t *m = json_pack("{s:s,s:s,s:b,s:o,s:[]}", "transactionTime", tx, "request", j.request,
			      "requiresAccessToken", 1, "output", output, "error");
	buf_reset(&rep->body);
	rc = mcjson_dump(m, &rep->body);
	json_decref(m);
	if (rc)
		return rc;
	rep->status = 200;
	rep->content_type = "application/json";
	return MC_OK;
}

static int delete_unit(struct store_txn *t, void *arg)
{
	const char *id = arg;
	struct store_arg a[1] = {SA_TEXT(id)};
	return store_exec(t, "DELETE FROM export_jobs WHERE id = $1", a, 1);
}

int fhir_export_h_cancel(struct req *r, struct reply *rep)
{
	struct jrow j;
	int rc = load_owned(r, &j);
	if (rc)
		return rc;
	rc = store_write(r->app->store, delete_unit, (void *)j.id);
	if (rc)
		return rc;
	bool running;
	pthread_mutex_lock(&W.mu);
	running = !strcmp(W.running, j.id);
	if (running)
		snprintf(W.cancel, sizeof(W.cancel), "%s", j.id);   /* the worker removes its files */
	pthread_mutex_unlock(&W.mu);
	if (!running && W.dir[0])
		rm_job_dir(j.id);
	json_t *oo = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "resourceType", "OperationOutcome", "issue", "severity",
			       "information", "code", "informational", "diagnostics", "export cancelled and deleted");
	rc = reply_fhir_json(rep, 202, oo);
	json_decref(oo);
	return rc;
}

int fhir_export_h_file(struct req *r, struct reply *rep)
{
	r->audit.action = "export";
	struct jrow j;
	int rc = load_owned(r, &j);
	if (rc)
		return rc;
	const char *name = req_param(r, "file");
	if (strcmp(j.status, "done") || !name || !fhir_export_file_name_valid(name) || !j.output)
		return req_fail(r, MC_ENOTFOUND, "Export file not found", NULL, NULL);
	/* listed in the manifest? (the name is checked, so the needle cannot be forged) */
	char needle[160];
	snprintf(needle, sizeof(needle), "\"file\":\"%s\"", name);
	if (!strstr(j.output, needle))
		return req_fail(r, MC_ENOTFOUND, "Export file not found", NULL, NULL);
	rc = ensure_worker(r);   /* W.dir */
	if (rc)
		return req_fail(r, rc, "Bulk export is not available", NULL, NULL);
	char path[PATH_MAX_EXPORT + 200];
	snprintf(path, sizeof(path), "%s/%s/%s", W.dir, j.id, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return req_fail(r, MC_ENOTFOUND, "Export file not found", NULL, NULL);
	buf_reset(&rep->body);
	char chunk[65536];
	size_t n;
	rc = MC_OK;
	while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = buf_append(&rep->body, chunk, n);
	if (!rc && ferror(f))
		rc = MC_EINTERNAL;
	fclose(f);
	if (rc)
		return rc;
	r->audit.resource_type = NULL;
	rep->status = 200;
	rep->content_type = "application/fhir+ndjson";
	return MC_OK;
}
