"""Hidden tests of exercises/capstone/end_to_end.ipynb.

The capstone's code calls the learner's modules of earlier chapters: ``cardfraud.warehouse``,
``cardfraud.training_data``, ``cardfraud.training``, ``cardfraud.checkpoints`` and
``cardfraud.service``. The grader exports each from the learner's notebook when it passes
all its own hidden tests and from the reference otherwise (``uses.toml``), so these
tests may use them as correct: they grade only what the capstone itself asks for. What
the model's inputs should be is computed here by the course's own pipeline
(``casestudy.training.labelled_payments``), which the chapters' lessons use.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from autograder.drivers.system import (
    checkpoint_state,
    crashed_in_epoch,
    served_and_direct,
    shuffle_seeds,
    trained_weights,
    training_auc,
)
from casestudy.features import NUMERIC
from casestudy.serving import example_bundle
from casestudy.training import labelled_payments
from casestudy.training import n_merchants as n_merchants_of
from casestudy.warehouse import tiny_warehouse, warehouse_connection

COLUMNS = ["transaction_id", "category", "merchant", *NUMERIC, "label"]
TRAIN_END, TEST_END = datetime(2025, 5, 1), datetime(2025, 7, 1)


def inputs_of(learner, con, labelled) -> pd.DataFrame:
    relation = learner.model_inputs(con, labelled)
    assert "DuckDBPyRelation" in getattr(relation, "remote_type", type(relation).__name__), (
        "model_inputs should return a DuckDB relation (con.sql(...)), so that write_shards can stream it"
    )
    frame = relation.df()
    assert list(frame.columns) == COLUMNS, (
        f"model_inputs should have the columns COLUMNS, in order: {COLUMNS}; got {list(frame.columns)}"
    )
    return frame


def tiny_inputs(learner) -> pd.DataFrame:
    """model_inputs of the training split of two cards' six payments: each feature's edge cases, small enough to check by hand."""
    ts = [
        datetime(2025, 3, 1, 3, 0),
        datetime(2025, 3, 1, 3, 30),
        datetime(2025, 3, 2, 12, 0),
        datetime(2025, 3, 5, 23, 0),
        datetime(2025, 3, 3, 9, 0),
        datetime(2025, 3, 3, 6, 30),
    ]
    con = learner.beside(
        tiny_warehouse,
        cards={"card_id": [1, 2], "home_country": ["FR", "DE"]},
        merchants={"merchant_id": [1, 2, 3], "category": ["grocery", "online_gaming", "travel"], "country": ["FR", "FR", "DE"]},
        transactions={
            "transaction_id": [1, 2, 3, 4, 5, 6],
            "card_id": [1, 1, 1, 1, 2, 2],
            "merchant_id": [1, 2, 1, 3, 3, 1],
            "amount": [10.0, 40.0, 25.0, 10.0, 7.0, 14.0],
            "ts": ts,
            "month": ["2025-03"] * 6,
        },
        chargebacks={"transaction_id": [2], "reported_at": [datetime(2025, 4, 2)]},
    )
    train, _ = learner.time_split(con, datetime(2025, 5, 10), datetime(2025, 6, 1), 30)
    return inputs_of(learner, con, train)


# --- Part 1: model_inputs -------------------------------------------------------------------------


@pytest.mark.graded("model_inputs", points=1, visible=True)
def test_each_feature_on_payments_small_enough_to_check_by_hand(learner):
    "Category as its 0-based index, merchant id, log of the amount ratio (0 without history), log(1 + payments in the hour), abroad, night, label."
    got = tiny_inputs(learner)
    order = [1, 2, 3, 6, 5, 4]
    assert list(got["transaction_id"]) == order, (
        f"rows ordered by (ts, transaction_id), as time_split gives them: transaction ids {order}; got {list(got['transaction_id'])}"
    )
    rows = got.set_index("transaction_id")
    assert list(rows["category"]) == [0, 9, 0, 0, 6, 6], (
        "category is the index of the merchant's category in CATEGORY_NAMES, from 0 (grocery 0, online_gaming 9, travel 6); "
        f"got {list(rows['category'])} for payments {order}"
    )
    assert list(rows["merchant"]) == [1, 2, 1, 1, 3, 3], f"merchant is the merchant_id; got {list(rows['merchant'])}"
    first = [rows.loc[i, "log_amount_vs_card_avg_30d"] for i in (1, 6)]
    assert first == [0, 0], (
        f"payments 1 and 6 are their cards' first: there is no 30-day average to compare with, so log_amount_vs_card_avg_30d "
        f"is 0 (as usual); got {first}"
    )
    ratios = [rows.loc[i, "log_amount_vs_card_avg_30d"] for i in (2, 5)]
    assert np.allclose(ratios, [math.log(4), math.log(0.5)], rtol=1e-6), (
        f"payment 2 is 40 against an average of 10 before it, payment 5 is 7 against 14: log(4) = {math.log(4):.4f} and "
        f"log(0.5) = {math.log(0.5):.4f}; got {ratios}"
    )
    counts = [rows.loc[i, "log_payments_prev_1h"] for i in (1, 2, 3)]
    assert np.allclose(counts, [0, math.log(2), 0]), (
        f"log_payments_prev_1h is log(1 + n) for n payments in the hour before: 0, log 2, 0 for payments 1, 2, 3; got {counts}"
    )
    assert list(rows["abroad"]) == [0, 0, 0, 1, 0, 1] and list(rows["night"]) == [1, 1, 0, 0, 0, 0], (
        f"abroad (merchant's country is not the card's home country) and night (before 6 a.m.: 06:30 is day) as 0 or 1 "
        f"for payments {order}; got abroad {list(rows['abroad'])}, night {list(rows['night'])}"
    )
    assert list(rows["label"]) == [0, 1, 0, 0, 0, 0], (
        f"label is time_split's label: payment 2 had a chargeback; got {list(rows['label'])}"
    )


@pytest.mark.graded("model_inputs", points=1, visible=True)
def test_every_input_is_a_number_the_model_reads(learner):
    "Indices are integers; the features and the label are 32-bit floats, with no NULL, NaN or infinity."
    got = tiny_inputs(learner)
    for column in ("category", "merchant"):
        assert pd.api.types.is_integer_dtype(got[column]), (
            f"{column} is an index for an embedding table: an integer, not {got[column].dtype}"
        )
    for column in COLUMNS[3:]:
        assert got[column].dtype == np.float32, (
            f"{column} is a model input: FLOAT (float32), as the model's weights; got {got[column].dtype}"
        )
        assert np.isfinite(got[column]).all(), f"{column} has NULL, NaN or infinite values: {list(got[column])}"


@pytest.mark.graded("model_inputs", points=1)
def test_the_same_inputs_as_the_course_pipeline_on_a_warehouse(learner, warehouse):
    "On a generated warehouse, both splits give every row and every value of the course's pipeline, in time order."
    con = learner.beside(warehouse_connection, warehouse)
    train, test = learner.time_split(con, TRAIN_END, TEST_END, 30)
    expected = labelled_payments(warehouse, str(TRAIN_END.date())).df().set_index("transaction_id")
    for name, labelled in (("train", train), ("test", test)):
        got = inputs_of(learner, con, labelled)
        ids = labelled.df()["transaction_id"].tolist()
        assert got["transaction_id"].tolist() == ids, f"{name}: one row per payment of the split, in its order"
        want = expected.loc[ids]
        for column in COLUMNS[1:-1]:
            assert np.allclose(got[column].to_numpy(), want[column].to_numpy(), atol=1e-5), (
                f"{name}: {column} differs from the course's pipeline in {int((~np.isclose(got[column], want[column], atol=1e-5)).sum())} rows"
            )


# --- Part 2: train_model --------------------------------------------------------------------------


@pytest.fixture
def shards(learner, warehouse, tmp_path_factory):
    """The warehouse's training rows, as shards: made once per grading run, with the course's pipeline.

    Not with the learner's model_inputs, so that a mistake there costs its own part only.
    """
    if "shards" not in learner.cache:
        table = labelled_payments(warehouse, str(TRAIN_END.date())).df()
        table = table[table["ts"] < TRAIN_END - timedelta(days=30)][COLUMNS]
        out = tmp_path_factory.mktemp("shards")
        size = -(-len(table) // 3)
        paths = [out / f"part-{i}.parquet" for i in range(3)]
        for i, path in enumerate(paths):
            table.iloc[i * size : (i + 1) * size].to_parquet(path, index=False)
        learner.cache["shards"] = [str(p) for p in paths], n_merchants_of(warehouse)
    return learner.cache["shards"]


def differing(a: dict, b: dict) -> list[str]:
    """The names of the weights that differ between two of ``trained_weights``'s results."""
    return [name for name, w in a["weights"].items() if not bool((w == b["weights"][name]).all())]


