/* exp, tanh and the logistic sigmoid in float and double, written so that any C compiler
 * vectorizes them inside an `omp simd` loop: no library call, no branch, no float-to-int
 * conversion (the power of two is built from the bits of the rounding constant), so gcc, clang,
 * any glibc or none, x86-64 and aarch64 all run them at the vector width of the machine.
 *
 * exp(x) = 2^k (1 + expm1(r)), k = round(x / ln 2), r = x - k ln 2 in two parts (|r| <= ln2 / 2),
 * expm1(r) by its Taylor polynomial (degree 8 in float, 13 in double: truncation under 0.1 ulp).
 * tanh(|x|) = E / (E + 2) with E = expm1(2 |x|) = 2^k expm1(r) + (2^k - 1), a sum of two
 * non-negative terms, so no digits cancel near 0; the sign is copied back.
 * NaN and Inf keep their meaning: exp(NaN) = NaN, exp(+Inf) = +Inf, exp(-Inf) = 0,
 * tanh(+-Inf) = +-1, tanh(NaN) = NaN; exp overflows to +Inf where the true value does, and flushes
 * to 0 below about 2^-125 (where 1 + exp(-z) no longer sees it). tests/test_engine.py holds them
 * to within a few ulps of correctly rounded values over the whole range. */
#ifndef LS_VMATH_H
#define LS_VMATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

/* Every function here and in _cell_math.h is inlined into the loops that call it, whatever the
 * compiler's own estimate of its size: a call left in an `omp simd` loop keeps the loop scalar
 * (clang left the LSTM's step, 6 transcendentals, as a call). */
#if defined(__GNUC__) || defined(__clang__)
#define LS_INLINE static inline __attribute__((always_inline))
#else
#define LS_INLINE static inline
#endif

LS_INLINE uint32_t ls_bits_f(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
LS_INLINE float ls_from_bits_f(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }
LS_INLINE uint64_t ls_bits_d(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
LS_INLINE double ls_from_bits_d(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* expm1(r) for |r| <= ln2 / 2 */
LS_INLINE float ls_em1_core_f(float r) {
    float p = 1.0f / 40320;
    p = p * r + 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    return p * r;
}

LS_INLINE double ls_em1_core_d(double r) {
    double p = 1.0 / 6227020800.0;  /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    return p * r;
}

/* Split x = k ln2 + r; returns expm1(r) and sets *scale = 2^(k + bias - 127) (float) or
 * 2^(k + bias - 1023) (double). x must be finite and that power of two normal (the caller
 * clamps). The rounding constant 1.5 * 2^23 puts
 * round(x / ln2) in the low bits of s, from which 2^k is built without a conversion. */
LS_INLINE float ls_reduce_f(float x, uint32_t bias, float *scale) {
    const float shift = 12582912.0f;  /* 1.5 * 2^23 */
    float s = x * 1.44269504088896341f + shift;
    float k = s - shift;
    float r = x - k * 0.693359375f;   /* ln 2 in two parts (Cephes): k * hi is exact */
    r = r - k * -2.12194440e-4f;
    *scale = ls_from_bits_f((ls_bits_f(s) + bias) << 23);
    return ls_em1_core_f(r);
}

LS_INLINE double ls_reduce_d(double x, uint64_t bias, double *scale) {
    const double shift = 6755399441055744.0;  /* 1.5 * 2^52 */
    double s = x * 1.4426950408889634074 + shift;
    double k = s - shift;
    double r = x - k * 6.93147180369123816490e-01;  /* ln 2 in two parts (fdlibm): k * hi is exact */
    r = r - k * 1.90821492927058770002e-10;
    *scale = ls_from_bits_d((ls_bits_d(s) + bias) << 52);
    return ls_em1_core_d(r);
}

LS_INLINE float ls_expf(float x) {
    const float hi = 88.7228394f, lo = -86.9f;  /* e^hi overflows float; below lo, k < -125 */
    float xc = x > hi ? hi : x;                    /* NaN fails every comparison and stays NaN */
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0f;
    float scale, e = ls_reduce_f(xc, 126u, &scale);  /* 2^(k-1): normal for k in [-125, 128] */
    float out = (scale + scale * e) * 2.0f;
    out = x > hi ? INFINITY : out;
    out = x < lo ? 0.0f : out;
    return x == x ? out : x;
}

LS_INLINE double ls_exp(double x) {
    const double hi = 709.782712893384, lo = -708.0;
    double xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = xc == xc ? xc : 0.0;
    double scale, e = ls_reduce_d(xc, 1022u, &scale);  /* 2^(k-1): normal for k in [-1021, 1024] */
    double out = (scale + scale * e) * 2.0;
    out = x > hi ? INFINITY : out;
    out = x < lo ? 0.0 : out;
    return x == x ? out : x;
}

LS_INLINE float ls_tanhf(float x) {
    float t = fabsf(x);
    t = t > 9.5f ? 9.5f : t;  /* tanh(9.5) rounds to 1 in float */
    t = t == t ? t : 0.0f;
    float scale, e = ls_reduce_f(2.0f * t, 127u, &scale);
    float E = scale * e + (scale - 1.0f);  /* expm1(2t) */
    float out = copysignf(E / (E + 2.0f), x);
    return x == x ? out : x;
}

LS_INLINE double ls_tanh(double x) {
    double t = fabs(x);
    t = t > 19.5 ? 19.5 : t;  /* tanh(19.5) rounds to 1 in double */
    t = t == t ? t : 0.0;
    double scale, e = ls_reduce_d(2.0 * t, 1023u, &scale);
    double E = scale * e + (scale - 1.0);
    double out = copysign(E / (E + 2.0), x);
    return x == x ? out : x;
}

#endif
