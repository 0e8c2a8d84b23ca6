"""Hidden tests of exercises/software_testing/ml_tests.ipynb."""

import pandas as pd
import pytest
import torch

from autograder.drivers.calls import call_watching, seeded_model
from autograder.mutation import Mutant, assert_tests_catch
from casestudy.features import amount_vs_card_avg_30d
from casestudy.model import FraudNet, random_batch

# --- Part 1: history_tests (graded by the bugs your tests catch) -------------------------

WINDOW = "RANGE BETWEEN INTERVAL 30 DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING"

VISIBLE_BUGS = [
    Mutant(
        "counts the payment itself (and any at the same moment) in its own history",
        {"AND INTERVAL 1 MICROSECOND PRECEDING": "AND CURRENT ROW"},
    ),
    Mutant(
        "looks at the 30 days after each payment instead of before (it leaks future rows)",
        {"ORDER BY ts\n": "ORDER BY ts DESC\n"},
    ),
    Mutant("mixes in other cards' payments", {"PARTITION BY card_id ": ""}),
    Mutant(
        "divides the average by the amount instead of the amount by the average",
        {"amount / avg(amount) OVER history": "avg(amount) OVER history / amount"},
    ),
]
HIDDEN_BUGS = [
    Mutant("uses a 31-day window (an off-by-one)", {"INTERVAL 30 DAYS PRECEDING": "INTERVAL 31 DAYS PRECEDING"}),
    Mutant(
        "leaves out a payment made exactly 30 days earlier",
        {"INTERVAL 30 DAYS PRECEDING": "INTERVAL 2591999999999 MICROSECONDS PRECEDING"},
    ),
    Mutant("uses the card's last five payments whatever their time", {WINDOW: "ROWS BETWEEN 5 PRECEDING AND 1 PRECEDING"}),
    Mutant(
        "gives an average of 0 instead of NULL when the card has no earlier payment",
        {"avg(amount) OVER history AS avg_prev_30d": "coalesce(avg(amount) OVER history, 0) AS avg_prev_30d"},
    ),
    Mutant(
        "uses the median amount instead of the mean",
        {"avg(amount) OVER history AS avg_prev_30d": "median(amount) OVER history AS avg_prev_30d"},
    ),
    Mutant(
        "returns the count as a floating-point number instead of an integer",
        {"count(*) OVER history AS": "(count(*) OVER history)::DOUBLE AS"},
    ),
]


