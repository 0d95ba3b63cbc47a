/* The fused time loop of one-unit models; included by _fused.c once per floating-point type and
 * block width with REAL (the type), FN (the type's suffix), SUF (this width's), LB (lanes per
 * block) defined, after _cell_math.h of that type.
 *
 * A lane is one (model g, sample n) pair. Lanes run in blocks of LB: every parameter of a lane is
 * gathered once into pr[j][lane], the block's inputs are copied into a (T, LB) buffer, and then
 * the whole time loop runs with the state in registers, LB lanes side by side in SIMD. Nothing
 * touches memory per step but the input and, for gradients, the step's stored values.
 *
 * The equations are _cell_math.h's; the tests hold them against torch.nn and the reference path.
 */

#define WN(name) CAT(name, SUF)  /* this width's own functions */
#define FOR_LANES _Pragma("omp simd") for (int l = 0; l < LB; l++)

typedef struct {
    int64_t g[LB], n[LB];    /* each lane's model and sample */
    int valid;            /* lanes 0..valid-1 are real; the rest repeat the last real lane */
    int64_t steps;           /* the longest sequence in the block */
    REAL pr[LS_MAX_P][LB];   /* pr[j][l]: parameter j of lane l's model */
    REAL len[LB];         /* each lane's own length (a REAL, for branch-free masks) */
    REAL y[LB];           /* labels (classification) */
    const int64_t *stops;    /* K steps after which the states are kept (hs[k][lane]), or none */
    int64_t K, ks;           /* how many, and the next one */
    REAL *hs;
} WN(block_t);

/* After step t: keep the states if t + 1 is the next stop (one test per step, not per lane). */
#define SNAP(t)                                                       \
    if (b->ks < b->K && (t) + 1 == b->stops[b->ks]) {                 \
        FOR_LANES b->hs[b->ks * LB + l] = h[l];                       \
        b->ks++;                                                      \
    }

/* Gather the block of lanes k0 .. k0+LB-1 of models g0.. (N samples each, `total` lanes). */
static void WN(gather)(WN(block_t) *b, int64_t k0, int64_t total, int64_t g0, int64_t N, int64_t T, int64_t P,
                       const REAL *theta, const int64_t *len, const REAL *y, int64_t ys_g,
                       const REAL *x, int64_t xs_g, int64_t xs_n, const int64_t *rows, REAL *xb) {
    b->valid = (int)(total - k0 < LB ? total - k0 : LB);
    b->steps = 0, b->ks = 0;
    int64_t g = g0 + k0 / N, n = k0 % N;  /* one division per block, then counting */
    for (int l = 0; l < LB; l++) {
        b->g[l] = g, b->n[l] = n;
        if (l + 1 < b->valid && ++n == N) n = 0, g++;
        int64_t n_steps = len ? len[b->g[l]] : T;
        b->len[l] = (REAL)n_steps;
        if (n_steps > b->steps) b->steps = n_steps;
        for (int64_t j = 0; j < P; j++) b->pr[j][l] = theta[b->g[l] * P + j];
        int64_t r = rows ? rows[b->g[l] * N + b->n[l]] : -1;  /* the lane's row of x and y, if indexed */
        b->y[l] = y ? y[rows ? r : b->g[l] * ys_g + b->n[l]] : 0;
    }
    if (x)
        for (int l = 0; l < LB; l++) {
            int64_t k = rows ? rows[b->g[l] * N + b->n[l]] * xs_n : b->g[l] * xs_g + b->n[l] * xs_n;
            const REAL *row = x + k;
            for (int64_t t = 0; t < b->steps; t++) xb[t * LB + l] = row[t];
        }
}

/* Write a block's final states, and add each real lane's gradient, in lane order (so that the
 * sum over samples does not depend on where blocks start). */
static void WN(scatter)(const WN(block_t) *b, int64_t N, int64_t P, const REAL *h, REAL ga[][LB],
                        REAL *hT, REAL *grad) {
    for (int l = 0; l < b->valid; l++) {
        hT[b->g[l] * N + b->n[l]] = h[l];
        if (grad)
            for (int64_t j = 0; j < P; j++) grad[b->g[l] * P + j] += ga[j][l] / (REAL)N;
    }
}

/* The loss's derivative with respect to each lane's final state; fills the readout's own
 * gradient: classification on the logit z = w_out h + b_out (objective LS_OBJ_BCE, or
 * LS_OBJ_KERAS with Keras's clipped probabilities), or Pascanu's target (LS_OBJ_PASCANU). */
