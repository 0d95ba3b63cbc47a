/* The fused time loop of models of H > 1 units; included by _fused.c once per floating-point type
 * with REAL, SUF (the symbol suffix), LB (lanes per block), EXP and TANH defined.
 *
 * A block is LB samples of ONE model (the last block of a model repeats its last sample in the
 * lanes left over), so every lane shares the model's weights: a step is the product of the
 * (gates*H, H) recurrent matrix with the (H, LB) state, in plain loops vectorized over the lanes,
 * followed by the cell's equations, lane by lane. All lanes of a block have the model's length,
 * so no step is masked. With gradients each step's values are kept in one malloc'd buffer per
 * call (per thread) of T + 1 records of R * H * LB values, and backpropagation through time adds
 * every lane's gradient to a per-lane accumulator (the recurrent weights' part once per CHUNK
 * steps, from the steps' kept derivatives); at the block's end the lanes are summed into the
 * model's gradient in sample order, as in _fused_body.h, so the result does not depend on the
 * thread count or on how models are split into calls.
 *
 * The equations are torch.nn's (nn.RNN / nn.LSTM / nn.GRU(1, H), gate orders ifgo and rzn) and
 * the GRU of Keras before 2.3 (reset gate before the product); the tests hold them against
 * landscape.units.forward_logits and autograd.
 *
 * Arrays of "rows": row k of a (rows, LB) array is AT(a, k), LB lanes side by side. A record
 * (one per step) is R row-blocks of H rows: BLK(rec, 0) the state h_t, then the cell's values.
 */

#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUF)
#define FOR_LANES _Pragma("omp simd") for (int l = 0; l < LB; l++)
#define AT(a, k) ((a) + (long)(k) * LB)
#define BLK(rec, q) ((rec) + (long)(q) * H * LB)

static const int FN(ugates)[] = {1, 4, 3, 0, 3};   /* gate blocks per cell code */
static const int FN(urecord)[] = {1, 7, 5, 0, 5};  /* row-blocks of H per step's record */

static inline REAL FN(usig)(REAL z) { return (REAL)1 / ((REAL)1 + EXP(-z)); }

typedef struct {
    int cell;             /* 0 rnn, 1 lstm, 2 gru, 4 gru with the reset gate before the product */
    long H, GH, P;        /* units, gate rows (gates * H), parameters */
    long steps;           /* the model's length */
    int valid;            /* lanes 0..valid-1 are real samples */
    const REAL *wi, *wh, *bi, *bh, *wo, *bo;  /* the model's row of theta, in torch.nn's layout */
    REAL y[LB];           /* labels */
    REAL *x, *S, *a;      /* work: (T, LB) inputs, the records, (GH, LB) pre-activations */
    REAL *dh, *dc;        /* (H, LB): d loss / d h_{t+1} (and c_{t+1}) in the backward pass */
    REAL *Q, *q;          /* (CHUNK, GH, LB): the last steps' hidden-term derivatives; q: this step's */
    REAL *ga;             /* (P, LB): each lane's gradient, in theta's order */
} FN(units_t);

/* The products below run TILE rows at once, so that TILE * LB / (lanes per vector) independent
 * sums hide the latency of each multiply-add; a last partial tile repeats its last row. */
#define TILE 4
#define CHUNK 16 /* steps of w_hh's gradient summed in registers */
#define ROW_OF(k, k1, i) ((k) + (i) < (k1) ? (k) + (i) : (k1) - 1)

/* out[k] = x w_ih[k] + b_ih[k] + b_hh[k] + sum_j w_hh[k][j] v[j], for gate rows k0 .. k1-1; with
 * x NULL the hidden term b_hh[k] + sum_j w_hh[k][j] v[j] alone. */
