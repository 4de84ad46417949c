"""What the installed torch is: version, build, devices and numerics flags.

Shared by the conformance suite's report header, its JSON results and the report tools.
Every attribute is looked up defensively: torch 1.0 has no ``version.git_version``, no
``backends.cuda.matmul`` and no TF32 switches.
"""

from __future__ import annotations

import platform
import sys
from typing import Dict, List, Tuple

import torch

from gainkit.suite.expectations import GainCase, version_tuple


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``'float32'``, as in test ids, seeds and the JSON results."""
    return str(dtype).replace("torch.", "")


def installed_version() -> Tuple[int, ...]:
    return version_tuple(torch.__version__)


def _cudnn_version() -> int | None:
    try:
        return torch.backends.cudnn.version()
    except Exception:  # noqa: BLE001 - a CUDA build without libcudnn raises various errors
        return None


def _tf32_flags() -> Dict[str, bool | None]:
    """The TF32 switches (torch >= 1.7); None where this torch has no such switch."""
    matmul = getattr(getattr(torch.backends, "cuda", None), "matmul", None)
    return {
        "matmul_allow_tf32": getattr(matmul, "allow_tf32", None),
        "cudnn_allow_tf32": getattr(torch.backends.cudnn, "allow_tf32", None),
    }


def cuda_device_name() -> str | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(torch.cuda.current_device())


def describe() -> dict:
    """The installed torch as a JSON-serialisable dict."""
    return {
        "version": torch.__version__,
        "git_version": getattr(torch.version, "git_version", None),
        "file": torch.__file__,
        "cuda": torch.version.cuda,
        "cudnn": _cudnn_version(),
        "cuda_available": torch.cuda.is_available(),
        "cuda_device": cuda_device_name(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32": _tf32_flags(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }


def make_deterministic() -> List[str]:
    """Turn off the non-deterministic and reduced-precision CUDA paths this torch has.

    Returns one note per switch: what was set, or why it could not be. The flags are
    process-wide; CPU kernels ignore them, so setting them on a CPU-only run is harmless.
    """
    notes = []
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    notes.append("cudnn.deterministic=True, cudnn.benchmark=False")
    matmul = getattr(getattr(torch.backends, "cuda", None), "matmul", None)
    if matmul is not None and hasattr(matmul, "allow_tf32"):
        matmul.allow_tf32 = False
        notes.append("cuda.matmul.allow_tf32=False")
    else:
        notes.append("no cuda.matmul.allow_tf32 in this torch (added in 1.7; no TF32 before)")
    if hasattr(torch.backends.cudnn, "allow_tf32"):
        torch.backends.cudnn.allow_tf32 = False
        notes.append("cudnn.allow_tf32=False")
    else:
        notes.append("no cudnn.allow_tf32 in this torch (added in 1.7; no TF32 before)")
    return notes


def predates(case: GainCase) -> bool:
    """Whether the installed torch is older than the release that added ``case``."""
    return installed_version() < case.since_tuple


def missing_gain_message(case: GainCase, python: str | None = None) -> str:
    """What to tell a user whose torch lacks a documented gain."""
    return (
        f"calculate_gain({case.nonlinearity!r}) is missing in torch {torch.__version__}; "
        f"it was added in torch {case.since}; "
        f"apply the patch: gainkit patch apply --python {python or sys.executable}"
    )
