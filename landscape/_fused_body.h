/* The fused time loop for one floating-point type; included by _fused.c once per type with
 * REAL (the type), SUF (the symbol suffix), LB (lanes per block), EXP and TANH defined.
 *
 * A lane is one (model g, sample n) pair. Lanes run in blocks of LB: every parameter of a lane is
 * gathered once into pr[j][lane], the block's inputs are copied into a (T, LB) buffer, and then
 * the whole time loop runs with the state in registers, LB lanes side by side in SIMD. Nothing
 * touches memory per step but the input and, for gradients, the step's stored values.
 *
 * The equations are torch.nn's (nn.RNN / nn.LSTM / nn.GRU, one unit, gate orders ifgo and rzn),
 * and Pascanu et al.'s map v' = w sigmoid(v) + b; the tests hold them against the reference path.
 */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUF)
#define SIMD _Pragma("omp simd")
#define FOR_LANES SIMD for (int l = 0; l < LB; l++)

static inline REAL FN(sig)(REAL z) { return (REAL)1 / ((REAL)1 + EXP(-z)); }

typedef struct {
    long g[LB], n[LB];    /* each lane's model and sample */
    int valid;            /* lanes 0..valid-1 are real; the rest repeat the last real lane */
    long steps;           /* the longest sequence in the block */
    REAL pr[MAX_P][LB];   /* pr[j][l]: parameter j of lane l's model */
    REAL len[LB];         /* each lane's own length (a REAL, for branch-free masks) */
    REAL y[LB];           /* labels (classification) */
} FN(block_t);

/* Gather the block of lanes k0 .. k0+LB-1 of models g0.. (N samples each, `total` lanes). */
static void FN(gather)(FN(block_t) *b, long k0, long total, long g0, long N, long T, long P,
                       const REAL *theta, const long *len, const REAL *y, long ys_g,
                       const REAL *x, long xs_g, long xs_n, const long *rows, REAL *xb) {
    b->valid = (int)(total - k0 < LB ? total - k0 : LB);
    b->steps = 0;
    long g = g0 + k0 / N, n = k0 % N;  /* one division per block, then counting */
    for (int l = 0; l < LB; l++) {
        b->g[l] = g, b->n[l] = n;
        if (l + 1 < b->valid && ++n == N) n = 0, g++;
        long n_steps = len ? len[b->g[l]] : T;
        b->len[l] = (REAL)n_steps;
        if (n_steps > b->steps) b->steps = n_steps;
        for (long j = 0; j < P; j++) b->pr[j][l] = theta[b->g[l] * P + j];
        long r = rows ? rows[b->g[l] * N + b->n[l]] : -1;  /* the lane's row of x and y, if indexed */
        b->y[l] = y ? y[rows ? r : b->g[l] * ys_g + b->n[l]] : 0;
    }
    if (x)
        for (int l = 0; l < LB; l++) {
            long k = rows ? rows[b->g[l] * N + b->n[l]] * xs_n : b->g[l] * xs_g + b->n[l] * xs_n;
            const REAL *row = x + k;
            for (long t = 0; t < b->steps; t++) xb[t * LB + l] = row[t];
        }
}

/* Write a block's final states, and add each real lane's gradient, in lane order (so that the
 * sum over samples does not depend on where blocks start). */
static void FN(scatter)(const FN(block_t) *b, long N, long P, const REAL *h, REAL ga[][LB],
                        REAL *hT, REAL *grad) {
    for (int l = 0; l < b->valid; l++) {
        hT[b->g[l] * N + b->n[l]] = h[l];
        if (grad)
            for (long j = 0; j < P; j++) grad[b->g[l] * P + j] += ga[j][l] / (REAL)N;
    }
}

/* The loss's derivative with respect to each lane's final state; fills the readout's own
 * gradient. Classification (objective 0): logit z = w_out h + b_out, binary cross-entropy;
 * objective 2: the same with the true class's probability clipped to [1e-7, 1 - 1e-7] as Keras
 * does; Pascanu (1): (sigmoid(v) - 0.7)^2. Per sample, before the mean over samples. */