static void FN(affine)(const FN(units_t) *b, long k0, long k1, const REAL *x, const REAL *v, REAL *out) {
    const long H = b->H;
    for (long k = k0; k < k1; k += TILE) {
        REAL acc[TILE][LB];
        const REAL *w[TILE];
        for (int i = 0; i < TILE; i++) {
            const long r = ROW_OF(k, k1, i);
            w[i] = b->wh + r * H;
            if (x) FOR_LANES acc[i][l] = b->wi[r] * x[l] + b->bi[r] + b->bh[r];
            else FOR_LANES acc[i][l] = b->bh[r];
        }
        for (long j = 0; j < H; j++) {
            const REAL *vj = AT(v, j);
            for (int i = 0; i < TILE; i++) {
                const REAL wij = w[i][j];
                FOR_LANES acc[i][l] += wij * vj[l];
            }
        }
        for (int i = 0; i < TILE && k + i < k1; i++) FOR_LANES AT(out, k + i)[l] = acc[i][l];
    }
}

/* out[j] += sum_k w_hh[k][j] p[k] over gate rows k0 .. k1-1: a gradient back through the product. */
static void FN(affine_back)(const FN(units_t) *b, long k0, long k1, const REAL *p, REAL *out) {
    const long H = b->H;
    for (long j = 0; j < H; j += TILE) {
        REAL acc[TILE][LB];
        long c[TILE];
        for (int i = 0; i < TILE; i++) {
            c[i] = ROW_OF(j, H, i);
            FOR_LANES acc[i][l] = AT(out, c[i])[l];
        }
        for (long k = k0; k < k1; k++) {
            const REAL *pk = AT(p, k), *w = b->wh + k * H;
            for (int i = 0; i < TILE; i++) {
                const REAL wki = w[c[i]];
                FOR_LANES acc[i][l] += wki * pk[l];
            }
        }
        for (int i = 0; i < TILE && j + i < H; i++) FOR_LANES AT(out, j + i)[l] = acc[i][l];
    }
}

/* Add one step's terms to each lane's gradient of w_ih, b_ih and b_hh, for gate rows k0 .. k1-1:
 * p the derivatives of the gates' input terms (w_ih x + b_ih), q those of their hidden terms. */
static void FN(accum)(FN(units_t) *b, long k0, long k1, const REAL *x, const REAL *p, const REAL *q) {
    const long GH = b->GH;
    REAL *g_wi = b->ga, *g_bi = AT(b->ga, GH + GH * b->H), *g_bh = AT(g_bi, GH);
    for (long k = k0; k < k1; k++) {
        const REAL *pk = AT(p, k), *qk = AT(q, k);
        FOR_LANES AT(g_wi, k)[l] += pk[l] * x[l], AT(g_bi, k)[l] += pk[l], AT(g_bh, k)[l] += qk[l];
    }
}

/* Add steps t0 .. t1-1 to each lane's gradient of w_hh: the sum over those steps of q_t[k] v_t[j],
 * q_t the step's hidden-term derivatives (kept in b->Q, slot t % CHUNK) and v_t the vector w_hh
 * multiplied (row-block `vb` of the step's record: h_t, or r h for the GRU's candidate before).
 * Each sum over the chunk stays in registers, so a lane's accumulator is read and written once
 * per chunk, not once per step. */
static void FN(accum_hidden)(FN(units_t) *b, long t0, long t1) {
    const long H = b->H, GH = b->GH, rec = FN(urecord)[b->cell] * H * LB;
    REAL *g_wh = AT(b->ga, GH);
    for (long k = 0; k < GH; k++) {
        const int vb = b->cell == 4 && k >= 2 * H ? 4 : 0;
        for (long j = 0; j < H; j += TILE) {
            REAL acc[TILE][LB];
            long c[TILE];
            for (int i = 0; i < TILE; i++) c[i] = ROW_OF(j, H, i);
            for (int i = 0; i < TILE; i++) FOR_LANES acc[i][l] = 0;
            for (long t = t0; t < t1; t++) {
                const REAL *qk = AT(b->Q + (t % CHUNK) * GH * LB, k), *v = BLK(b->S + t * rec, vb);
                for (int i = 0; i < TILE; i++) {
                    const REAL *vj = AT(v, c[i]);
                    FOR_LANES acc[i][l] += qk[l] * vj[l];
                }
            }
            for (int i = 0; i < TILE && j + i < H; i++) FOR_LANES AT(g_wh, k * H + j + i)[l] += acc[i][l];
        }
    }
}

