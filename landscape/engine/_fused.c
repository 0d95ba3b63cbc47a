/* The fused recurrences behind one typed door, in float and double: one-unit models
 * (_fused_body.h, lanes of many models) and models of H > 1 units (_fused_units.h, lanes of one
 * model's samples), both calling the same equations (_cell_math.h) and vector functions
 * (_vmath.h). Built on first use by landscape.engine.build with the machine's C compiler, with the
 * table of cells (_cells.h) generated from landscape.engine.table, and loaded with ctypes. */
#include <stdint.h>
#include <stdlib.h>

#include "_cells.h"
#include "_vmath.h"

/* The door: every size and pointer of one call, mirrored by landscape.engine.build.Args. ls_run checks
 * what it can (sizes, codes, parameter counts, lengths, row indices) and returns LS_OK or an
 * LS_ERR_* code that the Python side turns into a message. */
typedef struct {
    int64_t size;              /* sizeof(ls_args) as the caller sees it */
    int64_t dtype;             /* LS_F32 or LS_F64: the type of every REAL array below */
    int64_t cell, gate;        /* LS_CELL_*, LS_GATE_* (the one this library was built for) */
    int64_t objective;         /* LS_OBJ_* */
    int64_t I, H, L;           /* inputs per step, units, layers */
    int64_t N, T, P;           /* samples per model, steps of x per row, parameters */
    int64_t R;                 /* with rows: the rows of x and y (lane (g, n) reads row rows[g N + n]) */
    int64_t xs_g, xs_n, ys_g;  /* strides of x between models (0: shared) and samples; of y */
    int64_t g0, g1;            /* the models this call runs */
    int64_t K;                 /* states kept along the way: after steps stops[0] < .. < stops[K-1] <= T */
    double x0;                 /* the initial state of a one-unit model */
    const void *theta;         /* (G, P) */
    const void *x;             /* x[g xs_g + n xs_n + t I + i], or rows' x[r xs_n + t I + i]; NULL: no input */
    const void *y;             /* y[g ys_g + n] or y[r]; NULL without labels */
    const int64_t *rows;       /* (G, N) or NULL */
    const int64_t *len;        /* (G,) each model's own length <= T, or NULL: T each */
    void *hT;                  /* (G, N) or (G, N, H): the final states */
    void *grad;                /* (G, P), added to; NULL: no gradient */
    const int64_t *stops;      /* (K,) or NULL (K = 0) */
    void *hS;                  /* (G, K, N) or (G, K, N, H): the states after each stop; forward only */
} ls_args;

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)

/* Lanes per block, in vectors of the machine (LS_VEC bytes: AVX-512's 64 where the compiler
 * targets it, else 32, AVX2's, which also serves as two NEON vectors): the gated cells keep many
 * values per lane in registers and run best with two vectors of lanes; rnn and pascanu keep one,
 * and hide the latency of each step's exp/tanh best with four ("wide"; benchmarks/bench_grid.py,
 * results.md). H > 1: a block is samples of one model; 16 lanes fit a training batch of 16. */
#if defined(__AVX512F__)
#define LS_VEC 64
#else
#define LS_VEC 32
#endif
#define REAL float
#define FN(name) CAT(name, f32)
#define EXP ls_expf
#define TANH ls_tanhf
#include "_cell_math.h"
#define SUF f32
#define LB (2 * LS_VEC / 4)
#include "_fused_body.h"
#undef SUF
#undef LB
#define SUF f32w
#define LB (4 * LS_VEC / 4)
#include "_fused_body.h"
#undef SUF
#undef LB
#define LB 16
#include "_fused_units.h"
#undef LB
#undef REAL
#undef FN
#undef EXP
#undef TANH

#define REAL double
#define FN(name) CAT(name, f64)
#define EXP ls_exp
#define TANH ls_tanh
#include "_cell_math.h"
#define SUF f64
#define LB (2 * LS_VEC / 8)
#include "_fused_body.h"
#undef SUF
#undef LB
#define SUF f64w
#define LB (4 * LS_VEC / 8)
#include "_fused_body.h"
#undef SUF
#undef LB
#define LB 16
#include "_fused_units.h"
#undef LB

