/* core/mem.h — allocation that aborts on failure.
 *
 * OOM policy (STYLE §6): small internal allocations abort the process on failure — a server that
 * cannot allocate 100 bytes cannot do anything safely. Every size that a client can drive is capped
 * before it reaches these functions, so no client can make the server run out of memory.
 */
#ifndef MC_CORE_MEM_H
#define MC_CORE_MEM_H
#include <stddef.h>

void *mc_malloc(size_t n);
void *mc_calloc(size_t n, size_t size);
void *mc_realloc(void *p, size_t n);
char *mc_strdup(const char *s);
char *mc_strndup(const char *s, size_t n);

#endif
