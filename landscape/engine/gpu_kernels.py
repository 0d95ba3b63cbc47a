"""The GPU engine's kernels, in Triton: one program runs a block of models (BG) over every sample,
BN samples at a time, each lane's whole sequence with its state in registers, and reduces each
model's mean loss and accuracy in the kernel; with TANG, it carries forward-mode tangents of the
state along D directions of parameter space (BG x BN x DP values), so one pass gives each
model's derivatives of its loss along them (the full gradient, with the P unit directions).

Imported only when the engine first runs: ``TRITON_INTERPRET=1`` (CPU tensors, numpy, the tests)
is read when ``triton.jit`` decorates. Only ``triton.language`` core operations by default: tanh
and the sigmoid are written from ``tl.exp`` in forms that cannot overflow (FAST, float32 on a GPU
only, takes the GPU's ``tanh.approx.f32`` instead), so the same source runs in the
interpreter and compiles for sm_90. Offsets into the inputs are 64-bit (G x N may pass 2^31).

One-unit cells with the one-logit readout (a softmax2 head is read as its logit difference by
the door): rnn, lstm, gru with the reset gate after or before its product, and Pascanu's map.
Parameter k of a gated cell's gate j: w_ih k = j, w_hh gates + j, b_ih 2 gates + j, b_hh 3 gates
+ j; the readout w_out, b_out at 4 gates, 4 gates + 1 (torch.nn's state_dict order).
"""

from __future__ import annotations

import triton
import triton.language as tl

# cell codes (the door's table, landscape.engine.gpu.CODES, says which Cell each is)
RNN, LSTM, GRU, PASCANU, GRU_BEFORE = (tl.constexpr(c) for c in range(5))
# objectives: binary cross-entropy on the logit, Pascanu's target, Keras's clipped probabilities
BCE, PASCANU_TARGET, KERAS = (tl.constexpr(c) for c in range(3))
# where the constants the kernel reads lie in its table (in the compute type: a literal is float32)
C_SLOPE, C_SHIFT, C_TARGET, C_EPS, C_ONE_MINUS_EPS, C_X0 = (tl.constexpr(c) for c in range(6))


@triton.jit
def _tanh_approx(z):
    """The GPU's own tanh.approx.f32 (FAST only: compiled for a GPU, never interpreted)."""
    return tl.inline_asm_elementwise(
        "tanh.approx.f32 $0, $1;", "=r,r", [z], dtype=tl.float32, is_pure=True, pack=1
    )


@triton.jit
def _sigmoid(FAST: tl.constexpr, z):
    if FAST:  # 1/2 + tanh(z/2)/2, with the GPU's approximate tanh
        s = 0.5 + 0.5 * _tanh_approx(0.5 * z)
    else:
        e = tl.exp(-tl.abs(z))  # in (0, 1]: no overflow for any z
        s = tl.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return s


@triton.jit
def _tanh(FAST: tl.constexpr, z):
    if FAST:
        t = _tanh_approx(z)
    else:
        e = tl.exp(-2.0 * tl.abs(z))
        u = (1.0 - e) / (1.0 + e)
        t = tl.where(z >= 0, u, -u)
    return t


@triton.jit
def _log1p(e):
    """log(1 + e) for e in [0, 1], accurate where e is tiny (Goldberg's form)."""
    u = 1.0 + e
    return tl.where(u == 1.0, e, tl.log(u) * (e / (u - 1.0)))


@triton.jit
def _gate(FAST: tl.constexpr, z, slope, shift, GATE: tl.constexpr):
    """The gate function and its derivative: the sigmoid, or Keras 2's hard sigmoid
    clip(slope z + shift, 0, 1) (derivative ``slope`` where the clip passes, its bounds
    included, as torch.clamp's backward)."""
    if GATE == 0:
        s = _sigmoid(FAST, z)
        ds = s * (1.0 - s)
    else:
        v = slope * z + shift
        s = tl.where(v < 0.0, 0.0, tl.where(v > 1.0, 1.0, v))  # NaN stays NaN
        ds = tl.where((v >= 0.0) & (v <= 1.0), slope, 0.0)
    return s, ds


@triton.jit
def _p(theta_ptr, row, gm, P, k):
    """Parameter k of each model of the block: (BG, 1)."""
    return tl.load(theta_ptr + row * P + k, mask=gm, other=0.0)[:, None]


@triton.jit
def _d(dirs_ptr, dd, dm, P, k):
    """Component k of each direction: (1, 1, DP)."""
    return tl.load(dirs_ptr + dd * P + k, mask=dm, other=0.0)[None, None, :]


