"""The GPU engine's kernels for models of H units, I inputs and L layers (``landscape.units``'s
layout: torch.nn's ``state_dict`` order), in Triton. A program runs one model over a block of BN
samples: each step of each layer is a (BN, I or H) by (I or H, H) matrix product per gate
(``tl.dot`` in IEEE arithmetic, sizes padded to powers of two of at least 16 with zeros, which stay
zero through every cell's equations), then the cell's equations on (BN, HP) tiles.

``units_kernel`` gives the top layer's final states (or its states after each step of ``stops``),
which the door reads out in torch (any head); with RECORD it also stores every layer's state after
every step, which ``units_bptt_kernel`` walks back through: given the derivative of a loss by the
final states, it sums each program's share of the gradient of every weight and bias (the door adds
the blocks of samples). One layer keeps its state in registers; deeper models (DEEP) keep every
layer's state in a per-program scratch row, with a barrier between a layer and the next.

The cell equations (rnn, lstm, gru with its reset gate after or before the product, the sigmoid
or Keras 2's hard sigmoid) are those of ``landscape.cells``; tanh and the sigmoid come from the
one-unit kernels (``gpu_kernels``), so FAST takes the same approximate tanh.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .gpu_kernels import C_SHIFT, C_SLOPE, GRU, LSTM, RNN, _gate, _tanh

__all__ = ["units_kernel", "units_bptt_kernel"]


@triton.jit
def _mm(a, b):
    """a @ b, rounded as IEEE arithmetic (never TF32), in the operands' type."""
    return tl.dot(a, b, input_precision="ieee", out_dtype=a.dtype)


@triton.jit
def _wt(w_ptr, width, H, k, KP: tl.constexpr, HP: tl.constexpr):
    """Gate k's rows of a (gates H, width) weight matrix, transposed: (KP, HP), [c, j] = W[k H + j, c]."""
    c = tl.arange(0, KP)[:, None]
    j = tl.arange(0, HP)[None, :]
    return tl.load(w_ptr + (k * H + j) * width + c, mask=(c < width) & (j < H), other=0.0)


@triton.jit
def _wr(w_ptr, width, H, k, HP: tl.constexpr, KP: tl.constexpr):
    """Gate k's rows of a (gates H, width) weight matrix: (HP, KP), [j, c] = W[k H + j, c]."""
    j = tl.arange(0, HP)[:, None]
    c = tl.arange(0, KP)[None, :]
    return tl.load(w_ptr + (k * H + j) * width + c, mask=(c < width) & (j < H), other=0.0)


@triton.jit
def _bias(b_ptr, H, k, HP: tl.constexpr):
    """Gate k's biases as a (1, HP) row."""
    j = tl.arange(0, HP)
    return tl.load(b_ptr + k * H + j, mask=j < H, other=0.0)[None, :]


@triton.jit
def _terms(p_ptr, width, H, gates: tl.constexpr, inp, h, k, KP: tl.constexpr, HP: tl.constexpr):
    """Gate k's input term W_ih,k inp + b_ih,k and hidden term W_hh,k h + b_hh,k, (BN, HP) each, of
    the layer whose weight_ih starts at p_ptr (then weight_hh, bias_ih, bias_hh)."""
    GH = gates * H
    wh = p_ptr + GH * width
    bi = wh + GH * H
    xi = _mm(inp, _wt(p_ptr, width, H, k, KP, HP)) + _bias(bi, H, k, HP)
    hh = _mm(h, _wt(wh, H, H, k, HP, HP)) + _bias(bi + GH, H, k, HP)
    return xi, hh


