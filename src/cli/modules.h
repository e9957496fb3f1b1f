/* cli/modules.h — the one module table: every module's routes, handed to the server.
 * Adding a module = one line in modules.c. */
#ifndef MC_CLI_MODULES_H
#define MC_CLI_MODULES_H
#include <stddef.h>

#include "http/route.h"

/* Every route table served, the server's own health routes included; entries are never NULL. */
extern const struct route_table *const cli_route_tables[];
extern const size_t cli_route_tables_n;

#endif
