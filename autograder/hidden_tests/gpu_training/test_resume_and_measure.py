"""Hidden tests of exercises/gpu_training/resume_and_measure.ipynb.

A checkpoint's format is the learner's choice: the tests look for what it must hold
anywhere inside whatever ``torch.load`` returns. Throughput is checked against a
simulated GPU: its "kernels" run in the background, and ``torch.cuda.synchronize``
waits for them, as on a real GPU, so a measurement that forgets to wait is wrong in
the same way on any machine.
"""

import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from casestudy.model import random_batch

# --- a small training job whose result depends on every piece of state ------------------------


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


def tensors_in(value) -> list[torch.Tensor]:
    """Every array of numbers anywhere inside a loaded checkpoint, as a tensor.

    Tensors, NumPy arrays and lists of integers all count: a checkpoint that stores
    NumPy's random state with ``tolist()``, to load with ``weights_only=True``, holds it too.
    """
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return [torch.from_numpy(value.astype(np.float64))]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors_in(v)]
    if isinstance(value, (list, tuple)):
        found = [t for v in value for t in tensors_in(v)]
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            found.append(torch.tensor(value, dtype=torch.float64))
        return found
    return []


def numbers_in(value) -> list:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in numbers_in(v)]
    return []


def holds(tensors: list[torch.Tensor], wanted: torch.Tensor) -> bool:
    # As float64, every value a checkpoint holds (float32 weights, bytes, 32-bit integers) compares exactly.
    wanted = wanted.double()
    return any(t.shape == wanted.shape and torch.equal(t.double(), wanted) for t in tensors)


def load_any(path: Path):
    assert path.exists(), f"save_checkpoint should write the checkpoint to the path it is given, {path.name}"
    return torch.load(path, weights_only=False)


def saved_job(learner, tmp_path: Path):
    model, optimizer, scheduler = new_job(0)
    seed_everything(1)
    for _ in range(2):
        train_epoch(model, optimizer, scheduler)
    path = tmp_path / "job.pt"
    learner.save_checkpoint(path, model, optimizer, scheduler, epoch=2)
    return path, model, optimizer, scheduler


# --- Part 1: save_checkpoint -------------------------------------------------------------------


@pytest.mark.graded("save_checkpoint", points=1, visible=True)
def test_saves_model_optimizer_scheduler_and_epoch(learner, tmp_path):
    "Saves the weights, the optimizer's moments, the scheduler's state and the epoch."
    path, model, optimizer, scheduler = saved_job(learner, tmp_path)
    saved = load_any(path)
    tensors, numbers = tensors_in(saved), numbers_in(saved)
    for name, value in model.state_dict().items():
        assert holds(tensors, value), f"the checkpoint does not hold the model's `{name}`: save model.state_dict()"
    moments = [v for state in optimizer.state_dict()["state"].values() for v in state.values() if v.dim() > 0]
    assert moments and all(holds(tensors, m) for m in moments), (
        "the checkpoint does not hold Adam's running averages: save optimizer.state_dict()"
    )
    assert scheduler.last_epoch in numbers and scheduler.get_last_lr()[0] in numbers, (
        "the checkpoint does not hold the scheduler's state: save scheduler.state_dict()"
    )
    assert 2 in numbers, "the checkpoint does not hold the epoch"


@pytest.mark.graded("save_checkpoint", points=1)
def test_saves_the_random_number_generators(learner, tmp_path):
    "Saves the states of torch's, NumPy's and Python's random number generators."
    seed_everything(3)
    torch_state, numpy_state, python_state = torch.get_rng_state(), np.random.get_state()[1], random.getstate()[1]
    model, optimizer, scheduler = new_job(0)
    seed_everything(3)
    learner.save_checkpoint(tmp_path / "rng.pt", model, optimizer, scheduler, epoch=0)
    saved = load_any(tmp_path / "rng.pt")
    tensors = tensors_in(saved)
    assert holds(tensors, torch_state), "the checkpoint does not hold torch's random state: save torch.get_rng_state()"
    assert holds(tensors, torch.from_numpy(numpy_state.astype(np.float64))), (
        "the checkpoint does not hold NumPy's random state: np.random.get_state()"
    )
    assert _has_tuple(saved, python_state), "the checkpoint does not hold Python's random state: random.getstate()"


def _tuples_in(value) -> list[tuple]:
    if isinstance(value, tuple):
        return [value, *(t for v in value for t in _tuples_in(v))]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tuples_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in _tuples_in(v)]
    return []


def _has_tuple(value, wanted: tuple) -> bool:
    return any(t == wanted for t in _tuples_in(value))


@pytest.mark.graded("save_checkpoint", points=1, visible=True)
def test_a_crash_while_saving_keeps_the_last_checkpoint(learner, tmp_path, monkeypatch):
    "A save that fails halfway leaves the previous checkpoint intact (write elsewhere, then rename)."
    path, model, optimizer, scheduler = saved_job(learner, tmp_path)
    good = path.read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        target = Path(f) if isinstance(f, (str, Path)) else None
        if target is not None:
            target.write_bytes(target.read_bytes()[:100])  # what a killed job leaves behind
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        learner.save_checkpoint(path, model, optimizer, scheduler, epoch=3)
    monkeypatch.undo()
    assert path.exists() and path.read_bytes() == good, (
        "a save that failed halfway destroyed the previous checkpoint: torch.save to a temporary file in the same "
        "folder, then os.replace it onto the checkpoint's path"
    )


# --- Part 2: resume ------------------------------------------------------------------------------