static int ls_check(const ls_args *a) {
    if (a->size != (int64_t)sizeof(ls_args)) return LS_ERR_ABI;
    if (a->dtype != LS_F32 && a->dtype != LS_F64) return LS_ERR_DTYPE;
    if (a->cell < 0 || a->cell >= LS_N_CELLS) return LS_ERR_CELL;
    if (a->objective < 0 || a->objective >= LS_N_OBJECTIVES) return LS_ERR_OBJECTIVE;
    if (a->gate != LS_GATE) return LS_ERR_GATE;
    const int c = (int)a->cell;
    const int units = a->H > 1 || a->I > 1 || a->L > 1;  /* the H-unit loops, not the one-unit lanes */
    if (a->H < 1 || a->H > LS_MAX_UNITS || a->I < 1 || a->I > LS_MAX_UNITS || a->L < 1 || a->L > LS_MAX_UNITS
        || (units && (!ls_record[c] || a->objective == LS_OBJ_PASCANU)))
        return LS_ERR_UNITS;
    if (a->N < 0 || a->T < 0 || a->g0 < 0 || a->g1 < a->g0 || a->xs_g < 0 || a->xs_n < 0 || a->ys_g < 0
        || (a->rows && a->R < 1))
        return LS_ERR_SIZE;
    const int64_t GH = ls_gates[c] * a->H;
    const int64_t P_units = GH * (a->I + a->H + 2) + (a->L - 1) * GH * (2 * a->H + 2) + a->H + 1;
    if (a->P != (units ? P_units : ls_params1[c])) return LS_ERR_PARAMS;
    if (!a->theta || !a->hT || (ls_takes_input[c] && !a->x) || (!ls_takes_input[c] && (a->x || a->rows))
        || (a->grad && a->objective != LS_OBJ_PASCANU && !a->y))
        return LS_ERR_NULL;
    if (a->K < 0 || (a->K > 0) != (a->stops && a->hS) || (a->K && (a->grad || a->len))) return LS_ERR_STOPS;
    for (int64_t k = 0; k < a->K; k++)
        if (a->stops[k] < 1 || a->stops[k] > a->T || (k && a->stops[k] <= a->stops[k - 1])) return LS_ERR_STOPS;
    if (a->len)
        for (int64_t g = a->g0; g < a->g1; g++)
            if (a->len[g] < 0 || a->len[g] > a->T) return LS_ERR_LENGTH;
    if (a->rows)
        for (int64_t k = a->g0 * a->N; k < a->g1 * a->N; k++)
            if (a->rows[k] < 0 || a->rows[k] >= a->R) return LS_ERR_ROWS;
    return LS_OK;
}

/* The one entry point: checks the arguments, then runs the loop of their type, width and size. */
int ls_run(const ls_args *a) {
    if (!a) return LS_ERR_NULL;
    int e = ls_check(a);
    if (e) return e;
    const int wide = ls_wide[a->cell], f32 = a->dtype == LS_F32;
    if (a->H > 1 || a->I > 1 || a->L > 1) return f32 ? u_run_f32(a) : u_run_f64(a);
    if (f32) return wide ? run1_f32w(a) : run1_f32(a);
    return wide ? run1_f64w(a) : run1_f64(a);
}

#define LS_VLOOP(T, F, HALF)                                                        \
    do {                                                                            \
        const T *xs = x;                                                            \
        T *ys = y;                                                                  \
        for (int64_t i0 = 0; i0 < n; i0 += 64) {                                    \
            T v[64];                                                                \
            const int64_t m = n - i0 < 64 ? n - i0 : 64;                           \
            const T scale = reps > 1 ? HALF : 1;  /* repeated: halve, to stay in range */ \
            for (int64_t i = 0; i < 64; i++) v[i] = i < m ? xs[i0 + i] : 0;         \
            for (int64_t r = 0; r < reps; r++)                                      \
                _Pragma("omp simd") for (int64_t i = 0; i < 64; i++) v[i] = F(v[i]) * scale;          \
            for (int64_t i = 0; i < m; i++) ys[i0 + i] = v[i];                     \
        }                                                                           \
    } while (0)

/* The vector functions alone, over n values: fn 0 exp, 1 tanh, 2 sigmoid (for the tests of their
 * accuracy and the benchmark's in-register limit). With reps > 1, each block of 64 values goes
 * through the function reps times (v -> f(v) / 2) in registers, without touching memory. */
int ls_vmath(int64_t fn, int64_t dtype, int64_t n, int64_t reps, const void *x, void *y) {
    if (fn < 0 || fn > 2 || (dtype != LS_F32 && dtype != LS_F64) || n < 0 || reps < 1 || !x || !y)
        return LS_ERR_SIZE;
    if (dtype == LS_F32) {
        if (fn == 0) LS_VLOOP(float, ls_expf, 0.5f);
        else if (fn == 1) LS_VLOOP(float, ls_tanhf, 0.5f);
        else LS_VLOOP(float, sig_f32, 0.5f);
    } else {
        if (fn == 0) LS_VLOOP(double, ls_exp, 0.5);
        else if (fn == 1) LS_VLOOP(double, ls_tanh, 0.5);
        else LS_VLOOP(double, sig_f64, 0.5);
    }
    return LS_OK;
}

int ls_abi(void) { return LS_ABI; }
const char *ls_compiler(void) { return __VERSION__; }  /* the compiler that built this library */
int64_t ls_args_size(void) { return (int64_t)sizeof(ls_args); }