/* ---- the cells: one step forward from record `cur` into `nxt`, and one step back ----------- */

/* rnn: h' = tanh(w_ih x + b_ih + w_hh h + b_hh). Record: h. */
static void FN(urnn)(FN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    FN(affine)(b, 0, b->H, x, cur, b->a);
    for (long k = 0; k < b->H; k++) FOR_LANES AT(nxt, k)[l] = TANH(AT(b->a, k)[l]);
}

static void FN(urnn_back)(FN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    for (long k = 0; k < b->H; k++) {
        const REAL *hn = AT(nxt, k), *dh = AT(b->dh, k);
        FOR_LANES AT(b->q, k)[l] = dh[l] * (1 - hn[l] * hn[l]);  /* d loss / d pre-activation */
    }
    FN(accum)(b, 0, b->H, x, b->q, b->q);
    for (long j = 0; j < b->H; j++) FOR_LANES AT(b->dh, j)[l] = 0;
    FN(affine_back)(b, 0, b->H, b->q, b->dh);
}

/* lstm (gates i, f, g, o): c' = f c + i g, h' = o tanh(c'). Record: h, c, i, f, g, o, tanh(c'). */
static void FN(ulstm)(FN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const long H = b->H;
    FN(affine)(b, 0, 4 * H, x, cur, b->a);
    for (long k = 0; k < H; k++) {
        const REAL *a = b->a, *c = AT(BLK(cur, 1), k);
        REAL *st[5] = {AT(BLK(cur, 2), k), AT(BLK(cur, 3), k), AT(BLK(cur, 4), k), AT(BLK(cur, 5), k),
                       AT(BLK(cur, 6), k)};
        FOR_LANES {
            REAL i = FN(usig)(AT(a, k)[l]), f = FN(usig)(AT(a, H + k)[l]);
            REAL g = TANH(AT(a, 2 * H + k)[l]), o = FN(usig)(AT(a, 3 * H + k)[l]);
            REAL cn = f * c[l] + i * g, tc = TANH(cn);
            st[0][l] = i, st[1][l] = f, st[2][l] = g, st[3][l] = o, st[4][l] = tc;
            AT(BLK(nxt, 0), k)[l] = o * tc;
            AT(BLK(nxt, 1), k)[l] = cn;
        }
    }
}

static void FN(ulstm_back)(FN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const long H = b->H;
    REAL *p = b->q;
    for (long k = 0; k < H; k++) {
        const REAL *cp = AT(BLK(cur, 1), k), *si = AT(BLK(cur, 2), k), *sf = AT(BLK(cur, 3), k);
        const REAL *sg = AT(BLK(cur, 4), k), *so = AT(BLK(cur, 5), k), *stc = AT(BLK(cur, 6), k);
        REAL *dh = AT(b->dh, k), *dc = AT(b->dc, k);
        FOR_LANES {
            REAL i = si[l], f = sf[l], g = sg[l], o = so[l], tc = stc[l];
            REAL dct = dc[l] + dh[l] * o * (1 - tc * tc);  /* d loss / d c_{t+1} */
            AT(p, k)[l] = dct * g * i * (1 - i);  /* d loss / d pre-activation, gates i f g o */
            AT(p, H + k)[l] = dct * cp[l] * f * (1 - f);
            AT(p, 2 * H + k)[l] = dct * i * (1 - g * g);
            AT(p, 3 * H + k)[l] = dh[l] * tc * o * (1 - o);
            dc[l] = dct * f;
        }
    }
    FN(accum)(b, 0, 4 * H, x, p, p);
    for (long j = 0; j < H; j++) FOR_LANES AT(b->dh, j)[l] = 0;
    FN(affine_back)(b, 0, 4 * H, p, b->dh);
}

