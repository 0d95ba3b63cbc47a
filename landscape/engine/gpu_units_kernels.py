"""The GPU engine's kernels for models of H units, I inputs and L layers (``landscape.units``'s
layout: torch.nn's ``state_dict`` order), in Triton. A program runs one model over a block of BN
samples. Each layer's state lives in a per-program scratch row (L2-resident), so each step's
matrix products are sums of outer products, a column of the state (or of the inputs) times a
column of the weights: the registers a program needs are its (BN, HP) tiles whatever the number
of units (HP, the units padded to a power of two, with zeros that stay zero through every cell's
equations), and the products round as a plain loop over the inputs of each unit does.

``units_kernel`` gives the top layer's final states (or its states after each step of ``stops``),
which the door reads out in torch (any head); with RECORD it also stores every layer's state after
every step, which ``units_bptt_kernel`` walks back through: given the derivative of a loss by the
final states, it sums each program's share of the gradient of every weight and bias (the door adds
the blocks of samples). Barriers separate a tile's store from reads of its columns by other threads.

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
def _mv(acc, a_ptr, am, width, w_ptr, H, k, HP: tl.constexpr):
    """acc + A W_k^T, (BN, HP): A's rows start at the pointers a_ptr (BN,), ``width`` columns each;
    W_k is gate k's rows of the (gates H, width) matrix at w_ptr. One outer product per column."""
    j = tl.arange(0, HP)
    jm = j < H
    for cc in range(0, width):
        col = tl.load(a_ptr + cc, mask=am, other=0.0)
        w = tl.load(w_ptr + (k * H + j) * width + cc, mask=jm, other=0.0)
        acc += col[:, None] * w[None, :]
    return acc


@triton.jit
def _vm(acc, d_ptr, width, w_ptr, H, k, OUT: tl.constexpr):
    """acc + D W_k, (BN, OUT): D (BN, H) the rows at the pointers d_ptr (BN,); W_k as for ``_mv``
    (its ``width`` columns the first of OUT). One outer product per unit."""
    c = tl.arange(0, OUT)
    cm = c < width
    for jj in range(0, H):
        col = tl.load(d_ptr + jj)
        w = tl.load(w_ptr + (k * H + jj) * width + c, mask=cm, other=0.0)
        acc += col[:, None] * w[None, :]
    return acc


@triton.jit
def _bias(b_ptr, H, k, BN: tl.constexpr, HP: tl.constexpr):
    """Gate k's biases, broadcast to a (BN, HP) tile."""
    j = tl.arange(0, HP)
    b = tl.load(b_ptr + k * H + j, mask=j < H, other=0.0)
    return tl.zeros((BN, HP), dtype=b.dtype) + b[None, :]


@triton.jit
def _terms(w_ptr, width, H, gates: tl.constexpr, x_rows, xm, h_rows, k, BN: tl.constexpr, HP: tl.constexpr):
    """Gate k's input term W_ih,k inp + b_ih,k and hidden term W_hh,k h + b_hh,k, (BN, HP) each, of
    the layer whose weight_ih starts at w_ptr (then weight_hh, bias_ih, bias_hh); the input's rows
    at x_rows, the state's (or another vector's) at h_rows."""
    GH = gates * H
    wh = w_ptr + GH * width
    bi = wh + GH * H
    xi = _mv(_bias(bi, H, k, BN, HP), x_rows, xm, width, w_ptr, H, k, HP)
    hh = _mv(_bias(bi + GH, H, k, BN, HP), h_rows, xm | True, H, wh, H, k, HP)
    return xi, hh


@triton.jit
def _layer(
    FAST: tl.constexpr,
    w_ptr,
    width,
    H,
    x_rows,
    xm,
    h_rows,
    q_rows,
    q_at,
    h,
    c,
    slope,
    shift,
    CELL: tl.constexpr,
    GATE: tl.constexpr,
    gates: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
):
    """One step of one layer: the new (h, c) of the state h, c (whose h is also at h_rows)."""
    a0, _d0, a1, _d1, a2, a3, _d3 = _gates(
        FAST, w_ptr, width, H, x_rows, xm, h_rows, q_rows, q_at, h, slope, shift, CELL, GATE, gates, BN, HP
    )
    if CELL == RNN:
        hn = a0
        cn = c
    elif CELL == LSTM:
        cn = a1 * c + a0 * a2
        hn = a3 * _tanh(FAST, cn)
    else:
        hn = (1.0 - a1) * a2 + a1 * h
        cn = c
    return hn, cn


