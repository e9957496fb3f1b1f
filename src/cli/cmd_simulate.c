/* cli/cmd_simulate.c — `medcore simulate`: realistic device vitals streamed through the real HTTP
 * ingest API (POST /api/v1/vitals, NDJSON batches, one keep-alive connection).
 *
 * It registers N patients (or uses --patient-ids), registers one monitor per patient, binds it,
 * then every --batch-ms posts the samples due: heart rate, respiratory rate, SpO2, blood pressure
 * and temperature with circadian variation and noise (with --params 8 also the level of
 * consciousness, ACVPU "alert", and the oxygen flow, 0 = air: the eight NEWS2 inputs), occasional
 * artefacts (a dropped SpO2 probe, a motion spike), and for K patients a sepsis-like course: rising
 * HR, RR and temperature, falling SpO2 and systolic pressure, reaching its worst at
 * --deteriorate-after seconds (default: --seconds) and staying there — a short value makes a
 * NEWS2 alert come within seconds (tests, demos).
 *
 * The HTTP client is deliberately tiny (HTTP/1.1 over a plain socket, Content-Length bodies only)
 * and talks to 127.0.0.1/localhost only: it is a load and demo tool, not a general client.
 */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/mctime.h"
#include "core/mem.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
#define SIM_PATIENTS_MAX 10000
#define RESP_MAX (4u << 20)

struct conn {
	int fd;
	char host[64];
	int port;
	char token[2100];
};

static int conn_open(struct conn *c)
{
	if (c->fd >= 0)
		return 0;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd < 0)
		return -1;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One request; *status and body (reset first). Reconnects once when a kept-alive socket died. */
static int http_do(struct conn *c, const char *method, const char *path, const char *ctype, const char *body,
		   size_t blen, int *status, struct buf *resp)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (conn_open(c))
			return -1;
		char head[2600];
		int hn = snprintf(head, sizeof(head),
				  "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: keep-alive\r\n%s%s%s"
				  "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
				  method, path, c->host, c->port, c->token[0] ? "Authorization: Bearer " : "", c->token,
				  c->token[0] ? "\r\n" : "", ctype, blen);
		if (hn <= 0 || (size_t)hn >= sizeof(head))
			return -1;
		if (send_all(c->fd, head, (size_t)hn) || (blen && send_all(c->fd, body, blen))) {
			conn_close(c);
			continue;
		}
		buf_reset(resp);
		char tmp[16384];
		size_t hdr_end = 0, clen = 0;
		bool have_hdr = false;
		for (;;) {
			ssize_t k = recv(c->fd, tmp, sizeof(tmp), 0);
			if (k <= 0)
				break;
			if (buf_append(resp, tmp, (size_t)k))
				return -1;
			if (!have_hdr) {
				char *e = strstr(resp->data, "\r\n\r\n");
				if (!e)
					continue;
				have_hdr = true;
				hdr_end = (size_t)(e - resp->data) + 4;
				*status = atoi(resp->data + 9);
				for (char *h = resp->data; h < e; h = strstr(h, "\r\n") + 2) {
					if (!strncasecmp(h, "Content-Length:", 15))
						clen = strtoul(h + 15, NULL, 10);
					if (!strstr(h, "\r\n"))
						break;
				}
			}
			if (have_hdr && resp->len >= hdr_end + clen)
				break;
		}
		if (!have_hdr || resp->len < hdr_end + clen) {
			conn_close(c);
			continue;
		}
		memmove(resp->data, resp->data + hdr_end, clen);
		resp->len = clen;
		resp->data[clen] = 0;
		return 0;
	}
	return -1;
}

/* POST/PUT JSON; returns the parsed response (caller decrefs) or NULL. */
static json_t *api(struct conn *c, const char *method, const char *path, json_t *body, int *status)
{
	char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
	struct buf resp = BUF_INIT;
	buf_init(&resp, RESP_MAX);
	json_t *out = NULL;
	if (!http_do(c, method, path, "application/json", txt ? txt : "", txt ? strlen(txt) : 0, status, &resp))
		out = json_loads(resp.data ? resp.data : "", 0, NULL);
	free(txt);
	buf_release(&resp);
	return out;
}

