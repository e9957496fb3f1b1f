/* core/buf.h — growable byte buffer with a hard maximum (git's strbuf, curl's dynbuf).
 *
 * Invariants: b->data is NUL-terminated whenever b->data != NULL; b->len excludes the NUL;
 * b->len < b->max. An append that would pass b->max fails with MC_ETOOBIG and leaves the buffer
 * unchanged. Memory: buf owns data; buf_release() frees it and resets the buffer to empty.
 * OOM policy: allocation failure aborts (see core/mem.h); sizes are capped by max first.
 */
#ifndef MC_CORE_BUF_H
#define MC_CORE_BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap, max;
};

#define BUF_DEFAULT_MAX ((size_t)64 << 20) /* 64 MiB: nothing in medcore builds more */
#define BUF_INIT {NULL, 0, 0, BUF_DEFAULT_MAX}

void buf_init(struct buf *b, size_t max);          /* max 0 = BUF_DEFAULT_MAX */
void buf_release(struct buf *b);                   /* frees; buffer reusable, empty */
void buf_reset(struct buf *b);                     /* len = 0, keeps memory */
int buf_append(struct buf *b, const void *p, size_t n);    /* MC_OK or MC_ETOOBIG */
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
int buf_json_str(struct buf *b, const char *s);    /* appends s as a quoted JSON string */
char *buf_detach(struct buf *b, size_t *len);      /* caller frees; never NULL */
const char *buf_str(const struct buf *b);          /* "" when empty */

#endif
