"""Hidden tests of exercises/software_testing/preprocessing_tests.ipynb."""

import numpy as np
import pytest
import torch

from autograder.drivers.testing import draw_examples
from autograder.judge import type_name
from autograder.mutation import Mutant, assert_tests_catch
from casestudy.images import to_model_input


def drawn(learner, strategy, n: int = 300) -> list:
    """``n`` examples of a strategy, the same ones on every run (drawn beside the learner's code)."""
    examples = learner.beside(draw_examples, strategy, n)
    assert examples is not None, (
        f"photo_batches(...) should return a Hypothesis strategy (e.g. from st.lists), not a {type_name(strategy)}"
    )
    return examples


def photos_of(batches: list) -> list:
    return [photo for batch in batches for photo in batch]


# --- Part 1: photo_batches ------------------------------------------------------------


@pytest.mark.graded("photo_batches", points=1, visible=True)
def test_batches_hold_valid_photos(learner):
    "Draws lists of 1 to max_photos photos, each a (height, width, 3) uint8 array with sides from 1 to max_side."
    for batch in drawn(learner, learner.photo_batches(max_photos=3, max_side=24)):
        assert isinstance(batch, list), f"every example should be a list of photos, got a {type(batch).__name__}"
        assert 1 <= len(batch) <= 3, f"with max_photos=3, a batch should hold 1 to 3 photos; one held {len(batch)}"
        for photo in batch:
            assert isinstance(photo, np.ndarray), f"every photo should be a NumPy array, got a {type(photo).__name__}"
            assert photo.dtype == np.uint8, f"every photo should have dtype uint8, got {photo.dtype}"
            assert photo.ndim == 3 and photo.shape[2] == 3, f"every photo should have shape (height, width, 3), got {photo.shape}"
            assert 1 <= photo.shape[0] <= 24 and 1 <= photo.shape[1] <= 24, (
                f"with max_side=24, both sides should be between 1 and 24; drew a photo of shape {photo.shape}"
            )


@pytest.mark.graded("photo_batches", points=1, visible=True)
def test_batches_cover_every_size_and_aspect(learner):
    "Draws batches of one and of max_photos photos; portrait, landscape and square photos; sides of 1 and max_side."
    batches = drawn(learner, learner.photo_batches(max_photos=3, max_side=24))
    sizes = {len(batch) for batch in batches}
    assert 1 in sizes and 3 in sizes, (
        f"with max_photos=3, batches of 1 and of 3 photos should both be drawn; sizes drawn: {sorted(sizes)}"
    )
    shapes = {photo.shape[:2] for photo in photos_of(batches)}
    kinds = {"portrait": any(h > w for h, w in shapes), "landscape": any(h < w for h, w in shapes)}
    kinds["square"] = any(h == w for h, w in shapes)
    missing = [kind for kind, seen in kinds.items() if not seen]
    assert not missing, f"over 300 batches, no {' or '.join(missing)} photo was drawn: let height and width vary independently"
    sides = {side for shape in shapes for side in shape}
    assert 1 in sides and 24 in sides, (
        f"with max_side=24, some photo should have a side of 1 and some a side of 24; sides drawn: {min(sides)} to {max(sides)}"
    )


@pytest.mark.graded("photo_batches", points=1)
def test_batches_mix_sizes_and_follow_the_limits(learner):
    "Mixes photo sizes within a batch, honours other limits, and draws varied pixel values."
    batches = drawn(learner, learner.photo_batches(max_photos=3, max_side=16))
    assert any(len({photo.shape for photo in batch}) > 1 for batch in batches), (
        "every batch holds photos of one size: draw each photo's shape independently, as real batches mix receipts and screenshots"
    )
    photos = photos_of(batches)
    assert any(photo.min() == 0 for photo in photos) and any(photo.max() == 255 for photo in photos), (
        "pixel values should span the whole uint8 range: draw elements from 0 to 255"
    )
    assert any(len(np.unique(photo)) > 1 for photo in photos), "every photo drawn has a single colour: draw each pixel"
    single = drawn(learner, learner.photo_batches(max_photos=1, max_side=90), n=100)
    assert all(len(batch) == 1 for batch in single), "with max_photos=1, every batch should hold exactly one photo"
    largest = max(max(photo.shape[:2]) for photo in photos_of(single))
    assert largest <= 90, f"with max_side=90, a photo with a side of {largest} was drawn"


# --- Part 2: model_input_tests (graded by the bugs your tests catch) -------------------