@triton.jit
def _gates(
    FAST: tl.constexpr,
    w_ptr,
    width,
    H,
    x_rows,
    xm,
    h_rows,
    q_rows,
    q_at,
    h,
    slope,
    shift,
    CELL: tl.constexpr,
    GATE: tl.constexpr,
    gates: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
):
    """A layer's step up to its gates, and the gate functions' derivatives, (BN, HP) tiles: rnn
    (h', -, ...), lstm (i, di, f, df, g, o, do), gru (r, dr, z, dz, n, the candidate's hidden term,
    -). Keras's GRU stores the reset state r h at q_at (its rows at q_rows) for its product."""
    xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 0, BN, HP)
    if CELL == RNN:
        a0 = _tanh(FAST, xi + hh)
        d0, a1, d1, a2, a3, d3 = a0, a0, a0, a0, a0, a0  # (unused)
    elif CELL == LSTM:
        a0, d0 = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 1, BN, HP)
        a1, d1 = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 2, BN, HP)
        a2 = _tanh(FAST, xi + hh)
        xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 3, BN, HP)
        a3, d3 = _gate(FAST, xi + hh, slope, shift, GATE)
    else:
        a0, d0 = _gate(FAST, xi + hh, slope, shift, GATE)
        xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 1, BN, HP)
        a1, d1 = _gate(FAST, xi + hh, slope, shift, GATE)
        if CELL == GRU:  # the reset gate scales the whole hidden term
            xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, h_rows, 2, BN, HP)
            a2 = _tanh(FAST, xi + a0 * hh)
        else:  # Keras's reset_after=False: the hidden term of the reset state r h
            tl.store(q_at, a0 * h)
            tl.debug_barrier()
            xi, hh = _terms(w_ptr, width, H, gates, x_rows, xm, q_rows, 2, BN, HP)
            a2 = _tanh(FAST, xi + hh)
        a3 = hh
        d3 = hh  # (unused)
    return a0, d0, a1, d1, a2, a3, d3


@triton.jit
def _layer_at(l, I, H, gates: tl.constexpr):
    """Where layer l's weight_ih starts in a model's row, and its width (I for the first layer)."""
    GH = gates * H
    first = GH * (I + H + 2)
    at = tl.where(l == 0, 0, first + (l - 1) * GH * (2 * H + 2))
    return at, tl.where(l == 0, I, H)


