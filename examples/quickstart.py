"""Pascanu's wall, and a one-unit RNN's latching landscape across lengths, from the Python API.

python examples/quickstart.py       # writes figures/quickstart_*.png and .html
"""

import landscape as ls


def main() -> None:
    # Pascanu et al. 2013, Fig. 6: E_50 over (w, b); the wall at w = 5 lies near b = -2.612.
    cell = ls.get_cell("pascanu")
    plane = ls.axis_plane(
        cell, ls.init_params(cell), x="w", y="b", xrange=(4.5, 5.5), yrange=(-3.0, -2.0), res=(101, 1001)
    )
    surf = ls.compute_surface(cell, plane, [ls.make_data("pascanu", 50)], config={"cell": "pascanu"})
    col = surf.loss[0, :, 50]  # the column w = 5
    k = abs(col[1:] - col[:-1]).argmax()
    print(f"pascanu T=50, w=5: wall between b={surf.y[k]:.4f} and b={surf.y[k + 1]:.4f}")
    ls.save_figure(ls.plot_facets(surf), "figures/quickstart_pascanu.png")

    # A one-unit tanh RNN at torch.nn's initialization, on information latching, L = 5 to 100.
    cell = ls.get_cell("rnn")
    plane = ls.axis_plane(
        cell, ls.init_params(cell, seed=0), x="w_hh", y="b_hh", xrange=(-4, 4), yrange=(-4, 4), res=(61, 61)
    )
    datas = [ls.make_data("latching", n, n=500, seed=0) for n in (5, 20, 100)]
    surf = ls.compute_surface(cell, plane, datas, config={"cell": "rnn", "task": "latching"})
    ls.save_figure(ls.plot_facets(surf), "figures/quickstart_rnn.png")
    ls.write_html(ls.interactive_figure(surf), "figures/quickstart_rnn.html")
    print("wrote figures/quickstart_pascanu.png, figures/quickstart_rnn.png and .html")


if __name__ == "__main__":
    main()
