/* modules/vitals/ws.c — WebSocket handshake key and wslay-driven connections (see ws.h). */
#include "modules/vitals/ws.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "core/err.h"
#include "core/mem.h"
#include "http/server.h"

/* ---- SHA-1 (FIPS 180-1), only for Sec-WebSocket-Accept ---- */

static uint32_t rol(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		uint32_t t = rol(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = rol(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void ws_sha1(const void *data, size_t len, uint8_t out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	const uint8_t *p = data;
	size_t left = len;
	for (; left >= 64; left -= 64, p += 64)
		sha1_block(h, p);
	uint8_t tail[128] = {0};
	memcpy(tail, p, left);
	tail[left] = 0x80;
	size_t tl = left < 56 ? 64 : 128;
	uint64_t bits = (uint64_t)len * 8;
	for (int i = 0; i < 8; i++)
		tail[tl - 1 - i] = (uint8_t)(bits >> (8 * i));
	sha1_block(h, tail);
	if (tl == 128)
		sha1_block(h, tail + 64);
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (uint8_t)(h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(h[i] >> 8);
		out[4 * i + 3] = (uint8_t)h[i];
	}
}

int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	uint8_t raw[32];
	size_t rawlen = 0;
	if (!key || strlen(key) != 24 ||
	    sodium_base642bin(raw, sizeof(raw), key, 24, NULL, &rawlen, NULL, sodium_base64_VARIANT_ORIGINAL) ||
	    rawlen != 16)
		return MC_EINVAL;
	char buf[24 + sizeof(guid)];
	memcpy(buf, key, 24);
	memcpy(buf + 24, guid, sizeof(guid) - 1);
	uint8_t d[20];
	ws_sha1(buf, 24 + sizeof(guid) - 1, d);
	sodium_bin2base64(out, WS_ACCEPT_LEN + 1, d, 20, sodium_base64_VARIANT_ORIGINAL);
	return MC_OK;
}

/* ---- connections ---- */

struct ws_conn {
	int fd;
	void *handle;
	wslay_event_context_ptr ctx;
	char *extra;
	size_t extra_len, extra_off;
	ws_text_fn *on_text;
	void *arg;
	bool failed;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
	struct ws_conn *c = user;
	(void)flags;
	if (c->extra_off < c->extra_len) {
		size_t n = c->extra_len - c->extra_off;
		if (n > len)
			n = len;
		memcpy(buf, c->extra + c->extra_off, n);
		c->extra_off += n;
		return (ssize_t)n;
	}
	ssize_t r;
	do
		r = recv(c->fd, buf, len, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
										  : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	if (r == 0) {   /* peer closed the TCP connection */
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return r;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *user)
{
	struct ws_conn *c = user;
	(void)flags;
	ssize_t r;
	do
		r = send(c->fd, data, len, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		wslay_event_set_error(ctx, errno == EAGAIN || errno == EWOULDBLOCK ? WSLAY_ERR_WOULDBLOCK
										  : WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return r;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	randombytes_buf(buf, len);
	return 0;
}

static void on_msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *m, void *user)
{
	struct ws_conn *c = user;
	if (wslay_is_ctrl_frame(m->opcode))
		return;   /* ping/pong/close are answered by wslay */
	if (m->opcode != WSLAY_TEXT_FRAME) {
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, (const uint8_t *)"text only", 9);
		return;
	}
	if (c->on_text)
		c->on_text(c, m->msg, m->msg_length, c->arg);
}

struct ws_conn *ws_conn_new(int fd, const char *extra, size_t extra_len, void *handle, size_t max_msg,
			    ws_text_fn *on_text, void *arg)
{
	struct ws_conn *c = mc_calloc(1, sizeof(*c));
	c->fd = fd;
	c->handle = handle;
	c->on_text = on_text;
	c->arg = arg;
	if (extra_len) {
		c->extra = mc_malloc(extra_len);
		memcpy(c->extra, extra, extra_len);
		c->extra_len = extra_len;
	}
	int fl = fcntl(fd, F_GETFL, 0);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	struct wslay_event_callbacks cb = {
		.recv_callback = recv_cb,
		.send_callback = send_cb,
		.genmask_callback = genmask_cb,
		.on_msg_recv_callback = on_msg_cb,
	};
	if (wslay_event_context_server_init(&c->ctx, &cb, c)) {
		free(c->extra);
		free(c);
		return NULL;
	}
	wslay_event_config_set_max_recv_msg_length(c->ctx, max_msg);
	return c;
}

int ws_conn_io(struct ws_conn *c)
{
	if (c->failed)
		return MC_EUNAVAIL;
	if (wslay_event_want_read(c->ctx) && wslay_event_recv(c->ctx)) {
		c->failed = true;
		return MC_EUNAVAIL;
	}
	if (wslay_event_want_write(c->ctx) && wslay_event_send(c->ctx)) {
		c->failed = true;
		return MC_EUNAVAIL;
	}
	if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx))
		return MC_EUNAVAIL;   /* close handshake done */
	return MC_OK;
}

int ws_conn_send_text(struct ws_conn *c, const char *s, size_t n)
{
	struct wslay_event_msg m = {.opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)s, .msg_length = n};
	return wslay_event_queue_msg(c->ctx, &m) ? MC_EUNAVAIL : MC_OK;
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	wslay_event_queue_close(c->ctx, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
}

size_t ws_conn_queued(struct ws_conn *c) { return wslay_event_get_queued_msg_count(c->ctx); }
bool ws_conn_want_read(struct ws_conn *c) { return !c->failed && wslay_event_want_read(c->ctx); }
bool ws_conn_want_write(struct ws_conn *c) { return !c->failed && wslay_event_want_write(c->ctx); }
int ws_conn_fd(const struct ws_conn *c) { return c->fd; }

void ws_conn_free(struct ws_conn *c)
{
	if (!c)
		return;
	wslay_event_context_free(c->ctx);
	if (c->handle)
		http_upgrade_close(c->handle);
	free(c->extra);
	free(c);
}
