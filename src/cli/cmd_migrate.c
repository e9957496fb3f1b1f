/* cli/cmd_migrate.c — `medcore migrate [--db URL]`: apply the missing database migrations.
 *
 * The database URL comes from --db, else the MEDCORE_DB environment variable, else
 * sqlite:medcore.db. Prints "migrated: N applied, schema version V" on success.
 * Exit codes: 0 done, 1 failed, 2 bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: medcore migrate [--db URL]\n\n"
		"Applies the database migrations this binary carries that the database lacks.\n\n"
		"  --db URL   database, e.g. sqlite:medcore.db (default: $MEDCORE_DB, else sqlite:medcore.db)\n"
		"  --help     this text\n");
}

int cmd_migrate(int argc, char **argv)
{
	const char *url = getenv("MEDCORE_DB");
	if (!url || !url[0])
		url = "sqlite:medcore.db";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--db") && i + 1 < argc) {
			url = argv[++i];
		} else if (!strncmp(argv[i], "--db=", 5)) {
			url = argv[i] + 5;
		} else {
			fprintf(stderr, "medcore migrate: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}

	struct store *s = NULL;
	if (cli_open_store(url, 0, &s))
		return 1;
	int applied = 0, current = 0, latest = 0;
	int rc = store_migrate(s, &applied);
	if (rc == MC_OK)
		rc = store_schema_version(s, &current, &latest);
	store_close(s);
	if (rc) {
		fprintf(stderr, "medcore migrate: migration failed: %s\n", mc_wire_code(rc));
		return 1;
	}
	printf("migrated: %d applied, schema version %d\n", applied, current);
	return 0;
}
