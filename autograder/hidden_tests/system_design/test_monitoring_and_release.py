"""Hidden tests of exercises/system_design/monitoring_and_release.ipynb.

The registry lives beside the learner's code, in the folder the judge shares with it
(``tmp_path``): the tests drive it through its methods, restart it by making a new one
on the same folder, and read its file from the judge's side.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from autograder.drivers.design import promote_on_a_full_disk
from autograder.judge import type_name

# --- Part 1: psi ----------------------------------------------------------------------------------


def reference_psi(expected, actual, bins=10) -> float:
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    edges = np.unique(np.quantile(expected, np.arange(1, bins) / bins))
    n_bins = len(edges) + 1
    e, a = (
        np.maximum(np.bincount(np.searchsorted(edges, x, side="right"), minlength=n_bins) / x.size, 1e-4)
        for x in (expected, actual)
    )
    return float(np.sum((a - e) * np.log(a / e)))


def psi_of(learner, expected, actual, bins=10) -> float:
    value = learner.psi(np.asarray(expected, dtype=float), np.asarray(actual, dtype=float), bins)
    assert isinstance(value, float), f"psi should return a float, but returned a {type_name(value)}"
    return value


@pytest.mark.graded("psi", points=1, visible=True)
def test_the_same_sample_is_stable_and_a_shift_is_not(learner):
    "Gives 0 for a sample against itself, the formula's PSI for a shifted one, and honours `bins` and values on an edge."
    rng = np.random.default_rng(1)
    expected = rng.normal(0, 1, 5_000)
    same = psi_of(learner, expected, expected)
    assert abs(same) < 1e-12, f"a sample against itself has a PSI of 0; got {same:g}"
    shifted = rng.normal(0.5, 1, 5_000)
    want, got = reference_psi(expected, shifted), psi_of(learner, expected, shifted)
    assert math.isclose(got, want, rel_tol=1e-6), (
        f"a shift by half a standard deviation: with decile edges of expected, PSI = {want:.4f}; got {got:.4f}"
    )
    expected, on_edges = np.arange(0.0, 101.0), np.repeat([25.0, 50.0, 80.0], [30, 30, 40])
    want, got = reference_psi(expected, on_edges, bins=4), psi_of(learner, expected, on_edges, bins=4)
    assert math.isclose(got, want, rel_tol=1e-6), (
        f"with bins=4, the edges of 0, 1, ..., 100 are 25, 50 and 75, and a value equal to an edge goes to the bin above "
        f'it (side="right"): PSI = {want:.4f}; got {got:.4f}'
    )


@pytest.mark.graded("psi", points=1, visible=True)
def test_empty_bins_and_values_outside_the_expected_range(learner):
    "Floors each share at 1e-4 (no infinity for an empty bin) and counts values beyond expected's range in the end bins."
    expected = np.arange(1.0, 101.0)
    actual = np.full(50, 1_000.0)  # all above expected's largest value: every one in the last bin
    want, got = reference_psi(expected, actual), psi_of(learner, expected, actual)
    assert math.isfinite(got) and math.isclose(got, want, rel_tol=1e-6), (
        f"every actual value lies above the expected ones, so nine bins are empty: floored at 1e-4, PSI = {want:.4f}; got {got!r}"
    )
    with pytest.raises(ValueError):
        learner.psi(np.array([]), np.array([1.0]), 10)
        pytest.fail("psi should raise ValueError for an empty sample")


@pytest.mark.graded("psi", points=1)
def test_repeated_values_and_other_bin_counts(learner):
    "Merges equal quantile edges (scores with many ties, a constant sample) and honours `bins`."
    rng = np.random.default_rng(2)
    tied = np.round(rng.beta(0.5, 8, 3_000), 2)  # mostly 0.0 and 0.01: many equal deciles
    cases = [
        (tied, np.round(rng.beta(0.7, 8, 2_000), 2), 10, "scores with many ties"),
        (np.full(100, 0.3), np.full(80, 0.3), 10, "a constant sample against itself"),
        (np.full(100, 0.3), rng.random(80), 10, "a constant sample against a spread one"),
        (rng.normal(0, 1, 2_000), rng.normal(0.2, 1.3, 1_500), 4, "quartile bins"),
    ]
    for expected, actual, bins, case in cases:
        want, got = reference_psi(expected, actual, bins), psi_of(learner, expected, actual, bins)
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12), f"{case} (bins={bins}): PSI {want:.4f}, got {got:.4f}"


# --- Part 2: alert_threshold ----------------------------------------------------------------------


def threshold_of(learner, values, rate) -> float:
    value = learner.alert_threshold(np.asarray(values, dtype=float), rate)
    assert isinstance(value, float), f"alert_threshold should return a float, but returned a {type_name(value)}"
    return value


@pytest.mark.graded("alert_threshold", points=1, visible=True)
def test_at_most_the_allowed_share_of_normal_days_lies_above(learner):
    "Returns the (k+1)-th largest value, k = floor(rate * n): 10 days at 10% allow one above; at 0, the largest."
    days = [0.02, 0.09, 0.01, 0.05, 0.03, 0.04, 0.07, 0.06, 0.08, 0.3]
    got = threshold_of(learner, days, 0.1)
    assert got == 0.09, f"of 10 normal days at a 10% false-alarm rate, one may lie above: the threshold is 0.09; got {got}"
    assert threshold_of(learner, days, 0.0) == 0.3, "with no false alarm allowed, the threshold is the largest value, 0.3"
    for rate in (-0.1, 1.0):
        with pytest.raises(ValueError):
            learner.alert_threshold(np.array(days), rate)
            pytest.fail(f"alert_threshold should raise ValueError for a rate of {rate}")


@pytest.mark.graded("alert_threshold", points=1)
def test_thresholds_on_many_normal_days(learner):
    "Finds the threshold on hundreds of normal days, with ties, for rates the notebook never used; refuses no days."
    rng = np.random.default_rng(3)
    for n, rate in ((365, 0.01), (200, 0.025), (90, 0.3)):
        days = np.round(rng.gamma(2.0, 0.01, n), 3)
        ordered = np.sort(days)
        want = float(ordered[n - 1 - math.floor(rate * n)])
        got = threshold_of(learner, days, rate)
        assert got == want, f"{n} normal days at a {rate:g} false-alarm rate: the threshold is {want:g}; got {got:g}"
        assert (days > got).mean() <= rate, f"{(days > got).mean():.3f} of the normal days lie above {got:g}"
    with pytest.raises(ValueError):
        learner.alert_threshold(np.array([]), 0.05)
        pytest.fail("alert_threshold should raise ValueError when there is no normal day")


# --- Part 3: ModelRegistry ------------------------------------------------------------------------

SLO = {"p99_ms": 50.0, "error_rate": 0.01}
GOOD_CANARY = {"p99_ms": 40.0, "error_rate": 0.002}


def registry_with(learner, folder, versions=("v1", "v2", "v3")):
    registry = learner.ModelRegistry(str(folder))
    for version in versions:
        registry.register(version, {"validation_cost": 100.0})
    return registry


@pytest.mark.graded("model_registry", points=1, visible=True)
def test_promotion_archives_the_previous_version(learner, tmp_path):
    "Registers candidates, promotes one whose canary met the objectives, and archives the one it replaces."
    registry = registry_with(learner, tmp_path)
    assert registry.production is None, f"nothing is in production before a promotion; got {registry.production!r}"
    assert registry.stage("v1") == "candidate", f"a registered version is a 'candidate'; got {registry.stage('v1')!r}"
    registry.promote("v1", GOOD_CANARY, SLO)
    registry.promote("v2", GOOD_CANARY, SLO)
    stages = {v: registry.stage(v) for v in ("v1", "v2", "v3")}
    assert registry.production == "v2" and stages == {"v1": "archived", "v2": "production", "v3": "candidate"}, (
        f"after promoting v1 then v2: v2 in production, v1 archived, v3 a candidate; got {stages}"
    )


@pytest.mark.graded("model_registry", points=1, visible=True)
def test_a_canary_that_breaks_an_objective_is_refused(learner, tmp_path):
    "Refuses to promote a version whose canary broke an objective, naming it, and changes nothing."
    registry = registry_with(learner, tmp_path)
    registry.promote("v1", GOOD_CANARY, SLO)
    with pytest.raises(ValueError) as refused:
        registry.promote("v2", {"p99_ms": 73.0, "error_rate": 0.002}, SLO)
        pytest.fail("promoting a version whose canary's p99 (73 ms) is above the objective (50 ms) should raise ValueError")
    assert "p99_ms" in str(refused.value), f"the refusal should name the broken objective, p99_ms: {refused.value}"
    assert registry.production == "v1" and registry.stage("v2") == "candidate", (
        "a refused promotion changes nothing: v1 stays in production, v2 a candidate"
    )
    with pytest.raises(ValueError) as refused:
        registry.promote("v2", {"p99_ms": 60.0, "error_rate": 0.05}, SLO)
        pytest.fail("a canary that broke both objectives should be refused")
    assert "p99_ms" in str(refused.value) and "error_rate" in str(refused.value), (
        f"the refusal should name every broken objective (p99_ms and error_rate): {refused.value}"
    )


@pytest.mark.graded("model_registry", points=1, visible=True)
def test_the_state_survives_a_restart(learner, tmp_path):
    "Keeps versions, stages and history in registry.json: a new registry on the same folder sees the same state."
    registry = registry_with(learner, tmp_path)
    registry.promote("v1", GOOD_CANARY, SLO)
    registry.promote("v3", GOOD_CANARY, SLO)
    restarted = learner.ModelRegistry(str(tmp_path))
    assert restarted.production == "v3", f"after a restart, v3 should still be in production; got {restarted.production!r}"
    stages = [restarted.stage(v) for v in ("v1", "v2", "v3")]
    assert stages == ["archived", "candidate", "production"], (
        f"after a restart, the stages of v1, v2 and v3 should be archived, candidate and production; got {stages}"
    )
    assert restarted.rollback() == "v1", "after a restart, a rollback should still know that v1 ran before v3"
    json.loads((tmp_path / "registry.json").read_text())  # a whole JSON document, as the notebook asks
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "registry.json"]
    assert not leftovers, (
        f"saving should leave only registry.json in the folder (os.replace the temporary file); found {leftovers}"
    )


@pytest.mark.graded("model_registry", points=1, visible=True)
def test_a_crash_while_saving_keeps_the_last_state(learner, tmp_path):
    "A save that fails halfway (a full disk) leaves the previous registry.json whole (write elsewhere, then rename)."
    registry = registry_with(learner, tmp_path)
    registry.promote("v1", GOOD_CANARY, SLO)
    with pytest.raises(OSError):
        learner.beside(promote_on_a_full_disk, registry, "v2", GOOD_CANARY, SLO)
        pytest.fail("promote should let the OSError of a failed save propagate, after leaving registry.json as it was")
    try:
        json.loads((tmp_path / "registry.json").read_text())
    except ValueError:
        pytest.fail(
            "a save that failed halfway left registry.json half written: write the JSON to a temporary file in the "
            "same folder, then os.replace it onto registry.json"
        )
    restarted = learner.ModelRegistry(str(tmp_path))
    assert restarted.production == "v1", (
        f"after the failed save, the registry on disk should still serve v1; got {restarted.production!r}"
    )


@pytest.mark.graded("model_registry", points=1)
def test_rollback_goes_back_one_release_at_a_time(learner, tmp_path):
    "Rolls back to the version before, then the one before that, and refuses when there is none."
    registry = registry_with(learner, tmp_path)
    with pytest.raises(ValueError):
        registry.rollback()
        pytest.fail("a rollback with nothing in production should raise ValueError")
    for version in ("v1", "v2", "v3"):
        registry.promote(version, GOOD_CANARY, SLO)
    assert registry.rollback() == "v2" and registry.stage("v3") == "archived", "rolling back from v3 should give v2"
    assert registry.rollback() == "v1" and registry.production == "v1", "a second rollback should give v1"
    with pytest.raises(ValueError):
        registry.rollback()
        pytest.fail("with only v1 left in the history, a rollback should raise ValueError")


@pytest.mark.graded("model_registry", points=1)
def test_unknown_and_repeated_versions_are_refused(learner, tmp_path):
    "Refuses a repeated version, an unknown one, a canary without a measurement and promoting the version that serves."
    registry = registry_with(learner, tmp_path, versions=("v1", "v2"))
    with pytest.raises(ValueError) as refused:
        registry.promote("v1", {"error_rate": 0.001}, SLO)
        pytest.fail("a canary with no p99_ms did not show that it met the p99 objective: promote should raise ValueError")
    assert "p99_ms" in str(refused.value), f"the refusal should name the metric the canary lacks, p99_ms: {refused.value}"
    registry.promote("v1", GOOD_CANARY, SLO)
    with pytest.raises(ValueError):
        registry.promote("v1", GOOD_CANARY, SLO)
        pytest.fail("v1 is in production already: promoting it again should raise ValueError")
    registry.promote("v2", GOOD_CANARY, SLO)
    registry.promote("v1", GOOD_CANARY, SLO)  # an archived version may be promoted again
    assert registry.rollback() == "v2", "after v1, v2 and v1 again, a rollback returns to v2"
    with pytest.raises(ValueError):
        registry.register("v1", {})
        pytest.fail("registering v1 a second time should raise ValueError")
    with pytest.raises(KeyError):
        registry.promote("v9", GOOD_CANARY, SLO)
        pytest.fail("promoting an unknown version should raise KeyError")
    with pytest.raises(KeyError):
        registry.stage("v9")
        pytest.fail("the stage of an unknown version should raise KeyError")
