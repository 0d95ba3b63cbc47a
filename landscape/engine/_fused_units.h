/* The fused time loop of models of H > 1 units; included by _fused.c once per floating-point type
 * with REAL, FN (the type's suffix) and LB (lanes per block) defined, after _cell_math.h of that type.
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
 * The equations are _cell_math.h's, shared with the one-unit loops; the tests hold them against
 * torch.nn, landscape.units.forward_logits and autograd.
 *
 * Arrays of "rows": row k of a (rows, LB) array is AT(a, k), LB lanes side by side. A record
 * (one per step) is R row-blocks of H rows: BLK(rec, 0) the state h_t, then the cell's values.
 */

#define UN(name) FN(u_##name)  /* this file's own functions */
#define FOR_LANES _Pragma("omp simd") for (int l = 0; l < LB; l++)
#define AT(a, k) ((a) + (int64_t)(k) * LB)
#define BLK(rec, q) ((rec) + (int64_t)(q) * H * LB)


typedef struct {
    int cell;                 /* LS_CELL_* */
    int64_t I, H, GH, L, P;   /* inputs, units, gate rows (gates * H), layers, parameters */
    int64_t steps;            /* the model's length */
    int valid;                /* lanes 0..valid-1 are real samples */
    /* the layer being run: its weights in the model's row of theta (torch.nn's layout), the width
     * of its input (I for layer 0, H above), its records and its part of each lane's gradient */
    const REAL *wi, *wh, *bi, *bh;
    int64_t in;
    REAL *S, *ga;
    const REAL *theta;        /* the model's row of theta; the readout's wo (H) and bo (1) end it */
    const REAL *wo, *bo;
    REAL y[LB];               /* labels */
    REAL *x, *Sall, *a, *xn;  /* work: (T, I, LB) inputs, every layer's records, (GH, LB) and (H, LB) terms */
    REAL *dh, *dc;            /* (H, LB): d loss / d h_{t+1} (and c_{t+1}) in the backward pass */
    REAL *dx;                 /* (H, LB) or NULL: where this step's d loss / d input goes (layers above 0) */
    REAL *Q, *q;              /* (CHUNK, GH, LB): the last steps' hidden-term derivatives; q: this step's */
    REAL *gall;               /* (P, LB): each lane's gradient, in theta's order */
} UN(units_t);

/* The products below run TILE rows at once, so that TILE * LB / (lanes per vector) independent
 * sums hide the latency of each multiply-add; a last partial tile repeats its last row. */
#define TILE (LS_VEC == 64 ? 8 : 4) /* rows: 8 x LB accumulators fit AVX-512's 32 registers, AVX2's 16 hold 4 */
#define CHUNK 16 /* steps of w_hh's gradient summed in registers */
#define ROW_OF(k, k1, i) ((k) + (i) < (k1) ? (k) + (i) : (k1) - 1)

/* Where layer k's parameters start in a model's row of theta: each layer is w_ih (GH, in),
 * w_hh (GH, H), b_ih (GH), b_hh (GH). */
static int64_t UN(layer_offset)(const UN(units_t) *b, int64_t k) {
    return k == 0 ? 0 : b->GH * (b->I + b->H + 2) + (k - 1) * b->GH * (2 * b->H + 2);
}

/* Make layer k the one the functions below run. */
static void UN(use_layer)(UN(units_t) *b, int64_t k, int64_t recs) {
    const int64_t off = UN(layer_offset)(b, k), GH = b->GH;
    b->in = k == 0 ? b->I : b->H;
    b->wi = b->theta + off, b->wh = b->wi + GH * b->in, b->bi = b->wh + GH * b->H, b->bh = b->bi + GH;
    b->S = b->Sall + k * recs * ls_record[b->cell] * b->H * LB;
    b->ga = b->gall ? AT(b->gall, off) : 0;
}

/* out[k] = b_ih[k] + b_hh[k] + sum_i w_ih[k][i] x[i] + sum_j w_hh[k][j] v[j], for gate rows
 * k0 .. k1-1; with x NULL the hidden term b_hh[k] + sum_j w_hh[k][j] v[j] alone, with v NULL the
 * input term b_ih[k] + sum_i w_ih[k][i] x[i] alone. */
