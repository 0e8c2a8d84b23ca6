"""Drivers for any chapter: calls watched, models seeded, coroutines run."""

from __future__ import annotations


def seeded_model(model_class, seed: int, *args, **kwargs):
    """``model_class(*args, **kwargs)`` with its weights drawn from ``seed``, leaving torch's global generator as it was."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(*args, **kwargs)


def call_watching(function, *args, **kwargs) -> tuple[object, list[int]]:
    """``function(*args, **kwargs)``, and the positions of the arguments whose tensors or arrays it changed.

    Arguments cross into the learner's process by value, so the judge cannot see them
    changed: a part that must leave its data alone is watched here, where it runs.
    """
    before = [_snapshot(arg) for arg in args]
    result = function(*args, **kwargs)
    return result, [i for i, (arg, old) in enumerate(zip(args, before)) if not _same(_snapshot(arg), old)]


def _snapshot(value):
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_snapshot(v) for v in value]
    return value if isinstance(value, (int, float, str, type(None))) else None


def _same(a, b) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN is NaN


def run_coroutine(function, *args, deadline_s: float, **kwargs):
    """``function(*args, **kwargs)``, a coroutine function of the learner's, run to its end within ``deadline_s``.

    In a thread with an event loop of its own (``booktools.loopback.run_async``): TimeoutError past the deadline.
    """
    from booktools.loopback import run_async

    return run_async(function(*args, **kwargs), deadline_s)
