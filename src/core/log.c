/* core/log.c */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/mctime.h"

enum log_level log_min_level = LOG_INFO;
static _Thread_local char tl_rid[64];

int log_level_parse(const char *s, enum log_level *out)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	for (int i = 0; i <= LOG_OFF; i++) {
		if (!strcmp(s, names[i])) {
			*out = (enum log_level)i;
			return MC_OK;
		}
	}
	return MC_EINVAL;
}

void log_set_request_id(const char *rid)
{
	snprintf(tl_rid, sizeof(tl_rid), "%s", rid ? rid : "");
}

const char *log_request_id(void) { return tl_rid; }

void log_write(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error", "off"};
	char ts[32];
	struct buf b;
	buf_init(&b, 16384);
	mctime_format_ms(mctime_now_ms(), ts);
	buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":", ts, names[lvl]);
	buf_json_str(&b, msg);
	if (tl_rid[0]) {
		buf_puts(&b, ",\"request_id\":");
		buf_json_str(&b, tl_rid);
	}
	if (fields_fmt && fields_fmt[0]) {
		va_list ap;
		buf_putc(&b, ',');
		va_start(ap, fields_fmt);
		buf_vprintf(&b, fields_fmt, ap);
		va_end(ap);
	}
	buf_puts(&b, "}\n");
	fwrite(b.data, 1, b.len, stderr);
	buf_release(&b);
}