@triton.jit
def _labels(y_ptr, r, row, ys_g, n64, lane, h, CELL: tl.constexpr, HAS_ROWS: tl.constexpr):
    """Each lane's label (h itself for Pascanu's map, which has none)."""
    if CELL == PASCANU:
        y = h
    elif HAS_ROWS:
        y = tl.load(y_ptr + r, mask=lane, other=0.0)
    else:
        y = tl.load(y_ptr + row[:, None] * ys_g + n64, mask=lane, other=0.0)
    return y


@triton.jit
def _score(
    FAST: tl.constexpr, h, y, w_out, b_out, consts_ptr, slope, shift, CELL: tl.constexpr, OBJ: tl.constexpr
):
    """Each lane's loss, whether it is right (1, 0, NaN for a NaN logit; 0 for Pascanu's map), and
    the derivative of its loss by its logit (by its state, for Pascanu's map)."""
    if CELL == PASCANU:
        s, ds = _gate(FAST, h, slope, shift, 0)
        e = s - tl.load(consts_ptr + C_TARGET)
        lo = e * e
        dz = 2.0 * e * ds
        right = lo * 0.0
    else:
        z = w_out * h + b_out
        pos = y > 0.5
        if OBJ == KERAS:
            sz = tl.where(pos, z, -z)
            p = _sigmoid(FAST, sz)
            eps = tl.load(consts_ptr + C_EPS)
            top = tl.load(consts_ptr + C_ONE_MINUS_EPS)
            lo = -tl.log(tl.where(p < eps, eps, tl.where(p > top, top, p)))
            q = _sigmoid(FAST, -sz)  # 1 - p, without the cancellation
            dz = tl.where((p >= eps) & (p <= top), tl.where(pos, -q, q), 0.0)
        else:
            e = tl.exp(-tl.abs(z))
            lo = tl.where(z > 0, z, 0.0) - y * z + _log1p(e)
            certain = tl.where((z > 0) == pos, 0.0, float("inf"))
            lo = tl.where((z == float("inf")) | (z == -float("inf")), certain, lo)
            dz = _sigmoid(FAST, z) - y
        right = tl.where(z != z, float("nan"), tl.where((z > 0) == pos, 1.0, 0.0))  # NaN: no answer
    return lo, right, dz


