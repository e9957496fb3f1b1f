/* core/metrics.c — a mutex-protected list for registration, atomics for updates. */
#include "core/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

enum mkind { M_COUNTER, M_GAUGE, M_HIST };

static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NB (sizeof(bounds) / sizeof(bounds[0]))

struct metric {
	struct metric *next;
	enum mkind kind;
	char *name, *help, *labels;
	_Atomic int64_t value;              /* counter/gauge; histogram count */
	_Atomic uint64_t sum_us;            /* histogram sum, microseconds */
	_Atomic uint64_t buckets[NB];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct metric *head, *tail;

static struct metric *reg(enum mkind k, const char *name, const char *help, const char *labels)
{
	labels = labels ? labels : "";
	pthread_mutex_lock(&mu);
	struct metric *same = NULL;   /* the family's last member: a new label set goes right after it */
	for (struct metric *m = head; m; m = m->next) {
		if (strcmp(m->name, name))
			continue;
		if (!strcmp(m->labels, labels)) {
			pthread_mutex_unlock(&mu);
			return m;
		}
		same = m;
	}
	struct metric *m = mc_calloc(1, sizeof(*m));
	m->kind = k;
	m->name = mc_strdup(name);
	m->help = mc_strdup(help ? help : "");
	m->labels = mc_strdup(labels);
	if (same) {
		/* Keep a family contiguous (one HELP/TYPE block) even when label sets are registered
		 * lazily, e.g. one per event name or consumer. */
		m->next = same->next;
		same->next = m;
		if (tail == same)
			tail = m;
	} else {
		if (tail)
			tail->next = m;
		else
			head = m;
		tail = m;
	}
	pthread_mutex_unlock(&mu);
	return m;
}

struct metric *metrics_counter(const char *n, const char *h, const char *l) { return reg(M_COUNTER, n, h, l); }
struct metric *metrics_gauge(const char *n, const char *h, const char *l) { return reg(M_GAUGE, n, h, l); }
struct metric *metrics_histogram(const char *n, const char *h, const char *l) { return reg(M_HIST, n, h, l); }

void metrics_add(struct metric *m, int64_t n) { atomic_fetch_add_explicit(&m->value, n, memory_order_relaxed); }
void metrics_set(struct metric *m, int64_t v) { atomic_store_explicit(&m->value, v, memory_order_relaxed); }

void metrics_observe(struct metric *m, double s)
{
	atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, (uint64_t)(s * 1e6), memory_order_relaxed);
	for (size_t i = 0; i < NB; i++) {
		if (s <= bounds[i]) {
			atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
			break;
		}
	}
}

static void lbl(struct buf *o, const char *labels, const char *extra)
{
	if (!labels[0] && !extra)
		return;
	buf_putc(o, '{');
	buf_puts(o, labels);
	if (extra) {
		if (labels[0])
			buf_putc(o, ',');
		buf_puts(o, extra);
	}
	buf_putc(o, '}');
}

int metrics_render(struct buf *o)
{
	static const char *types[] = {"counter", "gauge", "histogram"};
	pthread_mutex_lock(&mu);
	const char *last = "";
	for (struct metric *m = head; m; m = m->next) {
		if (strcmp(last, m->name)) {
			/* HELP/TYPE once per family: reg() keeps each family's members together. */
			buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, types[m->kind]);
			last = m->name;
		}
		int64_t v = atomic_load(&m->value);
		if (m->kind != M_HIST) {
			buf_puts(o, m->name);
			lbl(o, m->labels, NULL);
			buf_printf(o, " %lld\n", (long long)v);
			continue;
		}
		uint64_t cum = 0;
		char le[48];
		for (size_t i = 0; i < NB; i++) {
			cum += atomic_load(&m->buckets[i]);
			snprintf(le, sizeof(le), "le=\"%g\"", bounds[i]);
			buf_printf(o, "%s_bucket", m->name);
			lbl(o, m->labels, le);
			buf_printf(o, " %llu\n", (unsigned long long)cum);
		}
		buf_printf(o, "%s_bucket", m->name);
		lbl(o, m->labels, "le=\"+Inf\"");
		buf_printf(o, " %lld\n%s_sum", (long long)v, m->name);
		lbl(o, m->labels, NULL);
		buf_printf(o, " %.6f\n%s_count", (double)atomic_load(&m->sum_us) / 1e6, m->name);
		lbl(o, m->labels, NULL);
		buf_printf(o, " %lld\n", (long long)v);
	}
	pthread_mutex_unlock(&mu);
	return MC_OK;
}

void metrics_free_all(void)
{
	pthread_mutex_lock(&mu);
	for (struct metric *m = head, *n; m; m = n) {
		n = m->next;
		free(m->name);
		free(m->help);
		free(m->labels);
		free(m);
	}
	head = tail = NULL;
	pthread_mutex_unlock(&mu);
}