static void UN(affine)(const UN(units_t) *b, int64_t k0, int64_t k1, const REAL *x, const REAL *v, REAL *out) {
    const int64_t H = b->H, in = b->in;
    for (int64_t k = k0; k < k1; k += TILE) {
        REAL acc[TILE][LB];
        int64_t r[TILE];
        for (int i = 0; i < TILE; i++) {
            r[i] = ROW_OF(k, k1, i);
            const REAL *wx = b->wi + r[i] * in, bb = v ? b->bh[r[i]] : 0;
            if (x) {
                FOR_LANES acc[i][l] = wx[0] * x[l];
                for (int64_t j = 1; j < in; j++) FOR_LANES acc[i][l] += wx[j] * AT(x, j)[l];
                FOR_LANES acc[i][l] = acc[i][l] + b->bi[r[i]] + bb;
            } else FOR_LANES acc[i][l] = bb;
        }
        if (v)
            for (int64_t j = 0; j < H; j++) {
                const REAL *vj = AT(v, j);
                for (int i = 0; i < TILE; i++) {
                    const REAL wij = b->wh[r[i] * H + j];
                    FOR_LANES acc[i][l] += wij * vj[l];
                }
            }
        for (int i = 0; i < TILE && k + i < k1; i++) FOR_LANES AT(out, k + i)[l] = acc[i][l];
    }
}

/* out[j] += sum_k w[k][j] p[k] over rows k0 .. k1-1 of a (rows, width) matrix w: a gradient back
 * through a product (w_hh to the state, or w_ih to the input). */
static void UN(mat_back)(const REAL *w, int64_t width, int64_t k0, int64_t k1, const REAL *p, REAL *out) {
    for (int64_t j = 0; j < width; j += TILE) {
        REAL acc[TILE][LB];
        int64_t c[TILE];
        for (int i = 0; i < TILE; i++) {
            c[i] = ROW_OF(j, width, i);
            FOR_LANES acc[i][l] = AT(out, c[i])[l];
        }
        for (int64_t k = k0; k < k1; k++) {
            const REAL *pk = AT(p, k), *wk = w + k * width;
            for (int i = 0; i < TILE; i++) {
                const REAL wki = wk[c[i]];
                FOR_LANES acc[i][l] += wki * pk[l];
            }
        }
        for (int i = 0; i < TILE && j + i < width; i++) FOR_LANES AT(out, j + i)[l] = acc[i][l];
    }
}

static void UN(affine_back)(const UN(units_t) *b, int64_t k0, int64_t k1, const REAL *p, REAL *out) {
    UN(mat_back)(b->wh, b->H, k0, k1, p, out);
}

/* Add one step's terms to each lane's gradient of w_ih, b_ih and b_hh, for gate rows k0 .. k1-1:
 * p the derivatives of the gates' input terms (w_ih x + b_ih), q those of their hidden terms;
 * and, above layer 0, the derivative with respect to the step's input into b->dx. */
static void UN(accum)(UN(units_t) *b, int64_t k0, int64_t k1, const REAL *x, const REAL *p, const REAL *q) {
    const int64_t GH = b->GH, in = b->in;
    REAL *g_wi = b->ga, *g_bi = AT(b->ga, GH * in + GH * b->H), *g_bh = AT(g_bi, GH);
    for (int64_t k = k0; k < k1; k++) {
        const REAL *pk = AT(p, k), *qk = AT(q, k);
        for (int64_t j = 0; j < in; j++) FOR_LANES AT(g_wi, k * in + j)[l] += pk[l] * AT(x, j)[l];
        FOR_LANES AT(g_bi, k)[l] += pk[l], AT(g_bh, k)[l] += qk[l];
    }
    if (b->dx) {
        for (int64_t j = 0; j < in; j++) FOR_LANES AT(b->dx, j)[l] = 0;
        UN(mat_back)(b->wi, in, k0, k1, p, b->dx);
    }
}

/* Add steps t0 .. t1-1 to each lane's gradient of w_hh: the sum over those steps of q_t[k] v_t[j],
 * q_t the step's hidden-term derivatives (kept in b->Q, slot t % CHUNK) and v_t the vector w_hh
 * multiplied (row-block `vb` of the step's record: h_t, or r h for the GRU's candidate before).
 * Each sum over the chunk stays in registers, so a lane's accumulator is read and written once
 * per chunk, not once per step. */
