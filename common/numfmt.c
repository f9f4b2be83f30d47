/* "%.Pg" and "%u" without printf (numfmt.h). */
#include "numfmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Powers of ten that are exact doubles. */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

size_t joust_fmt_u64(char buf[JOUST_FMT_MAX], uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = 0;
    return n;
}

static size_t slow(char buf[JOUST_FMT_MAX], int precision, double x)
{
    int n = snprintf(buf, JOUST_FMT_MAX, "%.*g", precision, x);
    return n > 0 ? (size_t)n : 0;
}

/* The P significant digits of |x| (in [10^(P-1), 10^P)) and the decimal
 * exponent of the first, when one scaling proves them: 0, else -1. The
 * scaled value m = |x| * 10^k is within half an ulp (< 2^-23 for m < 2^30)
 * of the exact product; it is used only when it is more than 1 away from
 * the ends of [10^(P-1), 10^P) (so the exponent is that of the exact value
 * after rounding, with no carry into 10^P) and its fraction more than 1e-6
 * away from one half (so it rounds as the exact value does). */
static int digits_of(double a, int P, uint64_t *digits, int *exp10)
{
    int e2;
    frexp(a, &e2);
    int e = (int)floor((e2 - 1) * 0.30102999566398120); /* log10(2): off by one at most */
    for (int tries = 0; tries < 3; tries++) {
        int k = P - 1 - e;
        if (k > 22 || k < -22)
            return -1;
        double m = k >= 0 ? a * pow10_exact[k] : a / pow10_exact[-k];
        if (m < pow10_exact[P - 1]) {
            e--;
            continue;
        }
        if (m >= pow10_exact[P]) {
            e++;
            continue;
        }
        if (m < pow10_exact[P - 1] + 1 || m > pow10_exact[P] - 1)
            return -1;
        double r = floor(m), f = m - r; /* exact: m < 2^30 */
        if (fabs(f - 0.5) < 1e-6)
            return -1;
        *digits = (uint64_t)r + (f > 0.5);
        *exp10 = e;
        return 0;
    }
    return -1;
}

size_t joust_fmt_g(char buf[JOUST_FMT_MAX], int precision, double x)
{
    int P = precision;
    if (P < 1 || P > 9 || !isfinite(x))
        return slow(buf, precision, x);
    size_t n = 0;
    if (signbit(x))
        buf[n++] = '-';
    if (x == 0) {
        buf[n++] = '0';
        buf[n] = 0;
        return n;
    }
    uint64_t d;
    int X;
    if (digits_of(fabs(x), P, &d, &X) < 0)
        return slow(buf, precision, x);
    char dig[10];
    for (int i = P - 1; i >= 0; i--) {
        dig[i] = (char)('0' + d % 10);
        d /= 10;
    }
    int last = P - 1; /* the last digit kept: trailing zeros go */
    while (last > 0 && dig[last] == '0')
        last--;
    if (X < -4 || X >= P) { /* d.ddde+XX */
        buf[n++] = dig[0];
        if (last > 0) {
            buf[n++] = '.';
            memcpy(buf + n, dig + 1, (size_t)last);
            n += (size_t)last;
        }
        buf[n++] = 'e';
        buf[n++] = X < 0 ? '-' : '+';
        int ax = X < 0 ? -X : X;
        if (ax >= 100)
            buf[n++] = (char)('0' + ax / 100);
        buf[n++] = (char)('0' + ax / 10 % 10);
        buf[n++] = (char)('0' + ax % 10);
    } else if (X >= 0) { /* ddd.ddd */
        memcpy(buf + n, dig, (size_t)X + 1);
        n += (size_t)X + 1;
        if (last > X) {
            buf[n++] = '.';
            memcpy(buf + n, dig + X + 1, (size_t)(last - X));
            n += (size_t)(last - X);
        }
    } else { /* 0.000ddd */
        buf[n++] = '0';
        buf[n++] = '.';
        for (int i = 0; i < -X - 1; i++)
            buf[n++] = '0';
        memcpy(buf + n, dig, (size_t)last + 1);
        n += (size_t)last + 1;
    }
    buf[n] = 0;
    return n;
}
