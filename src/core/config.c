/* core/config.c — the settings table. */
#include "core/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/mem.h"

enum ctype { C_STR, C_INT, C_BOOL };

struct setting {
	const char *flag, *env;
	enum ctype type;
	size_t off;
	const char *dflt;
	int64_t min, max;
	const char *help;
};

#define S(f, e, t, field, d, lo, hi, h) {f, e, t, offsetof(struct mc_config, field), d, lo, hi, h}
static const struct setting settings[] = {
	S("listen", "MEDCORE_LISTEN", C_STR, listen, "127.0.0.1:8080", 0, 0, "address to serve on, HOST:PORT (port 0 picks a free one)"),
	S("db", "MEDCORE_DB", C_STR, db, "sqlite:medcore.db", 0, 0, "database URL: sqlite:PATH or postgres://..."),
	S("log-level", "MEDCORE_LOG_LEVEL", C_STR, log_level, "info", 0, 0, "debug, info, warn, error or off"),
	S("cors-origins", "MEDCORE_CORS_ORIGINS", C_STR, cors_origins, "", 0, 0, "allowed CORS origins: empty = none, * = any, or a comma list"),
	S("mfa-roles", "MEDCORE_MFA_ROLES", C_STR, mfa_roles, "admin,auditor", 0, 0, "roles that must log in with a TOTP code"),
	S("token-secret", "MEDCORE_TOKEN_SECRET", C_STR, token_secret, "", 0, 0, "HMAC key for access tokens (>= 32 chars); empty = generated once and kept in the database"),
	S("export-dir", "MEDCORE_EXPORT_DIR", C_STR, export_dir, "", 0, 0, "directory for bulk-export NDJSON files; empty = next to the SQLite database (<db>-export)"),
	S("threads", "MEDCORE_THREADS", C_INT, threads, "0", 0, 256, "HTTP worker threads; 0 = number of cores"),
	S("workers", "MEDCORE_WORKERS", C_INT, workers, "64", 1, 1024, "threads that run write requests; each waits for its group commit, so more of them make bigger batches"),
	S("max-body", "MEDCORE_MAX_BODY", C_INT, max_body, "1048576", 1024, 67108864, "largest request body in bytes"),
	S("max-header", "MEDCORE_MAX_HEADER", C_INT, max_header, "16384", 1024, 1048576, "largest request header block in bytes"),
	S("request-timeout", "MEDCORE_REQUEST_TIMEOUT", C_INT, request_timeout, "30", 1, 3600, "seconds an idle or slow connection is kept"),
	S("access-ttl", "MEDCORE_ACCESS_TTL", C_INT, access_ttl, "900", 30, 86400, "access token lifetime in seconds"),
	S("refresh-ttl", "MEDCORE_REFRESH_TTL", C_INT, refresh_ttl, "604800", 300, 7776000, "refresh token lifetime in seconds"),
	S("lockout-threshold", "MEDCORE_LOCKOUT_THRESHOLD", C_INT, lockout_threshold, "5", 1, 100, "failed logins that lock an account"),
	S("lockout-minutes", "MEDCORE_LOCKOUT_MINUTES", C_INT, lockout_minutes, "15", 1, 10080, "minutes an account stays locked"),
	S("break-glass-minutes", "MEDCORE_BREAK_GLASS_MINUTES", C_INT, break_glass_minutes, "60", 1, 1440, "how long a break-the-glass grant lasts"),
	S("login-workers", "MEDCORE_LOGIN_WORKERS", C_INT, login_workers, "4", 1, 64, "password hashes computed at once (each takes 64 MiB)"),
	S("page-max", "MEDCORE_PAGE_MAX", C_INT, page_max, "1000", 10, 10000, "largest page size a search may ask for"),
	S("alert-escalate-seconds", "MEDCORE_ALERT_ESCALATE_SECONDS", C_INT, alert_escalate_seconds, "300", 0, 86400, "escalate a vitals alert still unacknowledged after this many seconds; 0 = never"),
	S("alert-stale-seconds", "MEDCORE_ALERT_STALE_SECONDS", C_INT, alert_stale_seconds, "120", 0, 86400, "raise stale-data / device-disconnected alerts after this many seconds without samples; 0 = off"),
	S("audit-reads", "MEDCORE_AUDIT_READS", C_BOOL, audit_reads, "true", 0, 1, "record reads of patient data in the audit chain"),
	S("kafka-brokers", "MEDCORE_KAFKA_BROKERS", C_STR, kafka_brokers, "", 0, 0, "Kafka bootstrap servers (host:port,...): publish domain events to medcore.domain-events; empty = no Kafka"),
	S("inprocess-consumers", "MEDCORE_INPROCESS_CONSUMERS", C_STR, inprocess_consumers, "all", 0, 0, "event consumers serve runs in-process: all, none, or a comma list (the rest run in `medcore worker`)"),
	S("vitals-db", "MEDCORE_VITALS_DB", C_STR, vitals_db, "", 0, 0, "vitals store URL (sqlite:PATH or postgres://...); empty = <sqlite db path>-vitals.db, or the main PostgreSQL database"),
	S("vitals-retention-days", "MEDCORE_VITALS_RETENTION_DAYS", C_INT, vitals_retention_days, "30", 1, 3650, "days of vitals samples kept; older whole minutes are deleted"),
	S("vitals-device-rate", "MEDCORE_VITALS_DEVICE_RATE", C_INT, vitals_device_rate, "50", 1, 10000000, "vitals samples per second one device may send, sustained"),
	S("vitals-device-burst", "MEDCORE_VITALS_DEVICE_BURST", C_INT, vitals_device_burst, "500", 1, 100000000, "vitals samples one device may send at once (token bucket size)"),
};
#undef S
#define NSET (sizeof(settings) / sizeof(settings[0]))

