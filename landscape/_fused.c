/* Fused recurrences, in float and double: single-unit models (_fused_body.h, lanes of many
 * models) and models of H > 1 units (_fused_units.h, lanes of one model's samples).
 * Built on first use by landscape.fused with the machine's C compiler, and loaded with ctypes. */
#include <math.h>
#include <stdlib.h>

/* glibc's vector math (libmvec) has SIMD versions of these; declaring them lets the compiler
 * call them for SIMD lanes without -ffast-math, so NaN and Inf keep their meaning. */
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) double exp(double);
__attribute__((simd("notinbranch"))) double tanh(double);

#ifndef WIDE_F32
#define WIDE_F32 32
#endif
#ifndef WIDE_F64
#define WIDE_F64 16
#endif
#ifndef UNITS_F32
#define UNITS_F32 16
#endif
#ifndef UNITS_F64
#define UNITS_F64 16
#endif
#define MAX_P 18 /* lstm: 16 recurrent parameters and the readout's 2 */

/* Lanes per block: the gated cells keep many values per lane in registers and run best with
 * two AVX2 vectors of lanes; rnn and pascanu keep one, and hide the latency of each step's
 * exp/tanh call best with more lanes in flight ("wide"; benchmarks/bench_grid.py). */
#define REAL float
#define EXP expf
#define TANH tanhf
#define SUF f32
#define LB 16
#include "_fused_body.h"
#undef SUF
#undef LB
#define SUF f32w
#define LB WIDE_F32
#include "_fused_body.h"
#undef SUF
#undef LB
/* H > 1: a block is samples of one model. 16 lanes fit a training batch of 16; 8 ran up to 1.5
 * times slower in double, and 32, a little faster on long batches, would waste half of one. */
#define SUF f32
#define LB UNITS_F32
#include "_fused_units.h"
#undef SUF
#undef LB
#undef REAL
#undef EXP
#undef TANH

#define REAL double
#define EXP exp
#define TANH tanh
#define SUF f64
#define LB 8
#include "_fused_body.h"
#undef SUF
#undef LB
#define SUF f64w
#define LB WIDE_F64
#include "_fused_body.h"
#undef SUF
#undef LB
#define SUF f64
#define LB UNITS_F64
#include "_fused_units.h"

int ls_abi(void) { return 1; }
