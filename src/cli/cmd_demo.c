/* cli/cmd_demo.c — `medcore demo`: load demo users, practitioners and patients (docs/demo.md).
 *
 * Order of work, and why:
 *   1. migrate; with --if-empty stop when any user exists (the users are written last, so their
 *      presence means a finished load);
 *   2. a helper thread hashes the twelve demo passwords (argon2id, ~120 ms each by design) while
 *      the patients load, so the hashing costs no wall time;
 *   3. one unit writes the Practitioners;
 *   4. DEMO_THREADS producer threads build and validate patients in batches of DEMO_BATCH and hand
 *      each batch to store_write() as one unit; the units queue up and the writer's group commit
 *      runs several in one transaction while the next batches are built. Every created resource
 *      is audited in the unit that creates it;
 *   5. one unit writes the users (linked to their Practitioner/Patient) and the care team.
 * Patient data is built from (seed, patient number) alone (demo_names.h), so the content does not
 * depend on which thread builds which batch; MRNs and ids are assigned by the store.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "cli/demo_names.h"
#include "core/err.h"
#include "core/mctime.h"
#include "core/mem.h"
#include "fhir/resource.h"
#include "fhir/store.h"
#include "modules/patients/patients.h"
#include "store/store.h"

#define DEMO_BATCH 200            /* patients per write unit: one savepoint stays small */
/* Producers. They are mostly blocked in store_write; having several units queued lets the writer's
 * group commit put up to DEMO_THREADS units (1,600 patients) in one transaction, which measured
 * 25 % faster than two producers at 30k patients (fewer commits and WAL frames per row). */
#define DEMO_THREADS 8
#define DEMO_MAX_PATIENTS 1000000 /* a sane cap: 1e6 patients is ~5 GB of database */
#define DEMO_CARE_TEAM 50         /* patients the demo doctor and nurse care for */
#define DEMO_ACTOR "medcore-demo" /* audit actor name for the loader */

/* The demo accounts. Passwords are public (docs/demo.md) and meet the password policy. */
struct demo_user {
	const char *username;
	enum auth_role role;
	const char *password;
};
static const struct demo_user demo_users[] = {
	{"admin", ROLE_ADMIN, "Demo-Admin-2026!"},
	{"doctor", ROLE_DOCTOR, "Demo-Doctor-2026!"},
	{"nurse", ROLE_NURSE, "Demo-Nurse-2026!"},
	{"pharmacist", ROLE_PHARMACIST, "Demo-Pharmacist-2026!"},
	{"lab_tech", ROLE_LAB_TECH, "Demo-LabTech-2026!"},
	{"receptionist", ROLE_RECEPTIONIST, "Demo-Reception-2026!"},
	{"billing", ROLE_BILLING, "Demo-Billing-2026!"},
	{"patient", ROLE_PATIENT, "Demo-Patient-2026!"},
	{"device", ROLE_DEVICE, "Demo-Device-2026!"},
	{"analyst", ROLE_ANALYST, "Demo-Analyst-2026!"},
	{"auditor", ROLE_AUDITOR, "Demo-Auditor-2026!"},
	{"integration", ROLE_INTEGRATION, "Demo-Integration-2026!"},
};
#define NUSERS (sizeof(demo_users) / sizeof(demo_users[0]))

struct demo_opts {
	const char *db;
	long long patients;
	bool if_empty;
	uint64_t seed;
};

/* Shared state of one load. */
struct demo {
	struct store *store;
	const struct demo_opts *o;
	char pract_ids[DEMO_PRACTITIONERS][65];
	const char *gp_ids[DEMO_PRACTITIONERS];
	/* patients the doctor and nurse care for: numbers i with i % care_stride == 0, slot i / stride */
	long long care_stride;
	size_t ncare;
	char care_ids[DEMO_CARE_TEAM][65];
	/* work distribution and first error */
	atomic_llong next_batch;
	atomic_int err;
	atomic_llong created;
	/* password hashes, filled by the hash thread */
	char hashes[NUSERS][AUTH_PWHASH_MAX];
	int hash_rc;
	int64_t user_ids[NUSERS];
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: medcore demo --db URL [--patients N] [--seed S] [--if-empty]\n"
		"  --db URL       database (sqlite:PATH); default $MEDCORE_DB\n"
		"  --patients N   number of patients to create (default 1000, at most %d)\n"
		"  --seed S       seed for the generated data (default 42); the same seed gives the same people\n"
		"  --if-empty     do nothing when the database already has users\n"
		"Creates one user per role with a published DEMO password (docs/demo.md): never use on\n"
		"a database that holds real patient data.\n",
		DEMO_MAX_PATIENTS);
}