/* gru (gates r, z, n): n = tanh(w_in x + b_in + r (w_hn h + b_hn)), h' = (1 - z) n + z h.
 * Record: h, r, z, n, w_hn h + b_hn. */
static void FN(ugru)(FN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const long H = b->H;
    FN(affine)(b, 0, 2 * H, x, cur, b->a);
    FN(affine)(b, 2 * H, 3 * H, 0, cur, b->a);  /* the candidate's hidden term alone */
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *hn = AT(b->a, 2 * H + k);
        const REAL wi = b->wi[2 * H + k], bi = b->bi[2 * H + k];
        REAL *sr = AT(BLK(cur, 1), k), *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        REAL *shn = AT(BLK(cur, 4), k);
        FOR_LANES {
            REAL r = FN(usig)(AT(b->a, k)[l]), z = FN(usig)(AT(b->a, H + k)[l]);
            REAL n = TANH(wi * x[l] + bi + r * hn[l]);
            sr[l] = r, sz[l] = z, sn[l] = n, shn[l] = hn[l];
            AT(nxt, k)[l] = (1 - z) * n + z * h[l];
        }
    }
}

static void FN(ugru_back)(FN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const long H = b->H;
    REAL *p = b->a, *q = b->q;  /* derivatives of the input terms, and of the hidden terms */
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sr = AT(BLK(cur, 1), k), *sz = AT(BLK(cur, 2), k);
        const REAL *sn = AT(BLK(cur, 3), k), *shn = AT(BLK(cur, 4), k);
        REAL *dh = AT(b->dh, k);
        FOR_LANES {
            REAL r = sr[l], z = sz[l], n = sn[l];
            REAL pn = dh[l] * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
            REAL pr = pn * shn[l] * r * (1 - r), pz = dh[l] * (h[l] - n) * z * (1 - z);
            AT(p, k)[l] = AT(q, k)[l] = pr;
            AT(p, H + k)[l] = AT(q, H + k)[l] = pz;
            AT(p, 2 * H + k)[l] = pn, AT(q, 2 * H + k)[l] = pn * r;
            dh[l] = dh[l] * z;  /* the direct path h -> h' */
        }
    }
    FN(accum)(b, 0, 3 * H, x, p, q);
    FN(affine_back)(b, 0, 3 * H, q, b->dh);
}

/* gru, reset gate before the product (Keras < 2.3): n = tanh(w_in x + b_in + w_hn (r h) + b_hn).
 * Record: h, r, z, n, r h. */
static void FN(ugru_before)(FN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const long H = b->H;
    REAL *rh = BLK(cur, 4);
    FN(affine)(b, 0, 2 * H, x, cur, b->a);
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k);
        REAL *sr = AT(BLK(cur, 1), k);
        FOR_LANES sr[l] = FN(usig)(AT(b->a, k)[l]), AT(rh, k)[l] = sr[l] * h[l];
    }
    FN(affine)(b, 2 * H, 3 * H, x, rh, b->a);  /* the candidate's pre-activation, of r h */
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k);
        REAL *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        FOR_LANES {
            REAL z = FN(usig)(AT(b->a, H + k)[l]), n = TANH(AT(b->a, 2 * H + k)[l]);
            sz[l] = z, sn[l] = n;
            AT(nxt, k)[l] = (1 - z) * n + z * h[l];
        }
    }
}

static void FN(ugru_before_back)(FN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const long H = b->H;
    REAL *p = b->q, *drh = b->a;
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        REAL *dh = AT(b->dh, k);
        FOR_LANES {
            REAL z = sz[l], n = sn[l];
            AT(p, 2 * H + k)[l] = dh[l] * (1 - z) * (1 - n * n);  /* d loss / d (pre-activation of n) */
            AT(p, H + k)[l] = dh[l] * (h[l] - n) * z * (1 - z);
            AT(drh, k)[l] = 0;
        }
    }
    FN(affine_back)(b, 2 * H, 3 * H, p, drh);  /* d loss / d (r h) */
    for (long k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sr = AT(BLK(cur, 1), k), *sz = AT(BLK(cur, 2), k);
        REAL *dh = AT(b->dh, k), *d = AT(drh, k);
        FOR_LANES {
            REAL r = sr[l];
            AT(p, k)[l] = d[l] * h[l] * r * (1 - r);
            dh[l] = dh[l] * sz[l] + d[l] * r;  /* the direct path, and the path through r h */
        }
    }
    FN(accum)(b, 0, 3 * H, x, p, p);
    FN(affine_back)(b, 0, 2 * H, p, b->dh);
}

