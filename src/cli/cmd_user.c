/* cli/cmd_user.c — `medcore user add|disable|enable|reset-mfa`: manage accounts from the shell.
 *
 *   medcore user add --username U --role R --password-stdin [--patient ID] [--practitioner ID]
 *   medcore user disable --username U
 *   medcore user enable --username U        (also clears a lockout)
 *   medcore user reset-mfa --username U     (the user must enrol TOTP again)
 * Every form takes --db URL (default: $MEDCORE_DB, else sqlite:medcore.db). The password is read
 * from the first line of stdin (never from argv, where `ps` would show it) and must meet the
 * policy. Each change is audited as actor "cli". Exit codes: 0 done, 1 failed, 2 bad usage.
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
		"usage: medcore user add --username U --role R --password-stdin [--patient ID] [--practitioner ID]\n"
		"       medcore user disable --username U\n"
		"       medcore user enable --username U\n"
		"       medcore user reset-mfa --username U\n\n"
		"  --db URL          database (default: $MEDCORE_DB, else sqlite:medcore.db)\n"
		"  --password-stdin  read the password from the first line of standard input\n"
		"roles: admin doctor nurse pharmacist lab_tech receptionist billing patient device analyst auditor integration\n"
		"password policy: at least 12 characters with an upper-case letter, a digit and a special character\n");
}

struct user_op {
	const char *op, *username, *patient, *practitioner, *hash;
	enum auth_role role;
	int64_t id;
};

static int op_unit(struct store_txn *t, void *arg)
{
	struct user_op *u = arg;
	int rc;
	struct audit_rec ar = {.username = "cli", .role = "system", .resource_type = "User", .outcome = 200};
	char idtxt[24] = "";
	if (!strcmp(u->op, "add")) {
		rc = auth_user_create(t, u->username, u->hash, u->role, u->patient, u->practitioner, &u->id);
		ar.action = "user-create";
		ar.outcome = 201;
		snprintf(idtxt, sizeof(idtxt), "%lld", (long long)u->id);
		ar.resource_id = idtxt;
	} else if (!strcmp(u->op, "disable")) {
		rc = auth_user_set_active(t, u->username, false);
		ar.action = "user-disable";
	} else if (!strcmp(u->op, "enable")) {
		rc = auth_user_set_active(t, u->username, true);
		ar.action = "user-enable";
	} else {
		rc = auth_user_reset_mfa(t, u->username);
		ar.action = "user-reset-mfa";
	}
	if (rc)
		return rc;
	ar.reason = u->username;   /* the account acted on (an identifier, not PHI) */
	return audit_append(t, &ar);
}

/* First line of stdin, without the newline. MC_EINVAL when empty or too long. */
static int read_password(char *out, size_t cap)
{
	if (!fgets(out, (int)cap, stdin))
		return MC_EINVAL;
	size_t n = strlen(out);
	if (n && out[n - 1] == '\n')
		out[--n] = '\0';
	else if (n == cap - 1)
		return MC_EINVAL;   /* longer than the buffer */
	if (n && out[n - 1] == '\r')
		out[--n] = '\0';
	return n ? MC_OK : MC_EINVAL;
}

int cmd_user(int argc, char **argv)
{
	const char *url = getenv("MEDCORE_DB");
	if (!url || !url[0])
		url = "sqlite:medcore.db";
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	struct user_op u = {.op = argv[1]};
	if (strcmp(u.op, "add") && strcmp(u.op, "disable") && strcmp(u.op, "enable") && strcmp(u.op, "reset-mfa")) {
		fprintf(stderr, "medcore user: unknown action '%s'\n", u.op);
		usage(stderr);
		return 2;
	}
	const char *role = NULL;
	bool pw_stdin = false;
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = !strcmp(a, "--db")		 ? &url
				   : !strcmp(a, "--username")	 ? &u.username
				   : !strcmp(a, "--role")	 ? &role
				   : !strcmp(a, "--patient")	 ? &u.patient
				   : !strcmp(a, "--practitioner") ? &u.practitioner
								 : NULL;
		if (dst && i + 1 < argc) {
			*dst = argv[++i];
		} else if (!strcmp(a, "--password-stdin")) {
			pw_stdin = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "medcore user: unexpected argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!u.username) {
		fprintf(stderr, "medcore user: --username is required\n");
		return 2;
	}
	char hash[AUTH_PWHASH_MAX];
	if (!strcmp(u.op, "add")) {
		if (!role || auth_role_parse(role, &u.role)) {
			fprintf(stderr, "medcore user: --role must be one of the roles below\n");
			usage(stderr);
			return 2;
		}
		if (!pw_stdin) {
			fprintf(stderr, "medcore user: add needs --password-stdin\n");
			return 2;
		}
		if (!auth_username_valid(u.username)) {
			fprintf(stderr, "medcore user: username must be 3-63 characters of letters, digits, . _ @ -\n");
			return 1;
		}
		if (u.role == ROLE_PATIENT && !u.patient) {
			fprintf(stderr, "medcore user: a patient user needs --patient ID\n");
			return 1;
		}
		char pw[AUTH_PASSWORD_MAX + 2];
		const char *why = NULL;
		int rc = read_password(pw, sizeof(pw));
		if (rc == MC_OK)
			rc = auth_password_policy(pw, &why);
		else
			why = "no password on standard input (or longer than 1024 characters)";
		if (rc == MC_OK)
			rc = auth_password_hash(NULL, pw, hash);
		sodium_memzero(pw, sizeof(pw));
		if (rc) {
			fprintf(stderr, "medcore user: %s\n", why ? why : "cannot hash the password");
			return 1;
		}
		u.hash = hash;
	}
	struct store *s = NULL;
	if (cli_open_store(url, 1, &s))
		return 1;
	int rc = store_write(s, op_unit, &u);
	store_close(s);
	sodium_memzero(hash, sizeof(hash));
	if (rc == MC_ECONFLICT) {
		fprintf(stderr, "medcore user: username '%s' is taken\n", u.username);
		return 1;
	}
	if (rc == MC_ENOTFOUND) {
		fprintf(stderr, "medcore user: no user '%s'\n", u.username);
		return 1;
	}
	if (rc == MC_EINVAL) {
		fprintf(stderr, "medcore user: invalid username, patient or practitioner id\n");
		return 1;
	}
	if (rc) {
		fprintf(stderr, "medcore user: failed: %s\n", mc_wire_code(rc));
		return 1;
	}
	if (!strcmp(u.op, "add"))
		printf("%lld\n", (long long)u.id);
	else
		printf("%s: done\n", u.op);
	return 0;
}
