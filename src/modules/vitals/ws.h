/* modules/vitals/ws.h — WebSocket (RFC 6455) for live push and gateway ingest: the opening
 * handshake's accept key, and one server-side connection over an upgraded socket with wslay doing
 * the framing (masking, fragmentation, control frames, close handshake).
 *
 * A struct ws_conn is used by one thread at a time (wslay contexts are not thread-safe). The socket
 * is made non-blocking; the owner polls ws_conn_fd() for ws_conn_want_read/write and calls
 * ws_conn_io(). Incoming text messages (<= max_msg bytes; larger ones close with 1009) go to
 * on_text; binary messages close with 1003.
 */
#ifndef MC_MODULES_VITALS_WS_H
#define MC_MODULES_VITALS_WS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_ACCEPT_LEN 28

/* Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (base64 of 16 bytes = 24 chars).
 * MC_EINVAL for a malformed key. out receives WS_ACCEPT_LEN chars + NUL. */
int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1]);
/* SHA-1 (for the handshake only; not for security). */
void ws_sha1(const void *data, size_t len, uint8_t out[20]);

struct ws_conn;
typedef void ws_text_fn(struct ws_conn *c, const uint8_t *msg, size_t len, void *arg);

/* Takes the socket (and the server's upgrade handle, released by ws_conn_free). extra: bytes the
 * client sent after the handshake (copied). on_text may be NULL (messages ignored). */
struct ws_conn *ws_conn_new(int fd, const char *extra, size_t extra_len, void *upgrade_handle, size_t max_msg,
			    ws_text_fn *on_text, void *arg);
/* Read what is readable, write what is queued. MC_OK while open; MC_EUNAVAIL once the connection
 * is finished (closed by either side or failed): then free it. */
int ws_conn_io(struct ws_conn *c);
int ws_conn_send_text(struct ws_conn *c, const char *s, size_t n);   /* queued; copies */
void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);   /* queue a close frame */
size_t ws_conn_queued(struct ws_conn *c);   /* frames queued and not yet written */
bool ws_conn_want_read(struct ws_conn *c);
bool ws_conn_want_write(struct ws_conn *c);
int ws_conn_fd(const struct ws_conn *c);
void ws_conn_free(struct ws_conn *c);   /* NULL ok; closes the upgraded connection */

#endif