static void WN(seed)(const WN(block_t) *b, int objective, int64_t P, const REAL *h, REAL ga[][LB],
                     REAL *gh) {
    if (objective == LS_OBJ_PASCANU) {
        FOR_LANES gh[l] = FN(pascanu_loss_bwd)(h[l]);
        return;
    }
    const REAL *wo = b->pr[P - 2], *bo = b->pr[P - 1];
    const REAL eps = objective == LS_OBJ_KERAS ? (REAL)LS_KERAS_EPSILON : 0;
    FOR_LANES {
        REAL dz = FN(bce_bwd)(wo[l] * h[l] + bo[l], b->y[l], eps);
        ga[P - 2][l] = dz * h[l];
        ga[P - 1][l] = dz;
        gh[l] = dz * wo[l];
    }
}

/* The parameters of G gates in torch.nn's layout: w_ih (G), w_hh (G), b_ih (G), b_hh (G). */
#define GATE_PARAMS(G)                                                                         \
    const REAL *wi[G], *wh[G], *bi[G], *bh[G];                                                 \
    for (int k = 0; k < G; k++)                                                                \
        wi[k] = b->pr[k], wh[k] = b->pr[G + k], bi[k] = b->pr[2 * G + k], bh[k] = b->pr[3 * G + k]
#define HIDDEN_WEIGHTS(G) \
    const REAL *wh[G];     \
    for (int k = 0; k < G; k++) wh[k] = b->pr[G + k]
#define PRE(k) (wi[k][l] * xt[l] + bi[k][l] + wh[k][l] * h[l] + bh[k][l])
/* Add one step's derivatives p (input terms) and q (hidden terms) of gate k to the lane's
 * gradient of w_ih, w_hh, b_ih and b_hh. */
#define ACCUM(G, k, p, q) \
    ga[k][l] += (p) * xt[l], ga[G + k][l] += (q) * hp, ga[2 * G + k][l] += (p), ga[3 * G + k][l] += (q)

/* Every cell's loop: forward, keeping `stored` values per lane and step with gradients (S), and
 * back through those steps. A lane's state stops changing after its own length. */

static void WN(rnn)(WN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(1);
    FOR_LANES h[l] = x0;
    if (S) FOR_LANES S[l] = x0;  /* stored: h_{t+1} at row t + 1 */
    for (int64_t t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        FOR_LANES {
            REAL hn = FN(rnn_fwd)(PRE(0));
            h[l] = t < b->len[l] ? hn : h[l];
        }
        if (S) FOR_LANES S[(t + 1) * LB + l] = h[l];
        SNAP(t)
    }
}

static void WN(rnn_back)(WN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(1);
    for (int64_t t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *sp = S + t * LB, *sn = S + (t + 1) * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, hp = sp[l];
            REAL d = FN(rnn_bwd)(sn[l], on * gh[l]);
            ACCUM(1, 0, d, d);
            gh[l] = on ? d * wh[0][l] : gh[l];
        }
    }
}

/* stored per step t (7 rows): h_t, c_t, then the step's i, f, g, o, tanh(c_{t+1}) */
static void WN(lstm)(WN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(4);
    REAL c[LB], scratch[7 * LB];  /* without gradients, each step's values go to scratch */
    FOR_LANES h[l] = x0, c[l] = x0;
    for (int64_t t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 7 * LB : scratch;  /* unconditional stores keep every compiler vectorizing */
        FOR_LANES st[l] = h[l], st[LB + l] = c[l];
        FOR_LANES {
            REAL cn, i, f, g, o, tc;
            REAL hn = FN(lstm_fwd)(PRE(0), PRE(1), PRE(2), PRE(3), c[l], &cn, &i, &f, &g, &o, &tc);
            st[2 * LB + l] = i, st[3 * LB + l] = f, st[4 * LB + l] = g, st[5 * LB + l] = o, st[6 * LB + l] = tc;
            REAL on = t < b->len[l];
            h[l] = on ? hn : h[l];
            c[l] = on ? cn : c[l];
        }
        SNAP(t)
    }
}

