"""Hidden tests of exercises/gpu_training/training_step.ipynb.

Every test takes ``device``: the CPU by default, the GPU under ``grade --device cuda``.
On a machine without a GPU, code that ignores the device is still caught: PyTorch's
``meta`` device holds tensors without data, and a model there refuses a batch that
was left on the CPU.
"""

import pytest
import torch
from torch import nn

from autograder.drivers.calls import seeded_model
from autograder.drivers.training import (
    RecordsAutocast,
    claiming_a_gpu,
    grad_scaler,
    manual_seed,
    optimizer_for,
    step_on_meta,
    tensor_dataset,
)
from casestudy.model import FraudNet, FraudNetConfig, random_batch

# The model a step trains, its optimizer and scaler are built beside the learner's code
# (see autograder/judge.py); the correct step they are compared with runs here, in the judge.

N_MERCHANTS = 30


def fraudnet(seed: int) -> nn.Module:
    return seeded_model(FraudNet, seed, FraudNetConfig(n_merchants=N_MERCHANTS))


def model_and_batch(learner, device: torch.device, seed: int = 0, n: int = 64) -> tuple:
    """A FraudNet beside the learner's code, on ``device``, and a batch of ``n`` examples."""
    model = learner.beside(seeded_model, FraudNet, seed, FraudNetConfig(n_merchants=N_MERCHANTS)).to(device)
    return model, random_batch(n, seed=seed, n_merchants=N_MERCHANTS)


