/* core/mctime.c */
#include "core/mctime.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"

int64_t mctime_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mctime_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Howard Hinnant's days_from_civil / civil_from_days. */
int64_t mctime_days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t)era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t yy = (int64_t)yoe + era * 400;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (*m <= 2));
}

void mctime_format_ms(int64_t ms, char out[32])
{
	int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
	int64_t rem = ms - days * 86400000;
	int y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) /* outside FHIR's range: clamp rather than print a malformed instant */
		y = y < 0 ? 0 : 9999;
	snprintf(out, 32, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", y % 10000, m % 13, d % 32,
		 (unsigned)(rem / 3600000) % 24, (unsigned)(rem / 60000 % 60), (unsigned)(rem / 1000 % 60),
		 (unsigned)(rem % 1000));
}

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int mdays(int y, int m)
{
	static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && leap(y) ? 29 : dm[m - 1];
}

int mctime_parse_fhir(const char *s, int64_t *lo, int64_t *hi, enum mctime_prec *prec)
{
	int y, mo = 1, d = 1, h = 0, mi = 0, sec = 0, ms = 0;
	enum mctime_prec p;
	size_t n = strlen(s);
	if (n < 4 || digits(s, 4, &y) || y < 1)
		return MC_EINVAL;
	p = MCT_YEAR;
	const char *c = s + 4;
	if (*c == '-') {
		if (digits(c + 1, 2, &mo) || mo < 1 || mo > 12)
			return MC_EINVAL;
		p = MCT_MONTH;
		c += 3;
		if (*c == '-') {
			if (digits(c + 1, 2, &d) || d < 1 || d > mdays(y, mo))
				return MC_EINVAL;
			p = MCT_DAY;
			c += 3;
		}
	}
	int64_t tz = 0;
	if (*c == 'T') {
		if (p != MCT_DAY)
			return MC_EINVAL;
		if (digits(c + 1, 2, &h) || c[3] != ':' || digits(c + 4, 2, &mi) || h > 23 || mi > 59)
			return MC_EINVAL;
		c += 6;
		p = MCT_MINUTE;
		if (*c == ':') {
			if (digits(c + 1, 2, &sec) || sec > 60)
				return MC_EINVAL;
			c += 3;
			p = MCT_SECOND;
			if (*c == '.') {
				int nd = 0, frac = 0;
				c++;
				while (*c >= '0' && *c <= '9') {
					if (nd < 3)
						frac = frac * 10 + (*c - '0');
					nd++;
					c++;
				}
				if (nd == 0 || nd > 9)
					return MC_EINVAL;
				for (int k = nd; k < 3; k++)
					frac *= 10;
				ms = frac;
				p = MCT_MILLI;
			}
		}
		if (*c == 'Z') {
			c++;
		} else if (*c == '+' || *c == '-') {
			int th, tm;
			if (digits(c + 1, 2, &th) || c[3] != ':' || digits(c + 4, 2, &tm) || th > 14 || tm > 59)
				return MC_EINVAL;
			tz = ((int64_t)th * 60 + tm) * 60000;
			if (*c == '+')
				tz = -tz;
			c += 6;
		} else {
			return MC_EINVAL; /* FHIR: a time must carry a zone */
		}
	}
	if (*c)
		return MC_EINVAL;
	int64_t base = mctime_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
		       ((int64_t)h * 3600 + mi * 60 + sec) * 1000 + ms + tz;
	int64_t span;
	switch (p) {
	case MCT_YEAR: span = (int64_t)(leap(y) ? 366 : 365) * 86400000; break;
	case MCT_MONTH: span = (int64_t)mdays(y, mo) * 86400000; break;
	case MCT_DAY: span = 86400000; break;
	case MCT_MINUTE: span = 60000; break;
	case MCT_SECOND: span = 1000; break;
	default: span = 1; break;
	}
	if (lo)
		*lo = base;
	if (hi)
		*hi = base + span;
	if (prec)
		*prec = p;
	return MC_OK;
}
