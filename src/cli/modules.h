/* cli/modules.h — the one module table: every module's routes, handed to the server.
 * Adding a module = one line in modules.c. */
#ifndef MC_CLI_MODULES_H
#define MC_CLI_MODULES_H
#include <stddef.h>

#include "http/route.h"

/* Every route table served, the server's own health routes included; entries are never NULL. */
extern const struct route_table *const cli_route_tables[];
extern const size_t cli_route_tables_n;

/* Every event consumer a module contributes (events/events.h): serve runs them in-process (unless
 * --inprocess-consumers says otherwise), `medcore worker --consumers` from Kafka, `medcore
 * projections rebuild --name` replays one. Entries are never NULL; names are unique. */
struct events_consumer;
extern const struct events_consumer *const cli_consumers[];
extern const size_t cli_consumers_n;
/* The consumer of that name, or NULL. */
const struct events_consumer *cli_consumer_find(const char *name);

#endif
