/* cli/modules.c — the one module table (DESIGN §9): each module's route table, in match order
 * (the router picks the most specific pattern, so order only matters for the OpenAPI listing).
 *
 * A module's header is included once it exists in the tree (__has_include), so the table builds
 * while modules land one by one; a module whose header exists must also define its table. */
#include "cli/modules.h"
#include "http/server.h"

#if __has_include("modules/auth/auth_routes.h")
#include "modules/auth/auth_routes.h"
#define HAVE_AUTH_ROUTES 1
#endif
#if __has_include("modules/audit/audit_routes.h")
#include "modules/audit/audit_routes.h"
#define HAVE_AUDIT_ROUTES 1
#endif
#if __has_include("fhir/rest.h")
#include "fhir/rest.h"
#define HAVE_FHIR_ROUTES 1
#endif
#if __has_include("modules/patients/patients.h")
#include "modules/patients/patients.h"
#define HAVE_PATIENTS_ROUTES 1
#endif

const struct route_table *const cli_route_tables[] = {
	&health_routes,
#ifdef HAVE_AUTH_ROUTES
	&auth_routes,
#endif
#ifdef HAVE_AUDIT_ROUTES
	&audit_routes,
#endif
#ifdef HAVE_PATIENTS_ROUTES
	&patients_routes,
#endif
#ifdef HAVE_FHIR_ROUTES
	&fhir_routes,
#endif
};

const size_t cli_route_tables_n = sizeof(cli_route_tables) / sizeof(cli_route_tables[0]);