static void UN(accum_hidden)(UN(units_t) *b, int64_t t0, int64_t t1) {
    const int64_t H = b->H, GH = b->GH, rec = ls_record[b->cell] * H * LB;
    REAL *g_wh = AT(b->ga, GH * b->in);
    for (int64_t k = 0; k < GH; k++) {
        const int vb = b->cell == LS_CELL_GRU_BEFORE && k >= 2 * H ? 4 : 0;
        for (int64_t j = 0; j < H; j += TILE) {
            REAL acc[TILE][LB];
            int64_t c[TILE];
            for (int i = 0; i < TILE; i++) c[i] = ROW_OF(j, H, i);
            for (int i = 0; i < TILE; i++) FOR_LANES acc[i][l] = 0;
            for (int64_t t = t0; t < t1; t++) {
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

/* rnn. Record: h. */
static void UN(rnn)(UN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    UN(affine)(b, 0, b->H, x, cur, b->a);
    for (int64_t k = 0; k < b->H; k++) FOR_LANES AT(nxt, k)[l] = FN(rnn_fwd)(AT(b->a, k)[l]);
}

static void UN(rnn_back)(UN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    for (int64_t k = 0; k < b->H; k++) {
        const REAL *hn = AT(nxt, k), *dh = AT(b->dh, k);
        FOR_LANES AT(b->q, k)[l] = FN(rnn_bwd)(hn[l], dh[l]);
    }
    UN(accum)(b, 0, b->H, x, b->q, b->q);
    for (int64_t j = 0; j < b->H; j++) FOR_LANES AT(b->dh, j)[l] = 0;
    UN(affine_back)(b, 0, b->H, b->q, b->dh);
}

/* lstm (gates i, f, g, o). Record: h, c, i, f, g, o, tanh(c'). */
static void UN(lstm)(UN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const int64_t H = b->H;
    UN(affine)(b, 0, 4 * H, x, cur, b->a);
    for (int64_t k = 0; k < H; k++) {
        const REAL *a = b->a, *c = AT(BLK(cur, 1), k);
        REAL *si = AT(BLK(cur, 2), k), *sf = AT(BLK(cur, 3), k), *sg = AT(BLK(cur, 4), k);
        REAL *so = AT(BLK(cur, 5), k), *stc = AT(BLK(cur, 6), k), *hn = AT(BLK(nxt, 0), k), *cn = AT(BLK(nxt, 1), k);
        FOR_LANES {
            REAL cc, i, f, g, o, tc;
            hn[l] = FN(lstm_fwd)(AT(a, k)[l], AT(a, H + k)[l], AT(a, 2 * H + k)[l], AT(a, 3 * H + k)[l], c[l], &cc,
                                 &i, &f, &g, &o, &tc);
            cn[l] = cc, si[l] = i, sf[l] = f, sg[l] = g, so[l] = o, stc[l] = tc;
        }
    }
}

static void UN(lstm_back)(UN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const int64_t H = b->H;
    REAL *p = b->q;
    for (int64_t k = 0; k < H; k++) {
        const REAL *cp = AT(BLK(cur, 1), k), *si = AT(BLK(cur, 2), k), *sf = AT(BLK(cur, 3), k);
        const REAL *sg = AT(BLK(cur, 4), k), *so = AT(BLK(cur, 5), k), *stc = AT(BLK(cur, 6), k);
        REAL *dh = AT(b->dh, k), *dc = AT(b->dc, k);
        REAL *pi = AT(p, k), *pf = AT(p, H + k), *pg = AT(p, 2 * H + k), *po = AT(p, 3 * H + k);
        FOR_LANES {
            REAL a0, a1, a2, a3;
            dc[l] = FN(lstm_bwd)(si[l], sf[l], sg[l], so[l], stc[l], cp[l], dh[l], dc[l], &a0, &a1, &a2, &a3);
            pi[l] = a0, pf[l] = a1, pg[l] = a2, po[l] = a3;
        }
    }
    UN(accum)(b, 0, 4 * H, x, p, p);
    for (int64_t j = 0; j < H; j++) FOR_LANES AT(b->dh, j)[l] = 0;
    UN(affine_back)(b, 0, 4 * H, p, b->dh);
}

/* gru (gates r, z, n). Record: h, r, z, n, w_hn h + b_hn. */
static void UN(gru)(UN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const int64_t H = b->H;
    UN(affine)(b, 0, 2 * H, x, cur, b->a);
    UN(affine)(b, 2 * H, 3 * H, 0, cur, b->a);  /* the candidate's hidden term alone */
    UN(affine)(b, 2 * H, 3 * H, x, 0, AT(b->a, H));  /* and its input term alone, into xn (rows GH ..) */
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *hn = AT(b->a, 2 * H + k), *xn = AT(b->xn, k);
        REAL *sr = AT(BLK(cur, 1), k), *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        REAL *shn = AT(BLK(cur, 4), k), *h2 = AT(nxt, k);
        FOR_LANES {
            REAL r, z, n;
            h2[l] = FN(gru_fwd)(AT(b->a, k)[l], AT(b->a, H + k)[l], xn[l], hn[l], h[l], &r, &z, &n);
            sr[l] = r, sz[l] = z, sn[l] = n, shn[l] = hn[l];
        }
    }
}

static void UN(gru_back)(UN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const int64_t H = b->H;
    REAL *p = b->a, *q = b->q;  /* derivatives of the input terms, and of the hidden terms */
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sr = AT(BLK(cur, 1), k), *sz = AT(BLK(cur, 2), k);
        const REAL *sn = AT(BLK(cur, 3), k), *shn = AT(BLK(cur, 4), k);
        REAL *dh = AT(b->dh, k);
        FOR_LANES {
            REAL pr, pz, pn, qn;
            dh[l] = FN(gru_bwd)(sr[l], sz[l], sn[l], shn[l], h[l], dh[l], &pr, &pz, &pn, &qn);  /* direct path */
            AT(p, k)[l] = AT(q, k)[l] = pr;
            AT(p, H + k)[l] = AT(q, H + k)[l] = pz;
            AT(p, 2 * H + k)[l] = pn, AT(q, 2 * H + k)[l] = qn;
        }
    }
    UN(accum)(b, 0, 3 * H, x, p, q);
    UN(affine_back)(b, 0, 3 * H, q, b->dh);
}

/* gru, reset gate before the product (Keras < 2.3). Record: h, r, z, n, r h. */
static void UN(gru_before)(UN(units_t) *b, const REAL *x, REAL *cur, REAL *nxt) {
    const int64_t H = b->H;
    REAL *rh = BLK(cur, 4);
    UN(affine)(b, 0, 2 * H, x, cur, b->a);
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k);
        REAL *sr = AT(BLK(cur, 1), k);
        FOR_LANES sr[l] = FN(gru_reset)(AT(b->a, k)[l]), AT(rh, k)[l] = sr[l] * h[l];
    }
    UN(affine)(b, 2 * H, 3 * H, x, rh, b->a);  /* the candidate's pre-activation, of r h */
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k);
        REAL *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        FOR_LANES {
            REAL z, n;
            AT(nxt, k)[l] = FN(gru_before_fwd)(AT(b->a, H + k)[l], AT(b->a, 2 * H + k)[l], h[l], &z, &n);
            sz[l] = z, sn[l] = n;
        }
    }
}