static void WN(lstm_back)(WN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(4);
    REAL gc[LB];
    FOR_LANES gc[l] = 0;
    for (int64_t t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 7 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, hp = st[l], p[4];
            REAL dc = FN(lstm_bwd)(st[2 * LB + l], st[3 * LB + l], st[4 * LB + l], st[5 * LB + l],
                                   st[6 * LB + l], st[LB + l], on * gh[l], on * gc[l], &p[0], &p[1], &p[2],
                                   &p[3]);
            REAL back = 0;
            for (int k = 0; k < 4; k++) {
                ACCUM(4, k, p[k], p[k]);
                back += p[k] * wh[k][l];
            }
            gh[l] = on ? back : gh[l];
            gc[l] = on ? dc : gc[l];
        }
    }
}

/* stored per step t (5 rows): h_t, then the step's r, z, n and w_hn h_t + b_hn */
static void WN(gru)(WN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(3);
    REAL scratch[5 * LB];
    FOR_LANES h[l] = x0;
    for (int64_t t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 5 * LB : scratch;
        FOR_LANES {
            REAL r, z, n, hn = wh[2][l] * h[l] + bh[2][l];
            REAL h2 = FN(gru_fwd)(PRE(0), PRE(1), wi[2][l] * xt[l] + bi[2][l], hn, h[l], &r, &z, &n);
            st[l] = h[l], st[LB + l] = r, st[2 * LB + l] = z, st[3 * LB + l] = n, st[4 * LB + l] = hn;
            h[l] = t < b->len[l] ? h2 : h[l];
        }
        SNAP(t)
    }
}

static void WN(gru_back)(WN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(3);
    for (int64_t t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 5 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, hp = st[l], pr, pz, pn, qn;
            REAL back = FN(gru_bwd)(st[LB + l], st[2 * LB + l], st[3 * LB + l], st[4 * LB + l], hp, on * gh[l],
                                    &pr, &pz, &pn, &qn);
            ACCUM(3, 0, pr, pr);
            ACCUM(3, 1, pz, pz);
            ACCUM(3, 2, pn, qn);
            back += pr * wh[0][l] + pz * wh[1][l] + qn * wh[2][l];
            gh[l] = on ? back : gh[l];
        }
    }
}

/* stored per step t (4 rows): h_t, then the step's r, z, n */
static void WN(gru_before)(WN(block_t) *b, const REAL *xb, REAL x0, REAL *h, REAL *S) {
    GATE_PARAMS(3);
    REAL scratch[4 * LB];
    FOR_LANES h[l] = x0;
    for (int64_t t = 0; t < b->steps; t++) {
        const REAL *xt = xb + t * LB;
        REAL *st = S ? S + t * 4 * LB : scratch;
        FOR_LANES {
            REAL z, n, r = FN(gru_reset)(PRE(0));
            REAL an = wi[2][l] * xt[l] + bi[2][l] + (wh[2][l] * (r * h[l]) + bh[2][l]);
            REAL h2 = FN(gru_before_fwd)(PRE(1), an, h[l], &z, &n);
            st[l] = h[l], st[LB + l] = r, st[2 * LB + l] = z, st[3 * LB + l] = n;
            h[l] = t < b->len[l] ? h2 : h[l];
        }
        SNAP(t)
    }
}

static void WN(gru_before_back)(WN(block_t) *b, const REAL *xb, const REAL *S, REAL *gh, REAL ga[][LB]) {
    HIDDEN_WEIGHTS(3);
    for (int64_t t = b->steps - 1; t >= 0; t--) {
        const REAL *xt = xb + t * LB, *st = S + t * 4 * LB;
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, hp = st[l], r = st[LB + l], pr, pz, pn;
            REAL back = FN(gru_before_bwd)(st[2 * LB + l], st[3 * LB + l], hp, on * gh[l], &pz, &pn);
            back += FN(gru_before_bwd_reset)(r, hp, pn * wh[2][l], &pr);  /* d loss / d (r h) */
            ACCUM(3, 0, pr, pr);
            ACCUM(3, 1, pz, pz);
            ga[2][l] += pn * xt[l], ga[5][l] += pn * r * hp, ga[8][l] += pn, ga[11][l] += pn;
            back += pr * wh[0][l] + pz * wh[1][l];
            gh[l] = on ? back : gh[l];
        }
    }
}

#undef PRE
#undef ACCUM

/* pascanu: v' = w sigmoid(v) + b, no input; stored per step: sigmoid(v_t) */
static void WN(pascanu)(WN(block_t) *b, REAL x0, REAL *h, REAL *S) {
    const REAL *w = b->pr[0], *bb = b->pr[1];
    REAL scratch[LB];
    FOR_LANES h[l] = x0;
    for (int64_t t = 0; t < b->steps; t++) {
        REAL *st = S ? S + t * LB : scratch;
        FOR_LANES {
            REAL s = FN(sig)(h[l]);
            st[l] = s;
            h[l] = t < b->len[l] ? FN(pascanu_fwd)(w[l], bb[l], s) : h[l];
        }
        SNAP(t)
    }
}