@triton.jit
def _layer(
    FAST: tl.constexpr,
    p_ptr,
    width,
    H,
    inp,
    h,
    c,
    slope,
    shift,
    CELL: tl.constexpr,
    GATE: tl.constexpr,
    gates: tl.constexpr,
    KP: tl.constexpr,
    HP: tl.constexpr,
):
    """One step of one layer on (BN, KP) inputs and its (BN, HP) state: the new (h, c)."""
    if CELL == RNN:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        hn = _tanh(FAST, xi + hh)
        cn = c
    elif CELL == LSTM:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        ig, _i = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 1, KP, HP)
        fg, _f = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 2, KP, HP)
        gg = _tanh(FAST, xi + hh)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 3, KP, HP)
        og, _o = _gate(FAST, xi + hh, slope, shift, GATE)
        cn = fg * c + ig * gg
        hn = og * _tanh(FAST, cn)
    else:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        rg, _r = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 1, KP, HP)
        zg, _z = _gate(FAST, xi + hh, slope, shift, GATE)
        if CELL == GRU:  # the reset gate scales the whole hidden term
            xi, hh = _terms(p_ptr, width, H, gates, inp, h, 2, KP, HP)
            ng = _tanh(FAST, xi + rg * hh)
        else:  # Keras's reset_after=False: the hidden term of the reset state
            xi, hh = _terms(p_ptr, width, H, gates, inp, rg * h, 2, KP, HP)
            ng = _tanh(FAST, xi + hh)
        hn = (1.0 - zg) * ng + zg * h
        cn = c
    return hn, cn


@triton.jit
def _layer_at(l, I, H, gates: tl.constexpr):
    """Where layer l's weight_ih starts in a model's row, and its width (I for the first layer)."""
    GH = gates * H
    first = GH * (I + H + 2)
    at = tl.where(l == 0, 0, first + (l - 1) * GH * (2 * H + 2))
    return at, tl.where(l == 0, I, H)


@triton.jit
def units_kernel(
    theta_ptr,
    consts_ptr,
    x_ptr,
    rows_ptr,
    len_ptr,
    stops_ptr,
    st_ptr,
    rec_ptr,
    out_ptr,
    N,
    T,
    P,
    I,
    H,
    L,
    K_STOPS,
    xs_g,
    xs_n,
    CELL: tl.constexpr,
    gates: tl.constexpr,
    GATE: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    HAS_STOPS: tl.constexpr,
    DEEP: tl.constexpr,
    RECORD: tl.constexpr,
    FAST: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
    KP: tl.constexpr,
):
    """Model g = program_id(0), samples of block program_id(1): out (G, N, H), the top layer's
    state after the model's steps (T, or len[g]); with HAS_STOPS out (G, K, N, H), after each of
    stops. x: rows of T steps of I features, (N, T I) shared (xs_g = 0), (G, N, T I), or a table
    (R, T I) through rows (G, N). st: (programs, L, 2, BN, KP) zeros (DEEP). With RECORD, rec
    (programs, T + 1, L, 2, BN, KP): every layer's (h, c) after each step, 0 the start."""
    g = tl.program_id(0).to(tl.int64)
    nb = tl.program_id(1)
    prog = g * tl.num_programs(1) + nb
    n = nb * BN + tl.arange(0, BN)
    nm = n < N
    n64 = n.to(tl.int64)
    kc = tl.arange(0, KP)
    j = tl.arange(0, HP)
    if HAS_ROWS:
        xb = tl.load(rows_ptr + g * N + n64, mask=nm, other=0) * xs_n
    else:
        xb = g * xs_g + n64 * xs_n
    xp = x_ptr + xb[:, None] + kc[None, :]
    xm = nm[:, None] & (kc < I)[None, :]
    steps = T
    if HAS_LEN:
        steps = tl.load(len_ptr + g).to(tl.int32)
    th = theta_ptr + g * P
    slope = tl.load(consts_ptr + C_SLOPE)
    shift = tl.load(consts_ptr + C_SHIFT)
    tile = BN * KP
    at = tl.arange(0, BN)[:, None] * KP + j[None, :]  # a (BN, HP) state in a (BN, KP) slot
    at_in = tl.arange(0, BN)[:, None] * KP + kc[None, :]
    st = st_ptr + prog * (L * 2 * tile)
    rec = rec_ptr + prog * ((T + 1) * L * 2 * tile)
    h = tl.zeros((BN, HP), dtype=theta_ptr.dtype.element_ty)
    c = h
    top = h
    if HAS_STOPS:
        ki = nb * 0
        nxt = tl.load(stops_ptr).to(tl.int32)
    for t in range(0, steps):
        inp = tl.load(xp + t * I, mask=xm, other=0.0)
        if DEEP:
            for l in range(0, L):
                p_at, width = _layer_at(l, I, H, gates)
                if l > 0:  # the layer below's new state, as this layer's input
                    inp = tl.load(st + ((l - 1) * 2) * tile + at_in, mask=(kc < H)[None, :], other=0.0)
                h = tl.load(st + (l * 2) * tile + at)
                c = tl.load(st + (l * 2 + 1) * tile + at)
                h, c = _layer(FAST, th + p_at, width, H, inp, h, c, slope, shift, CELL, GATE, gates, KP, HP)
                tl.debug_barrier()  # every thread has read the slots before they are written
                tl.store(st + (l * 2) * tile + at, h)
                tl.store(st + (l * 2 + 1) * tile + at, c)
                if RECORD:
                    tl.store(rec + ((t + 1) * L * 2 + l * 2) * tile + at, h)
                    tl.store(rec + ((t + 1) * L * 2 + l * 2 + 1) * tile + at, c)
                tl.debug_barrier()  # and written before the next layer (or step) reads them
            top = h
        else:
            h, c = _layer(FAST, th, I, H, inp, h, c, slope, shift, CELL, GATE, gates, KP, HP)
            if RECORD:
                tl.store(rec + ((t + 1) * 2) * tile + at, h)
                tl.store(rec + ((t + 1) * 2 + 1) * tile + at, c)
            top = h
        if HAS_STOPS:
            if t + 1 == nxt:
                o = out_ptr + ((g * K_STOPS + ki) * N + n64[:, None]) * H + j[None, :]
                tl.store(o, top, mask=nm[:, None] & (j < H)[None, :])
                ki += 1
                nxt = tl.load(stops_ptr + tl.minimum(ki, K_STOPS - 1)).to(tl.int32)
    if not HAS_STOPS:
        tl.store(out_ptr + (g * N + n64[:, None]) * H + j[None, :], top, mask=nm[:, None] & (j < H)[None, :])


