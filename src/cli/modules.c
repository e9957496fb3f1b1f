/* cli/modules.c — the one module table (DESIGN §9): each module's route table. Adding a module
 * is one #include and one line here. Order does not decide matching (the router picks the most
 * specific pattern); it is the order of the OpenAPI listing. */
#include "cli/modules.h"

#include <string.h>

#include "events/events.h"
#include "fhir/bundle.h"
#include "fhir/ops.h"
#include "fhir/rest.h"
#include "http/server.h"
#include "modules/audit/audit_routes.h"
#include "modules/auth/auth_routes.h"
#include "modules/clinical/clinical.h"
#include "modules/patients/patients.h"
#include "modules/medications/medications.h"
#include "modules/lab/lab.h"
#include "modules/dashboard/dashboard.h"
#include "modules/vitals/vitals_module.h"
#include "modules/vitals/live.h"   /* also declares alerts_routes (alerts.h) */
#include "modules/scheduling/scheduling.h"
#include "modules/staff/staff.h"

const struct route_table *const cli_route_tables[] = {
	&health_routes,
	&auth_routes,
	&patients_routes,
	&clinical_routes,
	&staff_routes,
	&scheduling_routes,
	&vitals_routes,
	&alerts_routes, &live_routes,
	&medications_routes,
	&lab_routes,
	&dashboard_routes,
	&audit_routes,
	&fhir_routes,
	&fhir_ops_routes,
	&fhir_bundle_routes,
};

const size_t cli_route_tables_n = sizeof(cli_route_tables) / sizeof(cli_route_tables[0]);

const struct events_consumer *const cli_consumers[] = {
	&events_patient_directory,
	&events_metrics_consumer,
	&scheduling_reminder_consumer,
};

const size_t cli_consumers_n = sizeof(cli_consumers) / sizeof(cli_consumers[0]);

const struct events_consumer *cli_consumer_find(const char *name)
{
	for (size_t i = 0; name && i < cli_consumers_n; i++)
		if (!strcmp(cli_consumers[i]->name, name))
			return cli_consumers[i];
	return NULL;
}
