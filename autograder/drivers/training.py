"""Drivers of the GPU-training chapter: what a training step is handed, built beside the learner's code, and the
scenarios that change torch or its global random state there (a judge's change would not reach the learner's process).

The small training job of ``resume_and_measure`` is here too, so that the judge replays exactly
the job the learner's code checkpoints and resumes, and compares the two.
"""

from __future__ import annotations

import contextlib
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from casestudy.model import random_batch


def optimizer_for(model: nn.Module, kind: str, lr: float) -> torch.optim.Optimizer:
    """``torch.optim.Adam`` or ``SGD`` over ``model``'s parameters."""
    optimizers = {"Adam": torch.optim.Adam, "SGD": torch.optim.SGD}
    return optimizers[kind](model.parameters(), lr=lr)


def grad_scaler(device_type: str, init_scale: float = 2.0**16) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device_type, init_scale=init_scale)


class RecordsAutocast(nn.Module):
    """A model, noting in each forward pass whether autocast was on, and with which type."""

    def __init__(self, model: nn.Module, device: torch.device):
        super().__init__()
        self.model, self.device_type, self.seen = model, device.type, []

    def forward(self, *inputs):
        on = torch.is_autocast_enabled(self.device_type)
        self.seen.append(torch.get_autocast_dtype(self.device_type) if on else None)
        return self.model(*inputs)


