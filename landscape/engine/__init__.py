"""The compiled engine: the fused C kernel (``_fused.c`` with its headers), built on first use
with the machine's compiler and loaded only after its bytes are verified (``build``), its table of
cells generated from ``table``, and its one door from Python (``fused``): final states of many
models at once, and their losses, differentiable through the kernel's own backpropagation
through time. On a CUDA device the same door runs the GPU engine (``gpu``, Triton kernels in
``gpu_kernels``). ``landscape.backends`` chooses between the engines and the reference path."""

from . import gpu
from .build import KernelError, available, library, probe, unavailable_reason
from .fused import fused_losses, kernel_losses, run_fused
from .table import MAX_UNITS, kernel_cell

__all__ = [
    "gpu",
    "KernelError",
    "available",
    "library",
    "probe",
    "unavailable_reason",
    "fused_losses",
    "kernel_losses",
    "run_fused",
    "MAX_UNITS",
    "kernel_cell",
]