static void UN(gru_before_back)(UN(units_t) *b, const REAL *x, const REAL *cur, const REAL *nxt) {
    const int64_t H = b->H;
    REAL *p = b->q, *drh = b->a;
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sz = AT(BLK(cur, 2), k), *sn = AT(BLK(cur, 3), k);
        REAL *dh = AT(b->dh, k);
        REAL *pz = AT(p, H + k), *pn = AT(p, 2 * H + k);
        FOR_LANES {
            REAL dz, dn;
            dh[l] = FN(gru_before_bwd)(sz[l], sn[l], h[l], dh[l], &dz, &dn);
            pz[l] = dz, pn[l] = dn, AT(drh, k)[l] = 0;
        }
    }
    UN(affine_back)(b, 2 * H, 3 * H, p, drh);  /* d loss / d (r h) */
    for (int64_t k = 0; k < H; k++) {
        const REAL *h = AT(cur, k), *sr = AT(BLK(cur, 1), k);
        REAL *dh = AT(b->dh, k), *d = AT(drh, k);
        REAL *pr = AT(p, k);
        FOR_LANES {
            REAL dr;
            dh[l] += FN(gru_before_bwd_reset)(sr[l], h[l], d[l], &dr);
            pr[l] = dr;
        }
    }
    UN(accum)(b, 0, 3 * H, x, p, p);
    UN(affine_back)(b, 0, 2 * H, p, b->dh);
}

/* ---- a block: gather, forward, seed, back, scatter ----------------------------------------- */


/* Point the block at model g's parameters and copy the inputs (T, I per lane) and labels of its
 * samples n0 .. */
