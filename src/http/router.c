/* http/router.c — compiled route tables, request-target decoding and route matching.
 *
 * Patterns are split into segments at start-up; a request path is percent-decoded segment by
 * segment (so an encoded '/' can never create a new segment) and matched against every route.
 * The most specific match wins: a literal segment beats a {param}, earlier segments first.
 * Linear scan: route tables hold a few hundred entries and a segment compare is cheap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/mem.h"
#include "core/metrics.h"
#include "http/http_int.h"

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};

static bool method_known(const char *m)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (!strcmp(m, methods[i]))
			return true;
	return false;
}

static void croute_release(struct croute *c)
{
	for (size_t i = 0; i < c->nsegs; i++) {
		free(c->segs[i]);
		free(c->pnames[i]);
	}
}

/* Split pattern into c's segments. MC_EINVAL on a malformed pattern. */
static int compile_pattern(struct croute *c, const char *pattern, char *err, size_t errsz)
{
	if (pattern[0] != '/') {
		snprintf(err, errsz, "route %s: pattern must start with '/'", pattern);
		return MC_EINVAL;
	}
	size_t nparams = 0;
	const char *p = pattern + 1;
	if (!*p)
		return MC_OK;   /* "/" itself: zero segments */
	for (;;) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (!len || c->nsegs == HTTP_MAX_SEGMENTS) {
			snprintf(err, errsz, "route %s: empty segment or too many segments", pattern);
			return MC_EINVAL;
		}
		if (p[0] == '{') {
			if (len < 3 || p[len - 1] != '}' || memchr(p + 1, '{', len - 2) || memchr(p + 1, '}', len - 2) ||
			    ++nparams > HTTP_MAX_PARAMS) {
				snprintf(err, errsz, "route %s: bad or too many {param} segments", pattern);
				return MC_EINVAL;
			}
			c->pnames[c->nsegs] = mc_strndup(p + 1, len - 2);
		} else {
			if (memchr(p, '{', len) || memchr(p, '}', len) || memchr(p, '%', len)) {
				snprintf(err, errsz, "route %s: braces or escapes inside a literal segment", pattern);
				return MC_EINVAL;
			}
			c->segs[c->nsegs] = mc_strndup(p, len);
		}
		c->nsegs++;
		if (!e)
			break;
		p = e + 1;
	}
	for (size_t i = 0; i < c->nsegs; i++)
		if (c->segs[i])
			c->literal_mask |= (uint64_t)1 << (c->nsegs - 1 - i);
	return MC_OK;
}

static bool has_param(const struct croute *c, const char *name)
{
	for (size_t i = 0; i < c->nsegs; i++)
		if (c->pnames[i] && !strcmp(c->pnames[i], name))
			return true;
	return false;
}

static bool same_shape(const struct croute *a, const struct croute *b)
{
	if (a->nsegs != b->nsegs)
		return false;
	for (size_t i = 0; i < a->nsegs; i++) {
		if (!a->segs[i] != !b->segs[i])
			return false;
		if (a->segs[i] && strcmp(a->segs[i], b->segs[i]))
			return false;
	}
	return true;
}

static int compile_route(struct croute *c, const struct route *r, char *err, size_t errsz)
{
	c->r = r;
	c->perm = -1;
	if (!r->method || !r->pattern || !r->fn || !method_known(r->method)) {
		snprintf(err, errsz, "route %s %s: missing or unknown method, pattern or handler",
			 r->method ? r->method : "?", r->pattern ? r->pattern : "?");
		return MC_EINVAL;
	}
	int rc = compile_pattern(c, r->pattern, err, errsz);
	if (rc)
		return rc;
	if (r->permission) {
		enum auth_perm p;
		if (auth_perm_parse(r->permission, &p)) {
			snprintf(err, errsz, "route %s %s: unknown permission '%s'", r->method, r->pattern,
				 r->permission);
			return MC_EINVAL;
		}
		c->perm = (int)p;
	}
	/* Default deny: a route that declares nothing never runs. */
	if (!(r->flags & ROUTE_PUBLIC) && !r->permission && !(r->flags & ROUTE_PERM_BY_TYPE)) {
		snprintf(err, errsz, "route %s %s: neither ROUTE_PUBLIC nor a permission", r->method, r->pattern);
		return MC_EINVAL;
	}
	if ((r->flags & ROUTE_PERM_BY_TYPE) && !has_param(c, "type")) {
		snprintf(err, errsz, "route %s %s: ROUTE_PERM_BY_TYPE needs a {type} segment", r->method,
			 r->pattern);
		return MC_EINVAL;
	}
	return MC_OK;
}

