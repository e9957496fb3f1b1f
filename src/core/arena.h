/* core/arena.h — a request-scoped memory pool with cleanup callbacks (nginx pools).
 *
 * Everything allocated from an arena lives until arena_destroy(); cleanups registered with
 * arena_defer() run then, in reverse order of registration (statements, json_t, files...).
 * No per-object frees on request paths. An arena is used by one thread at a time.
 * Allocation never returns NULL (OOM aborts, core/mem.h); sizes from input are capped by callers.
 */
#ifndef MC_CORE_ARENA_H
#define MC_CORE_ARENA_H
#include <stddef.h>

struct arena;

typedef void arena_cleanup_fn(void *p);

struct arena *arena_create(void);
void arena_destroy(struct arena *a);              /* runs cleanups, frees all; NULL is fine */
void *arena_alloc(struct arena *a, size_t n);     /* 16-byte aligned, uninitialised */
void *arena_zalloc(struct arena *a, size_t n);    /* zeroed */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_defer(struct arena *a, arena_cleanup_fn *fn, void *p);  /* fn(p) at destroy */
size_t arena_used(const struct arena *a);         /* bytes handed out (for limits and tests) */

#endif