/* ---- the physiology ---- */

static double gauss(void)
{
	double u = (rand() + 1.0) / ((double)RAND_MAX + 2.0), v = (rand() + 1.0) / ((double)RAND_MAX + 2.0);
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

struct simpat {
	char patient[65], device[65];
	double base_hr, base_rr, base_sys, base_temp, base_spo2;
	bool septic;
};

/* severity 0..1 over the run for septic patients */
static void vitals_now(const struct simpat *p, double t_day_frac, double sev, double out[6])
{
	double circ = sin(2 * M_PI * (t_day_frac - 0.25));   /* low at night, high in the afternoon */
	out[0] = p->base_hr + 5 * circ + 2 * gauss() + sev * 45;             /* HR */
	out[1] = p->base_rr + 0.8 * circ + 0.7 * gauss() + sev * 14;         /* RR */
	out[2] = p->base_spo2 + 0.6 * gauss() - sev * 9;                     /* SpO2 */
	out[3] = p->base_sys + 6 * circ + 3 * gauss() - sev * 45;            /* systolic */
	out[4] = out[3] * 0.62 + 2 * gauss();                                /* diastolic */
	out[5] = p->base_temp + 0.3 * circ + 0.05 * gauss() + sev * 2.2;     /* temperature */
	if (out[2] > 100)
		out[2] = 100;
	if (rand() % 2000 == 0)
		out[2] = 60 + rand() % 20;   /* artefact: the probe slipped */
	if (rand() % 3000 == 0)
		out[0] += 60;                /* artefact: motion */
}

static const char *const codes[8] = {"8867-4", "9279-1", "59408-5", "8480-6", "8462-4", "8310-5", "67775-7",
				     "3151-8"};
static const char *const units[8] = {"/min", "/min", "%", "mm[Hg]", "mm[Hg]", "Cel", "{score}", "L/min"};
static const int decimals[8] = {0, 0, 0, 0, 0, 1, 0, 0};

static int usage(FILE *out)
{
	fprintf(out,
		"usage: medcore simulate --url http://127.0.0.1:PORT (--token T | --user U --password P)\n"
		"                        [--patients N] [--rate HZ] [--deteriorate K] [--seconds S]\n"
		"                        [--batch-ms MS] [--patient-ids a,b,...] [--seed N]\n"
		"                        [--deteriorate-after S] [--params 6|8]\n");
	return out == stdout ? 0 : 2;
}

int cmd_simulate(int argc, char **argv)
{
	const char *url = NULL, *token = NULL, *user = NULL, *pass = NULL, *ids = NULL;
	long npat = 10, deter = 0, secs = 60, batch_ms = 1000, seed = 1, ramp_s = 0, nparams = 6;
	double rate = 1;
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return usage(stdout);
		if (!v)
			return usage(stderr);
		if (!strcmp(a, "--url"))
			url = v;
		else if (!strcmp(a, "--token"))
			token = v;
		else if (!strcmp(a, "--user"))
			user = v;
		else if (!strcmp(a, "--password"))
			pass = v;
		else if (!strcmp(a, "--patient-ids"))
			ids = v;
		else if (!strcmp(a, "--patients"))
			npat = strtol(v, NULL, 10);
		else if (!strcmp(a, "--rate"))
			rate = strtod(v, NULL);
		else if (!strcmp(a, "--deteriorate"))
			deter = strtol(v, NULL, 10);
		else if (!strcmp(a, "--seconds"))
			secs = strtol(v, NULL, 10);
		else if (!strcmp(a, "--batch-ms"))
			batch_ms = strtol(v, NULL, 10);
		else if (!strcmp(a, "--seed"))
			seed = strtol(v, NULL, 10);
		else if (!strcmp(a, "--deteriorate-after"))
			ramp_s = strtol(v, NULL, 10);
		else if (!strcmp(a, "--params"))
			nparams = strtol(v, NULL, 10);
		else
			return usage(stderr);
	}
	struct conn c = {.fd = -1};
	if (!url || sscanf(url, "http://%63[^:/]:%d", c.host, &c.port) != 2 ||
	    (strcmp(c.host, "127.0.0.1") && strcmp(c.host, "localhost"))) {
		fprintf(stderr, "medcore simulate: --url must be http://127.0.0.1:PORT (loopback only)\n");
		return 2;
	}
	if (npat < 1 || npat > SIM_PATIENTS_MAX || rate <= 0 || rate > 1000 || deter < 0 || secs < 1 || batch_ms < 10 ||
	    ramp_s < 0 || ramp_s > 86400 * 365 || (nparams != 6 && nparams != 8)) {
		fprintf(stderr, "medcore simulate: --patients 1..10000, --rate 0..1000, --seconds >= 1, --batch-ms >= 10, "
				"--deteriorate-after 1..31536000, --params 6 or 8\n");
		return 2;
	}
	if (!ramp_s)
		ramp_s = secs;
	if (deter > npat)
		deter = npat;
	srand((unsigned)seed);
	int st = 0;
	if (token) {
		snprintf(c.token, sizeof(c.token), "%s", token);
	} else if (user && pass) {
		json_t *b = json_pack("{s:s, s:s}", "username", user, "password", pass);
		json_t *r = api(&c, "POST", "/api/v1/auth/login", b, &st);
		json_decref(b);
		const char *t = json_string_value(json_object_get(json_object_get(r, "data"), "access_token"));
		if (st != 200 || !t) {
			fprintf(stderr, "medcore simulate: login failed (HTTP %d)\n", st);
			json_decref(r);
			return 1;
		}
		snprintf(c.token, sizeof(c.token), "%s", t);
		json_decref(r);
	} else {
		return usage(stderr);
	}

	struct simpat *p = mc_calloc((size_t)npat, sizeof(*p));
	const char *idp = ids;
	for (long i = 0; i < npat; i++) {
		p[i].base_hr = 65 + 15 * (rand() / (double)RAND_MAX);
		p[i].base_rr = 13 + 4 * (rand() / (double)RAND_MAX);
		p[i].base_sys = 110 + 25 * (rand() / (double)RAND_MAX);
		p[i].base_temp = 36.5 + 0.5 * (rand() / (double)RAND_MAX);
		p[i].base_spo2 = 96 + 3 * (rand() / (double)RAND_MAX);
		p[i].septic = i < deter;
		if (idp && *idp) {
			size_t n = strcspn(idp, ",");
			snprintf(p[i].patient, sizeof(p[i].patient), "%.*s", (int)(n < 64 ? n : 64), idp);
			idp += n + (idp[n] == ',');
		} else {
			json_t *b = json_pack("{s:s, s:s, s:s, s:s, s:b}", "family", "Simulated", "given",
					      i < deter ? "Deteriorating" : "Stable", "birthDate", "1950-01-01", "gender",
					      i % 2 ? "female" : "male", "force", 1);
			json_t *r = api(&c, "POST", "/api/v1/patients/register", b, &st);
			json_decref(b);
			json_t *d = json_object_get(r, "data");
			const char *id = json_string_value(json_object_get(d, "id"));
			if (!id)
				id = json_string_value(json_object_get(d, "patient_id"));
			if (st != 201 || !id) {
				fprintf(stderr, "medcore simulate: registering a patient failed (HTTP %d)\n", st);
				json_decref(r);
				free(p);
				return 1;
			}
			snprintf(p[i].patient, sizeof(p[i].patient), "%s", id);
			json_decref(r);
		}
		char ident[96];
		snprintf(ident, sizeof(ident), "SIM-%ld-%ld-%ld", (long)time(NULL), seed, i);
		json_t *b = json_pack("{s:s, s:s}", "identifier", ident, "type", "multiparameter patient monitor");
		json_t *r = api(&c, "POST", "/api/v1/devices", b, &st);
		json_decref(b);
		const char *did = json_string_value(json_object_get(json_object_get(r, "data"), "id"));
		if (st != 201 || !did) {
			fprintf(stderr, "medcore simulate: registering a device failed (HTTP %d)\n", st);
			json_decref(r);
			free(p);
			return 1;
		}
		snprintf(p[i].device, sizeof(p[i].device), "%s", did);
		json_decref(r);
		char path[160];
		snprintf(path, sizeof(path), "/api/v1/devices/%s/bind", p[i].device);
		b = json_pack("{s:s}", "patient", p[i].patient);
		r = api(&c, "PUT", path, b, &st);
		json_decref(b);
		json_decref(r);
		if (st != 200) {
			fprintf(stderr, "medcore simulate: binding a device failed (HTTP %d)\n", st);
			free(p);
			return 1;
		}
	}

	struct buf body = BUF_INIT, resp = BUF_INIT;
	buf_init(&body, 64u << 20);
	buf_init(&resp, RESP_MAX);
	int64_t start = mctime_now_ms(), sent = 0, batches = 0, failed = 0, accepted = 0, rejected = 0;
	double carry = 0;
	int64_t last = start;
	int code = 0;
	while (mctime_now_ms() - start < secs * 1000) {
		struct timespec ts = {batch_ms / 1000, (batch_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		int64_t now = mctime_now_ms();
		double due = (double)(now - last) / 1000.0 * rate + carry;
		long k = (long)due;
		carry = due - (double)k;
		if (k <= 0)
			continue;
		buf_reset(&body);
		double sev_t = (double)(now - start) / (double)(ramp_s * 1000);
		if (sev_t > 1)
			sev_t = 1;
		for (long j = 0; j < k; j++) {
			int64_t t = last + (int64_t)((double)(now - last) * (double)(j + 1) / (double)k);
			double dayf = (double)(t % 86400000) / 86400000.0;
			for (long i = 0; i < npat; i++) {
				double v[8];
				vitals_now(&p[i], dayf, p[i].septic ? sev_t : 0, v);
				v[6] = 0;   /* ACVPU: alert */
				v[7] = 0;   /* air */
				for (int q = 0; q < nparams; q++)
					buf_printf(&body,
						   "{\"device\":\"%s\",\"patient\":\"%s\",\"code\":\"%s\",\"value\":%.*f,"
						   "\"unit\":\"%s\",\"ts\":%lld}\n",
						   p[i].device, p[i].patient, codes[q], decimals[q], v[q], units[q], (long long)t);
			}
		}
		last = now;
		if (http_do(&c, "POST", "/api/v1/vitals", "application/x-ndjson", body.data, body.len, &st, &resp) ||
		    st != 200) {
			failed++;
			fprintf(stderr, "medcore simulate: a batch failed (HTTP %d)\n", st);
			if (failed > 10) {
				code = 1;
				break;
			}
			continue;
		}
		sent += k * npat * nparams;
		batches++;
		json_t *rj = json_loads(resp.data ? resp.data : "", 0, NULL);
		json_t *rd = json_object_get(rj, "data");
		accepted += (int64_t)json_integer_value(json_object_get(rd, "accepted"));
		rejected += (int64_t)json_integer_value(json_object_get(rd, "rejected"));
		json_decref(rj);
	}
	printf("{\"patients\":%ld,\"deteriorating\":%ld,\"batches\":%lld,\"samples\":%lld,\"accepted\":%lld,"
	       "\"rejected\":%lld,\"failed_batches\":%lld}\n",
	       npat, deter, (long long)batches, (long long)sent, (long long)accepted, (long long)rejected, (long long)failed);
	buf_release(&body);
	buf_release(&resp);
	conn_close(&c);
	free(p);
	return code;
}