@triton.jit
def _acc(gp, k, H, width, d, v, HP: tl.constexpr, KP: tl.constexpr):
    """Add d^T v (HP, KP) to gate k's rows of the (gates H, width) matrix at gp."""
    jj = tl.arange(0, HP)[:, None]
    c = tl.arange(0, KP)[None, :]
    p = gp + (k * H + jj) * width + c
    m = (jj < H) & (c < width)
    tl.store(p, tl.load(p, mask=m, other=0.0) + _mm(tl.trans(d), v), mask=m)


@triton.jit
def _acc_b(gp, k, H, d, HP: tl.constexpr):
    """Add the column sums of d (BN, HP) to gate k's biases at gp."""
    j = tl.arange(0, HP)
    p = gp + k * H + j
    tl.store(p, tl.load(p, mask=j < H, other=0.0) + tl.sum(d, axis=0), mask=j < H)


@triton.jit
def _gate_back(
    gp_ptr, p_ptr, width, H, gates: tl.constexpr, k, dxi, dhh, inp, op, KP: tl.constexpr, HP: tl.constexpr
):
    """Gate k's share of a step's backward: its weights' and biases' gradients (dxi by the input
    term, dhh by the hidden term, whose operand is op), and its share of the derivatives by the
    input, (BN, KP), and by the hidden operand, (BN, HP)."""
    GH = gates * H
    wh = p_ptr + GH * width
    gh = gp_ptr + GH * width
    _acc(gp_ptr, k, H, width, dxi, inp, HP, KP)
    _acc(gh, k, H, H, dhh, op, HP, HP)
    _acc_b(gh + GH * H, k, H, dxi, HP)
    _acc_b(gh + GH * H + GH, k, H, dhh, HP)
    d_in = _mm(dxi, _wr(p_ptr, width, H, k, HP, KP))
    d_op = _mm(dhh, _wr(wh, H, H, k, HP, HP))
    return d_in, d_op


