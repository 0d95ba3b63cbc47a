"""landscape: loss landscapes of recurrent networks, over 2-D weight planes and sequence lengths.

>>> import landscape as ls
>>> cell = ls.get_cell("pascanu")
>>> plane = ls.axis_plane(cell, ls.init_params(cell), xrange=(4.9, 5.1), yrange=(-2.7, -2.5), res=(3, 5))
>>> surf = ls.compute_surface(cell, plane, [ls.make_data("pascanu", 50)], progress=False)
>>> surf.loss.shape  # (lengths, ny, nx)
(1, 5, 3)
"""

from . import _signals
from ._version import __version__

_signals.install()  # before the heavy imports below: a command stopped while starting says one line

from ._errors import InputError
from .backends import loss_and_grad, losses
from .cells import CELLS, Cell, get_cell, run
from .cliffs import cliff_metrics, cliff_table
from .config import SliceConfig
from .evaluate import evaluate
from .experiment import ExperimentConfig, Run, Summary, run_experiment, summarize
from .figures.options import FigureOptions
from .generic import module_filters, module_vector, slice_module
from .keras_files import read_keras
from .params import from_modules, init_params, load_checkpoint, read_checkpoint, save_checkpoint, to_modules
from .pipeline import Outputs, slice_surface, write_slice
from .planes import Plane, axis_plane, line_plane, pca_plane, random_plane, through_plane
from .surface import Cliffs, Grads, PathRun, Surface, compute_surface, load_surface
from .tasks import TASKS, TaskData, data_from_arrays, get_task, load_data, make_data
from .train import TrainConfig, TrainResult, balanced_split, train_ensemble
from .trajectories import clip_gradient, descend, paths_for_lengths

# The public face: the verbs of the walk (a cell and its data, a centre, a plane, the surface over
# it, its figures; training and the latching experiment; a user's own module) and the types they
# take and return.
VERBS = (
    "get_cell",
    "make_data",
    "load_data",
    "init_params",
    "load_checkpoint",
    "axis_plane",
    "random_plane",
    "pca_plane",
    "line_plane",
    "through_plane",
    "compute_surface",
    "load_surface",
    "slice_surface",
    "write_figures",
    "train_ensemble",
    "run_experiment",
    "slice_module",
)
TYPES = (
    "Cell",
    "TaskData",
    "Plane",
    "Surface",
    "SliceConfig",
    "TrainConfig",
    "TrainResult",
    "FigureOptions",
    "ExperimentConfig",
    "Run",
    "InputError",
)
__all__ = ["__version__", *VERBS, *TYPES]

# The rest of the toolkit stays where it was, reachable here as before and from its module: the
# registries, the lower levels of evaluation, checkpoints and modules, the figures one by one.
MORE = (
    "CELLS",
    "TASKS",
    "get_task",
    "run",
    "losses",
    "loss_and_grad",
    "evaluate",
    "data_from_arrays",
    "balanced_split",
    "save_checkpoint",
    "read_checkpoint",
    "to_modules",
    "from_modules",
    "read_keras",
    "module_vector",
    "module_filters",
    "Grads",
    "PathRun",
    "Cliffs",
    "cliff_metrics",
    "cliff_table",
    "descend",
    "clip_gradient",
    "paths_for_lengths",
    "write_slice",
    "Outputs",
    "Summary",
    "summarize",
    "plot_facets",
    "plot_surface3d",
    "plot_cliffs",
    "save_figure",
    "interactive_figure",
    "write_html",
    "use_style",
)

# The drawing functions load matplotlib and plotly on first use, so that importing the package
# (and every command's --help) costs no drawing library.
_DRAWING = (
    "save_figure",
    "write_html",
    "write_figures",
    "interactive_figure",
    "plot_cliffs",
    "plot_facets",
    "plot_surface3d",
    "use_style",
)


def __getattr__(name: str):
    if name in _DRAWING:
        from . import figures

        value = getattr(figures, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_DRAWING))