static void FN(seed)(const FN(block_t) *b, int objective, long P, const REAL *h, REAL ga[][LB],
                     REAL *gh) {
    if (objective == 0 || objective == 2) {
        const REAL *wo = b->pr[P - 2], *bo = b->pr[P - 1];
        const REAL eps = objective == 2 ? (REAL)1e-7 : 0;  /* Keras: log(clip(p, eps, 1 - eps)) */
        FOR_LANES {
            REAL s = FN(sig)(wo[l] * h[l] + bo[l]);
            REAL py = b->y[l] > (REAL)0.5 ? s : 1 - s;  /* the true class's probability */
            REAL dz = (eps == 0 || (py > eps && py < 1 - eps)) ? s - b->y[l] : 0;
            ga[P - 2][l] = dz * h[l];
            ga[P - 1][l] = dz;
            gh[l] = dz * wo[l];
        }
    } else {
        FOR_LANES {
            REAL s = FN(sig)(h[l]);
            gh[l] = 2 * (s - (REAL)0.7) * s * (1 - s);
        }
    }
}

/* ---- rnn: h' = tanh(w_ih x + b_ih + w_hh h + b_hh) ---------------------------------------- */

static void FN(rnn)(FN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *Hs) {
    const REAL *wi = b->pr[0], *wh = b->pr[1], *bi = b->pr[2], *bh = b->pr[3];
    FOR_LANES h[l] = x0;
    if (Hs) FOR_LANES Hs[l] = x0;
    for (long t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        FOR_LANES {
            REAL hn = TANH(wi[l] * xt[l] + bi[l] + wh[l] * h[l] + bh[l]);
            h[l] = t < b->len[l] ? hn : h[l];
        }
        if (Hs) FOR_LANES Hs[(t + 1) * LB + l] = h[l];
    }
}

static void FN(rnn_back)(FN(block_t) *b, const REAL *xb, const REAL *Hs, REAL *gh, REAL ga[][LB]) {
    const REAL *wh = b->pr[1];
    for (long t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *hp = Hs + t * LB, *hn = Hs + (t + 1) * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0;
            REAL d = on * gh[l] * (1 - hn[l] * hn[l]);  /* d loss / d pre-activation */
            ga[0][l] += d * xt[l];
            ga[1][l] += d * hp[l];
            ga[2][l] += d;
            ga[3][l] += d;
            gh[l] = on ? d * wh[l] : gh[l];
        }
    }
}

/* The parameters of G gates in torch.nn's layout: w_ih (G), w_hh (G), b_ih (G), b_hh (G). */
#define GATE_PARAMS(G)                                                                         \
    REAL *wi[G], *wh[G], *bi[G], *bh[G];                                                       \
    for (int k = 0; k < G; k++)                                                                \
        wi[k] = b->pr[k], wh[k] = b->pr[G + k], bi[k] = b->pr[2 * G + k], bh[k] = b->pr[3 * G + k]
#define HIDDEN_WEIGHTS(G) \
    const REAL *wh[G];     \
    for (int k = 0; k < G; k++) wh[k] = b->pr[G + k]

/* ---- lstm (gates i, f, g, o): c' = f c + i g, h' = o tanh(c') ------------------------------ */

#define PRE(k) (wi[k][l] * xt[l] + bi[k][l] + wh[k][l] * h[l] + bh[k][l])

static void FN(lstm)(FN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(4);
    REAL c[LB];
    FOR_LANES h[l] = x0, c[l] = x0;
    /* stored per step t (7 rows of LB): h_t, c_t, then step t's i, f, g, o, tanh(c_{t+1}) */
    for (long t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 7 * LB : 0;
        if (S) FOR_LANES st[l] = h[l], st[LB + l] = c[l];
        FOR_LANES {
            REAL i = FN(sig)(PRE(0)), f = FN(sig)(PRE(1)), g = TANH(PRE(2)), o = FN(sig)(PRE(3));
            REAL cn = f * c[l] + i * g, tc = TANH(cn);
            REAL on = t < b->len[l];
            if (S) st[2 * LB + l] = i, st[3 * LB + l] = f, st[4 * LB + l] = g, st[5 * LB + l] = o,
                   st[6 * LB + l] = tc;
            h[l] = on ? o * tc : h[l];
            c[l] = on ? cn : c[l];
        }
    }
}

static void FN(lstm_back)(FN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(4);
    REAL gc[LB];
    FOR_LANES gc[l] = 0;
    for (long t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 7 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0;
            REAL hp = st[l], cp = st[LB + l], i = st[2 * LB + l], f = st[3 * LB + l];
            REAL g = st[4 * LB + l], o = st[5 * LB + l], tc = st[6 * LB + l];
            REAL dh = on * gh[l];
            REAL dc = on * gc[l] + dh * o * (1 - tc * tc);  /* d loss / d c_{t+1} */
            REAL p[4] = {dc * g * i * (1 - i), dc * cp * f * (1 - f), dc * i * (1 - g * g),
                         dh * tc * o * (1 - o)};  /* d loss / d pre-activation, gates i f g o */
            REAL back = 0;
            for (int k = 0; k < 4; k++) {
                ga[k][l] += p[k] * xt[l];
                ga[4 + k][l] += p[k] * hp;
                ga[8 + k][l] += p[k];
                ga[12 + k][l] += p[k];
                back += p[k] * wh[k][l];
            }
            gh[l] = on ? back : gh[l];
            gc[l] = on ? dc * f : gc[l];
        }
    }
}

