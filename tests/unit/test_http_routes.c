/* tests/unit/test_http_routes.c — walk every route table in the module table (cli/modules.c):
 * default deny holds (each route is public or declares a valid permission or PERM_BY_TYPE), the
 * tables compile together without duplicates, and the OpenAPI document lists every route. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/modules.h"
#include "core/err.h"
#include "core/metrics.h"
#include "http/http_int.h"
#include "http/server.h"

static void test_every_route_declares_access(void **state)
{
	(void)state;
	size_t total = 0;
	for (size_t t = 0; t < cli_route_tables_n; t++) {
		const struct route_table *tab = cli_route_tables[t];
		assert_non_null(tab);
		for (size_t i = 0; i < tab->n; i++) {
			const struct route *r = &tab->routes[i];
			total++;
			bool pub = r->flags & ROUTE_PUBLIC, bytype = r->flags & ROUTE_PERM_BY_TYPE;
			if (!pub && !bytype && !r->permission)
				fail_msg("route %s %s: neither public nor a permission (default deny)", r->method,
					 r->pattern);
			if (r->permission) {
				enum auth_perm p;
				if (auth_perm_parse(r->permission, &p) != MC_OK)
					fail_msg("route %s %s: unknown permission %s", r->method, r->pattern,
						 r->permission);
			}
			if (bytype && !strstr(r->pattern, "{type}"))
				fail_msg("route %s %s: PERM_BY_TYPE without {type}", r->method, r->pattern);
			assert_non_null(r->fn);
			assert_true(r->pattern[0] == '/');
			if (!r->summary)
				fprintf(stderr, "note: route %s %s has no summary\n", r->method, r->pattern);
		}
	}
	assert_true(total >= health_routes.n);
}

static void test_tables_compile(void **state)
{
	(void)state;
	struct router *rt = NULL;
	char err[256] = "";
	int rc = router_build(cli_route_tables, cli_route_tables_n, &rt, err, sizeof(err));
	if (rc)
		fail_msg("router_build: %s", err);
	json_t *doc = http_openapi(rt, "test");
	json_t *paths = json_object_get(doc, "paths");
	for (size_t i = 0; i < rt->n; i++)
		assert_non_null(json_object_get(paths, rt->routes[i].r->pattern));
	assert_non_null(json_object_get(paths, "/api/v1/openapi.json"));
	json_decref(doc);
	router_free(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_route_declares_access),
		cmocka_unit_test(test_tables_compile),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_free_all();
	return rc;
}