PERMUTE = "permute(0, 3, 1, 2)"
VISIBLE_BUGS = [
    Mutant("leaves the channels last, shape (N, size, size, 3)", {PERMUTE: "permute(0, 1, 2, 3)"}),
    Mutant("returns float64 values instead of float32", {"torch.float32": "torch.float64"}),
    Mutant("leaves pixel values between 0 and 255 instead of scaling them to [0, 1]", {" / 255": ""}),
    Mutant(
        "crops each photo to a square, cutting part of it off, instead of padding it",
        {"letterbox(photo, size)": "letterbox(photo[: min(photo.shape[:2]), : min(photo.shape[:2])], size)"},
    ),
]
HIDDEN_BUGS = [
    Mutant("puts the axes in the wrong order, swapping height and width", {PERMUTE: "permute(0, 3, 2, 1)"}),
    Mutant("divides by 256, so that full intensity is not 1.0", {" / 255": " / 256"}),
    Mutant("subtracts 0.5 after scaling, so that values lie in [-0.5, 0.5]", {" / 255": " / 255 - 0.5"}),
    Mutant("reverses the order of the photos", {"for photo in photos": "for photo in reversed(photos)"}),
    Mutant(
        "drops the last photo of a batch of two or more (an off-by-one)",
        {"for photo in photos": "for photo in photos[: max(1, len(photos) - 1)]"},
    ),
    Mutant("swaps the red and blue channels", {PERMUTE: "flip(3).permute(0, 3, 1, 2)"}),
    Mutant("pads with white instead of black", {"letterbox(photo, size)": "letterbox(photo, size, fill=255)"}),
    Mutant(
        "turns the photos grey (all three channels equal)",
        {"letterbox(photo, size)": "letterbox(photo.mean(axis=2, keepdims=True).repeat(3, axis=2).astype(np.uint8), size)"},
    ),
]


@pytest.mark.graded("model_input_tests", points=0.5, visible=True)
@pytest.mark.parametrize("bug", VISIBLE_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_visible_bug(learner, bug):
    "Your tests catch a to_model_input that {bug}."
    assert_tests_catch(learner, to_model_input, bug)


@pytest.mark.graded("model_input_tests", points=0.5)
@pytest.mark.parametrize("bug", HIDDEN_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_hidden_bug(learner, bug):
    "Your tests catch a to_model_input that {bug}."
    assert_tests_catch(learner, to_model_input, bug)


# --- Part 3: check_model_input -----------------------------------------------------------


def batch(n: int = 4, size: int = 32, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(n)).to(dtype)


def assert_rejects(learner, bad, size: int, words: tuple[str, ...], what: str) -> None:
    try:
        learner.check_model_input(bad, size)
    except ValueError as e:
        message = str(e)
        assert any(word in message for word in words), (
            f"for {what}, the ValueError's message should name the problem (mention {' or '.join(repr(w) for w in words)}); "
            f"it says: {message!r}"
        )
        return
    raise AssertionError(f"check_model_input should raise ValueError for {what}, but it accepted it")


@pytest.mark.graded("check_model_input", points=1, visible=True)
def test_accepts_good_batches_and_rejects_bad_shapes(learner):
    "Accepts valid batches; rejects a wrong shape with a message that says 'shape'."
    for good in (batch(4, 32), batch(1, 32), torch.zeros(2, 3, 32, 32), torch.ones(2, 3, 32, 32)):
        assert learner.check_model_input(good, 32) is None, "a valid batch should pass (and the function return None)"
    assert_rejects(learner, batch(4, 32)[0], 32, ("shape",), "a single image without the batch dimension, shape (3, 32, 32)")
    assert_rejects(learner, batch(4, 32).permute(0, 2, 3, 1), 32, ("shape",), "a channels-last batch, shape (4, 32, 32, 3)")
    assert_rejects(learner, batch(4, 31), 32, ("shape",), "31 x 31 images when the model expects 32 x 32")
    assert_rejects(learner, torch.rand(4, 1, 32, 32), 32, ("shape",), "grey-scale images with 1 channel")


@pytest.mark.graded("check_model_input", points=1)
def test_rejects_wrong_types(learner):
    "Rejects a non-tensor with TypeError and a wrong dtype with a message naming float32."
    with pytest.raises(TypeError):
        learner.check_model_input(batch(4, 32).numpy(), 32)
    assert_rejects(learner, batch(4, 32, torch.float64), 32, ("float32", "dtype"), "a float64 batch")
    assert_rejects(learner, (batch(4, 32) * 255).to(torch.uint8), 32, ("float32", "dtype"), "a uint8 batch")


@pytest.mark.graded("check_model_input", points=1)
def test_rejects_bad_values_and_empty_batches(learner):
    "Rejects NaN, infinity, values outside [0, 1] and an empty batch, naming each problem."
    with_nan = batch(4, 32)
    with_nan[2, 1, 5, 5] = float("nan")
    assert_rejects(learner, with_nan, 32, ("NaN", "nan", "finite"), "a batch with a NaN pixel")
    with_inf = batch(4, 32)
    with_inf[0, 0, 0, 0] = float("inf")
    assert_rejects(learner, with_inf, 32, ("inf", "finite"), "a batch with an infinite pixel")
    assert_rejects(learner, batch(4, 32) * 255, 32, ("[0, 1]", "range"), "pixels between 0 and 255 (not rescaled)")
    assert_rejects(learner, batch(4, 32) - 0.5, 32, ("[0, 1]", "range"), "negative pixels (normalised with a mean)")
    assert_rejects(learner, torch.zeros(0, 3, 32, 32), 32, ("empty",), "an empty batch of shape (0, 3, 32, 32)")