static void register_duration(struct croute *c)
{
	char labels[512];
	snprintf(labels, sizeof(labels), "method=\"%s\",route=\"%s\"", c->r->method, c->r->pattern);
	c->duration = metrics_histogram("medcore_http_request_duration_seconds",
					"HTTP request duration by route", labels);
}

int router_build(const struct route_table *const *tables, size_t ntables, struct router **out,
		 char *err, size_t errsz)
{
	size_t total = 0;
	for (size_t t = 0; t < ntables; t++)
		if (tables[t])
			total += tables[t]->n;
	struct router *rt = mc_calloc(1, sizeof(*rt));
	rt->routes = mc_calloc(total ? total : 1, sizeof(*rt->routes));
	for (size_t t = 0; t < ntables; t++) {
		if (!tables[t])
			continue;
		for (size_t i = 0; i < tables[t]->n; i++) {
			struct croute *c = &rt->routes[rt->n++];
			int rc = compile_route(c, &tables[t]->routes[i], err, errsz);
			for (size_t k = 0; !rc && k + 1 < rt->n; k++) {
				if (!strcmp(rt->routes[k].r->method, c->r->method) && same_shape(&rt->routes[k], c)) {
					snprintf(err, errsz, "route %s %s: duplicate of %s", c->r->method,
						 c->r->pattern, rt->routes[k].r->pattern);
					rc = MC_EINVAL;
				}
			}
			if (rc) {
				router_free(rt);
				return rc;
			}
		}
	}
	/* Registered in one pass so the histogram family is contiguous in the exposition. */
	for (size_t i = 0; i < rt->n; i++)
		register_duration(&rt->routes[i]);
	*out = rt;
	return MC_OK;
}

void router_free(struct router *rt)
{
	if (!rt)
		return;
	for (size_t i = 0; i < rt->n; i++)
		croute_release(&rt->routes[i]);
	free(rt->routes);
	free(rt);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode [s, s+n) into out (arena). plus: '+' is a space (query). Rejects bad escapes, NUL and,
 * when noslash, an encoded '/'. */
static int pct_decode(struct arena *a, const char *s, size_t n, bool plus, bool noslash, char **out)
{
	char *d = arena_alloc(a, n + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= n)
				return MC_EINVAL;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return MC_EINVAL;
			c = (char)(h * 16 + l);
			if (c == '\0' || (noslash && (c == '/' || c == '\\')))
				return MC_EINVAL;
			i += 2;
		} else if (c == '\0') {
			return MC_EINVAL;
		} else if (plus && c == '+') {
			c = ' ';
		}
		d[j++] = c;
	}
	d[j] = '\0';
	*out = d;
	return MC_OK;
}

