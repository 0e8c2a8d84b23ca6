"""Hidden tests of exercises/software_testing/preprocessing_tests.ipynb."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis.strategies import SearchStrategy

from autograder.casestudy.images import letterbox
from autograder.mutation import Mutant, assert_tests_catch


def drawn(strategy, n: int = 300) -> list:
    """``n`` examples of a strategy, the same ones on every run."""
    assert isinstance(strategy, SearchStrategy), (
        f"images(...) should return a Hypothesis strategy (e.g. from hypothesis.extra.numpy.arrays), "
        f"not a {type(strategy).__name__}"
    )
    examples = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    return examples


# --- Part 1: images -----------------------------------------------------------------


@pytest.mark.graded("images", points=1, visible=True)
def test_images_are_valid_photos(learner):
    "Draws only (height, width, 3) uint8 arrays with both sides between 1 and max_side."
    for image in drawn(learner.images(max_side=24)):
        assert isinstance(image, np.ndarray), f"every example should be a NumPy array, got a {type(image).__name__}"
        assert image.dtype == np.uint8, f"every example should have dtype uint8, got {image.dtype}"
        assert image.ndim == 3 and image.shape[2] == 3, f"every example should have shape (height, width, 3), got {image.shape}"
        assert 1 <= image.shape[0] <= 24 and 1 <= image.shape[1] <= 24, (
            f"with max_side=24, both sides should be between 1 and 24; drew an image of shape {image.shape}"
        )


@pytest.mark.graded("images", points=1, visible=True)
def test_images_cover_every_aspect(learner):
    "Draws portrait, landscape and square images, and reaches both 1 and max_side."
    shapes = {image.shape[:2] for image in drawn(learner.images(max_side=24))}
    kinds = {"portrait": any(h > w for h, w in shapes), "landscape": any(h < w for h, w in shapes)}
    kinds["square"] = any(h == w for h, w in shapes)
    missing = [kind for kind, seen in kinds.items() if not seen]
    assert not missing, f"over 300 examples, no {' or '.join(missing)} image was drawn: let height and width vary independently"
    sides = {side for shape in shapes for side in shape}
    assert 1 in sides and 24 in sides, (
        f"with max_side=24, some image should have a side of 1 and some a side of 24; sides drawn: {min(sides)} to {max(sides)}"
    )


@pytest.mark.graded("images", points=1)
def test_images_follow_max_side_and_vary_pixels(learner):
    "Honours other max_side values and draws varied pixel values, dark and bright."
    for max_side in (3, 90):
        largest = max(max(image.shape[:2]) for image in drawn(learner.images(max_side=max_side), n=150))
        assert largest <= max_side, f"with max_side={max_side}, an image with a side of {largest} was drawn"
    images = drawn(learner.images(max_side=16))
    assert any(image.min() == 0 for image in images) and any(image.max() == 255 for image in images), (
        "pixel values should span the whole uint8 range: draw elements from 0 to 255"
    )
    assert any(len(np.unique(image)) > 1 for image in images), "every image drawn has a single colour: draw each pixel"


# --- Part 2: letterbox_tests (graded by the bugs your tests catch) ---------------------

VISIBLE_BUGS = [
    Mutant(
        "crops the image to fill the square instead of padding it",
        {
            "max(height, width)": "min(height, width)",
            "canvas[top : top + new_height, left : left + new_width] = resized": (
                "canvas[:] = resized[-top : -top + size, -left : -left + size]"
            ),
        },
    ),
    Mutant(
        "stretches the image to the square instead of keeping its aspect ratio",
        {"max(1, round(height * scale))": "size", "max(1, round(width * scale))": "size"},
    ),
    Mutant("returns float64 pixels instead of uint8", {"dtype=np.uint8": "dtype=np.float64"}),
    Mutant("returns the channels first, shape (3, size, size)", {"return canvas": "return canvas.transpose(2, 0, 1)"}),
]
HIDDEN_BUGS = [
    Mutant(
        "transposes the image, so that a tall receipt comes out wide",
        {"height, width = image.shape[:2]": "image = image.transpose(1, 0, 2)\n    height, width = image.shape[:2]"},
    ),
    Mutant("rescales pixel values to the range 0 to 1", {"return canvas": "return canvas / 255"}),
    Mutant("scales the longer side to one pixel short of the target size", {"scale = size /": "scale = (size - 1) /"}),
    Mutant(
        "puts the image in the top-left corner instead of centring it",
        {"top = (size - new_height) // 2": "top = 0", "left = (size - new_width) // 2": "left = 0"},
    ),
    Mutant("ignores the fill value and always pads with zeros", {"(size, size, 3), fill,": "(size, size, 3), 0,"}),
    Mutant("swaps the red and blue channels (RGB becomes BGR)", {"return canvas": "return canvas[:, :, ::-1]"}),
    Mutant(
        "never enlarges an image smaller than the target",
        {"scale = size / max(height, width)": "scale = min(1.0, size / max(height, width))"},
    ),
    Mutant(
        "loses very thin images: a side that scales to less than half a pixel disappears",
        {"max(1, round(height * scale))": "round(height * scale)", "max(1, round(width * scale))": "round(width * scale)"},
    ),
]


@pytest.mark.graded("letterbox_tests", points=0.5, visible=True)
@pytest.mark.parametrize("bug", VISIBLE_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_visible_bug(learner, bug):
    "Your tests catch a letterbox that {bug}."
    assert_tests_catch(learner, letterbox, bug)


@pytest.mark.graded("letterbox_tests", points=0.5)
@pytest.mark.parametrize("bug", HIDDEN_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_hidden_bug(learner, bug):
    "Your tests catch a letterbox that {bug}."
    assert_tests_catch(learner, letterbox, bug)


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
