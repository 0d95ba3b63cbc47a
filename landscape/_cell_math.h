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

static inline REAL FN(sig)(REAL z) { return (REAL)1 / ((REAL)1 + EXP(-z)); }

/* rnn: h' = tanh(a). */
static inline REAL FN(rnn_fwd)(REAL a) { return TANH(a); }
static inline REAL FN(rnn_bwd)(REAL hn, REAL dh) { return dh * (1 - hn * hn); }  /* d / d a */

/* lstm: i, f, g, o from their pre-activations; c' = f c + i g, h' = o tanh(c').
 * v[5] keeps i, f, g, o, tanh(c'). */
static inline void FN(lstm_fwd)(REAL ai, REAL af, REAL ag, REAL ao, REAL c, REAL v[5], REAL *cn, REAL *hn) {
    REAL i = FN(sig)(ai), f = FN(sig)(af), g = TANH(ag), o = FN(sig)(ao);
    REAL cc = f * c + i * g, tc = TANH(cc);
    v[0] = i, v[1] = f, v[2] = g, v[3] = o, v[4] = tc;
    *cn = cc, *hn = o * tc;
}

/* From dh = d loss / d h', dc = d loss / d c' (the part not through h') and the old c: p[4], the
 * derivatives of the gates' pre-activations, and the new dc for the old c. */
static inline void FN(lstm_bwd)(const REAL v[5], REAL c, REAL dh, REAL dc, REAL p[4], REAL *dc_old) {
    REAL i = v[0], f = v[1], g = v[2], o = v[3], tc = v[4];
    REAL dct = dc + dh * o * (1 - tc * tc);  /* d loss / d c' */
    p[0] = dct * g * i * (1 - i);
    p[1] = dct * c * f * (1 - f);
    p[2] = dct * i * (1 - g * g);
    p[3] = dh * tc * o * (1 - o);
    *dc_old = dct * f;
}

/* gru (torch.nn, reset after the product): r, z from their pre-activations, the candidate
 * n = tanh(xn + r hn) from its input term xn and hidden term hn = w_hn h + b_hn;
 * h' = (1 - z) n + z h. v[3] keeps r, z, n. */
static inline REAL FN(gru_fwd)(REAL ar, REAL az, REAL xn, REAL hn, REAL h, REAL v[3]) {
    REAL r = FN(sig)(ar), z = FN(sig)(az);
    REAL n = TANH(xn + r * hn);
    v[0] = r, v[1] = z, v[2] = n;
    return (1 - z) * n + z * h;
}

/* p[3]: derivatives of the input terms of r, z, n; q[3]: of their hidden terms (q_n = p_n r);
 * returns d loss / d h along the direct path h -> h'. */
static inline REAL FN(gru_bwd)(const REAL v[3], REAL hn, REAL h, REAL dh, REAL p[3], REAL q[3]) {
    REAL r = v[0], z = v[1], n = v[2];
    REAL pn = dh * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
    p[0] = q[0] = pn * hn * r * (1 - r);
    p[1] = q[1] = dh * (h - n) * z * (1 - z);
    p[2] = pn, q[2] = pn * r;
    return dh * z;
}

/* gru, reset gate before the product (Keras < 2.3): n = tanh(an), an = w_in x + b_in +
 * w_hn (r h) + b_hn, so the loop computes r first (gru_reset), then an from r h, then the rest. */
static inline REAL FN(gru_reset)(REAL ar) { return FN(sig)(ar); }
static inline REAL FN(gru_before_fwd)(REAL az, REAL an, REAL h, REAL v[2]) {
    REAL z = FN(sig)(az), n = TANH(an);
    v[0] = z, v[1] = n;
    return (1 - z) * n + z * h;
}

/* Back through the update: p_z, p_n (the candidate's whole pre-activation), and the direct path
 * to h; then, given d loss / d (r h) from the loop (back through w_hn), gru_before_bwd_reset
 * gives p_r and adds the path through r h to d loss / d h. */
static inline REAL FN(gru_before_bwd)(const REAL v[2], REAL h, REAL dh, REAL *pz, REAL *pn) {
    REAL z = v[0], n = v[1];
    *pn = dh * (1 - z) * (1 - n * n);
    *pz = dh * (h - n) * z * (1 - z);
    return dh * z;
}
static inline REAL FN(gru_before_bwd_reset)(REAL r, REAL h, REAL drh, REAL *pr) {
    *pr = drh * h * r * (1 - r);
    return drh * r;
}

/* pascanu: v' = w s + b, s = sigmoid(v); back: d / d v = dv w s (1 - s). */
static inline REAL FN(pascanu_fwd)(REAL w, REAL b, REAL s) { return w * s + b; }
static inline REAL FN(pascanu_bwd)(REAL w, REAL s, REAL dv) { return dv * w * s * (1 - s); }

/* The readouts' derivatives with respect to their input, per sample, before the mean.
 * Classification: logit z, binary cross-entropy against y; with eps > 0, the true class's
 * probability clipped to [eps, 1 - eps] as Keras does (its derivative vanishes where it clips).
 * Pascanu: (sigmoid(v) - target)^2. */
static inline REAL FN(bce_bwd)(REAL z, REAL y, REAL eps) {
    REAL s = FN(sig)(z);
    REAL py = y > (REAL)0.5 ? s : 1 - s;  /* the true class's probability */
    return (eps == 0 || (py > eps && py < 1 - eps)) ? s - y : 0;
}
static inline REAL FN(pascanu_loss_bwd)(REAL v) {
    REAL s = FN(sig)(v);
    return 2 * (s - (REAL)LS_PASCANU_TARGET) * s * (1 - s);
}