@triton.jit
def _program(
    NB,
    consts_ptr,
    rows_ptr,
    len_ptr,
    N,
    T,
    xs_g,
    xs_n,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    BN: tl.constexpr,
):
    """This program's model g, block of samples nb, index among the programs, sample offsets b and
    indices (int64) with their mask, each sample's first input in x, the model's steps, and the
    hard sigmoid's slope and shift."""
    prog = tl.program_id(0).to(tl.int64)  # one axis: the samples' blocks of a model may pass 65535
    g = prog // NB
    nb = (prog % NB).to(tl.int32)
    b = tl.arange(0, BN)
    n = nb * BN + b
    nm = n < N
    n64 = n.to(tl.int64)
    if HAS_ROWS:
        xb = tl.load(rows_ptr + g * N + n64, mask=nm, other=0) * xs_n
    else:
        xb = g * xs_g + n64 * xs_n
    steps = T
    if HAS_LEN:
        steps = tl.load(len_ptr + g).to(tl.int32)
    return g, nb, prog, b, n64, nm, xb, steps, tl.load(consts_ptr + C_SLOPE), tl.load(consts_ptr + C_SHIFT)


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
    NB,
    CELL: tl.constexpr,
    gates: tl.constexpr,
    GATE: tl.constexpr,
    HAS_ROWS: tl.constexpr,
    HAS_LEN: tl.constexpr,
    HAS_STOPS: tl.constexpr,
    RECORD: tl.constexpr,
    FAST: tl.constexpr,
    BN: tl.constexpr,
    HP: tl.constexpr,
    KP: tl.constexpr,
):
    """Program g NB + nb runs model g on samples of block nb (NB blocks a model): out (G, N, H),
    the top layer's state after the model's steps (T, or len[g]); with HAS_STOPS out (G, K, N,
    H), after each of stops. x: rows of T steps of I features, (N, T I) shared (xs_g = 0),
    (G, N, T I), or a table (R, T I) through rows (G, N). st: (programs, slots, BN, KP) zeros.
    With RECORD, rec (programs, T + 1, L, 2, BN, KP): every layer's (h, c) after each step,
    zeros at the start."""
    g, nb, prog, b, n64, nm, xb, steps, slope, shift = _program(
        NB, consts_ptr, rows_ptr, len_ptr, N, T, xs_g, xs_n, HAS_ROWS, HAS_LEN, BN
    )
    j = tl.arange(0, HP)
    th = theta_ptr + g * P
    tile = BN * KP
    st = st_ptr + prog * ((4 * L + 2 * gates + 1) * tile)
    rows_of = st + b * KP  # slot s's rows: rows_of + s tile
    at = b[:, None] * KP + j[None, :]  # a (BN, HP) tile in a slot
    q_slot = 4 * L + 2 * gates
    rec = rec_ptr + prog * (T + 1) * L * 2 * tile  # 64-bit, left to right
    top = tl.zeros((BN, HP), dtype=theta_ptr.dtype.element_ty)
    if HAS_STOPS:
        ki = nb * 0
        nxt = tl.load(stops_ptr).to(tl.int32)
    for t in range(0, steps):
        t64 = tl.cast(t, tl.int64)  # the record's offsets are 64-bit
        for l in range(0, L):
            w_at, width = _layer_at(l, I, H, gates)
            if l == 0:
                x_rows = x_ptr + xb + t * I
                xm = nm
            else:  # the layer below's new state, as this layer's input
                x_rows = rows_of + (2 * (l - 1)) * tile
                xm = nm | True
            h = tl.load(st + (2 * l) * tile + at)
            c = tl.load(st + (2 * l + 1) * tile + at)
            h, c = _layer(
                FAST,
                th + w_at,
                width,
                H,
                x_rows,
                xm,
                rows_of + (2 * l) * tile,
                rows_of + q_slot * tile,
                st + q_slot * tile + at,
                h,
                c,
                slope,
                shift,
                CELL,
                GATE,
                gates,
                BN,
                HP,
            )
            tl.debug_barrier()  # every thread has read the slots' columns before they are written
            tl.store(st + (2 * l) * tile + at, h)
            tl.store(st + (2 * l + 1) * tile + at, c)
            if RECORD:
                tl.store(rec + ((t64 + 1) * L * 2 + l * 2) * tile + at, h)
                tl.store(rec + ((t64 + 1) * L * 2 + l * 2 + 1) * tile + at, c)
            tl.debug_barrier()  # and written before the next layer (or step) reads them
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
def _acc_w(gw, k, H, width, d, v_rows, vm, HP: tl.constexpr):
    """Add D^T V to gate k's rows of the (gates H, width) matrix at gw: d (BN, HP), V's rows at the
    pointers v_rows (BN,), one column of V (a sum over the samples) at a time."""
    j = tl.arange(0, HP)
    jm = j < H
    for cc in range(0, width):
        v = tl.load(v_rows + cc, mask=vm, other=0.0)
        p = gw + (k * H + j) * width + cc
        tl.store(p, tl.load(p, mask=jm, other=0.0) + tl.sum(d * v[:, None], axis=0), mask=jm)


@triton.jit
def _acc_b(gb, k, H, d, HP: tl.constexpr):
    """Add the column sums of d (BN, HP) to gate k's biases at gb."""
    j = tl.arange(0, HP)
    p = gb + k * H + j
    tl.store(p, tl.load(p, mask=j < H, other=0.0) + tl.sum(d, axis=0), mask=j < H)


@triton.jit
def _grads(g_ptr, width, H, gates: tl.constexpr, k, dxi, dhh, x_rows, xm, op_rows, HP: tl.constexpr):
    """Gate k's weights' and biases' gradients, from the derivatives by its input term (dxi) and
    hidden term (dhh, whose operand's rows are at op_rows), added to the layer's at g_ptr."""
    GH = gates * H
    gh = g_ptr + GH * width
    _acc_w(g_ptr, k, H, width, dxi, x_rows, xm, HP)
    _acc_w(gh, k, H, H, dhh, op_rows, xm | True, HP)
    _acc_b(gh + GH * H, k, H, dxi, HP)
    _acc_b(gh + GH * H + GH, k, H, dhh, HP)


