"""Hidden tests of exercises/gpu_training/resume_and_measure.ipynb.

A checkpoint's format is the learner's choice: the tests look for what it must hold
anywhere inside whatever ``torch.load`` returns. Throughput is checked against a
simulated GPU: its "kernels" run in the background, and ``torch.cuda.synchronize``
waits for them, as on a real GPU, so a measurement that forgets to wait is wrong in
the same way on any machine.
"""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.drivers.training import (
    checkpoint_fresh_job,
    checkpoint_on_a_full_disk,
    checkpoint_trained_job,
    interrupted_run,
    job_state,
    load_checkpoint,
    new_job,
    resume_fresh_job,
    seed_everything,
    throughput_of_sleeps,
    throughput_on_simulated_gpu,
    trained_job,
)
from autograder.judge import type_name

# The training job runs beside the learner's code (see autograder/judge.py), whose
# checkpoints are loaded there too (`torch.load` unpickles); the judge replays the same
# job here and compares.


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


def load_any(learner, path: Path):
    assert path.exists(), f"save_checkpoint should write the checkpoint to the path it is given, {path.name}"
    return learner.beside(load_checkpoint, path)


def saved_job(learner, tmp_path: Path):
    """The learner's checkpoint of the job after two epochs, and the same job replayed here."""
    path = tmp_path / "job.pt"
    learner.beside(checkpoint_trained_job, learner.save_checkpoint, path)
    return (path, *trained_job())


# --- Part 1: save_checkpoint -------------------------------------------------------------------


@pytest.mark.graded("save_checkpoint", points=1, visible=True)
def test_saves_model_optimizer_scheduler_and_epoch(learner, tmp_path):
    "Saves the weights, the optimizer's moments, the scheduler's state and the epoch."
    path, model, optimizer, scheduler = saved_job(learner, tmp_path)
    saved = load_any(learner, path)
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
    learner.beside(checkpoint_fresh_job, learner.save_checkpoint, tmp_path / "rng.pt", 3)
    saved = load_any(learner, tmp_path / "rng.pt")
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
def test_a_crash_while_saving_keeps_the_last_checkpoint(learner, tmp_path):
    "A save that fails halfway leaves the previous checkpoint intact (write elsewhere, then rename)."
    path, *_ = saved_job(learner, tmp_path)
    good = path.read_bytes()
    with pytest.raises(OSError):
        learner.beside(checkpoint_on_a_full_disk, learner.save_checkpoint, path)
    assert path.exists() and path.read_bytes() == good, (
        "a save that failed halfway destroyed the previous checkpoint: torch.save to a temporary file in the same "
        "folder, then os.replace it onto the checkpoint's path"
    )


# --- Part 2: resume ------------------------------------------------------------------------------


@pytest.mark.graded("resume", points=1, visible=True)
def test_starts_fresh_without_a_checkpoint(learner, tmp_path):
    "Returns 0 and changes nothing when there is no checkpoint yet."
    before = new_job(0)[0].state_dict()
    epoch, after = learner.beside(resume_fresh_job, learner.resume, tmp_path / "none.pt", 0)
    assert epoch == 0, f"without a checkpoint, training starts at epoch 0; resume returned {epoch!r}"
    assert all(torch.equal(v, before[k]) for k, v in after["model"].items()), "without a checkpoint, leave the model alone"


@pytest.mark.graded("resume", points=1, visible=True)
def test_restores_the_state_and_returns_the_next_epoch(learner, tmp_path):
    "Loads weights, optimizer and scheduler into fresh objects and returns the epoch to start from."
    path, *job = saved_job(learner, tmp_path)
    expected = job_state(*job)
    epoch, fresh = learner.beside(resume_fresh_job, learner.resume, path, 99)
    assert epoch == 3, f"a checkpoint saved at the end of epoch 2 should resume at epoch 3; resume returned {epoch!r}"
    for (name, got), want in zip(fresh["model"].items(), expected["model"].values()):
        assert torch.equal(got, want), f"the model's `{name}` was not restored"
    assert fresh["lr"] == expected["lr"], "the learning-rate schedule was not restored"
    assert fresh["optimizer"] == expected["optimizer"], "the optimizer's state was not restored"


