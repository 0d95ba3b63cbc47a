/* Fused single-unit recurrences, in float and double: see _fused_body.h.
 * Built on first use by landscape.fused with the machine's C compiler, and loaded with ctypes. */
#include <math.h>
#include <stdlib.h>

/* glibc's vector math (libmvec) has SIMD versions of these; declaring them lets the compiler
 * call them for SIMD lanes without -ffast-math, so NaN and Inf keep their meaning. */
__attribute__((simd("notinbranch"))) float expf(float);
__attribute__((simd("notinbranch"))) float tanhf(float);
__attribute__((simd("notinbranch"))) double exp(double);
__attribute__((simd("notinbranch"))) double tanh(double);

#define MAX_P 18 /* lstm: 16 recurrent parameters and the readout's 2 */

#define REAL float
#define SUF f32
#define LB 16 /* two AVX2 vectors of lanes in flight: more did not help on 2 cores */
#define EXP expf
#define TANH tanhf
#include "_fused_body.h"
#undef REAL
#undef SUF
#undef LB
#undef EXP
#undef TANH

#define REAL double
#define SUF f64
#define LB 8
#define EXP exp
#define TANH tanh
#include "_fused_body.h"

int ls_abi(void) { return 1; }