int http_path_decode(struct arena *a, const char *raw, size_t rawlen, char **segs, size_t *nsegs,
		     char **path)
{
	*nsegs = 0;
	if (!rawlen || raw[0] != '/')
		return MC_EINVAL;
	if (rawlen > HTTP_MAX_PATH_LEN)
		return MC_ENOTFOUND;
	char *joined = arena_alloc(a, rawlen + 1);
	size_t jl = 0;
	const char *p = raw + 1, *end = raw + rawlen;
	while (p < end || (p == end && p[-1] == '/' && p - 1 != raw)) {
		/* each iteration takes one segment; a trailing '/' gives an empty last segment,
		 * dropped below */
		const char *e = memchr(p, '/', (size_t)(end - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
		if (*nsegs == HTTP_MAX_SEGMENTS)
			return MC_ENOTFOUND;
		char *seg;
		int rc = pct_decode(a, p, len, false, true, &seg);
		if (rc)
			return rc;
		if (!strcmp(seg, ".") || !strcmp(seg, ".."))
			return MC_EINVAL;
		segs[(*nsegs)++] = seg;
		joined[jl++] = '/';
		size_t sl = strlen(seg);
		memcpy(joined + jl, seg, sl);
		jl += sl;
		if (!e)
			break;
		p = e + 1;
	}
	/* One trailing slash is ignored: FHIR clients address the base as "/fhir/" (POST /fhir/ is a
	 * Bundle). Only the last one: "//" inside a path still gives an empty segment no route has. */
	if (*nsegs > 0 && segs[*nsegs - 1][0] == '\0') {
		(*nsegs)--;
		jl--;
	}
	if (!jl)
		joined[jl++] = '/';
	joined[jl] = '\0';
	*path = joined;
	return MC_OK;
}

int http_query_parse(struct arena *a, const char *raw, struct kv **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!raw || !*raw)
		return MC_OK;
	size_t len = strlen(raw);
	if (len > HTTP_MAX_QUERY_LEN)
		return MC_EINVAL;
	size_t pieces = 1;
	for (size_t i = 0; i < len; i++)
		pieces += raw[i] == '&';
	if (pieces > HTTP_MAX_QUERY_ARGS * 4)
		return MC_EINVAL;   /* mostly empty pieces: still refuse before allocating */
	struct kv *kv = arena_alloc(a, pieces * sizeof(*kv));
	size_t k = 0;
	const char *p = raw;
	while (p < raw + len) {
		const char *e = memchr(p, '&', (size_t)(raw + len - p));
		size_t plen = e ? (size_t)(e - p) : (size_t)(raw + len - p);
		if (plen) {
			if (k == HTTP_MAX_QUERY_ARGS)
				return MC_EINVAL;
			const char *eq = memchr(p, '=', plen);
			size_t klen = eq ? (size_t)(eq - p) : plen;
			char *key, *val;
			if (pct_decode(a, p, klen, true, false, &key))
				return MC_EINVAL;
			if (eq) {
				if (pct_decode(a, eq + 1, plen - klen - 1, true, false, &val))
					return MC_EINVAL;
			} else {
				val = arena_strdup(a, "");
			}
			kv[k].key = key;
			kv[k].value = val;
			k++;
		}
		if (!e)
			break;
		p = e + 1;
	}
	*out = kv;
	*n = k;
	return MC_OK;
}

static bool method_matches(const char *route_method, const char *method)
{
	if (!strcmp(route_method, method))
		return true;
	return !strcmp(method, "HEAD") && !strcmp(route_method, "GET");
}

static void allow_add(char *allow, size_t sz, const char *m)
{
	size_t ml = strlen(m), al = strlen(allow);
	/* already listed? */
	for (const char *p = allow; (p = strstr(p, m)); p += ml)
		if ((p == allow || p[-1] == ' ') && (p[ml] == ',' || p[ml] == '\0'))
			return;
	if (al + ml + 3 >= sz)
		return;
	if (al) {
		memcpy(allow + al, ", ", 2);
		al += 2;
	}
	memcpy(allow + al, m, ml + 1);
}

enum match_result router_match(const struct router *rt, const char *method, char *const *segs,
			       size_t nsegs, struct route_match *m)
{
	const struct croute *best = NULL;
	bool path_known = false;
	m->cr = NULL;
	m->nparams = 0;
	m->allow[0] = '\0';
	for (size_t i = 0; i < rt->n; i++) {
		const struct croute *c = &rt->routes[i];
		if (c->nsegs != nsegs)
			continue;
		size_t k = 0;
		for (; k < nsegs; k++)
			if (c->segs[k] ? strcmp(c->segs[k], segs[k]) != 0 : segs[k][0] == '\0')
				break;
		if (k < nsegs)
			continue;
		path_known = true;
		allow_add(m->allow, sizeof(m->allow), c->r->method);
		if (!strcmp(c->r->method, "GET"))
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		if (!method_matches(c->r->method, method))
			continue;
		/* Exact method beats HEAD-as-GET; then more literal segments (earlier first). */
		if (!best || c->literal_mask > best->literal_mask ||
		    (c->literal_mask == best->literal_mask && !strcmp(c->r->method, method)))
			best = c;
	}
	if (!path_known)
		return MATCH_NO_PATH;
	allow_add(m->allow, sizeof(m->allow), "OPTIONS");
	if (!best)
		return MATCH_NO_METHOD;
	m->cr = best;
	for (size_t k = 0; k < nsegs; k++) {
		if (best->segs[k])
			continue;
		m->params[m->nparams].key = best->pnames[k];
		m->params[m->nparams].value = segs[k];
		m->nparams++;
	}
	return MATCH_OK;
}