@pytest.mark.graded("train_model", points=1, visible=True)
def test_the_model_learns_and_the_checkpoint_holds_every_epoch(learner, shards, tmp_path):
    "The trained model ranks the training frauds above most legitimate payments, and its checkpoint resumes after the last epoch."
    paths, n_merchants = shards
    auc = learner.beside(training_auc, learner.train_model, learner.auc, paths, str(tmp_path / "job.pt"), 3, n_merchants)
    assert auc > 0.75, f"after three epochs the model should rank the training frauds well (AUC above 0.75); its AUC is {auc:.3f}"
    epoch, lr = learner.beside(checkpoint_state, learner.new_job, learner.resume, str(tmp_path / "job.pt"), n_merchants)
    assert epoch == 3, (
        f"after three epochs, resuming from the checkpoint should start at epoch 3 (nothing left to do); it starts at {epoch}"
    )
    assert math.isclose(lr, 0.01 * 0.8**3), (
        f"after three epochs the schedule has stepped three times, once per epoch: lr 0.01 * 0.8**3 = {0.01 * 0.8**3:.6f}; "
        f"the checkpoint holds {lr:.6f}"
    )


@pytest.mark.graded("train_model", points=1, visible=True)
def test_a_job_stopped_after_one_epoch_resumes_to_the_same_weights(learner, shards, tmp_path):
    "Train one epoch, then ask for two with the same checkpoint: the weights equal those of two epochs in one go, bit for bit."
    paths, n_merchants = shards
    whole = learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / "whole.pt"), 2, n_merchants)
    learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / "stopped.pt"), 1, n_merchants)
    resumed = learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / "stopped.pt"), 2, n_merchants)
    differ = differing(whole, resumed)
    assert not differ, (
        f"a job resumed after one epoch should end with the weights of an uninterrupted one; these differ: {', '.join(differ)} "
        "(resume from the checkpoint, start at the epoch it returns, and save after every epoch)"
    )
    assert whole["eval_mode"], "return the model in evaluation mode (model.eval()): it is about to be saved and served"


