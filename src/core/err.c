/* core/err.c — tables generated from MC_ERRORS. */
#include "core/err.h"

static const struct {
	int http;
	const char *wire, *fhir, *name;
} mc_table[] = {
#define MC_X_ROW(name, http, wire, fhir) {http, wire, fhir, #name},
	MC_ERRORS(MC_X_ROW)
#undef MC_X_ROW
};

static int known(int code) { return code >= 0 && code < MC__COUNT; }

int mc_http_status(int code) { return known(code) ? mc_table[code].http : 500; }
const char *mc_wire_code(int code) { return known(code) ? mc_table[code].wire : "INTERNAL_ERROR"; }
const char *mc_fhir_code(int code) { return known(code) ? mc_table[code].fhir : "exception"; }
const char *mc_code_name(int code) { return known(code) ? mc_table[code].name : "EUNKNOWN"; }