static int set(struct mc_config *c, const struct setting *s, const char *v, char *err, size_t errsz, const char *src)
{
	char *base = (char *)c + s->off;
	switch (s->type) {
	case C_STR: {
		char **p = (char **)base;
		free(*p);
		*p = mc_strdup(v);
		return MC_OK;
	}
	case C_INT: {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < s->min || n > s->max) {
			snprintf(err, errsz, "%s %s: expected an integer in [%lld, %lld]", src, s->flag,
				 (long long)s->min, (long long)s->max);
			return MC_EINVAL;
		}
		*(int64_t *)base = n;
		return MC_OK;
	}
	case C_BOOL:
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "on"))
			*(bool *)base = true;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "off"))
			*(bool *)base = false;
		else {
			snprintf(err, errsz, "%s %s: expected true or false", src, s->flag);
			return MC_EINVAL;
		}
		return MC_OK;
	}
	return MC_EINVAL;
}

void config_defaults(struct mc_config *c)
{
	char err[160];   /* defaults are valid: never filled, but sized like the rest */
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < NSET; i++)
		set(c, &settings[i], settings[i].dflt, err, sizeof(err), "default");
}

int config_load(struct mc_config *c, int argc, char **argv, int *used, char *err, size_t errsz)
{
	config_defaults(c);
	for (size_t i = 0; i < NSET; i++) {
		const char *v = getenv(settings[i].env);
		if (v && set(c, &settings[i], v, err, errsz, settings[i].env))
			return MC_EINVAL;
	}
	int i = 0;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2))
			break;
		const char *name = a + 2, *eq = strchr(name, '='), *val;
		size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
		const struct setting *s = NULL;
		for (size_t k = 0; k < NSET; k++)
			if (strlen(settings[k].flag) == nlen && !strncmp(settings[k].flag, name, nlen))
				s = &settings[k];
		if (!s) {
			snprintf(err, errsz, "unknown option --%.*s (see --help)", (int)nlen, name);
			return MC_EINVAL;
		}
		if (eq) {
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			snprintf(err, errsz, "option --%s needs a value", s->flag);
			return MC_EINVAL;
		}
		if (set(c, s, val, err, errsz, "option"))
			return MC_EINVAL;
	}
	if (used)
		*used = i;
	if (c->token_secret[0] && strlen(c->token_secret) < 32) {
		snprintf(err, errsz, "token-secret must be at least 32 characters");
		return MC_EINVAL;
	}
	return MC_OK;
}

void config_release(struct mc_config *c)
{
	for (size_t i = 0; i < NSET; i++) {
		if (settings[i].type == C_STR) {
			char **p = (char **)((char *)c + settings[i].off);
			free(*p);
			*p = NULL;
		}
	}
}

void config_help(FILE *out)
{
	fprintf(out, "settings (command-line flag > environment variable > default):\n");
	for (size_t i = 0; i < NSET; i++) {
		const struct setting *s = &settings[i];
		fprintf(out, "  --%-20s %-28s %s\n  %-51s default: %s\n", s->flag, s->env, s->help, "",
			s->dflt[0] ? s->dflt : "(empty)");
	}
}

bool config_list_has(const char *list, const char *item)
{
	size_t n = strlen(item);
	for (const char *p = list; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *e = p;
		while (*e && *e != ',')
			e++;
		const char *t = e;
		while (t > p && t[-1] == ' ')
			t--;
		if ((size_t)(t - p) == n && !strncmp(p, item, n))
			return true;
		p = e;
	}
	return false;
}