@triton.jit
def recur_kernel(
    theta_ptr,
    dirs_ptr,
    consts_ptr,
    x_ptr,
    y_ptr,
    rows_ptr,
    len_ptr,
    loss_ptr,
    acc_ptr,
    dloss_ptr,
    stops_ptr,
    G,
    N,
    T,
    P,
    D,
    K_STOPS,
    xs_g,
    xs_n,
    ys_g,
    CELL: tl.constexpr,
    gates: tl.constexpr,
    GATE: tl.constexpr,
    OBJ: tl.constexpr,
    HAS_X: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    TANG: tl.constexpr,
    HAS_STOPS: tl.constexpr,
    FAST: tl.constexpr,
    BG: tl.constexpr,
    BN: tl.constexpr,
    DP: tl.constexpr,
):
    """Models g of this program's block, every sample n: loss[g], acc[g] (the means over the N
    samples) and, with TANG, dloss[g, d], the derivative of loss[g] along direction d.

    theta (G, P); dirs (D, P); x: (N, T) shared (xs_g = 0), (G, N, T) each model's own, or rows
    of a table (R, T) through rows (G, N); y likewise ((N,), (G, N) with ys_g = N, or (R,));
    len (G,): each model's own length (its state is frozen after it), else T steps each."""
    pid = tl.program_id(0)
    g = pid * BG + tl.arange(0, BG)
    gm = g < G
    row = g.to(tl.int64)
    slope = tl.load(consts_ptr + C_SLOPE)
    shift = tl.load(consts_ptr + C_SHIFT)
    dd = tl.arange(0, DP)
    dm = dd < D
    if HAS_LEN:
        steps = tl.load(len_ptr + row, mask=gm, other=0)[:, None]  # (BG, 1)
    # the parameters, once for the whole sequence: (BG, 1) each
    if CELL == PASCANU:
        pw = _p(theta_ptr, row, gm, P, 0)
        pb = _p(theta_ptr, row, gm, P, 1)
    else:
        wi0, wh0, bi0, bh0 = _gp(theta_ptr, row, gm, P, 0, gates)
        if gates > 1:
            wi1, wh1, bi1, bh1 = _gp(theta_ptr, row, gm, P, 1, gates)
            wi2, wh2, bi2, bh2 = _gp(theta_ptr, row, gm, P, 2, gates)
        if gates > 3:
            wi3, wh3, bi3, bh3 = _gp(theta_ptr, row, gm, P, 3, gates)
        w_out = _p(theta_ptr, row, gm, P, 4 * gates)
        b_out = _p(theta_ptr, row, gm, P, 4 * gates + 1)
    if TANG:  # each parameter's component along the directions: (1, 1, DP)
        if CELL == PASCANU:
            dpw = _d(dirs_ptr, dd, dm, P, 0)
            dpb = _d(dirs_ptr, dd, dm, P, 1)
        else:
            dwi0, dwh0, dbi0, dbh0 = _gd(dirs_ptr, dd, dm, P, 0, gates)
            if gates > 1:
                dwi1, dwh1, dbi1, dbh1 = _gd(dirs_ptr, dd, dm, P, 1, gates)
                dwi2, dwh2, dbi2, dbh2 = _gd(dirs_ptr, dd, dm, P, 2, gates)
            if gates > 3:
                dwi3, dwh3, dbi3, dbh3 = _gd(dirs_ptr, dd, dm, P, 3, gates)
            dw_out = _d(dirs_ptr, dd, dm, P, 4 * gates)
            db_out = _d(dirs_ptr, dd, dm, P, 4 * gates + 1)
    dtype = theta_ptr.dtype.element_ty
    loss_sum = tl.zeros([BG], dtype=dtype)
    acc_sum = tl.zeros([BG], dtype=dtype)
    if TANG:
        dloss_sum = tl.zeros([BG, DP], dtype=dtype)
    for n0 in range(0, N, BN):
        n = n0 + tl.arange(0, BN)
        nm = n < N
        lane = gm[:, None] & nm[None, :]  # (BG, BN)
        n64 = n.to(tl.int64)[None, :]
        if HAS_ROWS:
            r = tl.load(rows_ptr + row[:, None] * N + n64, mask=lane, other=0)  # (BG, BN) int64
            xoff = r * xs_n
        else:
            xoff = row[:, None] * xs_g + n64 * xs_n
            r = xoff  # (no rows: unused)
        if CELL == PASCANU:
            h = tl.zeros([BG, BN], dtype=dtype) + tl.load(consts_ptr + C_X0)
        else:
            h = tl.zeros([BG, BN], dtype=dtype)
        c = tl.zeros([BG, BN], dtype=dtype)
        if TANG:
            dh = tl.zeros([BG, BN, DP], dtype=dtype)
            dc = tl.zeros([BG, BN, DP], dtype=dtype)
        if CELL == PASCANU:
            w_out = h
            b_out = h
        if HAS_STOPS:  # the labels, for every stop
            y = _labels(y_ptr, r, row, ys_g, n64, lane, h, CELL, HAS_ROWS)
        if HAS_STOPS:  # the next step to score at, and its index among the stops
            ki = pid * 0
            nxt = tl.load(stops_ptr)
        for t in range(0, T):
            if HAS_X:
                x = tl.load(x_ptr + xoff + t, mask=lane, other=0.0)
            if CELL == PASCANU:
                sv, dsv = _gate(FAST, h, slope, shift, 0)
                hn = pw * sv + pb
                if TANG:
                    dhn = dpw * sv[:, :, None] + (pw * dsv)[:, :, None] * dh + dpb
            elif CELL == RNN:
                hn = _tanh(FAST, wi0 * x + bi0 + wh0 * h + bh0)
                if TANG:
                    da = dwi0 * x[:, :, None] + dbi0 + dwh0 * h[:, :, None] + wh0[:, :, None] * dh + dbh0
                    dhn = (1.0 - hn * hn)[:, :, None] * da
            elif CELL == LSTM:
                ai = wi0 * x + bi0 + wh0 * h + bh0
                af = wi1 * x + bi1 + wh1 * h + bh1
                ag = wi2 * x + bi2 + wh2 * h + bh2
                ao = wi3 * x + bi3 + wh3 * h + bh3
                ig, dig = _gate(FAST, ai, slope, shift, GATE)
                fg, dfg = _gate(FAST, af, slope, shift, GATE)
                gg = _tanh(FAST, ag)
                og, dog = _gate(FAST, ao, slope, shift, GATE)
                cn = fg * c + ig * gg
                tc = _tanh(FAST, cn)
                hn = og * tc
                if TANG:
                    x3 = x[:, :, None]
                    h3 = h[:, :, None]
                    dai = dwi0 * x3 + dbi0 + dwh0 * h3 + wh0[:, :, None] * dh + dbh0
                    daf = dwi1 * x3 + dbi1 + dwh1 * h3 + wh1[:, :, None] * dh + dbh1
                    dag = dwi2 * x3 + dbi2 + dwh2 * h3 + wh2[:, :, None] * dh + dbh2
                    dao = dwi3 * x3 + dbi3 + dwh3 * h3 + wh3[:, :, None] * dh + dbh3
                    dcn = (
                        (dfg * c)[:, :, None] * daf
                        + fg[:, :, None] * dc
                        + (dig * gg)[:, :, None] * dai
                        + (ig * (1.0 - gg * gg))[:, :, None] * dag
                    )
                    dhn = (dog * tc)[:, :, None] * dao + (og * (1.0 - tc * tc))[:, :, None] * dcn
                    dc = dcn
                c = cn
            else:  # GRU: the reset gate after (torch.nn) or before (Keras reset_after=False) its product
                rg, drg = _gate(FAST, wi0 * x + bi0 + wh0 * h + bh0, slope, shift, GATE)
                zg, dzg = _gate(FAST, wi1 * x + bi1 + wh1 * h + bh1, slope, shift, GATE)
                if CELL == GRU:
                    hh = wh2 * h + bh2
                    ng = _tanh(FAST, wi2 * x + bi2 + rg * hh)
                else:
                    rh = rg * h
                    ng = _tanh(FAST, wi2 * x + bi2 + wh2 * rh + bh2)
                hn = (1.0 - zg) * ng + zg * h
                if TANG:
                    x3 = x[:, :, None]
                    h3 = h[:, :, None]
                    dr = drg[:, :, None] * (dwi0 * x3 + dbi0 + dwh0 * h3 + wh0[:, :, None] * dh + dbh0)
                    dz = dzg[:, :, None] * (dwi1 * x3 + dbi1 + dwh1 * h3 + wh1[:, :, None] * dh + dbh1)
                    if CELL == GRU:
                        dhh = dwh2 * h3 + wh2[:, :, None] * dh + dbh2
                        dpre = dwi2 * x3 + dbi2 + dr * hh[:, :, None] + rg[:, :, None] * dhh
                    else:
                        drh = dr * h3 + rg[:, :, None] * dh
                        dpre = dwi2 * x3 + dbi2 + dwh2 * rh[:, :, None] + wh2[:, :, None] * drh + dbh2
                    dng = (1.0 - ng * ng)[:, :, None] * dpre
                    dhn = dz * (h - ng)[:, :, None] + (1.0 - zg)[:, :, None] * dng + zg[:, :, None] * dh
            if HAS_LEN:
                on = t < steps  # (BG, 1): a model past its own length keeps its state
                h = tl.where(on, hn, h)
                if TANG:
                    dh = tl.where(on[:, :, None], dhn, dh)
            else:
                h = hn
                if TANG:
                    dh = dhn
            if HAS_STOPS:
                if t + 1 == nxt:  # a length of the sweep: its loss and accuracy, from this pass
                    lo, right, _ = _score(FAST, h, y, w_out, b_out, consts_ptr, slope, shift, CELL, OBJ)
                    at = row * K_STOPS + ki
                    first = n0 == 0  # the first block of samples writes; the others add
                    tl.debug_barrier()  # (threads other than the one that stored may read it)
                    was = tl.where(first, 0.0, tl.load(loss_ptr + at, mask=gm, other=0.0))
                    tl.store(loss_ptr + at, was + _sum(lo, lane), mask=gm)
                    was = tl.where(first, 0.0, tl.load(acc_ptr + at, mask=gm, other=0.0))
                    tl.store(acc_ptr + at, was + _sum(right, lane), mask=gm)
                    tl.debug_barrier()
                    ki += 1
                    nxt = tl.load(stops_ptr + tl.minimum(ki, K_STOPS - 1))
        # the readout and loss of each lane, reduced over this block of samples
        if not HAS_STOPS:  # (loaded here, the labels take no register through the time loop)
            y = _labels(y_ptr, r, row, ys_g, n64, lane, h, CELL, HAS_ROWS)
        lo, right, dl = _score(FAST, h, y, w_out, b_out, consts_ptr, slope, shift, CELL, OBJ)
        acc_sum += _sum(right, lane)
        loss_sum += _sum(lo, lane)
        if TANG:
            if CELL == PASCANU:
                dlo = dl[:, :, None] * dh
            else:
                dlo = dl[:, :, None] * (dw_out * h[:, :, None] + w_out[:, :, None] * dh + db_out)
            dloss_sum += tl.sum(tl.where(lane[:, :, None], dlo, 0.0), axis=1)
    if not HAS_STOPS:  # sums over the samples: the door divides them by N, correctly rounded
        tl.store(loss_ptr + row, loss_sum, mask=gm)
        if CELL != PASCANU:
            tl.store(acc_ptr + row, acc_sum, mask=gm)
    if TANG:
        tl.store(dloss_ptr + row[:, None] * D + dd[None, :], dloss_sum, mask=gm[:, None] & dm[None, :])


