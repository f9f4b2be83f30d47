/* Tests of common/numfmt.h: joust_fmt_g equals snprintf's "%.*g" byte for
 * byte on millions of doubles (random bits, scores, standard errors, win
 * counts, exact ties such as 0.5 and 2.5, values next to powers of ten and
 * to rounding ties, zeros, subnormals, infinities, NaN) for precisions 1 to
 * 17, and joust_fmt_u64 equals "%llu". */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "numfmt.h"
#include "rng.h"

static long mismatches;

static void one(int p, double x)
{
    char want[64], got[JOUST_FMT_MAX];
    snprintf(want, sizeof want, "%.*g", p, x);
    size_t n = joust_fmt_g(got, p, x);
    if (n != strlen(want) || strcmp(got, want)) {
        if (mismatches++ < 10)
            fprintf(stderr, "%%.%dg of %a: got '%s', want '%s'\n", p, x, got, want);
    }
}

static double from_bits(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

int main(void)
{
    joust_rng_t rng;
    joust_rng_seed(&rng, 12345);
    static const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0, -1.0, 0.5, 2.5,
                                     1e-5, 1e-4, 9.9999999995e-5, 0.00012345, 123456789.0,
                                     999999999.5, 999999999.4, 1e9, 1e21, 1e22, 1e23,
                                     4.9e-324, 2.2250738585072014e-308, 1.7976931348623157e308};
    for (int p = 1; p <= 17; p++)
        for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
            one(p, special[i]);
            one(p, nextafter(special[i], INFINITY));
            one(p, nextafter(special[i], -INFINITY));
        }
    for (int i = 0; i < 200000; i++) {
        int p = 1 + (int)joust_rng_below(&rng, 17);
        one(p, from_bits(joust_rng_u64(&rng)));        /* any double */
        double u = joust_rng_uniform(&rng);
        one(9, (u - 0.5) * 40);                             /* scores */
        one(9, u * 2);                                      /* standard errors */
        one(9, floor(u * 4096) / 256);                      /* soft wins: exact binary fractions */
        one(p, ldexp(u, (int)joust_rng_below(&rng, 200) - 100)); /* wide exponents */
        /* Ties at P digits: k + 0.5 scaled by a power of ten and its neighbours. */
        double t = (floor(u * 1e6) + 0.5) * pow(10, (int)joust_rng_below(&rng, 20) - 14);
        one(6, t);
        one(9, t);
        one(9, nextafter(t, 0));
        one(9, nextafter(t, INFINITY));
        /* Next to powers of ten. */
        double q = pow(10, (int)joust_rng_below(&rng, 40) - 20);
        one(p, q);
        one(p, nextafter(q, 0));
        one(p, nextafter(q, INFINITY));
        one(p, -q * 9.9999999996);
    }
    CHECK(mismatches == 0);
    if (mismatches)
        fprintf(stderr, "%ld values formatted differently\n", mismatches);

    static const uint64_t ints[] = {0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u, UINT64_MAX};
    int bad = 0;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        char want[32], got[JOUST_FMT_MAX];
        snprintf(want, sizeof want, "%" PRIu64, ints[i]);
        bad += joust_fmt_u64(got, ints[i]) != strlen(want) || strcmp(got, want);
    }
    CHECK(bad == 0);
    return test_report();
}
