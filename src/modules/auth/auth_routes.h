/* modules/auth/auth_routes.h — the /api/v1/auth routes (login, refresh, logout, me, MFA,
 * break-the-glass) and /api/v1/admin/users. Handlers parse and call auth/ domain functions; the
 * dispatcher authenticates and checks each route's permission first. */
#ifndef MC_MODULES_AUTH_ROUTES_H
#define MC_MODULES_AUTH_ROUTES_H
#include "http/route.h"

extern const struct route_table auth_routes;

#endif