static void WN(pascanu_back)(WN(block_t) *b, const REAL *S, REAL *gh, REAL ga[][LB]) {
    const REAL *w = b->pr[0];
    for (int64_t t = b->steps - 1; t >= 0; t--) {
        FOR_LANES {
            REAL on = t < b->len[l] ? 1 : 0, s = S[t * LB + l];
            REAL dv = on * gh[l];
            ga[0][l] += dv * s;
            ga[1][l] += dv;
            gh[l] = on ? FN(pascanu_bwd)(w[l], s, dv) : gh[l];
        }
    }
}

/* ---- the entry point ---------------------------------------------------------------------- */

/* Run models g0 .. g1-1 of the door's arguments (ls_args in _fused.c, checked there) on their N
 * samples each, in blocks of LB (model, sample) lanes: writes hT[g * N + n], and with grad adds
 * each model's gradient of its mean loss. Returns LS_OK, or LS_ERR_MEMORY. */
static int WN(run1)(const ls_args *a) {
    const int cell = (int)a->cell, objective = (int)a->objective;
    const int64_t N = a->N, T = a->T, P = a->P;
    const REAL *theta = a->theta, *x = a->x, *y = a->y, x0 = (REAL)a->x0;
    REAL *hT = a->hT, *grad = a->grad;
    int64_t total = (a->g1 - a->g0) * N;
    if (total <= 0) return LS_OK;
    REAL *xb = x ? malloc(sizeof(REAL) * LB * (size_t)T) : 0;
    REAL *S = grad ? malloc(sizeof(REAL) * LB * (size_t)(T + 1) * ls_stored[cell]) : 0;
    WN(block_t) *b = malloc(sizeof(WN(block_t)));
    REAL(*ga)[LB] = malloc(sizeof(REAL) * LB * LS_MAX_P);
    REAL *hs = a->K ? malloc(sizeof(REAL) * LB * (size_t)a->K) : 0, *hS = a->hS;
    if ((x && !xb) || (grad && !S) || !b || !ga || (a->K && !hs)) {
        free(xb), free(S), free(b), free(ga), free(hs);
        return LS_ERR_MEMORY;
    }
    REAL h[LB], gh[LB];
    for (int64_t k0 = 0; k0 < total; k0 += LB) {
        WN(gather)(b, k0, total, a->g0, N, T, P, theta, a->len, y, a->ys_g, x, a->xs_g, a->xs_n, a->rows, xb);
        b->stops = a->stops, b->K = a->K, b->hs = hs;
        switch (cell) {
            case LS_CELL_RNN: WN(rnn)(b, xb, x0, h, S); break;
            case LS_CELL_LSTM: WN(lstm)(b, xb, x0, h, S); break;
            case LS_CELL_GRU: WN(gru)(b, xb, x0, h, S); break;
            case LS_CELL_GRU_BEFORE: WN(gru_before)(b, xb, x0, h, S); break;
            default: WN(pascanu)(b, x0, h, S); break;
        }
        if (grad) {
            for (int64_t j = 0; j < P; j++) FOR_LANES ga[j][l] = 0;
            WN(seed)(b, objective, P, h, ga, gh);
            switch (cell) {
                case LS_CELL_RNN: WN(rnn_back)(b, xb, S, gh, ga); break;
                case LS_CELL_LSTM: WN(lstm_back)(b, xb, S, gh, ga); break;
                case LS_CELL_GRU: WN(gru_back)(b, xb, S, gh, ga); break;
                case LS_CELL_GRU_BEFORE: WN(gru_before_back)(b, xb, S, gh, ga); break;
                default: WN(pascanu_back)(b, S, gh, ga); break;
            }
        }
        WN(scatter)(b, N, P, h, ga, hT, grad);
        for (int l = 0; l < b->valid; l++)
            for (int64_t k = 0; k < a->K; k++) hS[(b->g[l] * a->K + k) * N + b->n[l]] = hs[k * LB + l];
    }
    free(xb), free(S), free(b), free(ga), free(hs);
    return LS_OK;
}

#undef GATE_PARAMS
#undef SNAP
#undef HIDDEN_WEIGHTS
#undef WN
#undef FOR_LANES