@triton.jit
def _layer_back(
    FAST: tl.constexpr,
    p_ptr,
    gp_ptr,
    width,
    H,
    inp,
    h,
    c,
    dh,
    dc,
    slope,
    shift,
    CELL: tl.constexpr,
    GATE: tl.constexpr,
    gates: tl.constexpr,
    KP: tl.constexpr,
    HP: tl.constexpr,
):
    """One step of one layer backward, from its input and old state (h, c) and the derivatives of
    the loss by its new state (dh, dc): the weights' gradients added at gp_ptr, and the derivatives
    by the old state and by the input (dh, dc, d_in)."""
    if CELL == RNN:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        hn = _tanh(FAST, xi + hh)
        da = dh * (1.0 - hn * hn)
        d_in, dh = _gate_back(gp_ptr, p_ptr, width, H, gates, 0, da, da, inp, h, KP, HP)
    elif CELL == LSTM:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        ig, di = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 1, KP, HP)
        fg, df = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 2, KP, HP)
        gg = _tanh(FAST, xi + hh)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 3, KP, HP)
        og, do = _gate(FAST, xi + hh, slope, shift, GATE)
        tc = _tanh(FAST, fg * c + ig * gg)
        dct = dc + dh * og * (1.0 - tc * tc)
        a_i = dct * gg * di
        a_f = dct * c * df
        a_g = dct * ig * (1.0 - gg * gg)
        a_o = dh * tc * do
        dc = dct * fg
        d_in, dh = _gate_back(gp_ptr, p_ptr, width, H, gates, 0, a_i, a_i, inp, h, KP, HP)
        e_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 1, a_f, a_f, inp, h, KP, HP)
        d_in += e_in
        dh += e_h
        e_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 2, a_g, a_g, inp, h, KP, HP)
        d_in += e_in
        dh += e_h
        e_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 3, a_o, a_o, inp, h, KP, HP)
        d_in += e_in
        dh += e_h
    else:
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 0, KP, HP)
        rg, dr = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(p_ptr, width, H, gates, inp, h, 1, KP, HP)
        zg, dz = _gate(FAST, xi + hh, slope, shift, GATE)
        q = rg * h
        if CELL == GRU:
            xi, hh = _terms(p_ptr, width, H, gates, inp, h, 2, KP, HP)
            ng = _tanh(FAST, xi + rg * hh)
        else:
            xi, hh = _terms(p_ptr, width, H, gates, inp, q, 2, KP, HP)
            ng = _tanh(FAST, xi + hh)
        a_n = dh * (1.0 - zg) * (1.0 - ng * ng)
        a_z = dh * (h - ng) * dz
        dh_self = dh * zg
        if CELL == GRU:
            a_r = a_n * hh * dr
            d_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 2, a_n, a_n * rg, inp, h, KP, HP)
            dh = dh_self + e_h
        else:
            d_in, dq = _gate_back(gp_ptr, p_ptr, width, H, gates, 2, a_n, a_n, inp, q, KP, HP)
            a_r = dq * h * dr
            dh = dh_self + dq * rg
        e_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 0, a_r, a_r, inp, h, KP, HP)
        d_in += e_in
        dh += e_h
        e_in, e_h = _gate_back(gp_ptr, p_ptr, width, H, gates, 1, a_z, a_z, inp, h, KP, HP)
        d_in += e_in
        dh += e_h
    return dh, dc, d_in