@pytest.mark.graded("resume", points=2)
def test_a_resumed_run_matches_an_uninterrupted_one_bit_for_bit(learner, tmp_path):
    "Training 2 epochs, crashing, resuming and training 2 more gives exactly the weights of 4 epochs in one go."
    uninterrupted = trained_job(epochs=4)
    resumed = learner.beside(interrupted_run, learner.save_checkpoint, learner.resume, tmp_path / "run.pt")
    for (name, got), want in zip(resumed.items(), uninterrupted[0].state_dict().values()):
        assert torch.equal(got, want), (
            f"after resuming, `{name}` differs from the uninterrupted run's: restore every random number generator "
            "(torch, NumPy, Python) as well as the model, optimizer and scheduler"
        )


# --- Part 3: throughput --------------------------------------------------------------------------


def returned_float(result) -> float:
    assert isinstance(result, float), f"throughput should return samples per second as a float, not {type_name(result)}"
    return result


def assert_close(got: float, expected: float, why: str) -> None:
    # Wide enough for a busy machine; each mistake is off by a factor of 3 or more.
    assert 0.6 * expected <= got <= 1.6 * expected, f"expected about {expected:,.0f} samples/s, got {got:,.0f}: {why}"


@pytest.mark.graded("throughput", points=1, visible=True)
def test_measures_samples_per_second_after_warm_up(learner):
    "On the CPU: samples per second of the steady state, the slow first calls left out."
    result, calls = learner.beside(throughput_of_sleeps, learner.throughput, 64, 2, 15, slow_s=0.2, fast_s=0.01, slow_calls=2)
    result = returned_float(result)
    assert calls == 17, f"with warmup=2 and iters=15 the step should run 17 times; it ran {calls} times"
    assert_close(result, 64 / 0.01, "time only the `iters` calls after the warm-up, and divide batch_size * iters by that time")


@pytest.mark.graded("throughput", points=1, visible=True)
def test_waits_for_the_gpu_before_stopping_the_clock(learner):
    "On a (simulated) GPU: synchronizes before reading the clock at the end."
    result, synchronized = learner.beside(throughput_on_simulated_gpu, learner.throughput, 128, 1, 20, cost=0.01)
    result = returned_float(result)
    assert synchronized, "on a CUDA device call torch.cuda.synchronize(device) before reading the clock"
    assert_close(result, 128 / 0.01, "the GPU was still working when the clock stopped; synchronize before reading it")


@pytest.mark.graded("throughput", points=1)
def test_warm_up_work_is_not_timed(learner):
    "On a (simulated) GPU: waits for the warm-up's queued work before starting the clock."
    gpu = {"cost": 0.01, "warmup_cost": 0.15, "slow_calls": 3}
    result, _ = learner.beside(throughput_on_simulated_gpu, learner.throughput, 32, 3, 20, **gpu)
    result = returned_float(result)
    assert_close(result, 32 / 0.01, "the warm-up's work was still queued when the clock started; synchronize after the warm-up")


@pytest.mark.graded("throughput", points=1)
def test_scales_with_the_batch(learner):
    "Twice the batch in the same time is twice the samples per second."
    sleeps = {"slow_s": 0.005, "fast_s": 0.005, "slow_calls": 0}
    small = returned_float(learner.beside(throughput_of_sleeps, learner.throughput, 10, 1, 30, **sleeps)[0])
    large = returned_float(learner.beside(throughput_of_sleeps, learner.throughput, 20, 1, 30, **sleeps)[0])
    assert 1.5 < large / small < 2.6, (
        f"throughput should be proportional to batch_size; 10 gave {small:,.0f}, 20 gave {large:,.0f}"
    )