@pytest.mark.graded("resume", points=1, visible=True)
def test_starts_fresh_without_a_checkpoint(learner, tmp_path):
    "Returns 0 and changes nothing when there is no checkpoint yet."
    model, optimizer, scheduler = new_job(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epoch = learner.resume(tmp_path / "none.pt", model, optimizer, scheduler)
    assert epoch == 0, f"without a checkpoint, training starts at epoch 0; resume returned {epoch!r}"
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items()), "without a checkpoint, leave the model alone"


@pytest.mark.graded("resume", points=1, visible=True)
def test_restores_the_state_and_returns_the_next_epoch(learner, tmp_path):
    "Loads weights, optimizer and scheduler into fresh objects and returns the epoch to start from."
    path, model, optimizer, scheduler = saved_job(learner, tmp_path)
    fresh = new_job(99)
    epoch = learner.resume(path, *fresh)
    assert epoch == 3, f"a checkpoint saved at the end of epoch 2 should resume at epoch 3; resume returned {epoch!r}"
    for (name, got), want in zip(fresh[0].state_dict().items(), model.state_dict().values()):
        assert torch.equal(got, want), f"the model's `{name}` was not restored"
    assert fresh[2].get_last_lr() == scheduler.get_last_lr(), "the learning-rate schedule was not restored"
    assert str(fresh[1].state_dict()) == str(optimizer.state_dict()), "the optimizer's state was not restored"


@pytest.mark.graded("resume", points=2)
def test_a_resumed_run_matches_an_uninterrupted_one_bit_for_bit(learner, tmp_path):
    "Training 2 epochs, crashing, resuming and training 2 more gives exactly the weights of 4 epochs in one go."
    uninterrupted = new_job(0)
    seed_everything(1)
    for _ in range(4):
        train_epoch(*uninterrupted)

    path = tmp_path / "run.pt"
    job = new_job(0)
    seed_everything(1)
    for epoch in range(2):
        train_epoch(*job)
        learner.save_checkpoint(path, *job, epoch=epoch)
    # The job is killed; a new process starts with other random states and fresh objects.
    seed_everything(12345)
    job = new_job(7)
    for _ in range(learner.resume(path, *job), 4):
        train_epoch(*job)
    for (name, got), want in zip(job[0].state_dict().items(), uninterrupted[0].state_dict().values()):
        assert torch.equal(got, want), (
            f"after resuming, `{name}` differs from the uninterrupted run's: restore every random number generator "
            "(torch, NumPy, Python) as well as the model, optimizer and scheduler"
        )


# --- Part 3: throughput --------------------------------------------------------------------------


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


def on_simulated_gpu(monkeypatch, gpu: SimulatedGPU) -> torch.device:
    monkeypatch.setattr(torch.cuda, "synchronize", gpu.synchronize)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    return torch.device("cuda")


def measured(learner, step, batch_size: int, device, warmup: int, iters: int) -> float:
    result = learner.throughput(step, batch_size, device, warmup=warmup, iters=iters)
    assert isinstance(result, float), f"throughput should return samples per second as a float, not {type(result).__name__}"
    return result


def assert_close(got: float, expected: float, why: str) -> None:
    # Wide enough for a busy machine; each mistake is off by a factor of 3 or more.
    assert 0.6 * expected <= got <= 1.6 * expected, f"expected about {expected:,.0f} samples/s, got {got:,.0f}: {why}"


@pytest.mark.graded("throughput", points=1, visible=True)
def test_measures_samples_per_second_after_warm_up(learner):
    "On the CPU: samples per second of the steady state, the slow first calls left out."
    calls = []

    def step():
        time.sleep(0.2 if len(calls) < 2 else 0.01)
        calls.append(1)

    result = measured(learner, step, 64, torch.device("cpu"), warmup=2, iters=15)
    assert len(calls) == 17, f"with warmup=2 and iters=15 the step should run 17 times; it ran {len(calls)} times"
    assert_close(result, 64 / 0.01, "time only the `iters` calls after the warm-up, and divide batch_size * iters by that time")


@pytest.mark.graded("throughput", points=1, visible=True)
def test_waits_for_the_gpu_before_stopping_the_clock(learner, monkeypatch):
    "On a (simulated) GPU: synchronizes before reading the clock at the end."
    gpu = SimulatedGPU(cost=0.01)
    result = measured(learner, gpu.step, 128, on_simulated_gpu(monkeypatch, gpu), warmup=1, iters=20)
    assert gpu.synchronized, "on a CUDA device call torch.cuda.synchronize(device) before reading the clock"
    assert_close(result, 128 / 0.01, "the GPU was still working when the clock stopped; synchronize before reading it")


@pytest.mark.graded("throughput", points=1)
def test_warm_up_work_is_not_timed(learner, monkeypatch):
    "On a (simulated) GPU: waits for the warm-up's queued work before starting the clock."
    gpu = SimulatedGPU(cost=0.01, warmup_cost=0.15, slow_calls=3)
    result = measured(learner, gpu.step, 32, on_simulated_gpu(monkeypatch, gpu), warmup=3, iters=20)
    assert_close(result, 32 / 0.01, "the warm-up's work was still queued when the clock started; synchronize after the warm-up")


@pytest.mark.graded("throughput", points=1)
def test_scales_with_the_batch(learner):
    "Twice the batch in the same time is twice the samples per second."
    small = measured(learner, lambda: time.sleep(0.005), 10, torch.device("cpu"), warmup=1, iters=30)
    large = measured(learner, lambda: time.sleep(0.005), 20, torch.device("cpu"), warmup=1, iters=30)
    assert 1.5 < large / small < 2.6, (
        f"throughput should be proportional to batch_size; 10 gave {small:,.0f}, 20 gave {large:,.0f}"
    )