/* ---- gru (gates r, z, n): n = tanh(w_in x + b_in + r (w_hn h + b_hn)), h' = (1 - z) n + z h --- */

static void FN(gru)(FN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(3);
    FOR_LANES h[l] = x0;
    /* stored per step t (5 rows of LB): h_t, then step t's r, z, n, w_hn h_t + b_hn */
    for (long t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 5 * LB : 0;
        FOR_LANES {
            REAL r = FN(sig)(PRE(0)), z = FN(sig)(PRE(1));
            REAL hn = wh[2][l] * h[l] + bh[2][l];
            REAL n = TANH(wi[2][l] * xt[l] + bi[2][l] + r * hn);
            if (S) st[l] = h[l], st[LB + l] = r, st[2 * LB + l] = z, st[3 * LB + l] = n,
                   st[4 * LB + l] = hn;
            h[l] = t < b->len[l] ? (1 - z) * n + z * h[l] : h[l];
        }
    }
}

static void FN(gru_back)(FN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(3);
    for (long t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 5 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0;
            REAL hp = st[l], r = st[LB + l], z = st[2 * LB + l], n = st[3 * LB + l], hn = st[4 * LB + l];
            REAL dh = on * gh[l];
            REAL pn = dh * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
            REAL pr_ = pn * hn * r * (1 - r), pz = dh * (hp - n) * z * (1 - z), phn = pn * r;
            ga[0][l] += pr_ * xt[l], ga[3][l] += pr_ * hp, ga[6][l] += pr_, ga[9][l] += pr_;
            ga[1][l] += pz * xt[l], ga[4][l] += pz * hp, ga[7][l] += pz, ga[10][l] += pz;
            ga[2][l] += pn * xt[l], ga[5][l] += phn * hp, ga[8][l] += pn, ga[11][l] += phn;
            REAL back = dh * z + pr_ * wh[0][l] + pz * wh[1][l] + phn * wh[2][l];
            gh[l] = on ? back : gh[l];
        }
    }
}

/* ---- gru, reset gate before the product (Keras < 2.3): n = tanh(w_in x + b_in + w_hn (r h) + b_hn) */

static void FN(gru_before)(FN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(3);
    FOR_LANES h[l] = x0;
    /* stored per step t (4 rows of LB): h_t, then step t's r, z, n */
    for (long t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 4 * LB : 0;
        FOR_LANES {
            REAL r = FN(sig)(PRE(0)), z = FN(sig)(PRE(1));
            REAL n = TANH(wi[2][l] * xt[l] + bi[2][l] + (wh[2][l] * (r * h[l]) + bh[2][l]));
            if (S) st[l] = h[l], st[LB + l] = r, st[2 * LB + l] = z, st[3 * LB + l] = n;
            h[l] = t < b->len[l] ? (1 - z) * n + z * h[l] : h[l];
        }
    }
}

static void FN(gru_before_back)(FN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(3);
    for (long t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 4 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0;
            REAL hp = st[l], r = st[LB + l], z = st[2 * LB + l], n = st[3 * LB + l];
            REAL dh = on * gh[l];
            REAL pn = dh * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
            REAL drh = pn * wh[2][l];  /* d loss / d (r h) */
            REAL pr_ = drh * hp * r * (1 - r), pz = dh * (hp - n) * z * (1 - z);
            ga[0][l] += pr_ * xt[l], ga[3][l] += pr_ * hp, ga[6][l] += pr_, ga[9][l] += pr_;
            ga[1][l] += pz * xt[l], ga[4][l] += pz * hp, ga[7][l] += pz, ga[10][l] += pz;
            ga[2][l] += pn * xt[l], ga[5][l] += pn * r * hp, ga[8][l] += pn, ga[11][l] += pn;
            REAL back = dh * z + pr_ * wh[0][l] + pz * wh[1][l] + drh * r;
            gh[l] = on ? back : gh[l];
        }
    }
}

#undef PRE

/* ---- pascanu: v' = w sigmoid(v) + b, no input ---------------------------------------------- */

