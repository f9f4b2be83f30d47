#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int g_level = -1;
static char g_tag[32] = "joust";

static int level_from_env(void)
{
    const char *e = getenv("JOUST_LOG");
    if (!e)
        return JOUST_LOG_INFO;
    if (!strcmp(e, "error")) return JOUST_LOG_ERROR;
    if (!strcmp(e, "warn")) return JOUST_LOG_WARN;
    if (!strcmp(e, "debug")) return JOUST_LOG_DEBUG;
    return JOUST_LOG_INFO;
}

void joust_log_set_level(int level) { g_level = level; }

void joust_log_set_tag(const char *tag)
{
    snprintf(g_tag, sizeof g_tag, "%s", tag);
}

int joust_log_enabled(int level)
{
    if (g_level < 0)
        g_level = level_from_env();
    return level <= g_level;
}

void joust_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (!joust_log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, names[level], g_tag, msg);
}
