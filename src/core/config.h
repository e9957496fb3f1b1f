/* core/config.h — settings: command-line flags > MEDCORE_* environment > defaults.
 *
 * The settings are one table (config.c), each entry with its flag, environment name, bounds,
 * default and help text; `medcore serve --help` prints the table. Strings in struct mc_config
 * are owned by it and freed by config_release().
 */
#ifndef MC_CORE_CONFIG_H
#define MC_CORE_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct mc_config {
	char *listen;              /* HOST:PORT */
	char *db;                  /* sqlite:PATH | postgres://... */
	char *log_level;
	char *cors_origins;        /* "" off, "*" any, or a comma list of origins */
	char *mfa_roles;           /* comma list of roles that must use TOTP */
	char *token_secret;        /* "" = generate and keep in the database */
	char *export_dir;          /* bulk-export files; "" = "<sqlite db path>-export" */
	int64_t threads;           /* HTTP worker threads; 0 = number of cores */
	int64_t workers;           /* threads that run write requests (they wait for the group commit) */
	int64_t max_body;          /* bytes */
	int64_t max_header;        /* bytes, all headers together */
	int64_t request_timeout;   /* seconds a connection may idle */
	int64_t access_ttl;        /* seconds */
	int64_t refresh_ttl;       /* seconds */
	int64_t lockout_threshold; /* failed logins before lockout */
	int64_t lockout_minutes;
	int64_t break_glass_minutes;
	int64_t login_workers;     /* concurrent password hashes */
	int64_t page_max;          /* largest _count / page size */
	bool audit_reads;          /* audit reads of patient data */
	int64_t alert_escalate_seconds; /* vitals alerts: escalate when unacknowledged this long; 0 = never */
	int64_t alert_stale_seconds;    /* vitals alerts: stale parameter / silent device after; 0 = off */
	char *kafka_brokers;       /* "" = no Kafka; else bootstrap servers for the events bridge */
	char *inprocess_consumers; /* comma list of event consumers serve runs itself; "all" or "" (none) */
	char *vitals_db;           /* "" = <sqlite db>-vitals.db (or the main PostgreSQL database) */
	int64_t vitals_retention_days;
	int64_t vitals_device_rate;  /* samples/s per device, sustained */
	int64_t vitals_device_burst; /* token bucket size */
};

/* Fill c from defaults, then environment, then argv (flags "--name value" or "--name=value").
 * Unknown flags, bad values and out-of-range numbers give MC_EINVAL with a message in err.
 * *used receives the number of argv entries consumed (stops at the first non-flag). */
int config_load(struct mc_config *c, int argc, char **argv, int *used, char *err, size_t errsz);
void config_defaults(struct mc_config *c);
void config_release(struct mc_config *c);
void config_help(FILE *out);
/* true when role (e.g. "admin") is listed in the comma list */
bool config_list_has(const char *list, const char *item);

#endif
