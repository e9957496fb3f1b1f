/* modules/vitals/vitals.c — the parameter table and the sink registry (vitals.h).
 *
 * Sinks are registered at start-up and read on every ingest thread afterwards. Registration
 * publishes the new count with release semantics after the slot is filled, so a publisher that
 * loads the count (acquire) never sees a half-written slot; registration itself is serialized by a
 * mutex. There is no removal: sinks live as long as the process.
 */
#include "modules/vitals/vitals.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/err.h"

#define SINKS_MAX 8

struct sink {
	vitals_sink_fn *fn;
	void *arg;
};

static struct sink sinks[SINKS_MAX];
static _Atomic size_t nsinks;
static pthread_mutex_t sinks_mu = PTHREAD_MUTEX_INITIALIZER;

int vitals_sink_add(vitals_sink_fn *fn, void *arg)
{
	if (!fn)
		return MC_EINVAL;
	pthread_mutex_lock(&sinks_mu);
	size_t n = atomic_load_explicit(&nsinks, memory_order_relaxed);
	if (n >= SINKS_MAX) {
		pthread_mutex_unlock(&sinks_mu);
		return MC_ETOOBIG;
	}
	sinks[n].fn = fn;
	sinks[n].arg = arg;
	atomic_store_explicit(&nsinks, n + 1, memory_order_release);
	pthread_mutex_unlock(&sinks_mu);
	return MC_OK;
}

void vitals_sinks_publish(const struct vitals_sample *s, size_t n)
{
	if (!s || !n)
		return;
	size_t k = atomic_load_explicit(&nsinks, memory_order_acquire);
	for (size_t i = 0; i < k; i++)
		sinks[i].fn(s, n, sinks[i].arg);
}

static const char *const loincs[VP__COUNT] = {
#define VITALS_X_LOINC(n, loinc, ucum, text) [VP_##n] = loinc,
	VITALS_PARAMS(VITALS_X_LOINC)
#undef VITALS_X_LOINC
};

static const char *const units[VP__COUNT] = {
#define VITALS_X_UNIT(n, loinc, ucum, text) [VP_##n] = ucum,
	VITALS_PARAMS(VITALS_X_UNIT)
#undef VITALS_X_UNIT
};

const char *vitals_param_loinc(enum vitals_param p)
{
	return (unsigned)p < VP__COUNT ? loincs[p] : NULL;
}

const char *vitals_param_unit(enum vitals_param p)
{
	return (unsigned)p < VP__COUNT ? units[p] : NULL;
}

int vitals_param_from_loinc(const char *loinc, enum vitals_param *out)
{
	if (!loinc)
		return MC_EINVAL;
	for (int i = 0; i < VP__COUNT; i++)
		if (!strcmp(loinc, loincs[i])) {
			if (out)
				*out = (enum vitals_param)i;
			return MC_OK;
		}
	return MC_EINVAL;
}
