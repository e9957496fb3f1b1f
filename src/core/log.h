/* core/log.h — structured JSON logs on stderr, one object per line.
 *
 * Every line carries ts, level, msg and the calling thread's request id when one is set.
 * Fields are a printf format producing `"key":value` pairs (no braces). The level is checked
 * before anything is formatted. Never log PHI, secrets, tokens or passwords: identifiers only.
 * Prefix security-relevant messages with "security:" and audit ones with "audit:" (greppable).
 */
#ifndef MC_CORE_LOG_H
#define MC_CORE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern enum log_level log_min_level;

int log_level_parse(const char *s, enum log_level *out);   /* MC_OK / MC_EINVAL */
void log_set_request_id(const char *rid);                  /* thread-local; NULL clears */
const char *log_request_id(void);                          /* "" when none */
void log_write(enum log_level lvl, const char *msg, const char *fields_fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_(lvl, msg, ...)                                   \
	do {                                                  \
		if ((lvl) >= log_min_level)                   \
			log_write((lvl), (msg), __VA_ARGS__); \
	} while (0)
#define LOGD(msg, ...) LOG_(LOG_DEBUG, msg, __VA_ARGS__)
#define LOGI(msg, ...) LOG_(LOG_INFO, msg, __VA_ARGS__)
#define LOGW(msg, ...) LOG_(LOG_WARN, msg, __VA_ARGS__)
#define LOGE(msg, ...) LOG_(LOG_ERROR, msg, __VA_ARGS__)

#endif
