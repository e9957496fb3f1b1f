/* modules/vitals/vitals_int.h — what the module's own files share (not for other modules). */
#ifndef MC_MODULES_VITALS_INT_H
#define MC_MODULES_VITALS_INT_H
#include <stdbool.h>
#include <stdint.h>

#include "http/route.h"
#include "modules/vitals/vitals.h"

struct app;
struct vstore;

/* The module's state: set by vitals_module_start*, read-only afterwards. */
struct vitals_mod {
	const struct app *app;
	struct vstore *vs;
	bool owned;
	int64_t retention_ms;
	double rate, burst;   /* per device token bucket */
};
extern struct vitals_mod vitals_g;

/* Forget the cached binding of device_id (after bind/unbind committed). */
void vitals_binding_forget(const char *device_id);
/* Ingest parsing and validation, exposed for unit tests. */
struct vitals_raw {
	char device[65], patient[65], code[16], unit[16];
	double value;
	int64_t ts_ms;
	unsigned have;   /* bit per field */
};
/* Parse one flat object starting at *p (leading spaces skipped) up to end; on success *p is after
 * the closing brace. MC_EINVAL with *why (static) on any syntax error, unknown or duplicate key. */
int vitals_parse_object(const char **p, const char *end, struct vitals_raw *out, const char **why);
/* Validate and canonicalize (units, LOINC mapping, range, time). MC_OK or MC_EINVAL with *code and
 * *why (static strings). now_ms: the server's clock. */
int vitals_validate(const struct vitals_raw *r, int64_t now_ms, int64_t retention_ms, struct vitals_sample *out,
		    const char **code, const char **why);

int vitals_h_device_create(struct req *r, struct reply *rep);
int vitals_h_device_bind(struct req *r, struct reply *rep);
int vitals_h_device_unbind(struct req *r, struct reply *rep);
int vitals_h_query(struct req *r, struct reply *rep);
int vitals_h_fhir(struct req *r, struct reply *rep);

#endif