__all__ = ["recur_kernel", "bptt_kernel", "RNN", "LSTM", "GRU", "PASCANU", "GRU_BEFORE", "BCE", "KERAS"]


@triton.jit
def _gp(theta_ptr, row, gm, P, j, gates: tl.constexpr):
    """Gate j's w_ih, w_hh, b_ih, b_hh of each model of the block: (BG, 1) each."""
    return (
        _p(theta_ptr, row, gm, P, j),
        _p(theta_ptr, row, gm, P, gates + j),
        _p(theta_ptr, row, gm, P, 2 * gates + j),
        _p(theta_ptr, row, gm, P, 3 * gates + j),
    )


@triton.jit
def _gd(dirs_ptr, dd, dm, P, j, gates: tl.constexpr):
    """Gate j's w_ih, w_hh, b_ih, b_hh components along the directions: (1, 1, DP) each."""
    return (
        _d(dirs_ptr, dd, dm, P, j),
        _d(dirs_ptr, dd, dm, P, gates + j),
        _d(dirs_ptr, dd, dm, P, 2 * gates + j),
        _d(dirs_ptr, dd, dm, P, 3 * gates + j),
    )


@triton.jit
def _hold(hn, cn, h, c, t, steps, HAS_LEN: tl.constexpr):
    """The state after step t: the new one, or (a model past its own length) the old one."""
    if HAS_LEN:
        on = t < steps
        hn = tl.where(on, hn, h)
        cn = tl.where(on, cn, c)
    return hn, cn


