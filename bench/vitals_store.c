/* bench/vitals_store.c — throwaway measurement of the vitals store without HTTP: sustained append
 * rate (2 threads, batches of BATCH samples over PATIENTS x 6 parameters, background checkpoints on,
 * a counting sink on the publish path as the alert engine would be) and the latency of a 24 h range
 * query over 1 Hz data. Build and run: sh bench/vitals.sh store [BUILD_DIR]. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/mctime.h"
#include "modules/vitals/vitals.h"
#include "modules/vitals/vstore.h"

#define PATIENTS 1000
#define BATCH 20000
#define THREADS 2

static struct vstore *vs;
static atomic_bool stop;
static _Atomic uint64_t done, sunk;
static int64_t t_base;

static void sink(const struct vitals_sample *s, size_t n, void *arg)
{
	(void)s;
	(void)arg;
	sunk += n;
}

static void *writer(void *arg)
{
	long id = (long)arg;
	struct vitals_sample *b = calloc(BATCH, sizeof(*b));
	int64_t k = 0;
	while (!stop) {
		for (size_t i = 0; i < BATCH; i++, k++) {
			int64_t p = (k / 6) % PATIENTS;
			snprintf(b[i].patient_id, sizeof(b[i].patient_id), "bench-patient-%ld-%04lld", id, (long long)p);
			b[i].param = (enum vitals_param)(k % 6);
			b[i].value = 50 + (double)(k % 40);
			b[i].ts_ms = t_base + (k / (6 * PATIENTS)) * 5;   /* 200 Hz per series */
		}
		if (vstore_append(vs, b, BATCH)) {
			fprintf(stderr, "append failed\n");
			exit(1);
		}
		vitals_sinks_publish(b, BATCH);
		done += BATCH;
	}
	free(b);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	log_min_level = LOG_WARN;
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	int secs = argc > 2 ? atoi(argv[2]) : 10;
	char url[512];
	snprintf(url, sizeof(url), "sqlite:%s/bench-vitals.db", dir);
	struct vstore_config cfg = {.retention_days = 30, .background = true};
	if (vstore_open(url, &cfg, &vs))
		return 1;
	vitals_sink_add(sink, NULL);
	t_base = mctime_now_ms() - 20 * 86400000LL;

	pthread_t th[THREADS];
	int64_t t0 = mctime_mono_us();
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, writer, (void *)i);
	sleep((unsigned)secs);
	stop = true;
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	double el = (double)(mctime_mono_us() - t0) / 1e6;
	struct vstore_stats st;
	vstore_stats(vs, &st);
	printf("{\"scenario\":\"vstore_append\",\"samples\":%llu,\"seconds\":%.2f,\"samples_per_s\":%.0f,"
	       "\"batch\":%d,\"checkpoints\":%llu,\"parts_written\":%llu,\"sunk\":%llu}\n",
	       (unsigned long long)done, el, (double)done / el, BATCH, (unsigned long long)st.checkpoints,
	       (unsigned long long)st.parts_written, (unsigned long long)sunk);

	/* 24 h of 1 Hz heart rate for one patient, then range queries over all of it */
	int64_t day0 = mctime_now_ms() - 86400000LL;
	struct vitals_sample *b = calloc(3600, sizeof(*b));
	for (int h = 0; h < 24; h++) {
		for (int i = 0; i < 3600; i++) {
			snprintf(b[i].patient_id, sizeof(b[i].patient_id), "range-patient");
			b[i].param = VP_HR;
			b[i].value = 60 + i % 30;
			b[i].ts_ms = day0 + (int64_t)(h * 3600 + i) * 1000;
		}
		vstore_append(vs, b, 3600);
	}
	free(b);
	vstore_checkpoint(vs);
	if (getenv("BENCH_QUIET_RANGE"))   /* let the background checkpoint of the append phase finish */
		sleep(6);
	enum { Q = 300 };
	int64_t lat[Q];
	size_t n = 0;
	for (int q = 0; q < Q; q++) {
		struct vstore_point *pts;
		int64_t a = mctime_mono_us();
		vstore_range(vs, "range-patient", VP_HR, day0, day0 + 86400000LL, 0, &pts, &n);
		lat[q] = mctime_mono_us() - a;
		free(pts);
	}
	qsort(lat, Q, sizeof(lat[0]), cmp64);
	printf("{\"scenario\":\"vstore_range_24h_1hz\",\"points\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n", n,
	       (double)lat[Q / 2] / 1e3, (double)lat[Q * 99 / 100] / 1e3);
	struct vstore_bucket *bk;
	size_t nb;
	for (int q = 0; q < Q; q++) {
		int64_t a = mctime_mono_us();
		vstore_rollup(vs, "range-patient", VP_HR, day0, day0 + 86400000LL, 60000, 0, &bk, &nb);
		lat[q] = mctime_mono_us() - a;
		free(bk);
	}
	qsort(lat, Q, sizeof(lat[0]), cmp64);
	printf("{\"scenario\":\"vstore_rollup_24h_1m\",\"buckets\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f}\n", nb,
	       (double)lat[Q / 2] / 1e3, (double)lat[Q * 99 / 100] / 1e3);
	vstore_close(vs);
	return 0;
}
