"""The GPU chapter's grading: code that trains but ignores the device, autocast or the GPU's clock loses those points.

Each submission below is the reference with one typical mistake. It still trains, so
only tests that check where the work happens, in which precision, and when the clock
is read, can tell it from a correct one. A few are correct answers written another
way, which must lose nothing. The whole class is graded in one batch.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from autograder.batch import grade_class
from autograder.paths import SOLUTIONS, hidden_tests_dir
from tests.helpers import typical_mistakes_tests

CHAPTER = "gpu_training"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start)
VARIANTS = {
    "autocast_disabled_instead_of_skipped": (
        "training_step",
        "train_step",
        [
            (
                "with autocast(device, amp_dtype):",
                "with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):",
            )
        ],
        [],
    ),
    "pins_only_where_a_gpu_exists": (
        "training_step",
        "make_loader",
        [('pin_memory=device.type == "cuda"', 'pin_memory=device.type == "cuda" and torch.cuda.is_available()')],
        [],
    ),
    "numpy_state_as_a_list": (
        "resume_and_measure",
        "save_checkpoint",
        [
            (
                '"numpy": np.random.get_state(),',
                '"numpy": tuple(x.tolist() if hasattr(x, "tolist") else x for x in np.random.get_state()),',
            )
        ],
        [],
    ),
    "ignores_device": (
        "training_step",
        "train_step",
        [("(tensor.to(device, non_blocking=True) for tensor in batch)", "batch")],
        ["Moves the batch to `device`"],
    ),
    "ignores_autocast": (
        "training_step",
        "train_step",
        [("with autocast(device, amp_dtype):", "with contextlib.nullcontext():")],
        ["Runs the forward pass under autocast with `amp_dtype`"],
    ),
    "reads_loss_every_step": (
        "training_step",
        "train_step",
        [("return loss.detach()", "return loss.item()")],
        ["Returns the batch's loss, detached", "Moves the batch to `device`"],
    ),
    "keeps_old_gradients": (
        "training_step",
        "train_step",
        [("    optimizer.zero_grad(set_to_none=True)\n", "")],
        ["Three steps in a row"],
    ),
    "fp16_ignores_autocast": (
        "training_step",
        "scaled_step",
        [("with torch.autocast(device.type, dtype=amp_dtype):", "with contextlib.nullcontext():")],
        # In float32 the huge scale no longer overflows, so the step is not skipped either.
        ["Runs the forward pass under autocast in float16", "When the scaled gradients overflow"],
    ),
    "clips_scaled_gradients": (
        "training_step",
        "scaled_step",
        [("        scaler.unscale_(optimizer)\n", "")],
        ["With max_grad_norm, clips the unscaled gradients"],
    ),
    "steps_on_overflow": (
        "training_step",
        "scaled_step",
        [("scaler.step(optimizer)", "optimizer.step()")],
        # scaler.update() then refuses to run: it has no record of an overflow check.
        ["When the scaled gradients overflow", "With a GradScaler, updates", "Runs the forward pass under autocast in float16"],
    ),
    "always_pins": (
        "training_step",
        "make_loader",
        [('pin_memory=device.type == "cuda"', "pin_memory=True")],
        ["Pins memory exactly when the device is a GPU"],
    ),
    "global_shuffle": (
        "training_step",
        "make_loader",
        [("        generator=torch.Generator().manual_seed(seed),\n", "")],
        ["Shuffles with its own generator"],
    ),
    "overwrites_checkpoint": (
        "resume_and_measure",
        "save_checkpoint",
        [("torch.save(state, partial)\n    os.replace(partial, path)", "torch.save(state, path)")],
        ["A save that fails halfway"],
    ),
    "forgets_random_states": (
        "resume_and_measure",
        "resume",
        [('    np.random.set_state(state["rng"]["numpy"])\n', "")],
        ["Training 2 epochs, crashing, resuming"],
    ),
    "no_synchronize": (
        "resume_and_measure",
        "throughput",
        [("        torch.cuda.synchronize(device)", "        pass")],
        ["On a (simulated) GPU: synchronizes", "On a (simulated) GPU: waits for the warm-up"],
    ),
    "times_the_warm_up": (
        "resume_and_measure",
        "throughput",
        [("    synchronize(device)\n    start = time.perf_counter()", "    start = time.perf_counter()")],
        ["On a (simulated) GPU: waits for the warm-up"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(
    CHAPTER, VARIANTS, caught_by_self_check=False
)


@pytest.mark.slow
def test_grading_on_cuda_is_refused_without_a_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(SOLUTIONS / CHAPTER), "--device", "cuda"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "no CUDA device" in run.stderr


@pytest.mark.gpu
def test_solutions_earn_full_marks_on_the_gpu(tmp_path):
    from autograder.sandbox import Limits

    (result,) = grade_class(SOLUTIONS / CHAPTER, hidden_tests_dir(), Limits(device="cuda"))
    assert result.score == result.max_score == 22, [t for t in result.tests if t.score < t.max_score]