def bce(model: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
    *inputs, labels = (t.to(device) for t in batch)
    return nn.functional.binary_cross_entropy_with_logits(model(*inputs).float(), labels)


def reference_step(model, batch, optimizer, device, amp_dtype=None, scaler=None, max_grad_norm=None) -> torch.Tensor:
    """What one step must do, for the tests to compare with."""
    optimizer.zero_grad()
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        *inputs, labels = (t.to(device) for t in batch)
        logits = model(*inputs)
    loss = nn.functional.binary_cross_entropy_with_logits(logits.float(), labels)
    if scaler is None:
        loss.backward()
        optimizer.step()
        return loss.detach()
    scaler.scale(loss).backward()
    if max_grad_norm is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def assert_same_weights(model, expected: nn.Module, what: str, atol: float = 1e-6) -> None:
    for (name, got), want in zip(model.named_parameters(), expected.parameters()):
        assert torch.allclose(got, want, atol=atol, rtol=1e-5), f"{what}: the weights of `{name}` differ from a correct step's"


def assert_detached_loss(loss, device: torch.device, expected: torch.Tensor) -> None:
    assert isinstance(loss, torch.Tensor), (
        f"return the loss as a tensor (`loss.detach()`), not a {type(loss).__name__}: "
        "`.item()` makes the CPU wait for the GPU on every step"
    )
    assert not loss.requires_grad, "return `loss.detach()`: a loss that requires grad keeps the step's whole graph alive"
    assert loss.device.type == device.type, (
        f"the loss should stay on {device.type}, where it was computed; it is on {loss.device}"
    )
    assert torch.allclose(loss.float(), expected, atol=1e-5), (
        f"the loss should be the binary cross-entropy of the batch before the update, {expected.item():.5f}; "
        f"got {loss.float().item():.5f}"
    )


def autocast_seen(learner, step, device: torch.device, scaled: bool = False, **options) -> list:
    """Which autocast a step's forward pass ran under (None: none), seen by a model beside the learner's code."""
    model, batch = model_and_batch(learner, device, seed=4)
    recording = learner.beside(RecordsAutocast, model, device)
    optimizer = learner.beside(optimizer_for, recording, "SGD", 0.01)
    if scaled:
        step(recording, batch, optimizer, learner.beside(grad_scaler, device.type), device, **options)
    else:
        step(recording, batch, optimizer, device, **options)
    seen = recording.seen
    assert seen, "the step never called the model"
    return seen


# --- Part 1: train_step ----------------------------------------------------------------------


@pytest.mark.graded("train_step", points=1, visible=True)
def test_step_matches_a_correct_step(learner, device):
    "Returns the batch's loss, detached, and updates the weights as one Adam step does."
    model, batch = model_and_batch(learner, device)
    expected_model = fraudnet(0).to(device)
    optimizer = learner.beside(optimizer_for, model, "Adam", 0.01)
    expected = reference_step(expected_model, batch, torch.optim.Adam(expected_model.parameters(), lr=0.01), device)
    loss = learner.train_step(model, batch, optimizer, device)
    assert_detached_loss(loss, device, expected)
    assert_same_weights(model, expected_model, "after one step")


@pytest.mark.graded("train_step", points=1, visible=True)
def test_batch_goes_to_the_models_device(learner):
    "Moves the batch to `device`: checked with a model on PyTorch's meta device."
    meta = torch.device("meta")
    model, batch = model_and_batch(learner, meta)
    try:
        loss = learner.beside(step_on_meta, learner.train_step, model, batch, learner.beside(optimizer_for, model, "SGD", 0.01))
    except NotImplementedError as e:
        raise AssertionError(f"the step read a value out of a tensor ({e}): return `loss.detach()` instead of a number") from None
    except RuntimeError as e:
        if "autocast" in str(e):
            raise AssertionError(
                "with amp_dtype=None, train in full precision: no autocast, or autocast with enabled=False"
            ) from None
        raise AssertionError(
            f"with the model on the 'meta' device, the step failed: {e}. Move every tensor of the batch to `device`"
        ) from None
    assert isinstance(loss, torch.Tensor) and loss.device == meta, "the loss should be computed on `device`, where the model is"


@pytest.mark.graded("train_step", points=1)
def test_autocast_only_when_asked(learner, device):
    "Runs the forward pass under autocast with `amp_dtype`, and without autocast when it is None."
    assert autocast_seen(learner, learner.train_step, device, amp_dtype=torch.bfloat16) == [torch.bfloat16], (
        "with amp_dtype=torch.bfloat16 the model should run inside torch.autocast(device.type, dtype=amp_dtype)"
    )
    assert autocast_seen(learner, learner.train_step, device) == [None], (
        "with amp_dtype=None the model should run in full precision"
    )


@pytest.mark.graded("train_step", points=1)
def test_gradients_do_not_pile_up(learner, device):
    "Three steps in a row give the weights of three correct steps (gradients are reset each step)."
    model, batch = model_and_batch(learner, device, seed=2)
    expected_model = fraudnet(2).to(device)
    optimizer = learner.beside(optimizer_for, model, "SGD", 0.1)
    expected_optimizer = torch.optim.SGD(expected_model.parameters(), lr=0.1)
    for _ in range(3):
        learner.train_step(model, batch, optimizer, device)
        reference_step(expected_model, batch, expected_optimizer, device)
    assert_same_weights(model, expected_model, "after three steps (are the gradients zeroed before each backward?)")


# --- Part 2: scaled_step ---------------------------------------------------------------------


def scaled_run(learner, device, init_scale: float, max_grad_norm=None, seed: int = 1):
    """The learner's scaled_step, once, on a model, optimizer and scaler beside their code."""
    model, batch = model_and_batch(learner, device, seed=seed)
    optimizer = learner.beside(optimizer_for, model, "SGD", 0.05)
    scaler = learner.beside(grad_scaler, device.type, init_scale)
    loss = learner.scaled_step(model, batch, optimizer, scaler, device, max_grad_norm=max_grad_norm)
    return model, scaler, loss, batch


def reference_scaled_run(device, init_scale: float, max_grad_norm=None, seed: int = 1):
    """A correct float16 step, here, from the same start as ``scaled_run``."""
    model, batch = fraudnet(seed).to(device), random_batch(64, seed=seed, n_merchants=N_MERCHANTS)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler(device.type, init_scale=init_scale)
    loss = reference_step(model, batch, optimizer, device, torch.float16, scaler, max_grad_norm)
    return model, scaler, loss, batch


@pytest.mark.graded("scaled_step", points=1, visible=True)
def test_scaled_step_matches_a_correct_one(learner, device):
    "With a GradScaler, updates the weights as a correct float16 step does and returns the detached loss."
    model, scaler, loss, batch = scaled_run(learner, device, init_scale=2.0**10)
    expected_model, _, expected, _ = reference_scaled_run(device, init_scale=2.0**10)
    assert_detached_loss(loss, device, expected)
    assert_same_weights(model, expected_model, "after one float16 step", atol=1e-4)
    assert scaler.get_scale() == 2.0**10, "after a step without overflow the scale stays where it was (call scaler.update())"


@pytest.mark.graded("scaled_step", points=1, visible=True)
def test_overflow_skips_the_step_and_lowers_the_scale(learner, device):
    "When the scaled gradients overflow, leaves the weights alone and halves the scale."
    untouched = fraudnet(1).to(device)
    model, scaler, _, _ = scaled_run(learner, device, init_scale=2.0**60)
    assert_same_weights(model, untouched, "after a step whose gradients overflowed (let scaler.step skip it)", atol=0)
    assert scaler.get_scale() == 2.0**59, (
        f"after an overflow the scale should halve, to 2**59; it is {scaler.get_scale():g}: call scaler.update() after scaler.step()"
    )


@pytest.mark.graded("scaled_step", points=1)
def test_clips_the_true_gradients(learner, device):
    "With max_grad_norm, clips the unscaled gradients (scaler.unscale_ first)."
    model, _, _, _ = scaled_run(learner, device, init_scale=2.0**10, max_grad_norm=0.05)
    expected_model, _, _, _ = reference_scaled_run(device, init_scale=2.0**10, max_grad_norm=0.05)
    assert_same_weights(
        model,
        expected_model,
        "with max_grad_norm=0.05 (clip after scaler.unscale_(optimizer), or you clip gradients 1,024 times too big)",
        atol=1e-4,
    )


@pytest.mark.graded("scaled_step", points=1)
def test_scaled_step_runs_in_float16(learner, device):
    "Runs the forward pass under autocast in float16 by default."
    assert autocast_seen(learner, learner.scaled_step, device, scaled=True) == [torch.float16], (
        "the model should run inside torch.autocast(device.type, dtype=amp_dtype)"
    )


# --- Part 3: make_loader -----------------------------------------------------------------------


def numbers(learner, n: int = 103):
    """The numbers 0 to n - 1 as a dataset, beside the learner's code."""
    return learner.beside(tensor_dataset, n)


def epoch_of(loader) -> list[list[int]]:
    return [batch.tolist() for (batch,) in loader]


@pytest.mark.graded("make_loader", points=1, visible=True)
def test_full_batches_of_distinct_examples(learner):
    "Each epoch gives full batches of distinct examples and drops the incomplete last one."
    loader = learner.make_loader(numbers(learner), batch_size=10, device=torch.device("cpu"))
    batches = epoch_of(loader)
    assert [len(b) for b in batches] == [10] * 10, (
        f"103 examples in batches of 10 should give ten full batches (drop the last 3); got sizes {[len(b) for b in batches]}"
    )
    seen = [x for b in batches for x in b]
    assert len(set(seen)) == 100, "an example appeared twice in one epoch"


@pytest.mark.graded("make_loader", points=1, visible=True)
def test_shuffles_reproducibly(learner):
    "Shuffles with its own generator: the same seed gives the same epochs, each epoch a new order."
    first, again, other = (learner.make_loader(numbers(learner), 10, torch.device("cpu"), seed=s) for s in (7, 7, 8))
    epoch1, epoch2 = epoch_of(first), epoch_of(first)
    flat = [x for b in epoch1 for x in b]
    assert flat != sorted(flat), "the examples are not shuffled"
    assert epoch1 != epoch2, "every epoch should have a new order"
    assert epoch_of(again) == epoch1, (
        "two loaders with the same seed should give the same order (a torch.Generator seeded with `seed`)"
    )
    learner.beside(manual_seed, 123)
    assert epoch_of(other) != epoch1, "a different seed should give a different order"


@pytest.mark.graded("make_loader", points=1)
def test_feeds_the_device_well(learner):
    "Pins memory exactly when the device is a GPU; keeps worker processes alive between epochs."
    dataset = numbers(learner)
    # The grader may have no GPU: a loader that also checks the machine gets the answer a GPU machine gives.
    on_gpu = learner.beside(claiming_a_gpu, learner.make_loader, dataset, 10, torch.device("cuda"))
    on_cpu = learner.make_loader(dataset, 10, torch.device("cpu"))
    assert on_gpu.pin_memory, (
        "for a CUDA device, pin the batches' memory (pin_memory=True): copies to the GPU are faster and can overlap"
    )
    assert not on_cpu.pin_memory, "for the CPU, pinning memory only costs time: pin_memory=False"
    with_workers = learner.make_loader(dataset, 10, torch.device("cpu"), workers=2)
    assert with_workers.num_workers == 2, f"workers=2 should give num_workers=2, got {with_workers.num_workers}"
    assert with_workers.persistent_workers, "keep the workers alive between epochs (persistent_workers=True)"
    assert len(epoch_of(with_workers)) == 10, "with two workers, an epoch should still hold ten batches"
    assert not on_cpu.persistent_workers, "without workers there is nothing to keep alive: persistent_workers=False"