@triton.jit
def units_bptt_kernel(
    theta_ptr,
    consts_ptr,
    x_ptr,
    rows_ptr,
    len_ptr,
    rec_ptr,
    dst_ptr,
    dout_ptr,
    grad_ptr,
    N,
    T,
    P,
    I,
    H,
    L,
    xs_g,
    xs_n,
    CELL: tl.constexpr,
    gates: tl.constexpr,
    GATE: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    FAST: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
    KP: tl.constexpr,
):
    """Backpropagation through time over the states ``units_kernel`` recorded (rec): dout (G, N, H)
    the derivative of the loss by the top layer's final states; grad (programs, P) zeros, each
    program's sum over its samples of the gradient of the recurrent layers' weights and biases
    (the readout's are the door's). dst (programs, L, 2, BN, KP) zeros: the derivatives by each
    layer's state, carried back through the steps."""
    g = tl.program_id(0).to(tl.int64)
    nb = tl.program_id(1)
    prog = g * tl.num_programs(1) + nb
    n = nb * BN + tl.arange(0, BN)
    nm = n < N
    n64 = n.to(tl.int64)
    kc = tl.arange(0, KP)
    j = tl.arange(0, HP)
    if HAS_ROWS:
        xb = tl.load(rows_ptr + g * N + n64, mask=nm, other=0) * xs_n
    else:
        xb = g * xs_g + n64 * xs_n
    xp = x_ptr + xb[:, None] + kc[None, :]
    xm = nm[:, None] & (kc < I)[None, :]
    steps = T
    if HAS_LEN:
        steps = tl.load(len_ptr + g).to(tl.int32)
    th = theta_ptr + g * P
    gp = grad_ptr + prog * P
    slope = tl.load(consts_ptr + C_SLOPE)
    shift = tl.load(consts_ptr + C_SHIFT)
    tile = BN * KP
    at = tl.arange(0, BN)[:, None] * KP + j[None, :]
    at_in = tl.arange(0, BN)[:, None] * KP + kc[None, :]
    rec = rec_ptr + prog * ((T + 1) * L * 2 * tile)
    ds = dst_ptr + prog * (L * 2 * tile)
    hm = nm[:, None] & (j < H)[None, :]
    # the derivative by the top layer's final state; a padded sample or unit contributes nothing
    dh_top = tl.load(dout_ptr + (g * N + n64[:, None]) * H + j[None, :], mask=hm, other=0.0)
    tl.store(ds + ((L - 1) * 2) * tile + at, dh_top)
    tl.debug_barrier()
    for tt in range(0, steps):
        t = steps - 1 - tt
        for ll in range(0, L):
            l = L - 1 - ll
            p_at, width = _layer_at(l, I, H, gates)
            if l == 0:
                inp = tl.load(xp + t * I, mask=xm, other=0.0)
            else:  # the layer below's state after step t: this layer's input at step t
                below = rec + ((t + 1) * L * 2 + (l - 1) * 2) * tile
                inp = tl.load(below + at_in, mask=(kc < H)[None, :], other=0.0)
            h = tl.load(rec + (t * L * 2 + l * 2) * tile + at)
            c = tl.load(rec + (t * L * 2 + l * 2 + 1) * tile + at)
            dh = tl.load(ds + (l * 2) * tile + at)
            dc = tl.load(ds + (l * 2 + 1) * tile + at)
            dh, dc, d_in = _layer_back(
                FAST, th + p_at, gp + p_at, width, H, inp, h, c, dh, dc, slope, shift, CELL, GATE, gates, KP, HP
            )
            tl.debug_barrier()  # every thread has read the slots (and the gradients) before writing
            tl.store(ds + (l * 2) * tile + at, tl.where(hm, dh, 0.0))
            tl.store(ds + (l * 2 + 1) * tile + at, tl.where(hm, dc, 0.0))
            if l > 0:  # the input's derivative joins the layer below's, at the same step
                below = ds + ((l - 1) * 2) * tile + at_in
                tl.store(below, tl.load(below, mask=(kc < H)[None, :], other=0.0) + d_in, mask=(kc < H)[None, :])
            tl.debug_barrier()
