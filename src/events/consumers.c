/* events/consumers.c — consumers shipped with the engine: the patient_directory projection and the
 * metrics consumer (events/events.h).
 *
 * patient_directory is a projection: it sits above the FHIR engine (it reads the Patient's current
 * version with fhir_store_read) although it lives here; the FHIR engine only depends on
 * events_emit. Applying an event = "make the row match the Patient as it is now", which is
 * idempotent and order-insensitive for the final state, so a replay rebuilds identical rows.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "events/events.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "store/store.h"

/* The MRN identifier system (modules/patients/patients.h MC_MRN_SYSTEM; the engine may not include
 * a module's header). */
#define PD_MRN_SYSTEM "urn:medcore:mrn"

/* ---- patient_directory ----------------------------------------------------------------------- */

/* The patient an event is about, or NULL when the event is not for this projection. */
static const char *pd_patient(const struct events_event *ev, json_t *payload)
{
	if (!strcmp(ev->name, "patient.registered"))
		return ev->patient_id ? ev->patient_id : mcjson_str(payload, "patient_id");
	if (!strncmp(ev->name, "fhir.Patient.", 13))
		return mcjson_str(payload, "id");
	return NULL;
}

static const char *mrn_of(const json_t *pat)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(pat, "identifier"), i, x) {
		const char *sys = mcjson_str(x, "system");
		if (sys && !strcmp(sys, PD_MRN_SYSTEM))
			return mcjson_str(x, "value");
	}
	return NULL;
}

static int pd_delete(struct store_txn *t, const char *id)
{
	struct store_arg a = SA_TEXT(id);
	return store_exec(t, "DELETE FROM patient_directory WHERE patient_id = $1", &a, 1);
}

static int pd_apply(const struct events_event *ev, void *arg)
{
	(void)arg;
	json_t *payload = NULL;
	if (mcjson_parse(ev->payload, strlen(ev->payload), &payload, NULL))
		return MC_OK;   /* not ours to judge: a malformed payload must not block the projection */
	const char *id = pd_patient(ev, payload);
	if (!id || !ev->txn) {
		json_decref(payload);
		return MC_OK;
	}
	struct arena *a = arena_create();
	struct fhir_stored st;
	int rc = fhir_store_read(ev->txn, a, "Patient", id, 0, &st);
	if (rc == MC_EGONE || rc == MC_ENOTFOUND) {
		rc = pd_delete(ev->txn, id);
		goto out;
	}
	if (rc)
		goto out;
	json_t *pat = NULL;
	if (mcjson_parse(st.json, st.json_len, &pat, NULL)) {
		rc = MC_EINTERNAL;
		goto out;
	}
	char fam[256] = "";
	const char *family = mcjson_str(json_array_get(json_object_get(pat, "name"), 0), "family");
	if (!family || fhir_normalize(family, fam, sizeof(fam)))
		fam[0] = '\0';
	json_t *act = json_object_get(pat, "active");
	struct store_arg args[] = {SA_TEXT(id), SA_TEXT(mrn_of(pat)), fam[0] ? SA_TEXT(fam) : SA_NULL(),
				   SA_TEXT(mcjson_str(pat, "birthDate")), SA_INT(json_is_false(act) ? 0 : 1),
				   SA_INT(ev->seq)};
	rc = store_exec(ev->txn,
			"INSERT INTO patient_directory (patient_id, mrn, family_norm, birth_date, active, updated_seq) "
			"VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (patient_id) DO UPDATE SET mrn = excluded.mrn, "
			"family_norm = excluded.family_norm, birth_date = excluded.birth_date, active = excluded.active, "
			"updated_seq = excluded.updated_seq",
			args, sizeof(args) / sizeof(args[0]));
	json_decref(pat);
out:
	arena_destroy(a);
	json_decref(payload);
	return rc;
}

static int pd_reset(struct store_txn *t, void *arg)
{
	(void)arg;
	return store_exec(t, "DELETE FROM patient_directory", NULL, 0);
}

const struct events_consumer events_patient_directory = {
	.name = "patient_directory",
	.fn = pd_apply,
	.reset = pd_reset,
	.flags = EVENTS_TXN,
};

/* ---- metrics --------------------------------------------------------------------------------- */

#define LAT_SAMPLES_MAX 65536

static pthread_mutex_t g_lat_mu = PTHREAD_MUTEX_INITIALIZER;
static double g_lat[LAT_SAMPLES_MAX];   /* ms; a ring once full */
static size_t g_lat_n, g_lat_next;

static int metrics_apply(const struct events_event *ev, void *arg)
{
	(void)arg;
	static _Atomic(struct metric *) lat;   /* registering twice is harmless: the same metric */
	char labels[EVENTS_NAME_MAX + 16];
	snprintf(labels, sizeof(labels), "name=\"%s\"", ev->name);   /* names are [A-Za-z0-9._-] */
	metrics_add(metrics_counter("medcore_events_total", "domain events delivered, by name", labels), 1);
	if (!atomic_load(&lat))
		atomic_store(&lat, metrics_histogram("medcore_event_latency_seconds",
						     "outbox write to in-process consumer", NULL));
	int64_t ms = mctime_now_ms() - ev->created_ms;
	if (ms < 0)
		ms = 0;
	metrics_observe(atomic_load(&lat), (double)ms / 1e3);
	pthread_mutex_lock(&g_lat_mu);
	g_lat[g_lat_next] = (double)ms;
	g_lat_next = (g_lat_next + 1) % LAT_SAMPLES_MAX;
	if (g_lat_n < LAT_SAMPLES_MAX)
		g_lat_n++;
	pthread_mutex_unlock(&g_lat_mu);
	return MC_OK;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double events_metrics_latency_p99(size_t *count)
{
	pthread_mutex_lock(&g_lat_mu);
	size_t n = g_lat_n;
	double *v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		abort();
	memcpy(v, g_lat, n * sizeof(*v));
	g_lat_n = g_lat_next = 0;
	pthread_mutex_unlock(&g_lat_mu);
	double p = 0;
	if (n) {
		qsort(v, n, sizeof(*v), cmp_double);
		size_t idx = (size_t)((double)n * 0.99);
		p = v[idx < n ? idx : n - 1];
	}
	free(v);
	if (count)
		*count = n;
	return p;
}

const struct events_consumer events_metrics_consumer = {
	.name = "metrics",
	.fn = metrics_apply,
};
