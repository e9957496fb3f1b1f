/* cli/cmd_audit.c — `medcore audit verify [--db URL]`: walk the audit hash chain.
 *
 * Prints "audit chain intact: N records" and exits 0, or "audit chain broken at record SEQ: why"
 * and exits 1 (also 1 when the database cannot be read; 2 for bad usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

static void usage(FILE *out)
{
	fprintf(out, "usage: medcore audit verify [--db URL]\n\n"
		     "Checks every record of the hash-chained audit log: edits, removals and reordering are detected.\n"
		     "  --db URL   database (default: $MEDCORE_DB, else sqlite:medcore.db)\n");
}

int cmd_audit(int argc, char **argv)
{
	const char *url = getenv("MEDCORE_DB");
	if (!url || !url[0])
		url = "sqlite:medcore.db";
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "verify")) {
		fprintf(stderr, "medcore audit: unknown action '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--db") && i + 1 < argc) {
			url = argv[++i];
		} else if (!strncmp(argv[i], "--db=", 5)) {
			url = argv[i] + 5;
		} else {
			fprintf(stderr, "medcore audit: unexpected argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	struct store *s = NULL;
	if (cli_open_store(url, 0, &s))
		return 1;
	int64_t n = 0, bad = 0;
	char why[96] = "";
	int rc = audit_verify(s, &n, &bad, why, sizeof(why));
	store_close(s);
	if (rc == MC_OK) {
		printf("audit chain intact: %lld records\n", (long long)n);
		return 0;
	}
	if (rc == MC_ECONFLICT) {
		printf("audit chain broken at record %lld: %s\n", (long long)bad, why);
		return 1;
	}
	fprintf(stderr, "medcore audit: cannot read the audit log: %s\n", mc_wire_code(rc));
	return 1;
}
