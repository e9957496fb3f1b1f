/* modules/vitals/live.h — live push of vitals samples and alert changes to dashboards, over
 * WebSocket (RFC 6455, ws.h) or Server-Sent Events, and the WebSocket ingest endpoint for gateways.
 * Also the start/stop glue of vitals alerting (alerts.h) for `medcore serve`.
 *
 * Routes (read:patient_data unless noted; the token may also come as ?access_token= — see
 * ROUTE_QUERY_TOKEN in http/route.h for the trade-off):
 *   GET /api/v1/live/patient/{id}          one patient: clinical read access (care team, own
 *                                           record, break-the-glass) is checked at subscribe time
 *   GET /api/v1/live/ward/{locationId}     a ward: the patients placed at that Location in
 *                                           alert_patient_settings or with an Encounter located there,
 *                                           of those the caller may read (resolved when subscribing
 *                                           and again, within ~200 ms, after every device bind/unbind
 *                                           or alert-settings change: live_membership_changed());
 *                                           alert changes carrying the location as well
 *   GET /api/v1/vitals/stream              WebSocket only, write:patient_data (device, integration):
 *                                           each text message is an NDJSON batch for
 *                                           vitals_ingest_batch(); each is answered with a text
 *                                           message {"accepted":N,"rejected":N} or {"error":"code"}
 * With "Upgrade: websocket" the reply is 101 and messages are JSON text frames; otherwise the reply
 * is text/event-stream ("event: sample|alert", "id: N", "data: {json}"). Last-Event-ID is accepted
 * and ignored: nothing is replayed, the stream continues with live data (the vitals query API serves
 * history). ?decimate=1s (or 500ms, 1..60000 ms) sends at most one sample per parameter and patient
 * per interval (by sample time). Messages:
 *   {"type":"sample","patientId","deviceId","code","unit","value","ts"}
 *   {"type":"alert","action","provisional","alert":{"id","patientId","ruleKey","kind","severity",
 *    "status","locationId","updatedMs"}}
 *   A raise is pushed twice: at once when the engine decides it ("provisional":true, "action":
 *   "detected", "status":"pending", "id":null — the sample is durable, the alert not yet), then once
 *   durable with its id ("provisional":false; "raised", "retriggered", "severity" or "confirmed").
 *   Every other change is pushed once, durable. See docs/vitals.md "Alert latency".
 * Back-pressure: each subscriber has a queue of LIVE_QUEUE_MAX messages; when it is full the
 * subscriber is dropped (WebSocket close 1008, or the SSE stream ends). Publishing never waits for a
 * subscriber: ingest is never blocked.
 */
#ifndef MC_MODULES_VITALS_LIVE_H
#define MC_MODULES_VITALS_LIVE_H
#include <stddef.h>
#include <stdint.h>

#include "http/route.h"
#include "modules/vitals/alerts.h"
#include "modules/vitals/vitals.h"

struct app;

#define LIVE_QUEUE_MAX 1024       /* messages queued per subscriber */
#define LIVE_SUBSCRIBERS_MAX 4096
#define LIVE_WARD_MAX 512         /* patients of one ward subscription */
#define LIVE_INGEST_CONNS_MAX 16  /* concurrent WebSocket ingest connections */
#define LIVE_INGEST_MSG_MAX (8u << 20)

extern const struct route_table live_routes;

/* Start alerting (engine thread, escalation from cfg) and the live hub; register both sinks.
 * Call once, after the main store is open and before the HTTP server starts. */
int vitals_live_start(const struct app *app);
/* End every stream and WebSocket, stop the threads, write queued alert work. Call before
 * http_server_stop (streams count as requests in flight) and before store_close. Idempotent. */
void vitals_live_stop(void);

/* Ward memberships may have changed (a device bound/unbound, a patient's alert settings set):
 * ward subscriptions recompute their patients on the I/O thread. Cheap (a generation counter);
 * any thread. */
void live_membership_changed(void);

/* Exposed for tests and benchmarks: the hub's sink and alert-change hook. */
void live_publish_samples(const struct vitals_sample *s, size_t n);
void live_publish_alert(const struct alerts_change *c);
/* Counters: subscribers now, subscribers dropped for being slow, messages delivered. */
struct live_stats {
	uint64_t subscribers, dropped, delivered;
};
void live_stats(struct live_stats *out);

#endif