@triton.jit
def _put(grad_ptr, row, gm, P, k, acc):
    tl.store(grad_ptr + row * P + k, acc, mask=gm)  # a sum over the samples: the door divides


@triton.jit
def _sum(v, lane):
    return tl.sum(tl.where(lane, v, 0.0), axis=1)


@triton.jit
def _store_state(buf_ptr, j, NS: tl.constexpr, LANES, slot, h, c, lane):
    tl.store(buf_ptr + (j * NS) * LANES + slot, h, mask=lane)
    if NS == 2:
        tl.store(buf_ptr + (j * NS + 1) * LANES + slot, c, mask=lane)


@triton.jit
def _step(
    FAST: tl.constexpr,
    x,
    h,
    c,
    wi0,
    wh0,
    bi0,
    bh0,
    wi1,
    wh1,
    bi1,
    bh1,
    wi2,
    wh2,
    bi2,
    bh2,
    wi3,
    wh3,
    bi3,
    bh3,
    slope,
    shift,
    CELL: tl.constexpr,
    GATE: tl.constexpr,
):
    """One step of a gated or plain cell: the new (h, c) (c only for the LSTM; else c itself)."""
    if CELL == RNN:
        hn = _tanh(FAST, wi0 * x + bi0 + wh0 * h + bh0)
        cn = c
    elif CELL == LSTM:
        ig, _i = _gate(FAST, wi0 * x + bi0 + wh0 * h + bh0, slope, shift, GATE)
        fg, _f = _gate(FAST, wi1 * x + bi1 + wh1 * h + bh1, slope, shift, GATE)
        gg = _tanh(FAST, wi2 * x + bi2 + wh2 * h + bh2)
        og, _o = _gate(FAST, wi3 * x + bi3 + wh3 * h + bh3, slope, shift, GATE)
        cn = fg * c + ig * gg
        hn = og * _tanh(FAST, cn)
    else:
        rg, _r = _gate(FAST, wi0 * x + bi0 + wh0 * h + bh0, slope, shift, GATE)
        zg, _z = _gate(FAST, wi1 * x + bi1 + wh1 * h + bh1, slope, shift, GATE)
        if CELL == GRU:
            ng = _tanh(FAST, wi2 * x + bi2 + rg * (wh2 * h + bh2))
        else:
            ng = _tanh(FAST, wi2 * x + bi2 + wh2 * (rg * h) + bh2)
        hn = (1.0 - zg) * ng + zg * h
        cn = c
    return hn, cn