@pytest.mark.graded("train_model", points=1)
def test_a_finished_job_trains_no_further_and_a_crash_loses_one_epoch_at_most(learner, shards, tmp_path):
    "Called again once finished, it returns the same weights; a job that crashes in its second epoch has its first saved."
    paths, n_merchants = shards
    first = learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / "job.pt"), 1, n_merchants)
    again = learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / "job.pt"), 1, n_merchants)
    differ = differing(first, again)
    assert not differ, (
        f"the checkpoint already holds the one epoch asked for: the weights should not change; these did: {', '.join(differ)}"
    )
    epoch = learner.beside(
        crashed_in_epoch, learner.train_model, learner.new_job, learner.resume, paths, str(tmp_path / "crash.pt"), n_merchants
    )
    assert epoch is not None, "train_model should take each step with your train_step (the name the given imports bring in)"
    assert epoch == 1, "a job that crashed in its second epoch should resume at epoch 1, the first one saved when it ended; " + (
        "there was no checkpoint at all: save after every epoch, not once at the end" if epoch == 0 else f"it resumes at {epoch}"
    )


@pytest.mark.graded("train_model", points=1)
def test_the_seed_decides_the_model_and_each_epoch_its_order(learner, shards, tmp_path):
    "Two fresh jobs with the same seed give the same weights, another seed other weights; each epoch shuffles with its own seed."
    paths, n_merchants = shards
    runs = [
        learner.beside(trained_weights, learner.train_model, paths, str(tmp_path / f"{i}.pt"), 1, n_merchants, seed)
        for i, seed in enumerate((3, 3, 4))
    ]
    assert not differing(runs[0], runs[1]), (
        "two fresh jobs with seed 3 should train to the same weights: start from new_job(n_merchants, seed)"
    )
    assert differing(runs[0], runs[2]), "seeds 3 and 4 gave the same weights: the seed is not used"
    seeds = learner.beside(shuffle_seeds, learner.train_model, paths, str(tmp_path / "order.pt"), 2, n_merchants)
    assert len(seeds) == 2 and len(set(seeds)) == 2, (
        f"two epochs should call shuffled once each, with a seed that depends on the epoch; the seeds were {seeds}"
    )