/* Parse a non-negative decimal integer that must lie in [lo, hi]. */
static int parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	if (!s || !*s)
		return MC_EINVAL;
	long long v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return MC_EINVAL;
		if (v > (hi - (*p - '0')) / 10)
			return MC_EINVAL;   /* would pass hi (also guards overflow) */
		v = v * 10 + (*p - '0');
	}
	if (v < lo)
		return MC_EINVAL;
	*out = v;
	return MC_OK;
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (!s || !*s)
		return MC_EINVAL;
	uint64_t v = 0;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return MC_EINVAL;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return MC_EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return MC_OK;
}

/* Returns MC_OK, MC_EINVAL (message printed) or -1 for --help. */
static int parse_opts(int argc, char **argv, struct demo_opts *o)
{
	o->db = getenv("MEDCORE_DB");
	o->patients = 1000;
	o->if_empty = false;
	o->seed = 42;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		const char *eq = strchr(a, '=');
		char name[32];
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		if (nlen >= sizeof(name)) {
			fprintf(stderr, "medcore demo: unknown option (see --help)\n");
			return MC_EINVAL;
		}
		memcpy(name, a, nlen);
		name[nlen] = '\0';
		if (!strcmp(name, "--help") || !strcmp(name, "-h"))
			return -1;
		if (!strcmp(name, "--if-empty")) {
			if (eq) {
				fprintf(stderr, "medcore demo: --if-empty takes no value\n");
				return MC_EINVAL;
			}
			o->if_empty = true;
			continue;
		}
		if (strcmp(name, "--db") && strcmp(name, "--patients") && strcmp(name, "--seed")) {
			fprintf(stderr, "medcore demo: unknown option '%s' (see --help)\n", name);
			return MC_EINVAL;
		}
		if (eq)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val || !*val) {
			fprintf(stderr, "medcore demo: %s needs a value\n", name);
			return MC_EINVAL;
		}
		if (!strcmp(name, "--db")) {
			o->db = val;
		} else if (!strcmp(name, "--patients")) {
			if (parse_ll(val, 1, DEMO_MAX_PATIENTS, &o->patients)) {
				fprintf(stderr, "medcore demo: --patients must be 1..%d\n", DEMO_MAX_PATIENTS);
				return MC_EINVAL;
			}
		} else if (parse_u64(val, &o->seed)) {
			fprintf(stderr, "medcore demo: --seed must be a non-negative integer\n");
			return MC_EINVAL;
		}
	}
	if (!o->db || !*o->db) {
		fprintf(stderr, "medcore demo: --db URL is required (or set MEDCORE_DB)\n");
		return MC_EINVAL;
	}
	return MC_OK;
}

/* ---- units of work ---- */

static int unit_count_users(struct store_txn *t, void *arg)
{
	return store_query_int(t, "SELECT count(*) FROM users", NULL, 0, (int64_t *)arg);
}

static int audit_create(struct store_txn *t, const char *type, const struct fhir_meta *m)
{
	struct audit_rec a = {
		.username = DEMO_ACTOR,
		.action = "create",
		.resource_type = type,
		.resource_id = m->id,
		.patient_id = m->patient_id[0] ? m->patient_id : NULL,
		.outcome = 201,
		.reason = "demo data load",
	};
	return audit_append(t, &a);
}

static int unit_practitioners(struct store_txn *t, void *arg)
{
	struct demo *d = arg;
	for (size_t i = 0; i < DEMO_PRACTITIONERS; i++) {
		json_t *p = demo_practitioner_new(i);
		struct fhir_meta m;
		int rc = fhir_store_create(t, "Practitioner", p, &m);
		json_decref(p);
		if (!rc)
			rc = audit_create(t, "Practitioner", &m);
		if (rc)
			return rc;
		snprintf(d->pract_ids[i], sizeof(d->pract_ids[i]), "%s", m.id);
		d->gp_ids[i] = d->pract_ids[i];
	}
	return MC_OK;
}

struct batch {
	struct demo *d;
	long long first;   /* patient number of pats[0] */
	size_t n;
	json_t *pats[DEMO_BATCH];
};