@triton.jit
def bptt_kernel(
    theta_ptr,
    consts_ptr,
    x_ptr,
    y_ptr,
    rows_ptr,
    len_ptr,
    ck_ptr,
    seg_ptr,
    loss_ptr,
    acc_ptr,
    grad_ptr,
    G,
    N,
    T,
    P,
    S,
    K,
    LANES,
    xs_g,
    xs_n,
    ys_g,
    CELL: tl.constexpr,
    gates: tl.constexpr,
    GATE: tl.constexpr,
    OBJ: tl.constexpr,
    HAS_X: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    NS: tl.constexpr,
    FAST: tl.constexpr,
    BG: tl.constexpr,
    BN: tl.constexpr,
):
    """Models g of this program's block: loss[g], acc[g] and grad[g, :], the gradient of loss[g],
    by backpropagation through time with recomputation by segments: the forward pass keeps the
    state every S steps (ck: K checkpoints per lane); then, segment by segment from the last, the
    segment's states are recomputed from its checkpoint into seg (S per lane) and walked back,
    each step's gates recomputed from the state before it. Per lane: (K + S) states of scratch,
    in this program's own slots of ck and seg (LANES slots per state), reused for every block of
    samples. Not for Pascanu's map (no input; its tangents are as cheap)."""
    pid = tl.program_id(0)
    g = pid * BG + tl.arange(0, BG)
    gm = g < G
    row = g.to(tl.int64)
    slot = row[:, None] * BN + tl.arange(0, BN).to(tl.int64)[None, :]  # (BG, BN): this program's slots
    slope = tl.load(consts_ptr + C_SLOPE)
    shift = tl.load(consts_ptr + C_SHIFT)
    dtype = theta_ptr.dtype.element_ty
    steps = row[:, None]  # (unused without lengths)
    if HAS_LEN:
        steps = tl.load(len_ptr + row, mask=gm, other=0)[:, None]
    wi0, wh0, bi0, bh0 = _gp(theta_ptr, row, gm, P, 0, gates)
    wi1, wh1, bi1, bh1 = wi0, wh0, bi0, bh0  # placeholders where the cell has fewer gates
    wi2, wh2, bi2, bh2 = wi0, wh0, bi0, bh0
    wi3, wh3, bi3, bh3 = wi0, wh0, bi0, bh0
    if gates > 1:
        wi1, wh1, bi1, bh1 = _gp(theta_ptr, row, gm, P, 1, gates)
        wi2, wh2, bi2, bh2 = _gp(theta_ptr, row, gm, P, 2, gates)
    if gates > 3:
        wi3, wh3, bi3, bh3 = _gp(theta_ptr, row, gm, P, 3, gates)
    w_out = _p(theta_ptr, row, gm, P, 4 * gates)
    b_out = _p(theta_ptr, row, gm, P, 4 * gates + 1)
    zero = tl.zeros([BG], dtype=dtype)
    loss_sum, acc_sum, s_wout, s_bout = zero, zero, zero, zero
    # each parameter's gradient, summed over the samples: gate j's w_ih, w_hh, b_ih, b_hh
    s_wi0, s_wh0, s_bi0, s_bh0 = zero, zero, zero, zero
    s_wi1, s_wh1, s_bi1, s_bh1 = zero, zero, zero, zero
    s_wi2, s_wh2, s_bi2, s_bh2 = zero, zero, zero, zero
    s_wi3, s_wh3, s_bi3, s_bh3 = zero, zero, zero, zero
    for n0 in range(0, N, BN):
        n = n0 + tl.arange(0, BN)
        lane = gm[:, None] & (n < N)[None, :]
        n64 = n.to(tl.int64)[None, :]
        if HAS_ROWS:
            r = tl.load(rows_ptr + row[:, None] * N + n64, mask=lane, other=0)
            xoff = r * xs_n
        else:
            xoff = row[:, None] * xs_g + n64 * xs_n
            r = xoff  # (no rows: unused)
        h = tl.zeros([BG, BN], dtype=dtype)
        c = tl.zeros([BG, BN], dtype=dtype)
        for t in range(0, T):  # forward, keeping a checkpoint every S steps
            if t % S == 0:
                _store_state(ck_ptr, t // S, NS, LANES, slot, h, c, lane)
            x = tl.load(x_ptr + xoff + t, mask=lane, other=0.0)
            hn, cn = _step(
                FAST,
                x,
                h,
                c,
                wi0,
                wh0,
                bi0,
                bh0,
                wi1,
                wh1,
                bi1,
                bh1,
                wi2,
                wh2,
                bi2,
                bh2,
                wi3,
                wh3,
                bi3,
                bh3,
                slope,
                shift,
                CELL,
                GATE,
            )
            h, c = _hold(hn, cn, h, c, t, steps, HAS_LEN)
        y = _labels(y_ptr, r, row, ys_g, n64, lane, h, CELL, HAS_ROWS)
        lo, right, dl = _score(FAST, h, y, w_out, b_out, consts_ptr, slope, shift, CELL, OBJ)
        dl = tl.where(lane, dl, 0.0)
        acc_sum += _sum(right, lane)
        loss_sum += _sum(lo, lane)
        s_wout += _sum(dl * h, lane)
        s_bout += _sum(dl, lane)
        ah = dl * w_out  # d loss / d h_T
        ac = tl.zeros([BG, BN], dtype=dtype)
        zl = tl.zeros([BG, BN], dtype=dtype)
        l_wi0, l_wh0, l_bi0, l_bh0 = zl, zl, zl, zl  # this block's per-lane gradients
        l_wi1, l_wh1, l_bi1, l_bh1 = zl, zl, zl, zl
        l_wi2, l_wh2, l_bi2, l_bh2 = zl, zl, zl, zl
        l_wi3, l_wh3, l_bi3, l_bh3 = zl, zl, zl, zl
        # every lane reads back only what its own thread stored (the same pointers, the same layout);
        # the barriers make that visible across the block as well, should a layout ever differ
        tl.debug_barrier()
        for kk in range(0, K):  # the segments, from the last
            tl.debug_barrier()  # the last segment's reads are done before its slots are written again
            k = K - 1 - kk
            t0 = k * S
            L = tl.minimum(t0 + S, T) - t0
            h = tl.load(ck_ptr + (k * NS) * LANES + slot, mask=lane, other=0.0)
            if NS == 2:
                c = tl.load(ck_ptr + (k * NS + 1) * LANES + slot, mask=lane, other=0.0)
            for j in range(0, L):  # recompute the segment, keeping the state before each step
                _store_state(seg_ptr, j, NS, LANES, slot, h, c, lane)
                x = tl.load(x_ptr + xoff + t0 + j, mask=lane, other=0.0)
                hn, cn = _step(
                    FAST,
                    x,
                    h,
                    c,
                    wi0,
                    wh0,
                    bi0,
                    bh0,
                    wi1,
                    wh1,
                    bi1,
                    bh1,
                    wi2,
                    wh2,
                    bi2,
                    bh2,
                    wi3,
                    wh3,
                    bi3,
                    bh3,
                    slope,
                    shift,
                    CELL,
                    GATE,
                )
                h, c = _hold(hn, cn, h, c, t0 + j, steps, HAS_LEN)
            tl.debug_barrier()
            for jj in range(0, L):  # and walk it back
                j = L - 1 - jj
                t = t0 + j
                hp = tl.load(seg_ptr + (j * NS) * LANES + slot, mask=lane, other=0.0)
                x = tl.load(x_ptr + xoff + t, mask=lane, other=0.0)
                if HAS_LEN:
                    on = (t < steps) & lane
                else:
                    on = lane
                if CELL == RNN:
                    hn = _tanh(FAST, wi0 * x + bi0 + wh0 * hp + bh0)
                    da = tl.where(on, ah * (1.0 - hn * hn), 0.0)
                    l_wi0 += da * x
                    l_bi0 += da
                    l_wh0 += da * hp
                    l_bh0 += da
                    ah = tl.where(on, da * wh0, ah)
                elif CELL == LSTM:
                    cp = tl.load(seg_ptr + (j * NS + 1) * LANES + slot, mask=lane, other=0.0)
                    ig, dig = _gate(FAST, wi0 * x + bi0 + wh0 * hp + bh0, slope, shift, GATE)
                    fg, dfg = _gate(FAST, wi1 * x + bi1 + wh1 * hp + bh1, slope, shift, GATE)
                    gg = _tanh(FAST, wi2 * x + bi2 + wh2 * hp + bh2)
                    og, dog = _gate(FAST, wi3 * x + bi3 + wh3 * hp + bh3, slope, shift, GATE)
                    tc = _tanh(FAST, fg * cp + ig * gg)
                    acn = ac + ah * og * (1.0 - tc * tc)  # d loss / d c_t
                    dai = tl.where(on, acn * gg * dig, 0.0)
                    daf = tl.where(on, acn * cp * dfg, 0.0)
                    dag = tl.where(on, acn * ig * (1.0 - gg * gg), 0.0)
                    dao = tl.where(on, ah * tc * dog, 0.0)
                    l_wi0 += dai * x
                    l_bi0 += dai
                    l_wh0 += dai * hp
                    l_bh0 += dai
                    l_wi1 += daf * x
                    l_bi1 += daf
                    l_wh1 += daf * hp
                    l_bh1 += daf
                    l_wi2 += dag * x
                    l_bi2 += dag
                    l_wh2 += dag * hp
                    l_bh2 += dag
                    l_wi3 += dao * x
                    l_bi3 += dao
                    l_wh3 += dao * hp
                    l_bh3 += dao
                    ac = tl.where(on, acn * fg, ac)
                    ah = tl.where(on, dai * wh0 + daf * wh1 + dag * wh2 + dao * wh3, ah)
                else:
                    rg, drg = _gate(FAST, wi0 * x + bi0 + wh0 * hp + bh0, slope, shift, GATE)
                    zg, dzg = _gate(FAST, wi1 * x + bi1 + wh1 * hp + bh1, slope, shift, GATE)
                    if CELL == GRU:
                        hh = wh2 * hp + bh2
                        ng = _tanh(FAST, wi2 * x + bi2 + rg * hh)
                    else:
                        rh = rg * hp
                        ng = _tanh(FAST, wi2 * x + bi2 + wh2 * rh + bh2)
                    dpre = tl.where(on, ah * (1.0 - zg) * (1.0 - ng * ng), 0.0)  # d loss / d n's argument
                    daz = tl.where(on, ah * (hp - ng) * dzg, 0.0)
                    l_wi2 += dpre * x
                    l_bi2 += dpre
                    if CELL == GRU:
                        dhh = dpre * rg  # d loss / d (w_hn h + b_hn)
                        dar = dpre * hh * drg
                        l_wh2 += dhh * hp
                        l_bh2 += dhh
                        back = dhh * wh2
                    else:
                        drh = dpre * wh2  # d loss / d (r h)
                        dar = drh * hp * drg
                        l_wh2 += dpre * rh
                        l_bh2 += dpre
                        back = drh * rg
                    l_wi0 += dar * x
                    l_bi0 += dar
                    l_wh0 += dar * hp
                    l_bh0 += dar
                    l_wi1 += daz * x
                    l_bi1 += daz
                    l_wh1 += daz * hp
                    l_bh1 += daz
                    ah = tl.where(on, ah * zg + back + dar * wh0 + daz * wh1, ah)
        s_wi0 += _sum(l_wi0, lane)
        s_wh0 += _sum(l_wh0, lane)
        s_bi0 += _sum(l_bi0, lane)
        s_bh0 += _sum(l_bh0, lane)
        if gates > 1:
            s_wi1 += _sum(l_wi1, lane)
            s_wh1 += _sum(l_wh1, lane)
            s_bi1 += _sum(l_bi1, lane)
            s_bh1 += _sum(l_bh1, lane)
            s_wi2 += _sum(l_wi2, lane)
            s_wh2 += _sum(l_wh2, lane)
            s_bi2 += _sum(l_bi2, lane)
            s_bh2 += _sum(l_bh2, lane)
        if gates > 3:
            s_wi3 += _sum(l_wi3, lane)
            s_wh3 += _sum(l_wh3, lane)
            s_bi3 += _sum(l_bi3, lane)
            s_bh3 += _sum(l_bh3, lane)
    tl.store(loss_ptr + row, loss_sum, mask=gm)  # sums: the door divides them by N
    tl.store(acc_ptr + row, acc_sum, mask=gm)
    _put(grad_ptr, row, gm, P, 0, s_wi0)
    _put(grad_ptr, row, gm, P, gates, s_wh0)
    _put(grad_ptr, row, gm, P, 2 * gates, s_bi0)
    _put(grad_ptr, row, gm, P, 3 * gates, s_bh0)
    if gates > 1:
        _put(grad_ptr, row, gm, P, 1, s_wi1)
        _put(grad_ptr, row, gm, P, gates + 1, s_wh1)
        _put(grad_ptr, row, gm, P, 2 * gates + 1, s_bi1)
        _put(grad_ptr, row, gm, P, 3 * gates + 1, s_bh1)
        _put(grad_ptr, row, gm, P, 2, s_wi2)
        _put(grad_ptr, row, gm, P, gates + 2, s_wh2)
        _put(grad_ptr, row, gm, P, 2 * gates + 2, s_bi2)
        _put(grad_ptr, row, gm, P, 3 * gates + 2, s_bh2)
    if gates > 3:
        _put(grad_ptr, row, gm, P, 3, s_wi3)
        _put(grad_ptr, row, gm, P, gates + 3, s_wh3)
        _put(grad_ptr, row, gm, P, 2 * gates + 3, s_bi3)
        _put(grad_ptr, row, gm, P, 3 * gates + 3, s_bh3)
    _put(grad_ptr, row, gm, P, 4 * gates, s_wout)
    _put(grad_ptr, row, gm, P, 4 * gates + 1, s_bout)
