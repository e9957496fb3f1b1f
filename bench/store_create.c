/* bench/store_create.c — durable FHIR creates without HTTP: THREADS submitters each queue store_write
 * units shaped like POST /fhir/Patient's (patients_create_txn: MRN, fhir_store_create with its index
 * rows and outbox events, then the request's audit record) against a fresh SQLite database, and the
 * program prints creates/s and the writer thread's CPU per create. With --no-index the same units run
 * with index extraction switched off (fhir_store_bench_no_index), which gives the index overhead.
 *
 * Build and run: sh bench/store_create.sh [BUILD_DIR] [N] [--no-index]
 * (a non-test program; it only touches a temporary directory). */
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/err.h"
#include "core/log.h"
#include "fhir/store.h"
#include "modules/patients/patients.h"
#include "store/store.h"

#define THREADS 64

extern bool fhir_store_bench_no_index;   /* fhir/store.c: a benchmark-only switch */

static struct store *st;
static atomic_long next_i;
static long total;
static atomic_long failures;
static pid_t tids[THREADS + 1];

struct unit_arg {
	json_t *pat;
	long i;
};

static int create_unit(struct store_txn *t, void *arg)
{
	struct unit_arg *u = arg;
	struct fhir_meta m;
	char mrn[16];
	int rc = patients_create_txn(t, u->pat, &m, mrn);
	if (rc)
		return rc;
	char rid[32];
	snprintf(rid, sizeof(rid), "bench-%ld", u->i);
	struct audit_rec rec = {.user_id = 1, .username = "integration", .role = "service", .action = "create",
				.resource_type = "Patient", .resource_id = m.id, .patient_id = m.id,
				.outcome = 201, .request_id = rid, .client_ip = "127.0.0.1"};
	return audit_append(t, &rec);
}

static void *submitter(void *arg)
{
	tids[(long)arg] = (pid_t)syscall(SYS_gettid);
	static const char *const fam[] = {"Benchmark", "Lasttest", "Wrkmann", "Durable", "Groupcommit", "Müller"};
	for (;;) {
		long i = atomic_fetch_add(&next_i, 1);
		if (i >= total)
			break;
		char body[512];
		snprintf(body, sizeof(body),
			 "{\"resourceType\":\"Patient\",\"active\":true,\"name\":[{\"family\":\"%s\",\"given\":[\"Wrk\",\"T%ld\"]}],"
			 "\"gender\":\"female\",\"birthDate\":\"19%02ld-0%ld-1%ld\"}",
			 fam[i % 6], i % 64, 50 + i % 40, 1 + i % 9, i % 9);
		struct unit_arg u = {json_loads(body, 0, NULL), i};
		if (!u.pat || store_write(st, create_unit, &u) != MC_OK)
			atomic_fetch_add(&failures, 1);
		json_decref(u.pat);
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (utime + stime) of every thread of this process that is not ours: the writer. */
static double writer_cpu(void)
{
	DIR *d = opendir("/proc/self/task");
	double sum = 0;
	struct dirent *e;
	long hz = sysconf(_SC_CLK_TCK);
	while (d && (e = readdir(d))) {
		pid_t tid = (pid_t)atol(e->d_name);
		if (tid <= 0)
			continue;
		bool mine = false;
		for (int i = 0; i <= THREADS; i++)
			mine |= tids[i] == tid;
		if (mine)
			continue;
		char path[64], line[1024];
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t n = fread(line, 1, sizeof(line) - 1, f);
		fclose(f);
		line[n] = '\0';
		char *p = strrchr(line, ')');
		unsigned long ut = 0, stt = 0;
		/* after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) == 2)
			sum += (double)(ut + stt) / (double)hz;
	}
	if (d)
		closedir(d);
	return sum;
}

static int run(long n, double *rate, double *wus)
{
	total = n;
	atomic_store(&next_i, 0);
	pthread_t th[THREADS];
	double c0 = writer_cpu(), t0 = now_s();
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, submitter, (void *)(i + 1));
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	double t1 = now_s(), c1 = writer_cpu();
	*rate = (double)n / (t1 - t0);
	*wus = (c1 - c0) * 1e6 / (double)n;
	return atomic_load(&failures) ? 1 : 0;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 20000;
	fhir_store_bench_no_index = argc > 2 && !strcmp(argv[2], "--no-index");
	log_min_level = LOG_WARN;
	tids[0] = (pid_t)syscall(SYS_gettid);
	char dir[] = "/tmp/medcore-store-create.XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char url[128];
	snprintf(url, sizeof(url), "sqlite:%s/b.db", dir);
	if (store_open(url, &st) || store_migrate(st, NULL)) {
		fprintf(stderr, "cannot open or migrate %s\n", url);
		return 1;
	}
	double rate, wus;
	/* warm-up: fills the caches and grows the database a little */
	run(n / 4 > 0 ? n / 4 : 1, &rate, &wus);
	int bad = run(n, &rate, &wus);
	struct store_stats ss;
	store_stats(st, &ss);
	printf("STORE_CREATE creates=%ld index=%s creates_per_s=%.0f writer_us_per_create=%.1f commits=%llu "
	       "units_per_commit=%.1f failures=%ld\n",
	       n, fhir_store_bench_no_index ? "off" : "on", rate, wus, (unsigned long long)ss.commits,
	       ss.commits ? (double)ss.units / (double)ss.commits : 0.0, atomic_load(&failures));
	store_close(st);
	audit_async_forget(st);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return bad;
}
