"""Set before anything is collected: without a CUDA device, Triton's kernels are interpreted on CPU
tensors (``TRITON_INTERPRET`` is read when a kernel is decorated, so it must come first), and
Triton's compiler options are set (unset, it warns)."""

import os

os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
try:
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
except ImportError:  # pragma: no cover - torch is a dependency
    pass

collect_ignore = []
try:
    import triton  # noqa: F401
except ImportError:  # without the gpu extra, its modules are not collected (their tests skip)
    collect_ignore += [
        "landscape/engine/gpu_kernels.py",
        "landscape/engine/gpu_units_kernels.py",
        "landscape/engine/gpu_aot.py",
    ]
