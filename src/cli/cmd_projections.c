/* cli/cmd_projections.c — `medcore projections rebuild --name N [--from SEQ]`: reset a consumer's
 * checkpoint and replay the outbox into it (events_replay). Without --from the consumer's read model
 * is cleared first and rebuilt from the first event; with --from SEQ delivery restarts at SEQ over
 * the existing model (consumers are idempotent). A running serve notices the moved checkpoint and
 * continues from it. `medcore projections list` prints each consumer's checkpoint and lag.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/modules.h"
#include "core/config.h"
#include "core/err.h"
#include "core/mctime.h"
#include "core/metrics.h"
#include "events/events.h"
#include "store/store.h"

static int proj_usage(FILE *out)
{
	fprintf(out, "usage: medcore projections rebuild --name NAME [--from SEQ] [--db URL]\n"
		     "       medcore projections list [--db URL]\nconsumers:");
	for (size_t i = 0; i < cli_consumers_n; i++)
		fprintf(out, " %s", cli_consumers[i]->name);
	fprintf(out, "\n");
	return 0;
}

/* Take "--NAME VALUE" / "--NAME=VALUE" out of argv; MC_EINVAL when the value is missing. */
static int take(int *argc, char **argv, const char *name, const char **val)
{
	size_t nl = strlen(name);
	*val = NULL;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) || strncmp(a + 2, name, nl))
			continue;
		int drop;
		if (a[2 + nl] == '=') {
			*val = a + 3 + nl;
			drop = 1;
		} else if (a[2 + nl] == '\0') {
			if (i + 1 >= *argc)
				return MC_EINVAL;
			*val = argv[i + 1];
			drop = 2;
		} else {
			continue;
		}
		memmove(&argv[i], &argv[i + drop], (size_t)(*argc - i - drop) * sizeof(*argv));
		*argc -= drop;
		return MC_OK;
	}
	return MC_OK;
}

static int do_list(struct store *s)
{
	int64_t head = 0;
	if (events_head(s, &head))
		return 1;
	printf("outbox head: %lld\n", (long long)head);
	for (size_t i = 0; i < cli_consumers_n; i++) {
		int64_t ck = 0;
		if (events_checkpoint(s, cli_consumers[i]->name, &ck))
			return 1;
		printf("%-20s checkpoint %lld lag %lld\n", cli_consumers[i]->name, (long long)ck, (long long)(head - ck));
	}
	return 0;
}

int cmd_projections(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return argc < 2 ? (proj_usage(stderr), 2) : proj_usage(stdout);
	const char *sub = argv[1];
	if (strcmp(sub, "rebuild") && strcmp(sub, "list")) {
		fprintf(stderr, "medcore projections: unknown subcommand '%s'\n", sub);
		proj_usage(stderr);
		return 2;
	}
	argc--;
	argv++;   /* argv[0] is now the subcommand */
	const char *name = NULL, *from_s = NULL;
	int64_t from = 0;
	if (take(&argc, argv, "name", &name) || take(&argc, argv, "from", &from_s)) {
		fprintf(stderr, "medcore projections: a flag is missing its value\n");
		return 2;
	}
	const struct events_consumer *c = NULL;
	if (!strcmp(sub, "rebuild")) {
		c = cli_consumer_find(name);
		if (!c) {
			fprintf(stderr, "medcore projections rebuild: --name must name a consumer (see --help)\n");
			return 2;
		}
		if (from_s) {
			char *end;
			errno = 0;
			long long v = strtoll(from_s, &end, 10);
			if (errno || end == from_s || *end || v < 1) {
				fprintf(stderr, "medcore projections rebuild: --from must be a positive event seq\n");
				return 2;
			}
			from = v;
		}
	}
	struct mc_config cfg;
	int code = cli_load_config("projections", argc, argv, &cfg);
	if (code)
		return code;
	struct store *s = NULL;
	code = 1;
	if (cli_open_store(cfg.db, 1, &s) == MC_OK) {
		if (!c) {
			code = do_list(s);
		} else {
			int64_t n = 0, t0 = mctime_mono_us();
			int rc = events_replay(s, c, from, &n);
			if (rc) {
				fprintf(stderr, "medcore projections rebuild: %s failed after %lld events: %s\n", c->name,
					(long long)n, mc_wire_code(rc));
			} else {
				printf("rebuilt %s: %lld events replayed in %.1f ms\n", c->name, (long long)n,
				       (double)(mctime_mono_us() - t0) / 1e3);
				code = 0;
			}
		}
		store_close(s);
	}
	config_release(&cfg);
	metrics_free_all();
	return code;
}