static int unit_patients(struct store_txn *t, void *arg)
{
	struct batch *b = arg;
	struct demo *d = b->d;
	for (size_t i = 0; i < b->n; i++) {
		struct fhir_meta m;
		char mrn[16];
		int rc = patients_create_txn(t, b->pats[i], &m, mrn);
		if (!rc)
			rc = audit_create(t, "Patient", &m);
		if (rc)
			return rc;
		long long num = b->first + (long long)i;
		if (num % d->care_stride == 0 && (size_t)(num / d->care_stride) < d->ncare)
			snprintf(d->care_ids[num / d->care_stride], sizeof(d->care_ids[0]), "%s", m.id);
	}
	return MC_OK;
}

static int unit_users(struct store_txn *t, void *arg)
{
	struct demo *d = arg;
	int64_t doctor = 0, nurse = 0;
	for (size_t i = 0; i < NUSERS; i++) {
		const struct demo_user *u = &demo_users[i];
		const char *patient = u->role == ROLE_PATIENT ? d->care_ids[0] : NULL;
		const char *pract = u->role == ROLE_DOCTOR ? d->pract_ids[DEMO_PRACT_DOCTOR]
				  : u->role == ROLE_NURSE ? d->pract_ids[DEMO_PRACT_NURSE]
							  : NULL;
		int rc = auth_user_create(t, u->username, d->hashes[i], u->role, patient, pract, &d->user_ids[i]);
		if (rc) {
			fprintf(stderr, "medcore demo: cannot create user %s: %s\n", u->username, mc_wire_code(rc));
			return rc;
		}
		struct audit_rec a = {
			.username = DEMO_ACTOR,
			.action = "user-create",
			.resource_id = u->username,
			.outcome = 201,
			.reason = "demo data load",
		};
		rc = audit_append(t, &a);
		if (rc)
			return rc;
		if (u->role == ROLE_DOCTOR)
			doctor = d->user_ids[i];
		else if (u->role == ROLE_NURSE)
			nurse = d->user_ids[i];
	}
	for (size_t i = 0; i < d->ncare; i++) {
		int rc = auth_care_team_add(t, d->care_ids[i], doctor, DEMO_ACTOR);
		if (!rc)
			rc = auth_care_team_add(t, d->care_ids[i], nurse, DEMO_ACTOR);
		if (rc)
			return rc;
	}
	return MC_OK;
}

/* ---- threads ---- */

static void *hash_thread(void *arg)
{
	struct demo *d = arg;
	d->hash_rc = MC_OK;
	for (size_t i = 0; i < NUSERS; i++) {
		/* Hash each password exactly once; a policy failure is a bug in the table above. */
		const char *why = NULL;
		int rc = auth_password_policy(demo_users[i].password, &why);
		if (!rc)
			rc = auth_password_hash(NULL, demo_users[i].password, d->hashes[i]);
		if (rc) {
			fprintf(stderr, "medcore demo: password for %s: %s\n", demo_users[i].username,
				why ? why : mc_wire_code(rc));
			d->hash_rc = rc;
			return NULL;
		}
	}
	return NULL;
}

static void *patient_thread(void *arg)
{
	struct demo *d = arg;
	struct batch *b = mc_calloc(1, sizeof(*b));
	b->d = d;
	long long total = d->o->patients;
	while (!atomic_load(&d->err)) {
		long long bi = atomic_fetch_add(&d->next_batch, 1);
		long long first = bi * DEMO_BATCH;
		if (first >= total)
			break;
		b->first = first;
		b->n = (size_t)(total - first < DEMO_BATCH ? total - first : DEMO_BATCH);
		int rc = MC_OK;
		for (size_t i = 0; i < b->n; i++) {
			b->pats[i] = demo_patient_new(d->o->seed, (uint64_t)(first + (long long)i), d->gp_ids,
						      DEMO_PRACTITIONERS);
			struct fhir_issues iss;
			if (!rc && fhir_validate(b->pats[i], "Patient", &iss)) {
				/* A generator bug: say where, never what (it is still person-like data). */
				fprintf(stderr, "medcore demo: generated patient %lld is invalid at %s: %s\n",
					first + (long long)i, iss.n ? iss.v[0].path : "?", iss.n ? iss.v[0].msg : "?");
				rc = MC_EINTERNAL;
			}
		}
		if (!rc)
			rc = store_write(d->store, unit_patients, b);
		for (size_t i = 0; i < b->n; i++)
			json_decref(b->pats[i]);
		if (rc) {
			int zero = 0;
			atomic_compare_exchange_strong(&d->err, &zero, rc);
			break;
		}
		atomic_fetch_add(&d->created, (long long)b->n);
	}
	free(b);
	return NULL;
}

