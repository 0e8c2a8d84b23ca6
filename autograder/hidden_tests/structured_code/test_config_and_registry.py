"""Hidden tests of exercises/structured_code/config_and_registry.ipynb.

Configuration files are written into the folder the judge shares with the learner's
code (``tmp_path``); the learner's config objects stay on its side, and the tests read
their fields through them. The learner's ``ConfigError`` arrives here as an exception of
that name deriving from ``ValueError``.
"""

from __future__ import annotations

import math
import textwrap

import pandas as pd
import pytest

from autograder.drivers.structure import found, fraudnet, register, trees
from autograder.judge import type_name


def config_file(tmp_path, text: str, name: str = "run.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def refused(call, *args) -> str:
    """The message of the ConfigError that ``call(*args)`` raises; fails the test if it raises none, or another error."""
    try:
        call(*args)
    except ValueError as e:
        assert type(e).__name__ == "ConfigError", f"raise ConfigError (the notebook defines it), not {type(e).__name__}: {e}"
        return str(e)
    pytest.fail(f"{', '.join(map(repr, args[1:] if len(args) > 1 else args))} should be refused with ConfigError")


# --- Part 1: load_config --------------------------------------------------------------------------


@pytest.mark.graded("load_config", points=1, visible=True)
def test_values_from_the_file_and_defaults_for_the_rest(learner, tmp_path):
    "Reads each section's keys into its dataclass, with the defaults for what the file leaves out; 1 is read as 1.0."
    path = config_file(
        tmp_path,
        """
        [model]
        name = "trees"

        [train]
        epochs = 5
        lr = 1
        """,
    )
    config = learner.load_config(path)
    assert type_name(config) == "RunConfig", f"load_config should return a RunConfig, not a {type_name(config)}"
    got = (config.model.name, config.model.hidden, config.train.epochs, config.train.lr, config.data.n_transactions)
    assert got == ("trees", 32, 5, 1.0, 20_000), (
        f"model.name, model.hidden, train.epochs, train.lr and data.n_transactions should be ('trees', 32, 5, 1.0, 20000) "
        f"(the file's values, the defaults for the rest); got {got}"
    )
    assert isinstance(config.train.lr, float), (
        f"train.lr is a float: TOML's `lr = 1` is an int, which a float key accepts as 1.0; got a {type_name(config.train.lr)}"
    )


@pytest.mark.graded("load_config", points=1, visible=True)
def test_a_misspelt_key_or_a_wrong_type_is_named(learner, tmp_path):
    "Refuses a misspelt key (naming the valid ones), a string for an int, and true for an int (a bool is not a number)."
    message = refused(learner.load_config, config_file(tmp_path, "[train]\nepoch = 3\n"))
    assert "train.epoch" in message and "epochs" in message, (
        f"a misspelt key must not be ignored: name it (train.epoch) and the valid keys (epochs, ...); got {message!r}"
    )
    message = refused(learner.load_config, config_file(tmp_path, '[train]\nepochs = "two"\n'))
    assert "train.epochs" in message and "int" in message, f"name the key and the type it needs (int); got {message!r}"
    message = refused(learner.load_config, config_file(tmp_path, "[model]\nhidden = true\n"))
    assert "model.hidden" in message, (
        f"`hidden = true` is a bool, not an int, although Python's bool is a subclass of int; got {message!r}"
    )


@pytest.mark.graded("load_config", points=1)
def test_missing_broken_and_misshapen_files(learner, tmp_path):
    "Refuses a missing file (naming it), invalid TOML, an unknown section, a key outside a section and 2.5 for an int."
    message = refused(learner.load_config, str(tmp_path / "nowhere.toml"))
    assert "nowhere.toml" in message, f"a missing file: name it in the message; got {message!r}"
    refused(learner.load_config, config_file(tmp_path, "[train\nepochs = 2\n"))
    message = refused(learner.load_config, config_file(tmp_path, "[optimizer]\nlr = 0.1\n"))
    assert "optimizer" in message and "train" in message, f"name the unknown section and the valid ones; got {message!r}"
    refused(learner.load_config, config_file(tmp_path, "epochs = 2\n"))
    refused(learner.load_config, config_file(tmp_path, "[train]\nepochs = 2.5\n"))
    empty = learner.load_config(config_file(tmp_path, ""))
    assert (empty.train.epochs, empty.model.name) == (2, "fraudnet"), "an empty file gives the defaults"


# --- Part 2: apply_override -----------------------------------------------------------------------


@pytest.mark.graded("apply_override", points=1, visible=True)
def test_an_override_is_read_as_its_keys_type(learner):
    "Reads the value as the key's type (float, int, bool, str) and returns a new config, leaving the old one as it was."
    base = learner.RunConfig()
    config = base
    for assignment in ("train.lr=0.01", "model.hidden=64", "train.deterministic=false", "data.labels_known_on=2025-06-01"):
        config = learner.apply_override(config, assignment)
    got = (config.train.lr, config.model.hidden, config.train.deterministic, config.data.labels_known_on)
    assert got == (0.01, 64, False, "2025-06-01"), f"after the four overrides: (0.01, 64, False, '2025-06-01'); got {got}"
    assert isinstance(config.model.hidden, int) and isinstance(config.train.deterministic, bool), (
        "model.hidden should be an int and train.deterministic a bool, not the strings from the command line"
    )
    assert (base.train.lr, base.model.hidden) == (0.003, 32), "the config passed in must not change (it is frozen)"


@pytest.mark.graded("apply_override", points=1, visible=True)
def test_an_override_that_cannot_apply_says_why(learner):
    "Refuses a value of the wrong type, a missing '=', an unknown section and an unknown key, each with ConfigError."
    base = learner.RunConfig()
    message = refused(learner.apply_override, base, "train.lr=fast")
    assert "train.lr" in message and "float" in message, f"name the key and its type; got {message!r}"
    refused(learner.apply_override, base, "train.epochs")
    message = refused(learner.apply_override, base, "optim.lr=0.1")
    assert "train" in message, f"an unknown section: list the valid ones; got {message!r}"
    message = refused(learner.apply_override, base, "train.epoch=3")
    assert "epochs" in message, f"an unknown key: list the valid ones; got {message!r}"


@pytest.mark.graded("apply_override", points=1)
def test_booleans_numbers_and_spaces(learner):
    "Accepts true/false in any case and spaces around the parts; refuses 'yes' for a bool and '2.5' for an int."
    base = learner.RunConfig()
    assert learner.apply_override(base, " model.hidden = 16 ").model.hidden == 16, "spaces around the parts are fine"
    assert learner.apply_override(base, "train.deterministic=FALSE").train.deterministic is False, "FALSE is false"
    refused(learner.apply_override, base, "train.deterministic=yes")
    refused(learner.apply_override, base, "train.epochs=2.5")


# --- Part 3: Registry -----------------------------------------------------------------------------


@pytest.mark.graded("registry", points=1, visible=True)
def test_components_are_found_by_name(learner):
    "The decorator returns what it decorates unchanged, get finds it by name, and names lists them sorted."
    models = learner.Registry("model")
    assert learner.beside(register, models, "trees", trees), "register(name) should return the decorated function itself"
    learner.beside(register, models, "fraudnet", fraudnet)
    assert learner.beside(found, models, "fraudnet") == "a FraudNet", "get('fraudnet') should return fraudnet"
    assert list(models.names()) == ["fraudnet", "trees"], f"names() should be sorted; got {models.names()}"


@pytest.mark.graded("registry", points=1, visible=True)
def test_an_unknown_name_lists_the_known_ones(learner):
    "An unknown name raises ConfigError naming the kind, every known name and the closest one."
    models = learner.Registry("model")
    learner.beside(register, models, "fraudnet", fraudnet)
    learner.beside(register, models, "trees", trees)
    message = refused(models.get, "fraudnett")
    assert "model" in message and "fraudnet" in message and "trees" in message, (
        f"an unknown model: say it is a model and list the known ones (fraudnet, trees); got {message!r}"
    )
    assert "did you mean 'fraudnet'" in message, f"suggest the closest name: did you mean 'fraudnet'?; got {message!r}"


@pytest.mark.graded("registry", points=1)
def test_a_name_is_registered_once_and_registries_are_apart(learner):
    "Refuses a second component under a taken name (ValueError); two registries do not share their entries."
    models, datasets = learner.Registry("model"), learner.Registry("dataset")
    learner.beside(register, models, "fraudnet", fraudnet)
    with pytest.raises(ValueError):
        learner.beside(register, models, "fraudnet", trees)
        pytest.fail("registering a second model as 'fraudnet' should raise ValueError")
    assert list(datasets.names()) == [], (
        f"a new registry of datasets should be empty, but holds {list(datasets.names())}: are the entries a class attribute?"
    )


# --- Part 4: compare_runs -------------------------------------------------------------------------


def runs_of(**costs) -> pd.DataFrame:
    rows = [
        {"config": name, "seed": seed, "val_cost": cost} for name, values in costs.items() for seed, cost in enumerate(values)
    ]
    return pd.DataFrame(rows)


def compared(learner, runs: pd.DataFrame) -> dict:
    result = learner.compare_runs(runs, "val_cost")
    assert isinstance(result, dict) and set(result) >= {"better", "difference", "stderr"}, (
        f"compare_runs should return a dict with better, difference and stderr; got {result!r}"
    )
    return result


def welch(x, y) -> tuple[float, float]:
    x, y = pd.Series(x, dtype=float), pd.Series(y, dtype=float)
    return float(y.mean() - x.mean()), math.sqrt(x.var() / len(x) + y.var() / len(y))


@pytest.mark.graded("compare_runs", points=1, visible=True)
def test_a_clear_winner_and_a_difference_within_the_seeds_spread(learner):
    "Picks the config whose mean is lower by more than two standard errors, and none when the seeds' spread is larger."
    clear = compared(learner, runs_of(base=[100.0, 102.0, 98.0], wider=[80.0, 81.0, 79.0]))
    want_difference, want_stderr = welch([100.0, 102.0, 98.0], [80.0, 81.0, 79.0])
    assert clear["better"] == "wider", f"wider costs 20 less, far beyond its standard error: better = 'wider'; got {clear}"
    assert math.isclose(clear["difference"], want_difference) and math.isclose(clear["stderr"], want_stderr), (
        f"difference is wider's mean minus base's ({want_difference:g}), stderr {want_stderr:.4f}; got {clear}"
    )
    noisy = compared(learner, runs_of(base=[100.0, 110.0, 90.0], wider=[98.0, 108.0, 88.0]))
    assert noisy["better"] is None, (
        f"wider is 2 cheaper on average, but the seeds alone move a run by 10: no clear winner (None); got {noisy}"
    )


@pytest.mark.graded("compare_runs", points=1)
def test_each_config_brings_its_own_spread(learner):
    "Uses each config's own variance and count (Welch's standard error), and sorts the two configs by name."
    a, b = [50.0, 52.0, 49.0, 51.0, 50.5, 48.5], [40.0, 47.0, 43.0]
    result = compared(learner, runs_of(zeta=a, alpha=b))
    difference, stderr = welch(b, a)
    assert math.isclose(result["difference"], difference) and math.isclose(result["stderr"], stderr), (
        f"with alpha first (sorted), difference = zeta's mean - alpha's = {difference:.4f}, stderr = {stderr:.4f}; got {result}"
    )
    assert result["better"] == "alpha", f"alpha is cheaper by more than two standard errors; got {result}"


@pytest.mark.graded("compare_runs", points=1)
def test_one_seed_or_other_than_two_configs_are_refused(learner):
    "Raises ValueError for a config run with one seed, and for one or three configs."
    for runs, case in (
        (runs_of(a=[1.0, 2.0], b=[1.5]), "b ran with one seed"),
        (runs_of(a=[1.0, 2.0]), "one config"),
        (runs_of(a=[1.0, 2.0], b=[1.0, 2.0], c=[1.0, 2.0]), "three configs"),
    ):
        with pytest.raises(ValueError):
            learner.compare_runs(runs, "val_cost")
            pytest.fail(f"{case}: compare_runs should raise ValueError")