/* ---- a block: gather, forward, seed, back, scatter ----------------------------------------- */


/* Point the block at model g's parameters and copy the inputs and labels of its samples n0 .. */
static void FN(ugather)(FN(units_t) *b, long g, long n0, long N, const REAL *theta, const long *len,
                        long T, const REAL *x, long xs_g, long xs_n, const long *rows, const REAL *y,
                        long ys_g) {
    const long H = b->H, GH = b->GH;
    const REAL *th = theta + g * b->P;
    b->wi = th, b->wh = th + GH, b->bi = th + GH + GH * H, b->bh = b->bi + GH, b->wo = b->bh + GH;
    b->bo = b->wo + H;
    b->steps = len ? len[g] : T;
    b->valid = (int)(N - n0 < LB ? N - n0 : LB);
    for (int l = 0; l < LB; l++) {
        long n = n0 + (l < b->valid ? l : b->valid - 1);  /* lanes past the end repeat the last sample */
        long r = rows ? rows[g * N + n] : -1;  /* the lane's row of x and y, if indexed */
        b->y[l] = y ? y[rows ? r : g * ys_g + n] : 0;
        const REAL *row = x + (rows ? r * xs_n : g * xs_g + n * xs_n);
        for (long t = 0; t < b->steps; t++) b->x[t * LB + l] = row[t];
    }
}

/* The loss's derivative with respect to each lane's final state h (rows of LB), and the readout's
 * own gradient: logit z = w_out . h + b_out, binary cross-entropy (objective 0), or with the true
 * class's probability clipped to [1e-7, 1 - 1e-7] as Keras does (2). Lanes past the last sample
 * get 0. Per sample, before the mean over samples. */
static void FN(useed)(FN(units_t) *b, int objective, const REAL *h) {
    const long H = b->H;
    const REAL eps = objective == 2 ? (REAL)1e-7 : 0;  /* Keras: log(clip(p, eps, 1 - eps)) */
    REAL dz[LB];
    FOR_LANES dz[l] = b->bo[0];
    for (long j = 0; j < H; j++) FOR_LANES dz[l] += b->wo[j] * AT(h, j)[l];
    FOR_LANES {
        REAL s = FN(usig)(dz[l]);
        REAL py = b->y[l] > (REAL)0.5 ? s : 1 - s;  /* the true class's probability */
        int live = l < b->valid && (eps == 0 || (py > eps && py < 1 - eps));
        dz[l] = live ? s - b->y[l] : 0;
    }
    REAL *g_wo = AT(b->ga, b->P - H - 1), *g_bo = AT(b->ga, b->P - 1);
    for (long j = 0; j < H; j++) {
        FOR_LANES AT(g_wo, j)[l] = dz[l] * AT(h, j)[l];
        FOR_LANES AT(b->dh, j)[l] = dz[l] * b->wo[j], AT(b->dc, j)[l] = 0;
    }
    FOR_LANES g_bo[l] = dz[l];
}

typedef void (*FN(ustep_t))(FN(units_t) *, const REAL *, REAL *, REAL *);
typedef void (*FN(uback_t))(FN(units_t) *, const REAL *, const REAL *, const REAL *);

/* Run one block: forward (keeping every step's record with gradients, else two in turn), then
 * backpropagation through time; writes the final states and adds the lanes' gradients. */