# --- Part 3: score_with_service -------------------------------------------------------------------


def scored_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows as model_inputs gives them, with numpy's own number types (float32, int64)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "transaction_id": np.arange(1, n + 1, dtype=np.int64),
            "category": rng.integers(0, 10, n),
            "merchant": rng.integers(0, 300, n),  # beyond the bundle's 200 merchants too: new merchants
            "log_amount_vs_card_avg_30d": rng.normal(0, 1, n).astype(np.float32),
            "log_payments_prev_1h": np.log1p(rng.poisson(0.5, n)).astype(np.float32),
            "abroad": (rng.random(n) < 0.2).astype(np.float32),
            "night": (rng.random(n) < 0.1).astype(np.float32),
            "label": np.zeros(n, dtype=np.float32),
        }
    )


def check_served(learner, tmp_path, n: int) -> None:
    bundle = str(learner.beside(example_bundle, tmp_path / "bundle"))
    served, direct = learner.beside(served_and_direct, learner.score_with_service, bundle, scored_rows(n, seed=n))
    assert isinstance(served, list), f"score_with_service should return a list of probabilities, not a {type(served).__name__}"
    assert len(served) == n, f"{n} rows should get {n} scores, in order; got {len(served)}"
    assert np.allclose(served, direct, atol=1e-6), (
        "the scores should be the service's answers for each row, in the rows' order: they differ from the bundle's own "
        f"predictions (first differing row {int(np.argmax(~np.isclose(served, direct, atol=1e-6)))})"
    )


@pytest.mark.graded("score_with_service", points=1, visible=True)
def test_more_rows_than_one_request_may_carry(learner, tmp_path):
    "600 rows of numpy numbers, abroad and night as 0.0 or 1.0: each scored by the service, in order, in batches it accepts."
    check_served(learner, tmp_path, 600)


@pytest.mark.graded("score_with_service", points=1)
def test_exactly_full_batches_and_one_row(learner, tmp_path):
    "512 rows (two full batches) and a single row are scored as well."
    check_served(learner, tmp_path / "a", 512)
    check_served(learner, tmp_path / "b", 1)


@pytest.mark.graded("score_with_service", points=1)
def test_a_bundle_that_cannot_be_served_is_an_error(learner, tmp_path):
    "A bundle folder that does not exist raises an error, where a good bundle's rows are scored; it does not return scores."
    check_served(learner, tmp_path, 3)
    try:
        result = learner.score_with_service(str(tmp_path / "no-bundle"), scored_rows(3))
    except Exception:
        return
    pytest.fail(f"a missing bundle cannot be served: score_with_service should raise, not return {result!r}")


# --- Part 4: ship_decision ------------------------------------------------------------------------


