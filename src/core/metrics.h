/* core/metrics.h — a process-wide registry of counters and histograms, Prometheus text output.
 *
 * Metrics are registered once (at start-up or lazily) and never freed before exit; the returned
 * pointers stay valid for the life of the process. Updates are lock-free atomics.
 * A name+labels pair registers once; registering it again returns the same metric.
 */
#ifndef MC_CORE_METRICS_H
#define MC_CORE_METRICS_H
#include <stdint.h>

#include "core/buf.h"

struct metric;

/* labels: a Prometheus label set without braces, e.g. "route=\"/fhir/Patient\",status=\"200\"", or NULL */
struct metric *metrics_counter(const char *name, const char *help, const char *labels);
struct metric *metrics_gauge(const char *name, const char *help, const char *labels);
struct metric *metrics_histogram(const char *name, const char *help, const char *labels); /* seconds */
void metrics_add(struct metric *m, int64_t n);        /* counters and gauges */
void metrics_set(struct metric *m, int64_t v);        /* gauges */
void metrics_observe(struct metric *m, double seconds);
int metrics_render(struct buf *out);                  /* text exposition format 0.0.4 */
void metrics_free_all(void);                          /* at exit, for leak checkers */

#endif