static void FN(pascanu)(FN(block_t) *b, REAL x0, REAL *h, REAL *S) {
    const REAL *w = b->pr[0], *bb = b->pr[1];
    FOR_LANES h[l] = x0;
    for (long t = 0; t < b->steps; t++) {
        if (S)
            FOR_LANES {
                REAL s = FN(sig)(h[l]);
                S[t * LB + l] = s;
                h[l] = t < b->len[l] ? w[l] * s + bb[l] : h[l];
            }
        else
            FOR_LANES {
                REAL s = FN(sig)(h[l]);
                h[l] = t < b->len[l] ? w[l] * s + bb[l] : h[l];
            }
    }
}

static void FN(pascanu_back)(FN(block_t) *b, const REAL *S, REAL *gh, REAL ga[][LB]) {
    const REAL *w = b->pr[0];
    for (long t = b->steps - 1; t >= 0; t--) {
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, s = S[t * LB + l];
            REAL dv = on * gh[l];
            ga[0][l] += dv * s;
            ga[1][l] += dv;
            gh[l] = on ? dv * w[l] * s * (1 - s) : gh[l];
        }
    }
}

/* ---- the entry point ---------------------------------------------------------------------- */

/* Run models g0 .. g1-1 (rows of theta, (G, P)) on their N samples each.
 *   cell: 0 rnn, 1 lstm, 2 gru, 3 pascanu, 4 gru with the reset gate before the product; objective: 0 classification, 1 pascanu, 2 Keras's
 *   clipped classification loss.
 *   x[g * xs_g + n * xs_n + t] (xs_g = 0: shared by all models), or NULL for no input;
 *   y[g * ys_g + n] labels, or NULL; rows (G, N), or NULL: lane (g, n) reads row rows[g * N + n] of
 *   x (x + rows[.] * xs_n) and of y instead, so that mini-batches need not be copied out;
 *   len[g] each model's length (its state is frozen after it),
 *   or NULL for T steps each; x0 the initial state value.
 * Writes hT[g * N + n], the final state. With grad (G, P) non-NULL, also adds to grad[g] the
 * gradient of model g's loss (mean over its N samples) by backpropagation through time over the
 * block's stored steps. Returns 0, or -1 when memory ran out. */
int FN(ls_run)(int cell, int objective, long N, long T, long P, const REAL *theta,
               const REAL *x, long xs_g, long xs_n, const long *rows, const REAL *y, long ys_g,
               const long *len,
               REAL x0, long g0, long g1, REAL *hT, REAL *grad) {
    static const int stored[] = {1, 7, 5, 1, 4};  /* values of LB lanes stored per step, for gradients */
    long total = (g1 - g0) * N;
    if (total <= 0) return 0;
    REAL *xb = x ? malloc(sizeof(REAL) * LB * (size_t)T) : 0;
    REAL *S = grad ? malloc(sizeof(REAL) * LB * (size_t)(T + 1) * stored[cell]) : 0;
    FN(block_t) *b = malloc(sizeof(FN(block_t)));
    REAL(*ga)[LB] = malloc(sizeof(REAL) * LB * MAX_P);
    if ((x && !xb) || (grad && !S) || !b || !ga) {
        free(xb), free(S), free(b), free(ga);
        return -1;
    }
    REAL h[LB], gh[LB];
    for (long k0 = 0; k0 < total; k0 += LB) {
        FN(gather)(b, k0, total, g0, N, T, P, theta, len, y, ys_g, x, xs_g, xs_n, rows, xb);
        switch (cell) {
            case 0: FN(rnn)(b, xb, x0, h, S); break;
            case 1: FN(lstm)(b, xb, x0, h, S); break;
            case 2: FN(gru)(b, xb, x0, h, S); break;
            case 4: FN(gru_before)(b, xb, x0, h, S); break;
            default: FN(pascanu)(b, x0, h, S); break;
        }
        if (grad) {
            for (long j = 0; j < P; j++) FOR_LANES ga[j][l] = 0;
            FN(seed)(b, objective, P, h, ga, gh);
            switch (cell) {
                case 0: FN(rnn_back)(b, xb, S, gh, ga); break;
                case 1: FN(lstm_back)(b, xb, S, gh, ga); break;
                case 2: FN(gru_back)(b, xb, S, gh, ga); break;
                case 4: FN(gru_before_back)(b, xb, S, gh, ga); break;
                default: FN(pascanu_back)(b, S, gh, ga); break;
            }
        }
        FN(scatter)(b, N, P, h, ga, hT, grad);
    }
    free(xb), free(S), free(b), free(ga);
    return 0;
}

#undef GATE_PARAMS
#undef HIDDEN_WEIGHTS
#undef CAT2
#undef CAT
#undef FN
#undef SIMD
#undef FOR_LANES