@pytest.mark.graded("history_tests", points=0.6, visible=True)
@pytest.mark.parametrize("bug", VISIBLE_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_visible_bug(learner, bug):
    "Your tests catch an amount_vs_card_avg_30d that {bug}."
    assert_tests_catch(learner, amount_vs_card_avg_30d, bug)


@pytest.mark.graded("history_tests", points=0.6)
@pytest.mark.parametrize("bug", HIDDEN_BUGS, ids=lambda bug: bug.behaviour)
def test_tests_catch_a_hidden_bug(learner, bug):
    "Your tests catch an amount_vs_card_avg_30d that {bug}."
    assert_tests_catch(learner, amount_vs_card_avg_30d, bug)


# --- Part 2: overfit_one_batch -------------------------------------------------------------


def untrained(learner, seed: int = 0):
    """An untrained FraudNet beside the learner's code, with weights drawn from ``seed``."""
    return learner.beside(seeded_model, FraudNet, seed)


def losses_of(learner, model, batch, steps, lr, changed: list | None = None) -> list:
    losses, changed_arguments = learner.beside(call_watching, learner.overfit_one_batch, model, batch, steps=steps, lr=lr)
    if changed is not None:
        changed.extend(changed_arguments)
    assert isinstance(losses, list), f"overfit_one_batch should return a list of losses, not a {type(losses).__name__}"
    assert len(losses) == steps, f"with steps={steps}, overfit_one_batch should return {steps} losses, not {len(losses)}"
    assert all(isinstance(loss, float) for loss in losses), (
        "each loss should be a Python float (use loss.item()), not a tensor: tensors keep the whole graph alive"
    )
    return losses


@pytest.mark.graded("overfit_one_batch", points=1, visible=True)
def test_returns_the_loss_before_each_step(learner):
    "Returns one float per step, the first being the untrained model's loss on the batch."
    model, batch = untrained(learner), random_batch(32, seed=1)
    category, numeric, labels = batch
    with torch.no_grad():
        same_model = seeded_model(FraudNet, 0)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(same_model(category, numeric), labels).item()
    losses = losses_of(learner, model, batch, steps=5, lr=0.01)
    assert abs(losses[0] - expected) < 1e-5, (
        f"the first loss should be the binary cross-entropy of the untrained model on the batch, {expected:.5f}; "
        f"got {losses[0]:.5f}. Record the loss before the optimizer's step."
    )


@pytest.mark.graded("overfit_one_batch", points=1, visible=True)
def test_memorises_one_batch(learner):
    "Drives FraudNet's loss on 32 random examples below 1% of where it started."
    losses = losses_of(learner, untrained(learner, 2), random_batch(32, seed=2), steps=300, lr=0.01)
    assert losses[-1] < 0.01 * losses[0], (
        f"after 300 steps of Adam at lr=0.01 the loss should fall below 1% of its start ({losses[0]:.3f}); "
        f"it ended at {losses[-1]:.4f}. Is every step computing the loss, calling backward() and step(), "
        "and zeroing the gradients?"
    )


@pytest.mark.graded("overfit_one_batch", points=1)
def test_trains_in_place_honestly(learner):
    "Trains the model it is given, leaves the batch alone, and honours lr."
    model, batch = untrained(learner, 3), random_batch(16, seed=3)
    before = {name: value.clone() for name, value in model.state_dict().items()}  # beside the learner's code: live
    changed_arguments = []
    losses_of(learner, model, batch, steps=20, lr=0.01, changed=changed_arguments)
    changed = [name for name, value in model.state_dict().items() if not torch.equal(value, before[name])]
    assert changed, "the model's weights did not change: train the model passed in, not a copy"
    assert 1 not in changed_arguments, "the batch's tensors were modified: leave the data alone"
    frozen = losses_of(learner, untrained(learner, 4), random_batch(16, seed=4), steps=10, lr=0.0)
    assert max(frozen) - min(frozen) < 1e-6, "with lr=0 the loss should not change: pass lr to the optimizer"


# --- Part 3: time_split_leaks ----------------------------------------------------------------


def payments(ids, days, reported=None) -> pd.DataFrame:
    start = pd.Timestamp("2025-03-01")
    frame = pd.DataFrame({"transaction_id": ids, "ts": [start + pd.Timedelta(days=d) for d in days]})
    reported = reported or [None] * len(ids)
    frame["reported_at"] = pd.to_datetime([None if r is None else start + pd.Timedelta(days=r) for r in reported])
    return frame


def leaks_of(learner, train, test) -> dict:
    got = learner.time_split_leaks(train, test)
    assert isinstance(got, dict), f"time_split_leaks should return a dict, not a {type(got).__name__}"
    keys = {"shared_ids", "train_after_test_start", "labels_from_future"}
    assert set(got) == keys, f"the dict should have exactly the keys {sorted(keys)}; it has {sorted(got)}"
    return {k: int(v) for k, v in got.items()}


@pytest.mark.graded("time_split_leaks", points=1, visible=True)
def test_clean_split_has_no_leaks(learner):
    "Finds nothing in a clean split, and counts payments in both halves."
    train = payments([1, 2, 3], [0, 1, 2], [None, 5, None])
    test = payments([4, 5], [10, 11], [None, 12])
    assert leaks_of(learner, train, test) == {"shared_ids": 0, "train_after_test_start": 0, "labels_from_future": 0}, (
        "this split is clean (train ends before test starts, the one train label arrived before test starts)"
    )
    shared = leaks_of(learner, train, payments([3, 1, 9], [10, 11, 12]))["shared_ids"]
    assert shared == 2, f"payments 1 and 3 are in both halves: shared_ids should be 2, got {shared}"


@pytest.mark.graded("time_split_leaks", points=1)
def test_counts_train_rows_after_test_start(learner):
    "Counts training payments made at or after the first test payment."
    train = payments([1, 2, 3, 4], [0, 5, 10, 20])
    test = payments([5, 6], [10, 15])
    got = leaks_of(learner, train, test)["train_after_test_start"]
    assert got == 2, f"payments 3 (at the test's first moment) and 4 (after it) leak: expected 2, got {got}"


@pytest.mark.graded("time_split_leaks", points=1)
def test_counts_labels_reported_after_test_start(learner):
    "Counts training labels that were reported only after the test period began."
    train = payments([1, 2, 3, 4], [0, 1, 2, 3], [None, 9, 10, 30])
    test = payments([5, 6], [10, 12], [11, None])
    got = leaks_of(learner, train, test)
    assert got["labels_from_future"] == 2, (
        f"payments 3 (reported at the test's first moment) and 4 (reported later) have labels that were not yet known; "
        f"expected labels_from_future = 2, got {got['labels_from_future']}"
    )
    assert got["train_after_test_start"] == 0, "no training payment is after the test period starts here"
