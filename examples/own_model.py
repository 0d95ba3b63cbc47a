"""Your own network's landscape: an nn.LSTM(3, 8) + nn.Linear(8, 1), trained a little by plain
torch.nn on a task of three features, then sliced on a random filter-normalized plane at three
lengths, from the Python API.

    python examples/own_model.py       # writes figures/own_model.png and .html
"""

import torch
from torch import nn

import landscape as ls


def data(n: int, steps: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three features per step; the class is the sign of the first feature at the first step."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(n, steps, 3, generator=gen)
    y = (torch.rand(n, generator=gen) < 0.5).float()
    x[:, 0, 0] += 2 * y - 1
    return x, y


def main() -> None:
    torch.manual_seed(0)
    rnn, head = nn.LSTM(3, 8, batch_first=True), nn.Linear(8, 1)
    x, y = data(512, 20, seed=1)
    opt = torch.optim.Adam([*rnn.parameters(), *head.parameters()], lr=3e-2)
    for _ in range(150):  # a few full-batch steps: the model the user brings
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(head(rnn(x)[0][:, -1])[:, 0], y)
        loss.backward()
        opt.step()
    print(f"torch.nn training loss at L = 20: {loss.item():.4f}")

    cell, theta = ls.from_modules(rnn, head)
    plane = ls.random_plane(theta, cell=cell, res=(41, 41), seed=0)
    xs, ys = data(512, 100, seed=2)
    datas = [ls.data_from_arrays(xs.numpy(), ys.numpy(), n) for n in (20, 50, 100)]
    surf = ls.compute_surface(cell, plane, datas, config={"cell": "lstm", "units": 8, "inputs": 3})
    print(f"loss at the centre, L = 20 / 50 / 100: {surf.loss[:, 20, 20].round(4).tolist()}")
    ls.save_figure(ls.plot_facets(surf), "figures/own_model.png")
    ls.write_html(ls.interactive_figure(surf), "figures/own_model.html")
    print("wrote figures/own_model.png and .html")


if __name__ == "__main__":
    main()