static void UN(gather)(UN(units_t) *b, const ls_args *a, int64_t g, int64_t n0) {
    const REAL *x = a->x, *y = a->y;
    const int64_t N = a->N, I = b->I, *rows = a->rows;
    b->theta = (const REAL *)a->theta + g * b->P;
    b->wo = b->theta + b->P - b->H - 1, b->bo = b->wo + b->H;
    b->steps = a->len ? a->len[g] : a->T;
    b->valid = (int)(N - n0 < LB ? N - n0 : LB);
    for (int l = 0; l < LB; l++) {
        int64_t n = n0 + (l < b->valid ? l : b->valid - 1);  /* lanes past the end repeat the last sample */
        int64_t r = rows ? rows[g * N + n] : -1;  /* the lane's row of x and y, if indexed */
        b->y[l] = y ? y[rows ? r : g * a->ys_g + n] : 0;
        const REAL *row = x + (rows ? r * a->xs_n : g * a->xs_g + n * a->xs_n);
        for (int64_t t = 0; t < b->steps * I; t++) b->x[t * LB + l] = row[t];
    }
}

/* The loss's derivative with respect to each lane's final state h (rows of LB), and the readout's
 * own gradient: classification on the logit z = w_out . h + b_out (LS_OBJ_BCE, or LS_OBJ_KERAS
 * with Keras's clipped probabilities). Lanes past the last sample get 0. */
static void UN(seed)(UN(units_t) *b, int objective, const REAL *h) {
    const int64_t H = b->H;
    const REAL eps = objective == LS_OBJ_KERAS ? (REAL)LS_KERAS_EPSILON : 0;
    REAL dz[LB];
    FOR_LANES dz[l] = b->bo[0];
    for (int64_t j = 0; j < H; j++) FOR_LANES dz[l] += b->wo[j] * AT(h, j)[l];
    FOR_LANES dz[l] = l < b->valid ? FN(bce_bwd)(dz[l], b->y[l], eps) : 0;
    REAL *g_wo = AT(b->ga, b->P - H - 1), *g_bo = AT(b->ga, b->P - 1);
    for (int64_t j = 0; j < H; j++) {
        FOR_LANES AT(g_wo, j)[l] = dz[l] * AT(h, j)[l];
        FOR_LANES AT(b->dh, j)[l] = dz[l] * b->wo[j], AT(b->dc, j)[l] = 0;
    }
    FOR_LANES g_bo[l] = dz[l];
}

typedef void (*UN(step_t))(UN(units_t) *, const REAL *, REAL *, REAL *);
typedef void (*UN(back_t))(UN(units_t) *, const REAL *, const REAL *, const REAL *);

/* Run one block: forward, every layer stepping once per time step (keeping every step's record
 * with gradients, else two in turn), then backpropagation through time, the top layer first, each
 * layer's derivatives with respect to its inputs (dX, one (H, LB) slot per step) joining the
 * layer below's; writes the final states and adds the lanes' gradients. */