static double secs_since(int64_t t0_us)
{
	return (double)(mctime_mono_us() - t0_us) / 1e6;
}

static void print_accounts(void)
{
	printf("\n  DEMO ONLY: these passwords are published in docs/demo.md. Never use them with real data.\n");
	printf("  %-12s %-13s %s\n", "username", "role", "password");
	printf("  %-12s %-13s %s\n", "------------", "-------------", "----------------------");
	for (size_t i = 0; i < NUSERS; i++)
		printf("  %-12s %-13s %s\n", demo_users[i].username, auth_role_name(demo_users[i].role),
		       demo_users[i].password);
	printf("  (admin and auditor must enrol TOTP on first login when --mfa-roles lists them)\n\n");
}

static int load(struct demo *d)
{
	const struct demo_opts *o = d->o;
	int64_t t0 = mctime_mono_us();
	pthread_t hasher;
	if (pthread_create(&hasher, NULL, hash_thread, d)) {
		fprintf(stderr, "medcore demo: cannot start a thread\n");
		return MC_EINTERNAL;
	}
	int rc = store_write(d->store, unit_practitioners, d);
	if (rc) {
		fprintf(stderr, "medcore demo: writing practitioners failed: %s\n", mc_wire_code(rc));
		pthread_join(hasher, NULL);
		return rc;
	}

	d->care_stride = o->patients / DEMO_CARE_TEAM;
	if (d->care_stride < 1)
		d->care_stride = 1;
	d->ncare = (size_t)((o->patients + d->care_stride - 1) / d->care_stride);
	if (d->ncare > DEMO_CARE_TEAM)
		d->ncare = DEMO_CARE_TEAM;

	int64_t tp = mctime_mono_us();
	pthread_t workers[DEMO_THREADS];
	int started = 0;
	for (; started < DEMO_THREADS; started++)
		if (pthread_create(&workers[started], NULL, patient_thread, d))
			break;
	if (started == 0)
		patient_thread(d);   /* no threads to be had: do it here */
	for (int i = 0; i < started; i++)
		pthread_join(workers[i], NULL);
	double tpat = secs_since(tp);
	pthread_join(hasher, NULL);
	rc = atomic_load(&d->err);
	if (rc) {
		fprintf(stderr, "medcore demo: writing patients failed after %lld: %s\n",
			(long long)atomic_load(&d->created), mc_wire_code(rc));
		return rc;
	}
	if (d->hash_rc)
		return d->hash_rc;
	rc = store_write(d->store, unit_users, d);
	if (rc) {
		fprintf(stderr, "medcore demo: writing users failed: %s\n", mc_wire_code(rc));
		return rc;
	}
	double total = secs_since(t0);
	printf("medcore demo: %zu users, %d practitioners, %lld patients (seed %" PRIu64 ")\n", NUSERS,
	       DEMO_PRACTITIONERS, o->patients, o->seed);
	printf("medcore demo: patients loaded in %.2f s (%.0f patients/s); total %.2f s\n", tpat,
	       tpat > 0 ? (double)o->patients / tpat : 0.0, total);
	printf("medcore demo: doctor and nurse are on the care team of %zu patients; "
	       "user 'patient' is Patient/%s\n", d->ncare, d->care_ids[0]);
	print_accounts();
	return MC_OK;
}

int cmd_demo(int argc, char **argv)
{
	struct demo_opts o;
	int rc = parse_opts(argc, argv, &o);
	if (rc < 0) {
		usage(stdout);
		return 0;
	}
	if (rc) {
		usage(stderr);
		return 2;
	}
	struct store *s = NULL;
	if (cli_open_store(o.db, 1, &s))
		return 1;
	int64_t nusers = 0;
	rc = store_read(s, unit_count_users, &nusers);
	if (rc) {
		fprintf(stderr, "medcore demo: cannot read users: %s\n", mc_wire_code(rc));
		store_close(s);
		return 1;
	}
	if (nusers > 0) {
		store_close(s);
		if (o.if_empty) {
			printf("demo data already present\n");
			return 0;
		}
		fprintf(stderr, "medcore demo: the database already has users; the demo loads into an empty "
				"database (use --if-empty to skip quietly)\n");
		return 1;
	}
	struct demo *d = mc_calloc(1, sizeof(*d));
	atomic_init(&d->next_batch, 0);
	atomic_init(&d->err, MC_OK);
	atomic_init(&d->created, 0);
	d->store = s;
	d->o = &o;
	rc = load(d);
	free(d);
	store_close(s);
	return rc ? 1 : 0;
}
