/* Clocks. Monotonic time for deadlines and rates; wall time for records. */
#ifndef JOUST_CLOCK_H
#define JOUST_CLOCK_H
#include <stdint.h>
#include <time.h>

static inline int64_t joust_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t joust_now_ms(void) { return joust_now_us() / 1000; }

static inline int64_t joust_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CPU time of the calling thread (user + system), for logs that say what a
 * step cost beside other threads. */
static inline int64_t joust_thread_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