static void UN(block)(UN(units_t) *b, const ls_args *a, int64_t g, int64_t n0, REAL *dX, REAL *dX2) {
    static const UN(step_t) step[] = {UN(rnn), UN(lstm), UN(gru), 0, UN(gru_before)};
    static const UN(back_t) back[] = {UN(rnn_back), UN(lstm_back), UN(gru_back), 0, UN(gru_before_back)};
    REAL *grad = a->grad;
    const int64_t H = b->H, I = b->I, L = b->L, recs = grad ? a->T + 1 : 2, rec = ls_record[b->cell] * H * LB;
#define REC(t) (b->S + (grad ? (t) : ((t) & 1)) * rec)
    /* layer k's input at step t: the inputs, or the layer below's state after its step t */
#define INPUT(k, t) ((k) == 0 ? AT(b->x, (t) * I) : b->Sall + ((k) - 1) * recs * rec + (grad ? (t) + 1 : ((t) + 1) & 1) * rec)
    for (int64_t k = 0; k < L; k++) {
        UN(use_layer)(b, k, recs);
        for (int64_t j = 0; j < (b->cell == LS_CELL_LSTM ? 2 * H : H); j++) FOR_LANES AT(REC(0), j)[l] = 0;  /* h, c */
    }
    for (int64_t t = 0, ks = 0; t < b->steps; t++) {
        for (int64_t k = 0; k < L; k++) {
            UN(use_layer)(b, k, recs);
            step[b->cell](b, INPUT(k, t), REC(t), REC(t + 1));
        }
        if (ks < a->K && t + 1 == a->stops[ks]) {  /* a kept state: the top layer's, after this step */
            const REAL *hk = REC(t + 1);
            for (int l = 0; l < b->valid; l++)
                for (int64_t j = 0; j < H; j++)
                    ((REAL *)a->hS)[(((g * a->K + ks) * a->N) + n0 + l) * H + j] = AT(hk, j)[l];
            ks++;
        }
    }
    const REAL *h = REC(b->steps);  /* the top layer's final state */
    for (int l = 0; l < b->valid; l++)
        for (int64_t j = 0; j < H; j++) ((REAL *)a->hT)[((g * a->N) + n0 + l) * H + j] = AT(h, j)[l];
    if (!grad) return;
    for (int64_t j = 0; j < b->P - H - 1; j++) FOR_LANES AT(b->gall, j)[l] = 0;
    b->ga = b->gall + 0;
    UN(seed)(b, (int)a->objective, h);
    for (int64_t k = L - 1; k >= 0; k--) {
        UN(use_layer)(b, k, recs);
        if (k < L - 1)  /* below the top, the state's derivatives come from the layer above alone */
            for (int64_t j = 0; j < H; j++) FOR_LANES AT(b->dh, j)[l] = 0, AT(b->dc, j)[l] = 0;
        for (int64_t t = b->steps - 1; t >= 0; t--) {
            if (k < L - 1)
                for (int64_t j = 0; j < H; j++) FOR_LANES AT(b->dh, j)[l] += AT(dX + t * H * LB, j)[l];
            b->dx = k > 0 ? dX2 + t * H * LB : 0;
            b->q = b->Q + (t % CHUNK) * b->GH * LB;
            back[b->cell](b, INPUT(k, t), REC(t), REC(t + 1));
            if (t % CHUNK == 0) UN(accum_hidden)(b, t, t + CHUNK < b->steps ? t + CHUNK : b->steps);
        }
        REAL *swap = dX;
        dX = dX2, dX2 = swap;
    }
    b->dx = 0;
#undef REC
#undef INPUT
    for (int l = 0; l < b->valid; l++)  /* in sample order, whatever the thread count */
        for (int64_t j = 0; j < b->P; j++) grad[g * b->P + j] += AT(b->gall, j)[l] / (REAL)a->N;
}

/* Run models g0 .. g1-1 of the door's arguments (ls_args in _fused.c, checked there): L layers of
 * H units on I inputs, on their N samples each, in blocks of LB samples of one model (the initial
 * state is 0): writes the top layer's final states hT[(g * N + n) * H + j], and with grad adds
 * each model's gradient of its mean loss. Returns LS_OK, or LS_ERR_MEMORY. */
static int UN(run)(const ls_args *a) {
    const int cell = (int)a->cell;
    const int64_t H = a->H, N = a->N, T = a->T, P = a->P, L = a->L;
    const int grad = a->grad != 0;
    if (a->g1 <= a->g0 || N <= 0) return LS_OK;
    UN(units_t) b = {.cell = cell, .I = a->I, .H = H, .GH = ls_gates[cell] * H, .L = L, .P = P};
    const int64_t recs = grad ? T + 1 : 2, HL = H * LB;
    const size_t n_x = (size_t)T * a->I * LB, n_rec = (size_t)L * recs * ls_record[cell] * HL;
    const size_t n_a = (size_t)(b.GH + H) * LB, n_dx = grad && L > 1 ? 2 * (size_t)T * HL : 0;
    size_t size = n_x + n_rec + n_a + 2 * (size_t)HL + n_dx + (grad ? (size_t)P * LB + (size_t)CHUNK * b.GH * LB : 0);
    REAL *work = malloc(sizeof(REAL) * size);
    if (!work) return LS_ERR_MEMORY;
    b.x = work, b.Sall = b.x + n_x, b.a = b.Sall + n_rec, b.xn = b.a + b.GH * LB, b.dh = b.a + n_a;
    b.dc = b.dh + HL;
    REAL *dX = b.dc + HL, *dX2 = dX + n_dx / 2;
    b.gall = grad ? dX + n_dx : 0, b.Q = grad ? b.gall + P * LB : 0;
    b.q = b.a;  /* forward only: unused */
    for (int64_t g = a->g0; g < a->g1; g++)
        for (int64_t n0 = 0; n0 < N; n0 += LB) {
            UN(gather)(&b, a, g, n0);
            UN(block)(&b, a, g, n0, dX, dX2);
        }
    free(work);
    return LS_OK;
}

#undef UN
#undef FOR_LANES
#undef AT
#undef BLK
#undef TILE
#undef CHUNK
#undef ROW_OF
