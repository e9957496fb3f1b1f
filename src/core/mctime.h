/* core/mctime.h — clocks and FHIR date/time text.
 *
 * Times inside medcore are int64 milliseconds since the Unix epoch, UTC.
 * FHIR date, dateTime and instant values may be partial ("2024", "2024-05", "2024-05-07",
 * "2024-05-07T10:00:00+02:00"); mctime_parse_fhir() turns one into the half-open range
 * [lo, hi) it covers, which is what search needs (FHIR R4 §3.1.1.5.3 "date" search).
 */
#ifndef MC_CORE_MCTIME_H
#define MC_CORE_MCTIME_H
#include <stdint.h>

enum mctime_prec { MCT_YEAR = 1, MCT_MONTH, MCT_DAY, MCT_MINUTE, MCT_SECOND, MCT_MILLI };

int64_t mctime_now_ms(void);            /* wall clock */
int64_t mctime_mono_us(void);           /* monotonic, for durations */
/* "2026-11-24T13:02:11.123Z" into out (at least 25 bytes). */
void mctime_format_ms(int64_t ms, char out[32]);
/* Parse a FHIR date/dateTime/instant. Timezone-less times are taken as UTC. Returns MC_OK or
 * MC_EINVAL (also for impossible dates such as 2023-02-29). prec may be NULL. */
int mctime_parse_fhir(const char *s, int64_t *lo, int64_t *hi, enum mctime_prec *prec);
/* Days since epoch for a civil date (proleptic Gregorian). */
int64_t mctime_days_from_civil(int y, unsigned m, unsigned d);

#endif
