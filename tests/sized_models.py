"""Models of H units, I inputs and L layers as torch.nn builds them: random weights, their flat
vectors in ``landscape.units``'s layout, data with per-model lengths, and torch.nn's own states,
losses and gradients (the independent reference of both compiled engines)."""

from __future__ import annotations

import torch

from landscape.units import modules, shapes


def problem(cell, I, H, L, dtype, G=3, N=19, T=9, seed=0):
    """G torch.nn models with random weights, their flat vectors, and data with per-model lengths."""
    gen = torch.Generator().manual_seed(seed)
    nets, thetas = [], []
    for g in range(G):
        torch.manual_seed(100 * seed + g)
        rnn, head = modules(cell, H, inputs=I, layers=L)
        rnn, head = rnn.to(torch.float64), head.to(torch.float64)
        sds = {"rnn": rnn.state_dict(), "head": head.state_dict()}
        with torch.no_grad():
            for _, key in ((m, k) for m, k, _ in shapes(cell, H, inputs=I, layers=L)):
                for sd in sds.values():
                    if key in sd:
                        sd[key].add_(0.4 * torch.randn(sd[key].shape, generator=gen, dtype=torch.float64))
        rnn.load_state_dict(sds["rnn"]), head.load_state_dict(sds["head"])
        nets.append((rnn, head))
        thetas.append(torch.cat([sds[m][k].reshape(-1) for m, k, _ in shapes(cell, H, inputs=I, layers=L)]))
    x = torch.randn(G, N, T, I, generator=gen, dtype=torch.float64)
    y = (torch.rand(G, N, generator=gen) < 0.5).to(torch.float64)
    lengths = torch.tensor([T, 1, 5, 7, 3][:G])
    return nets, torch.stack(thetas), x, y, lengths


def torch_nn(nets, x, y, lengths):
    """Top-layer final states (G, N, H) and mean BCE losses (G,) from torch.nn itself."""
    hs, losses = [], []
    for (rnn, head), xm, ym, n in zip(nets, x, y, lengths.tolist(), strict=True):
        out, _ = rnn(xm[:, :n])
        h = out[:, -1]  # (N, H): the top layer's state after step n
        hs.append(h)
        losses.append(torch.nn.functional.binary_cross_entropy_with_logits(head(h)[:, 0], ym))
    return torch.stack(hs), torch.stack(losses)


def torch_nn_grad(cell, nets, loss, H, I, L) -> torch.Tensor:
    """torch.nn's gradient of ``loss.sum()`` by every model's parameters, in the flat order (G, P)."""
    loss.sum().backward()
    return torch.stack(
        [
            torch.cat(
                [
                    dict(rnn.named_parameters(), **dict(head.named_parameters()))[k].grad.reshape(-1)
                    for _, k, _ in shapes(cell, H, inputs=I, layers=L)
                ]
            )
            for rnn, head in nets
        ]
    )