@triton.jit
def _products(
    acc_in,
    acc_h,
    w_ptr,
    width,
    H,
    gates: tl.constexpr,
    k,
    dxi_rows,
    dhh_rows,
    KP: tl.constexpr,
    HP: tl.constexpr,
):
    """Gate k's share of the derivatives by the input (acc_in, (BN, KP)) and, through the hidden
    product, by the state (acc_h, (BN, HP)), from its derivatives' rows (at dxi_rows, dhh_rows)."""
    wh = w_ptr + gates * H * width
    acc_in = _vm(acc_in, dxi_rows, width, w_ptr, H, k, KP)
    acc_h = _vm(acc_h, dhh_rows, H, wh, H, k, HP)
    return acc_in, acc_h


@triton.jit
def units_bptt_kernel(
    theta_ptr,
    consts_ptr,
    x_ptr,
    rows_ptr,
    len_ptr,
    rec_ptr,
    st_ptr,
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
    NB,
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
    (the readout's are the door's); st (programs, slots, BN, KP) zeros: the derivatives by each
    layer's state (slots 2 l, 2 l + 1), carried back through the steps, and each gate's."""
    g, nb, prog, b, n64, nm, xb, steps, slope, shift = _program(
        NB, consts_ptr, rows_ptr, len_ptr, N, T, xs_g, xs_n, HAS_ROWS, HAS_LEN, BN
    )
    j = tl.arange(0, HP)
    kc = tl.arange(0, KP)
    th = theta_ptr + g * P
    gp = grad_ptr + prog * P
    tile = BN * KP
    at = b[:, None] * KP + j[None, :]
    at_in = b[:, None] * KP + kc[None, :]
    rec = rec_ptr + prog * (T + 1) * L * 2 * tile  # 64-bit, left to right
    ds = st_ptr + prog * ((4 * L + 2 * gates + 1) * tile)
    gd = ds + (2 * L) * tile  # the gates' derivatives: slot k by gate k's input term, gates + k hidden
    gd_rows = gd + b * KP
    q_at = ds + (2 * L + 2 * gates) * tile + at  # the reset state r h (Keras's GRU)
    q_rows = ds + (2 * L + 2 * gates) * tile + b * KP
    hm = nm[:, None] & (j < H)[None, :]
    zero_in = tl.zeros((BN, KP), dtype=theta_ptr.dtype.element_ty)
    zero_h = tl.zeros((BN, HP), dtype=theta_ptr.dtype.element_ty)
    # the derivative by the top layer's final state; a padded sample or unit contributes nothing
    tl.store(
        ds + (2 * (L - 1)) * tile + at,
        tl.load(dout_ptr + (g * N + n64[:, None]) * H + j[None, :], mask=hm, other=0.0),
    )
    tl.debug_barrier()
    for tt in range(0, steps):
        t = steps - 1 - tt
        t64 = tl.cast(t, tl.int64)
        for ll in range(0, L):
            l = L - 1 - ll
            w_at, width = _layer_at(l, I, H, gates)
            w = th + w_at
            gw = gp + w_at
            if l == 0:
                x_rows = x_ptr + xb + t * I
                xm = nm
            else:  # the layer below's state after step t: this layer's input at step t
                x_rows = rec + ((t64 + 1) * L * 2 + (l - 1) * 2) * tile + b * KP
                xm = nm | True
            h_rows = rec + (t64 * L * 2 + l * 2) * tile + b * KP
            h = tl.load(rec + (t64 * L * 2 + l * 2) * tile + at)
            c = tl.load(rec + (t64 * L * 2 + l * 2 + 1) * tile + at)
            dh = tl.load(ds + (2 * l) * tile + at)
            dc = tl.load(ds + (2 * l + 1) * tile + at)
            d_in = zero_in
            d_h = zero_h
            a0, d0, a1, d1, a2, a3, d3 = _gates(
                FAST,
                w,
                width,
                H,
                x_rows,
                xm,
                h_rows,
                q_rows,
                q_at,
                h,
                slope,
                shift,
                CELL,
                GATE,
                gates,
                BN,
                HP,
            )
            if CELL == RNN:
                da = dh * (1.0 - a0 * a0)
                tl.store(gd + at, da)
                tl.debug_barrier()
                d_in, d_h = _products(d_in, d_h, w, width, H, gates, 0, gd_rows, gd_rows, KP, HP)
                _grads(gw, width, H, gates, 0, da, da, x_rows, xm, h_rows, HP)
                dh = dh * 0.0
            elif CELL == LSTM:
                ig, di, fg, df, gg, og, do = a0, d0, a1, d1, a2, a3, d3
                tc = _tanh(FAST, fg * c + ig * gg)
                dct = dc + dh * og * (1.0 - tc * tc)
                a_i = dct * gg * di
                a_f = dct * c * df
                a_g = dct * ig * (1.0 - gg * gg)
                a_o = dh * tc * do
                tl.store(gd + at, a_i)
                tl.store(gd + tile + at, a_f)
                tl.store(gd + 2 * tile + at, a_g)
                tl.store(gd + 3 * tile + at, a_o)
                tl.debug_barrier()
                for k in tl.static_range(4):
                    d_in, d_h = _products(
                        d_in, d_h, w, width, H, gates, k, gd_rows + k * tile, gd_rows + k * tile, KP, HP
                    )
                _grads(gw, width, H, gates, 0, a_i, a_i, x_rows, xm, h_rows, HP)
                _grads(gw, width, H, gates, 1, a_f, a_f, x_rows, xm, h_rows, HP)
                _grads(gw, width, H, gates, 2, a_g, a_g, x_rows, xm, h_rows, HP)
                _grads(gw, width, H, gates, 3, a_o, a_o, x_rows, xm, h_rows, HP)
                dc = dct * fg
                dh = dh * 0.0
            else:
                rg, dr, zg, dz, ng, hh = a0, d0, a1, d1, a2, a3
                a_n = dh * (1.0 - zg) * (1.0 - ng * ng)
                a_z = dh * (h - ng) * dz
                tl.store(gd + tile + at, a_z)
                tl.store(gd + 2 * tile + at, a_n)
                if CELL == GRU:
                    a_r = a_n * hh * dr
                    tl.store(gd + at, a_r)
                    tl.store(gd + gates * tile + at, a_n * rg)  # by the candidate's hidden term
                    tl.debug_barrier()
                    d_in, d_h = _products(d_in, d_h, w, width, H, gates, 0, gd_rows, gd_rows, KP, HP)
                    d_in, d_h = _products(
                        d_in, d_h, w, width, H, gates, 1, gd_rows + tile, gd_rows + tile, KP, HP
                    )
                    d_in, d_h = _products(
                        d_in, d_h, w, width, H, gates, 2, gd_rows + 2 * tile, gd_rows + gates * tile, KP, HP
                    )
                    _grads(gw, width, H, gates, 2, a_n, a_n * rg, x_rows, xm, h_rows, HP)
                    dh = dh * zg
                else:  # the candidate's product is of r h: its derivative dq gives the reset gate's
                    tl.debug_barrier()
                    dq = _vm(zero_h, gd_rows + 2 * tile, H, w + gates * H * width, H, 2, HP)
                    a_r = dq * h * dr
                    tl.store(gd + at, a_r)
                    tl.debug_barrier()
                    d_in, d_h = _products(d_in, d_h, w, width, H, gates, 0, gd_rows, gd_rows, KP, HP)
                    d_in, d_h = _products(
                        d_in, d_h, w, width, H, gates, 1, gd_rows + tile, gd_rows + tile, KP, HP
                    )
                    d_in = _vm(d_in, gd_rows + 2 * tile, width, w, H, 2, KP)
                    _grads(gw, width, H, gates, 2, a_n, a_n, x_rows, xm, q_rows, HP)
                    dh = dh * zg + dq * rg
                _grads(gw, width, H, gates, 0, a_r, a_r, x_rows, xm, h_rows, HP)
                _grads(gw, width, H, gates, 1, a_z, a_z, x_rows, xm, h_rows, HP)
            tl.debug_barrier()  # every thread has read the slots before they are written
            # the derivative by the old state: its direct part and the hidden products'
            tl.store(ds + (2 * l) * tile + at, tl.where(hm, dh + d_h, 0.0))
            tl.store(ds + (2 * l + 1) * tile + at, tl.where(hm, dc, 0.0))
            if l > 0:  # the input's derivative joins the layer below's, at the same step
                below = ds + (2 * (l - 1)) * tile + at_in
                um = nm[:, None] & (kc < H)[None, :]
                tl.store(below, tl.load(below, mask=um, other=0.0) + d_in, mask=um)
            tl.debug_barrier()