static void FN(ublock)(FN(units_t) *b, int objective, long g, long n0, long N, REAL *hT, REAL *grad) {
    static const FN(ustep_t) step[] = {FN(urnn), FN(ulstm), FN(ugru), 0, FN(ugru_before)};
    static const FN(uback_t) back[] = {FN(urnn_back), FN(ulstm_back), FN(ugru_back), 0,
                                       FN(ugru_before_back)};
    const long H = b->H, rec = FN(urecord)[b->cell] * H * LB;
#define REC(t) (b->S + (grad ? (t) : ((t) & 1)) * rec)
    for (long k = 0; k < (b->cell == 1 ? 2 * H : H); k++) FOR_LANES AT(REC(0), k)[l] = 0;  /* h, c */
    for (long t = 0; t < b->steps; t++) step[b->cell](b, AT(b->x, t), REC(t), REC(t + 1));
    const REAL *h = REC(b->steps);
    for (int l = 0; l < b->valid; l++)
        for (long j = 0; j < H; j++) hT[((g * N) + n0 + l) * H + j] = AT(h, j)[l];
    if (!grad) return;
    for (long j = 0; j < b->P - H - 1; j++) FOR_LANES AT(b->ga, j)[l] = 0;
    FN(useed)(b, objective, h);
    for (long t = b->steps - 1; t >= 0; t--) {
        b->q = b->Q + (t % CHUNK) * b->GH * LB;
        back[b->cell](b, AT(b->x, t), REC(t), REC(t + 1));
        if (t % CHUNK == 0) FN(accum_hidden)(b, t, t + CHUNK < b->steps ? t + CHUNK : b->steps);
    }
#undef REC
    for (int l = 0; l < b->valid; l++)  /* in sample order, whatever the thread count */
        for (long j = 0; j < b->P; j++) grad[g * b->P + j] += AT(b->ga, j)[l] / (REAL)N;
}

/* Run models g0 .. g1-1 of H units (rows of theta, (G, P)) on their N samples each.
 *   cell: 0 rnn, 1 lstm, 2 gru, 4 gru with the reset gate before the product; objective: 0
 *   classification, 2 Keras's clipped classification loss; x, rows, y and len as for ls_run (the
 *   initial state is 0). Writes hT[(g * N + n) * H + j], the final states; with grad (G, P)
 *   non-NULL, adds to grad[g] the gradient of model g's mean loss. Returns 0, or -1 when memory
 *   ran out. */
int FN(ls_units)(int cell, int objective, long H, long N, long T, long P, const REAL *theta,
                 const REAL *x, long xs_g, long xs_n, const long *rows, const REAL *y, long ys_g,
                 const long *len, long g0, long g1, REAL *hT, REAL *grad) {
    if (g1 <= g0 || N <= 0) return 0;
    FN(units_t) b = {.cell = cell, .H = H, .GH = FN(ugates)[cell] * H, .P = P};
    const long recs = grad ? T + 1 : 2, HL = H * LB;
    size_t size = (size_t)T * LB + (size_t)recs * FN(urecord)[cell] * HL + (size_t)b.GH * LB
                  + 2 * (size_t)HL + (grad ? (size_t)P * LB + (size_t)CHUNK * b.GH * LB : 0);
    REAL *work = malloc(sizeof(REAL) * size);
    if (!work) return -1;
    b.x = work, b.S = b.x + T * LB, b.a = b.S + recs * FN(urecord)[cell] * HL, b.dh = b.a + b.GH * LB;
    b.dc = b.dh + HL, b.ga = grad ? b.dc + HL : 0, b.Q = grad ? b.ga + P * LB : 0;
    b.q = b.a;  /* forward only: unused */
    for (long g = g0; g < g1; g++)
        for (long n0 = 0; n0 < N; n0 += LB) {
            FN(ugather)(&b, g, n0, N, theta, len, T, x, xs_g, xs_n, rows, y, ys_g);
            FN(ublock)(&b, objective, g, n0, N, hT, grad);
        }
    free(work);
    return 0;
}

#undef CAT2
#undef CAT
#undef FN
#undef FOR_LANES
#undef AT
#undef BLK
#undef TILE
#undef CHUNK
#undef ROW_OF
