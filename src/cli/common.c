/* cli/common.c — start-up and store opening shared by the subcommands. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

void cli_init(void)
{
	if (sodium_init() < 0) {
		fprintf(stderr, "medcore: libsodium failed to initialise\n");
		exit(1);
	}
	json_object_seed(0);
}

int cli_open_store(const char *url, int migrate, struct store **out)
{
	int rc = store_open(url, out);
	if (rc) {
		/* the scheme only: a postgres:// URL may carry a password */
		const char *colon = strchr(url, ':');
		int scheme = colon ? (int)(colon - url) : 0;
		fprintf(stderr, "medcore: cannot open the %.*s database: %s\n", scheme > 16 ? 16 : scheme, url,
			mc_wire_code(rc));
		return rc;
	}
	if (migrate) {
		int applied = 0;
		rc = store_migrate(*out, &applied);
		if (rc) {
			fprintf(stderr, "medcore: migration failed: %s\n", mc_wire_code(rc));
			store_close(*out);
			*out = NULL;
			return rc;
		}
	}
	return MC_OK;
}
