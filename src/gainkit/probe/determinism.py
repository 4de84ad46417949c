"""What makes a probe's draws a function of its seed, shared by every probe and the suite.

A probe draws inside ``forked_rng(device)`` (the caller's RNG state is restored after) from the
streams ``seed_rng(seed, device)`` starts, and runs its small kernels on
``torch_cpu_threads(1)``. Only torch APIs present in torch 1.0 are used.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


def forked_rng(device):
    """``torch.random.fork_rng`` over the generators a draw on ``device`` uses: the CPU one,
    and for a CUDA device that device's (forking every visible GPU would cost a state copy
    each)."""
    device = torch.device(device)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.random.fork_rng(devices=devices)


def seed_rng(seed: int, device="cpu") -> None:
    """``torch.manual_seed(seed)`` for draws on ``device``, the same streams.

    CPU tensors draw from the default CPU generator alone, so a CPU run seeds just that one.
    torch 2.x's ``manual_seed`` also queues a lazy seeding of every accelerator backend
    (cuda, xpu, mtia), each storing a formatted traceback of its caller: 1-2 ms a call at a
    pytest test's stack depth, against ~1 us for the generator's own ``manual_seed``.
    """
    if torch.device(device).type == "cpu":
        torch.random.default_generator.manual_seed(seed)  # torch 1.0: not torch.default_generator
    else:
        torch.manual_seed(seed)


@contextmanager
def torch_cpu_threads(count: int | None):
    """torch's CPU threads set to ``count`` inside (None: left alone), restored after.

    The suite's kernels are small (N x N per draw, QR of a 64 x 64 weight): on a shared 2-core
    machine OpenMP fork/join made bmm ~100x and orthogonal_ ~60x slower with 2 threads than
    with 1."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
