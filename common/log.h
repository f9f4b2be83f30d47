/* Levelled logging to stderr. The level comes from JOUST_LOG
 * (error|warn|info|debug, default info) or joust_log_set_level().
 * Thread-safe: each line is written with one fprintf. Never log secrets. */
#ifndef JOUST_LOG_H
#define JOUST_LOG_H

enum { JOUST_LOG_ERROR = 0, JOUST_LOG_WARN, JOUST_LOG_INFO, JOUST_LOG_DEBUG };

void joust_log_set_level(int level);
void joust_log_set_tag(const char *tag); /* e.g. "coordinator", "worker-2" */
int joust_log_enabled(int level);
void joust_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) joust_log(JOUST_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) joust_log(JOUST_LOG_WARN, __VA_ARGS__)
#define log_info(...) joust_log(JOUST_LOG_INFO, __VA_ARGS__)
#define log_debug(...) joust_log(JOUST_LOG_DEBUG, __VA_ARGS__)

#endif
