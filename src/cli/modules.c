/* cli/modules.c — the one module table (DESIGN §9): each module's route table. Adding a module
 * is one #include and one line here. Order does not decide matching (the router picks the most
 * specific pattern); it is the order of the OpenAPI listing. */
#include "cli/modules.h"
#include "fhir/rest.h"
#include "http/server.h"
#include "modules/audit/audit_routes.h"
#include "modules/auth/auth_routes.h"
#include "modules/patients/patients.h"

const struct route_table *const cli_route_tables[] = {
	&health_routes,
	&auth_routes,
	&patients_routes,
	&audit_routes,
	&fhir_routes,
};

const size_t cli_route_tables_n = sizeof(cli_route_tables) / sizeof(cli_route_tables[0]);
