/* fhir/normalize.c — the case- and accent-insensitive form used by string search.
 *
 * ASCII is lowercased; Latin-1 Supplement (U+00C0..U+00FF) and Latin Extended-A (U+0100..U+017F)
 * letters fold to their base letters (é→e, ß→ss, æ→ae, ø→o, ł→l); whitespace runs become one
 * space and leading/trailing whitespace is dropped. Everything else (other scripts, invalid UTF-8
 * bytes) passes through unchanged, so the function never fails on content, only on size.
 */
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "fhir/resource.h"

/* Folds for U+00C0..U+00FF; NULL keeps the character (× ÷). */
static const char *const latin1[64] = {
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",      /* C0 */
	"d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "ss",   /* D0 */
	"a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",      /* E0 */
	"d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "y",    /* F0 */
};

/* Latin Extended-A, U+0100..U+017F, as ranges of code points folding to the same letters. */
static const struct { uint16_t lo, hi; const char *to; } ext_a[] = {
	{ 0x100, 0x105, "a" }, { 0x106, 0x10D, "c" }, { 0x10E, 0x111, "d" }, { 0x112, 0x11B, "e" },
	{ 0x11C, 0x123, "g" }, { 0x124, 0x127, "h" }, { 0x128, 0x131, "i" }, { 0x132, 0x133, "ij" },
	{ 0x134, 0x135, "j" }, { 0x136, 0x138, "k" }, { 0x139, 0x142, "l" }, { 0x143, 0x14B, "n" },
	{ 0x14C, 0x151, "o" }, { 0x152, 0x153, "oe" }, { 0x154, 0x159, "r" }, { 0x15A, 0x161, "s" },
	{ 0x162, 0x167, "t" }, { 0x168, 0x173, "u" }, { 0x174, 0x175, "w" }, { 0x176, 0x178, "y" },
	{ 0x179, 0x17E, "z" }, { 0x17F, 0x17F, "s" },
};

static const char *fold(unsigned cp)
{
	if (cp >= 0xC0 && cp <= 0xFF)
		return latin1[cp - 0xC0];
	for (size_t i = 0; i < sizeof ext_a / sizeof ext_a[0]; i++)
		if (cp >= ext_a[i].lo && cp <= ext_a[i].hi)
			return ext_a[i].to;
	return NULL;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

int fhir_normalize(const char *in, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;
	bool pending_space = false;
	if (outsz == 0)
		return MC_ETOOBIG;
	while (*p) {
		if (is_space(*p)) {
			pending_space = o > 0;
			p++;
			continue;
		}
		char one[2];
		const char *piece;
		size_t plen, adv;
		if (*p < 0x80) {
			one[0] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			piece = one;
			plen = 1;
			adv = 1;
		} else if ((p[0] & 0xE0) == 0xC0 && (p[1] & 0xC0) == 0x80) {
			unsigned cp = ((unsigned)(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
			const char *f = fold(cp);
			piece = f ? f : (const char *)p;
			plen = f ? strlen(f) : 2;
			adv = 2;
		} else {
			/* other scripts and stray bytes: copy one whole sequence (or one byte) as is */
			size_t len = (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 1;
			for (size_t k = 1; k < len; k++)
				if ((p[k] & 0xC0) != 0x80)
					len = 1;
			piece = (const char *)p;
			plen = len;
			adv = len;
		}
		if (o + pending_space + plen >= outsz) {
			out[o] = '\0';
			return MC_ETOOBIG;
		}
		if (pending_space)
			out[o++] = ' ';
		pending_space = false;
		memcpy(out + o, piece, plen);
		o += plen;
		p += adv;
	}
	out[o] = '\0';
	return MC_OK;
}