def step_on_meta(train_step, model, batch, optimizer):
    """``train_step`` with a model on PyTorch's meta device, where ``torch.autocast("meta", enabled=False)`` does nothing.

    PyTorch refuses autocast on the meta device even when it is disabled; a step that
    writes ``torch.autocast(device.type, ..., enabled=amp_dtype is not None)`` is right
    all the same, and should not fail a test about where the batch goes.
    """
    real = torch.autocast

    def autocast(device_type, dtype=None, enabled=True, cache_enabled=None):
        if device_type == "meta" and not enabled:
            return contextlib.nullcontext()
        return real(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    torch.autocast = torch.amp.autocast = autocast
    try:
        return train_step(model, batch, optimizer, torch.device("meta"))
    finally:
        torch.autocast = torch.amp.autocast = real


def tensor_dataset(n: int) -> TensorDataset:
    """The numbers 0 to n - 1, one example each."""
    return TensorDataset(torch.arange(n))


def manual_seed(seed: int) -> None:
    """Reseed torch's global generator, which a loader with a generator of its own must not depend on."""
    torch.manual_seed(seed)


def claiming_a_gpu(function, *args, **kwargs):
    """``function(*args, **kwargs)`` while ``torch.cuda.is_available()`` says yes, as on a GPU machine."""
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: True
    try:
        return function(*args, **kwargs)
    finally:
        torch.cuda.is_available = real


# --- A small training job whose result depends on every piece of state -----------------------------


def new_job(seed: int):
    """A model with dropout, Adam and a learning-rate schedule: everything a resume must restore."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return model, optimizer, scheduler


DATA = random_batch(96, seed=5)


def train_epoch(model, optimizer, scheduler) -> None:
    """One epoch that draws from torch's, NumPy's and Python's random numbers."""
    _, numeric, labels = DATA
    order = torch.randperm(len(labels))  # the data order
    noise = torch.from_numpy(np.random.normal(0, 0.05, numeric.shape).astype(np.float32))  # augmentation
    for start in range(0, len(order), 32):
        rows = order[start : start + 32]
        if random.random() < 0.2:  # e.g. a randomly skipped batch
            continue
        optimizer.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(model(numeric[rows] + noise[rows]).squeeze(1), labels[rows])
        loss.backward()
        optimizer.step()
    scheduler.step()


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def trained_job(epochs: int = 2):
    """The job after ``epochs`` epochs from seed 0, data seed 1: what the judge replays to compare."""
    job = new_job(0)
    seed_everything(1)
    for _ in range(epochs):
        train_epoch(*job)
    return job


def checkpoint_trained_job(save_checkpoint, path: Path) -> None:
    """Train the job for two epochs, then have the learner's ``save_checkpoint`` save it as epoch 2."""
    save_checkpoint(path, *trained_job(), epoch=2)


def checkpoint_fresh_job(save_checkpoint, path: Path, rng_seed: int) -> None:
    """Save a fresh job as epoch 0 with every random generator just seeded with ``rng_seed``."""
    job = new_job(0)
    seed_everything(rng_seed)
    save_checkpoint(path, *job, epoch=0)


def load_checkpoint(path: Path):
    """What ``torch.load`` makes of the learner's checkpoint: loaded here, beside their code, and sent by value.

    ``weights_only=False``, as a checkpoint holding NumPy's random state needs: the
    unpickling it allows runs only in the learner's process, never in the judge.
    """
    return torch.load(path, weights_only=False)


def checkpoint_on_a_full_disk(save_checkpoint, path: Path) -> None:
    """Save the trained job again while the disk fills halfway through ``torch.save`` (OSError, a truncated file)."""
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        target = Path(f) if isinstance(f, (str, Path)) else None
        if target is not None:
            target.write_bytes(target.read_bytes()[:100])  # what a killed job leaves behind
        raise OSError(28, "No space left on device")

    torch.save = disk_full
    try:
        save_checkpoint(path, *trained_job(), epoch=3)
    finally:
        torch.save = real_save


def job_state(model, optimizer, scheduler) -> dict:
    """What a comparison of two jobs looks at: the weights, the optimizer's state and the learning rate."""
    return {"model": model.state_dict(), "optimizer": str(optimizer.state_dict()), "lr": scheduler.get_last_lr()}


def resume_fresh_job(resume, path: Path, seed: int) -> tuple[object, dict]:
    """The learner's ``resume`` into a fresh job from ``seed``: the epoch it returns, and the job's state after."""
    job = new_job(seed)
    return resume(path, *job), job_state(*job)


def interrupted_run(save_checkpoint, resume, path: Path) -> dict:
    """Two epochs saved after each, a crash, a resume into fresh objects and random states, then the epochs to 4."""
    job = new_job(0)
    seed_everything(1)
    for epoch in range(2):
        train_epoch(*job)
        save_checkpoint(path, *job, epoch=epoch)
    # The job is killed; a new process starts with other random states and fresh objects.
    seed_everything(12345)
    job = new_job(7)
    for _ in range(resume(path, *job), 4):
        train_epoch(*job)
    return job[0].state_dict()


# --- Throughput, measured on the CPU and on a simulated GPU ---------------------------------------


class SimulatedGPU:
    """Work is queued and runs in the background; ``synchronize`` waits until it is done.

    ``step()`` returns at once, like a CUDA kernel launch; each call adds ``cost``
    seconds of work to the queue (``warmup_cost`` for the first ``slow_calls`` calls,
    like compilation and autotuning).
    """

    def __init__(self, cost: float, warmup_cost: float = 0.0, slow_calls: int = 0):
        self.cost, self.warmup_cost, self.slow_calls = cost, warmup_cost, slow_calls
        self.calls, self.busy_until, self.synchronized = 0, time.perf_counter(), 0

    def step(self) -> None:
        cost = self.warmup_cost if self.calls < self.slow_calls else self.cost
        self.calls += 1
        self.busy_until = max(self.busy_until, time.perf_counter()) + cost

    def synchronize(self, *args, **kwargs) -> None:
        self.synchronized += 1
        time.sleep(max(0.0, self.busy_until - time.perf_counter()))


def throughput_on_simulated_gpu(throughput, batch_size: int, warmup: int, iters: int, **gpu) -> tuple[object, int]:
    """The learner's ``throughput`` of a SimulatedGPU's step on "cuda": what it returns, and how often it synchronized."""
    simulated = SimulatedGPU(**gpu)
    real = torch.cuda.synchronize, torch.cuda.is_available
    torch.cuda.synchronize, torch.cuda.is_available = simulated.synchronize, lambda: True
    try:
        result = throughput(simulated.step, batch_size, torch.device("cuda"), warmup=warmup, iters=iters)
    finally:
        torch.cuda.synchronize, torch.cuda.is_available = real
    return result, simulated.synchronized


def throughput_of_sleeps(throughput, batch_size: int, warmup: int, iters: int, slow_s: float, fast_s: float, slow_calls: int):
    """The learner's ``throughput`` on the CPU of a step that sleeps ``slow_s`` for its first calls, ``fast_s`` after.

    Returns what it returned, and how many times it called the step.
    """
    calls = []

    def step():
        time.sleep(slow_s if len(calls) < slow_calls else fast_s)
        calls.append(1)

    return throughput(step, batch_size, torch.device("cpu"), warmup=warmup, iters=iters), len(calls)