def scores_with_auc(n_pos: int, n_neg: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    return labels, np.r_[rng.normal(separation, 1, n_pos), rng.normal(0, 1, n_neg)]


def decided(learner, labels, scores, bar, **kwargs) -> dict:
    result = learner.ship_decision(labels, scores, bar, **kwargs)
    assert isinstance(result, dict) and set(result) >= {"auc", "low", "high", "ship"}, (
        f"ship_decision should return a dict with auc, low, high and ship; got {result!r}"
    )
    assert isinstance(result["ship"], bool), f"ship is True or False (a bool), not {type(result['ship']).__name__}"
    return result


def reference_auc(labels, scores) -> float:
    positives, negatives = scores[labels == 1], scores[labels == 0]
    return float(
        ((positives[:, None] > negatives).sum() + 0.5 * (positives[:, None] == negatives).sum())
        / (len(positives) * len(negatives))
    )


@pytest.mark.graded("ship_decision", points=1, visible=True)
def test_ships_only_when_the_whole_interval_clears_the_bar(learner):
    "A model clearly above the bar ships; one above it by less than its uncertainty does not."
    labels, scores = scores_with_auc(200, 2_000, 2.0)
    clear = decided(learner, labels, scores, 0.8)
    assert math.isclose(clear["auc"], reference_auc(labels, scores), rel_tol=1e-9), (
        f"auc is the AUC of all the scores; got {clear}"
    )
    assert clear["ship"], f"AUC {clear['auc']:.3f} with 200 frauds: the interval is far above 0.8, so ship; got {clear}"
    labels, scores = scores_with_auc(15, 1_000, 1.0, seed=1)
    close = decided(learner, labels, scores, 0.8)
    assert close["auc"] > 0.8 and not close["ship"], (
        f"AUC {close['auc']:.3f} is above the bar 0.8, but with 15 frauds its interval ({close['low']:.3f} to {close['high']:.3f}) "
        "reaches below it: do not ship on a point estimate"
    )


def percentile_bootstrap(labels, scores, n_boot: int, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(n_boot):
        sample = rng.integers(0, len(labels), len(labels))
        if labels[sample].min() != labels[sample].max():
            aucs.append(reference_auc(labels[sample], scores[sample]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


@pytest.mark.graded("ship_decision", points=1)
def test_the_interval_is_a_95_percent_bootstrap(learner):
    "The interval matches a 95% percentile bootstrap of the payments (to its own noise), and the same seed gives the same one."
    labels, scores = scores_with_auc(60, 1_500, 1.0, seed=2)
    first = decided(learner, labels, scores, 0.5, n_boot=2_000, seed=7)
    again = decided(learner, labels, scores, 0.5, n_boot=2_000, seed=7)
    assert first == again, f"the same seed should give the same interval; got {first} then {again}"
    low, high = percentile_bootstrap(labels, scores, 2_000, seed=12345)
    ratio = (first["high"] - first["low"]) / (high - low)
    assert 0.93 < ratio < 1.07 and abs(first["low"] - low) < 0.015 and abs(first["high"] - high) < 0.015, (
        f"a 95% percentile bootstrap here gives about {low:.3f} to {high:.3f}; got {first['low']:.3f} to {first['high']:.3f}: "
        "resample the payments with replacement, as many as there are, and take the 2.5th and 97.5th percentiles"
    )


@pytest.mark.graded("ship_decision", points=1, visible=True)
def test_few_frauds_and_tied_scores(learner):
    "With 3 frauds some resamples hold none; with tied scores ties count half. Neither breaks the decision."
    labels, scores = scores_with_auc(3, 300, 3.0, seed=3)
    result = decided(learner, labels, scores, 0.5)
    assert all(math.isfinite(result[k]) for k in ("auc", "low", "high")), f"skip resamples with one class only; got {result}"
    labels = np.array([1, 1, 0, 0, 0, 0] * 20)
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1, 0.1] * 20)
    tied = decided(learner, labels, scores, 0.5)
    assert math.isclose(tied["auc"], reference_auc(labels, scores), rel_tol=1e-9), (
        f"ties between a fraud and a legitimate payment count half: AUC {reference_auc(labels, scores):.4f}; got {tied['auc']}"
    )
