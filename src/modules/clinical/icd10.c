/* modules/clinical/icd10.c — the ICD-10-CM subset (icd10.h): the table compiled from
 * data/icd10/icd10cm_subset.def, code shape, binary-search lookup, ranked search. */
#include "modules/clinical/icd10.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"

static const struct icd10_entry table[] = {
#define ICD10(code, title) {code, title},
#include "../../../data/icd10/icd10cm_subset.def"
#undef ICD10
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

size_t icd10_count(void)
{
	return NTABLE;
}

const struct icd10_entry *icd10_at(size_t i)
{
	return i < NTABLE ? &table[i] : NULL;
}

static bool first_ok(char c)
{
	return c >= 'A' && c <= 'Z' && c != 'U';
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

bool icd10_shape_ok(const char *c)
{
	if (!c || !first_ok(c[0]) || !digit(c[1]) || !(digit(c[2]) || c[2] == 'A' || c[2] == 'B'))
		return false;
	if (c[3] == '\0')
		return true;
	if (c[3] != '.')
		return false;
	size_t n = 0;
	for (const char *p = c + 4; *p; p++, n++)
		if (n == 4 || !(digit(*p) || first_ok(*p)))
			return false;
	return n >= 1;
}

int icd10_normalize(const char *in, char out[ICD10_CODE_MAX])
{
	out[0] = '\0';
	if (!in)
		return MC_EINVAL;
	while (*in == ' ' || *in == '\t')
		in++;
	size_t n = strlen(in);
	while (n && (in[n - 1] == ' ' || in[n - 1] == '\t'))
		n--;
	if (n < 3 || n > 8)
		return MC_EINVAL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (o == 3 && in[i] != '.')
			out[o++] = '.';
		out[o++] = (char)toupper((unsigned char)in[i]);
		if (o >= ICD10_CODE_MAX - 1)
			break;
	}
	out[o] = '\0';
	if (!icd10_shape_ok(out)) {
		out[0] = '\0';
		return MC_EINVAL;
	}
	return MC_OK;
}

static int cmp_code(const void *key, const void *elt)
{
	return strcmp(key, ((const struct icd10_entry *)elt)->code);
}

const struct icd10_entry *icd10_lookup(const char *code)
{
	if (!code)
		return NULL;
	return bsearch(code, table, NTABLE, sizeof(table[0]), cmp_code);
}

/* ---- search ---- */

#define MAX_WORDS 8

struct word {
	const char *p;
	size_t n;
};

static bool wchar(char c)
{
	return isalnum((unsigned char)c) != 0;
}

/* Split s into words (runs of letters and digits); at most max. */
static size_t split(const char *s, struct word *w, size_t max)
{
	size_t n = 0;
	while (*s && n < max) {
		while (*s && !wchar(*s))
			s++;
		const char *b = s;
		while (*s && wchar(*s))
			s++;
		if (s > b)
			w[n++] = (struct word){b, (size_t)(s - b)};
	}
	return n;
}

/* The code without its dot, upper case: "E11.65" -> "E1165". */
static void undot(const char *in, char *out, size_t outsz)
{
	size_t o = 0;
	for (; *in && o + 1 < outsz; in++)
		if (*in != '.')
			out[o++] = (char)toupper((unsigned char)*in);
	out[o] = '\0';
}

/* Score of one entry for the query (0 = no match). Codes outrank titles. */
static long score(const struct icd10_entry *e, const char *qcode, const struct word *qw, size_t nq)
{
	if (qcode[0]) {
		char c[ICD10_CODE_MAX];
		undot(e->code, c, sizeof(c));
		size_t ql = strlen(qcode), cl = strlen(c);
		if (ql <= cl && !memcmp(c, qcode, ql))
			return ql == cl ? 3000 : 2000 - (long)(cl - ql);
	}
	if (!nq)
		return 0;
	struct word tw[32];
	size_t nt = split(e->title, tw, 32);
	long s = 1000;
	for (size_t i = 0; i < nq; i++) {
		bool hit = false, whole = false;
		size_t at = 0;
		for (size_t j = 0; j < nt && !whole; j++) {
			if (tw[j].n >= qw[i].n && !strncasecmp(tw[j].p, qw[i].p, qw[i].n)) {
				if (!hit)
					at = j;
				hit = true;
				whole = tw[j].n == qw[i].n;
				if (whole)
					at = j;
			}
		}
		if (!hit)
			return 0;
		if (i == 0 && at == 0)
			s += 200;
		if (whole)
			s += 20;
		s -= (long)(at < 10 ? at : 10);
	}
	long len = (long)strlen(e->title);
	return s - (len < 150 ? len / 10 : 15);
}

struct hit {
	long score;
	size_t i;
};

static int cmp_hit(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

size_t icd10_search(const char *q, const struct icd10_entry **out, size_t max)
{
	if (!q || max == 0)
		return 0;
	size_t ql = strlen(q);
	if (ql == 0 || ql > ICD10_QUERY_MAX)
		return 0;
	if (max > ICD10_RESULTS_MAX)
		max = ICD10_RESULTS_MAX;
	struct word qw[MAX_WORDS];
	size_t nq = split(q, qw, MAX_WORDS);
	if (!nq)
		return 0;
	/* A code query: one token of letters, digits and dots that starts like a code ("e11.6"). */
	char qcode[ICD10_CODE_MAX] = "";
	while (*q == ' ')
		q++;
	size_t tl = strcspn(q, " \t");
	bool codeish = tl >= 1 && tl < ICD10_CODE_MAX - 1 && isalpha((unsigned char)q[0]) &&
		       (tl == 1 || digit(q[1])) && q[tl + strspn(q + tl, " \t")] == '\0';
	for (size_t i = 0; codeish && i < tl; i++)
		codeish = wchar(q[i]) || q[i] == '.';
	if (codeish && tl >= 2) {
		char tmp[ICD10_CODE_MAX];
		memcpy(tmp, q, tl);
		tmp[tl] = '\0';
		undot(tmp, qcode, sizeof(qcode));
	}
	struct hit hits[NTABLE];
	size_t nh = 0;
	for (size_t i = 0; i < NTABLE; i++) {
		long s = score(&table[i], qcode, qw, nq);
		if (s > 0)
			hits[nh++] = (struct hit){s, i};
	}
	qsort(hits, nh, sizeof(hits[0]), cmp_hit);
	size_t n = nh < max ? nh : max;
	for (size_t i = 0; i < n; i++)
		out[i] = &table[hits[i].i];
	return n;
}
