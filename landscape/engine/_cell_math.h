/* Each cell's equations, and their derivatives, written once: scalar `static inline` functions of
 * one lane's values, called by both loops (the one-unit lanes of _fused_body.h and the H-unit
 * blocks of _fused_units.h) inside their `omp simd` loops, where the compiler inlines and
 * vectorizes them. Included by _fused.c once per floating-point type with REAL, FN (the symbol
 * suffix), EXP and TANH defined.
 *
 * The forward functions take a gate's pre-activations (input term + hidden term, which the loop
 * computes its own way: a broadcast multiply for one unit, a matrix product for H) and give the
 * new state and the values backpropagation needs; the backward functions take those values and
 * the loss's derivative with respect to the new state, and give the derivatives with respect to
 * each gate's pre-activation ("p", input side) and hidden term ("q", where they differ), and to
 * the old state along the paths that do not go through the recurrent product. The equations are
 * torch.nn's (gate orders ifgo and rzn), the GRU of Keras before 2.3 and Pascanu et al.'s map. */

LS_INLINE REAL FN(sig)(REAL z) { return (REAL)1 / ((REAL)1 + EXP(-z)); }

/* The gated cells' gate function, fixed when the kernel is built (LS_GATE, one library per gate
 * function: landscape.engine.build), and its derivative from its value y: the logistic sigmoid,
 * y (1 - y), or Keras 2's hard_sigmoid clip(0.2 z + 0.5, 0, 1), 0.2 where it does not clip. */
#if LS_GATE == LS_GATE_HARD_SIGMOID
LS_INLINE REAL FN(gate)(REAL z) {
    REAL y = (REAL)0.2 * z + (REAL)0.5;
    y = y < 0 ? 0 : y;
    return y > 1 ? 1 : y;  /* NaN stays NaN */
}
LS_INLINE REAL FN(dgate)(REAL y) { return y > 0 && y < 1 ? (REAL)0.2 : 0; }
#else
LS_INLINE REAL FN(gate)(REAL z) { return FN(sig)(z); }
LS_INLINE REAL FN(dgate)(REAL y) { return y * (1 - y); }
#endif

/* rnn: h' = tanh(a). */
LS_INLINE REAL FN(rnn_fwd)(REAL a) { return TANH(a); }
LS_INLINE REAL FN(rnn_bwd)(REAL hn, REAL dh) { return dh * (1 - hn * hn); }  /* d / d a */

/* lstm: i, f, g, o from their pre-activations; c' = f c + i g, h' = o tanh(c'). Gives h', and
 * c', i, f, g, o and tanh(c') through the pointers (scalars: no arrays, so that every compiler
 * keeps them in vector registers). */
LS_INLINE REAL FN(lstm_fwd)(REAL ai, REAL af, REAL ag, REAL ao, REAL c, REAL *cn, REAL *i, REAL *f,
                                REAL *g, REAL *o, REAL *tc) {
    *i = FN(gate)(ai), *f = FN(gate)(af), *g = TANH(ag), *o = FN(gate)(ao);
    *cn = *f * c + *i * *g;
    *tc = TANH(*cn);
    return *o * *tc;
}

/* From dh = d loss / d h', dc = d loss / d c' (the part not through h') and the old c: the
 * derivatives of the gates' pre-activations; returns d loss / d c for the old c. */
LS_INLINE REAL FN(lstm_bwd)(REAL i, REAL f, REAL g, REAL o, REAL tc, REAL c, REAL dh, REAL dc,
                                REAL *pi, REAL *pf, REAL *pg, REAL *po) {
    REAL dct = dc + dh * o * (1 - tc * tc);  /* d loss / d c' */
    *pi = dct * g * FN(dgate)(i);
    *pf = dct * c * FN(dgate)(f);
    *pg = dct * i * (1 - g * g);
    *po = dh * tc * FN(dgate)(o);
    return dct * f;
}

/* gru (torch.nn, reset after the product): r, z from their pre-activations, the candidate
 * n = tanh(xn + r hn) from its input term xn and hidden term hn = w_hn h + b_hn;
 * returns h' = (1 - z) n + z h, and r, z, n through the pointers. */
LS_INLINE REAL FN(gru_fwd)(REAL ar, REAL az, REAL xn, REAL hn, REAL h, REAL *r, REAL *z, REAL *n) {
    *r = FN(gate)(ar), *z = FN(gate)(az);
    *n = TANH(xn + *r * hn);
    return (1 - *z) * *n + *z * h;
}

/* The derivatives of the pre-activations of r and z (their input and hidden terms alike), of n's
 * input term (pn) and of its hidden term (qn = pn r); returns d loss / d h along the direct path
 * h -> h'. */
LS_INLINE REAL FN(gru_bwd)(REAL r, REAL z, REAL n, REAL hn, REAL h, REAL dh, REAL *pr, REAL *pz,
                               REAL *pn, REAL *qn) {
    *pn = dh * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
    *pr = *pn * hn * FN(dgate)(r);
    *pz = dh * (h - n) * FN(dgate)(z);
    *qn = *pn * r;
    return dh * z;
}

/* gru, reset gate before the product (Keras < 2.3): n = tanh(an), an = w_in x + b_in +
 * w_hn (r h) + b_hn, so the loop computes r first (gru_reset), then an from r h, then the rest. */
LS_INLINE REAL FN(gru_reset)(REAL ar) { return FN(gate)(ar); }
LS_INLINE REAL FN(gru_before_fwd)(REAL az, REAL an, REAL h, REAL *z, REAL *n) {
    *z = FN(gate)(az), *n = TANH(an);
    return (1 - *z) * *n + *z * h;
}

/* Back through the update: p_z, p_n (the candidate's whole pre-activation), and the direct path
 * to h; then, given d loss / d (r h) from the loop (back through w_hn), gru_before_bwd_reset
 * gives p_r and the path through r h to d loss / d h. */
LS_INLINE REAL FN(gru_before_bwd)(REAL z, REAL n, REAL h, REAL dh, REAL *pz, REAL *pn) {
    *pn = dh * (1 - z) * (1 - n * n);
    *pz = dh * (h - n) * FN(dgate)(z);
    return dh * z;
}
LS_INLINE REAL FN(gru_before_bwd_reset)(REAL r, REAL h, REAL drh, REAL *pr) {
    *pr = drh * h * FN(dgate)(r);
    return drh * r;
}

/* pascanu: v' = w s + b, s = sigmoid(v); back: d / d v = dv w s (1 - s). */
LS_INLINE REAL FN(pascanu_fwd)(REAL w, REAL b, REAL s) { return w * s + b; }
LS_INLINE REAL FN(pascanu_bwd)(REAL w, REAL s, REAL dv) { return dv * w * s * (1 - s); }

/* The readouts' derivatives with respect to their input, per sample, before the mean.
 * Classification: logit z, binary cross-entropy against y; with eps > 0, the true class's
 * probability clipped to [eps, 1 - eps] as Keras does (its derivative vanishes where it clips).
 * Pascanu: (sigmoid(v) - target)^2. */
LS_INLINE REAL FN(bce_bwd)(REAL z, REAL y, REAL eps) {
    REAL s = FN(sig)(z);
    REAL py = y > (REAL)0.5 ? s : 1 - s;  /* the true class's probability */
    return (eps == 0 || (py > eps && py < 1 - eps)) ? s - y : 0;
}
LS_INLINE REAL FN(pascanu_loss_bwd)(REAL v) {
    REAL s = FN(sig)(v);
    return 2 * (s - (REAL)LS_PASCANU_TARGET) * s * (1 - s);
}
