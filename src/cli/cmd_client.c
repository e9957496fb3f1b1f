/* cli/cmd_client.c — `medcore client add`: register an OAuth2 client (client-credentials grant).
 *
 *   medcore client add --name N --scopes "system/Observation.read system/Patient.write" [--db URL]
 *
 * Prints "client_id: ..." and "client_secret: ..." on stdout; the secret is stored only hashed and
 * cannot be shown again. The client acts as a user named after its client_id (role integration):
 * `medcore user disable --username <client_id>` revokes it. Audited as "client-create" by "cli".
 * Exit codes: 0 done, 1 failed, 2 bad usage.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "core/err.h"
#include "store/store.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: medcore client add --name N --scopes \"system/*.read system/Patient.write\" [--db URL]\n\n"
		"  --db URL      database (default: $MEDCORE_DB, else sqlite:medcore.db)\n"
		"  --name N      a label for the client (1-100 characters)\n"
		"  --scopes S    the most the client may be granted: space-separated SMART scopes\n"
		"                <system|user|patient>/<Type|*>.<read|write|*> (or .cruds letters)\n");
}

struct client_op {
	const char *name, *scopes;
	char id[AUTH_CLIENT_ID_MAX], secret[AUTH_CLIENT_SECRET_MAX];
};

static int add_unit(struct store_txn *t, void *arg)
{
	struct client_op *c = arg;
	int rc = auth_oauth_client_add(t, c->name, c->scopes, c->id, c->secret);
	if (rc)
		return rc;
	struct audit_rec ar = {.username = "cli", .role = "system", .action = "client-create",
			       .resource_type = "Client", .resource_id = c->id, .outcome = 201};
	return audit_append(t, &ar);
}

int cmd_client(int argc, char **argv)
{
	const char *url = getenv("MEDCORE_DB");
	if (!url || !url[0])
		url = "sqlite:medcore.db";
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "add")) {
		fprintf(stderr, "medcore client: unknown action '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}
	struct client_op c;
	memset(&c, 0, sizeof(c));
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = !strcmp(a, "--db") ? &url : !strcmp(a, "--name") ? &c.name
							: !strcmp(a, "--scopes")	       ? &c.scopes
										       : NULL;
		if (dst && i + 1 < argc) {
			*dst = argv[++i];
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "medcore client: unexpected argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!c.name || !c.scopes) {
		fprintf(stderr, "medcore client: --name and --scopes are required\n");
		return 2;
	}
	if (!auth_scope_valid(c.scopes)) {
		fprintf(stderr, "medcore client: --scopes must be SMART resource scopes such as system/Patient.read\n");
		return 1;
	}
	struct store *s = NULL;
	if (cli_open_store(url, 1, &s))
		return 1;
	int rc = store_write(s, add_unit, &c);
	store_close(s);
	if (rc == MC_EINVAL) {
		fprintf(stderr, "medcore client: invalid name or scopes\n");
		return 1;
	}
	if (rc) {
		fprintf(stderr, "medcore client: failed: %s\n", mc_wire_code(rc));
		return 1;
	}
	printf("client_id: %s\nclient_secret: %s\n", c.id, c.secret);
	sodium_memzero(c.secret, sizeof(c.secret));
	return 0;
}
