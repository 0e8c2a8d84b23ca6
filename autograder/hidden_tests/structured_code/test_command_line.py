"""Hidden tests of exercises/structured_code/command_line.ipynb.

The visible tests call the learner's ``main`` beside the learner's code (in the notebook,
in its kernel); the hidden ones also
run ``python -m cardfraud`` in a process of its own, from the exported package, as a
user would (``drivers.structure.run_command``), in the folder the judge shares with the
learner's code. The judge reads what the runs leave on disk itself: TOML with
``tomllib``, JSON, and the saved weights with ``torch.load(weights_only=True)``, which
runs no code from the file.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import tomllib

import pytest

from autograder.drivers.structure import call_main, parsed, run_command

QUICK = """
[data]
n_transactions = 3000

[model]
hidden = 8

[train]
epochs = 1
"""

DEFAULTS = {
    "data": {"n_transactions": 20_000, "seed": 0, "labels_known_on": "2025-07-01"},
    "model": {"name": "fraudnet", "hidden": 32, "dropout": 0.1},
    "train": {"epochs": 2, "batch_size": 512, "lr": 0.003, "seed": 0, "deterministic": True},
}


def toml_text(settings: dict) -> str:
    """Settings as TOML, written here so that the test does not depend on the learner's writer."""

    def value(v):
        return (
            ("true" if v else "false")
            if isinstance(v, bool)
            else json.dumps(v, ensure_ascii=False)
            if isinstance(v, str)
            else repr(v)
        )

    return "".join(f"[{s}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in keys.items()) + "\n" for s, keys in settings.items())


def with_changes(changes: dict) -> dict:
    return {section: {**keys, **changes.get(section, {})} for section, keys in DEFAULTS.items()}


def dumped(learner, tmp_path, settings: dict) -> dict:
    """The learner's dump_config of the configuration that ``settings`` describe, read back by tomllib."""
    path = tmp_path / "settings.toml"
    path.write_text(toml_text(settings))
    text = learner.dump_config(learner.load_config(str(path)))
    assert isinstance(text, str), f"dump_config should return the TOML text (a str), not a {type(text).__name__}"
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        pytest.fail(f"dump_config wrote text that is not valid TOML ({e}):\n{text}")


def same_values(got: dict, want: dict) -> list[str]:
    """The settings that differ (a float written as 1 for 1.0 is the same value, and load_config accepts it)."""
    return [
        f"{section}.{key}: wrote {got.get(section, {}).get(key, '(missing)')!r}, should be {value!r}"
        for section, keys in want.items()
        for key, value in keys.items()
        if got.get(section, {}).get(key) != value or isinstance(got[section][key], bool) != isinstance(value, bool)
    ]


# --- Part 1: dump_config --------------------------------------------------------------------------


@pytest.mark.graded("dump_config", points=1, visible=True)
def test_every_setting_is_written_and_read_back(learner, tmp_path):
    "Writes every setting, read back equal: a quote, a backslash and an emoji in a name, a float's last digit, false."
    want = with_changes({"model": {"name": 'fraudnet "wide" \\ 🙂'}, "train": {"lr": 0.0123456789, "deterministic": False}})
    got = dumped(learner, tmp_path, want)
    assert set(got) == set(want), f"write the tables {sorted(want)}; the text has {sorted(got)}"
    wrong = same_values(got, want)
    assert not wrong, "the text read back differs: " + "; ".join(wrong)


@pytest.mark.graded("dump_config", points=1)
def test_strings_that_need_escaping(learner, tmp_path):
    "Escapes backslashes, tabs and line breaks, and keeps letters beyond ASCII."
    for name in ("C:\\models\\new", "two\nlines", "tab\there", "réseau 🙂", "'single' quotes"):
        got = dumped(learner, tmp_path, with_changes({"model": {"name": name}}))
        assert got["model"]["name"] == name, f"model.name {name!r} was read back as {got['model']['name']!r}"


@pytest.mark.graded("dump_config", points=1)
def test_numbers_keep_every_digit(learner, tmp_path):
    "Keeps small, large and exact floats and large ints: 1e-05, 1e+20, 3.0, 0.1, 0.30000000000000004 and 10**12."
    for lr in (1e-05, 1e20, 3.0, 0.1, 0.30000000000000004):
        got = dumped(learner, tmp_path, with_changes({"train": {"lr": lr}, "data": {"n_transactions": 10**12}}))
        assert got["train"]["lr"] == lr, f"train.lr {lr!r} was read back as {got['train']['lr']!r}"
        assert got["data"]["n_transactions"] == 10**12, f"data.n_transactions was read back as {got['data']['n_transactions']!r}"


# --- Part 2: fingerprint ---------------------------------------------------------------------------


def folder_with(root, name: str, files: dict[str, bytes]) -> str:
    folder = root / name
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    return str(folder)


DATA = {"train.parquet": b"PAR1 training rows", "validation.parquet": b"PAR1 validation rows", "notes/README": b"April"}


@pytest.mark.graded("fingerprint", points=1, visible=True)
def test_the_same_files_anywhere_give_the_same_digest(learner, tmp_path):
    "Is a 64-character hex SHA-256 that depends on the files, not on where the folder is."
    first = learner.fingerprint(folder_with(tmp_path, "a", DATA))
    assert isinstance(first, str) and len(first) == 64 and set(first) <= set("0123456789abcdef"), (
        f"return hashlib.sha256(...).hexdigest(), 64 hex characters; got {first!r}"
    )
    second = learner.fingerprint(folder_with(tmp_path, "somewhere/else", DATA))
    assert first == second, "the same files in another folder give another digest: hash paths relative to the folder"


@pytest.mark.graded("fingerprint", points=1, visible=True)
def test_a_renamed_changed_or_nested_file_changes_it(learner, tmp_path):
    "Changes when a file is renamed, when a byte changes, and when a file in a subfolder changes."
    base = learner.fingerprint(folder_with(tmp_path, "base", DATA))
    renamed = {("validation.old" if k == "validation.parquet" else k): v for k, v in DATA.items()}
    assert learner.fingerprint(folder_with(tmp_path, "renamed", renamed)) != base, (
        "renaming a file leaves the digest unchanged: hash each file's path as well as its bytes"
    )
    assert learner.fingerprint(folder_with(tmp_path, "changed", {**DATA, "train.parquet": b"PAR1 training rowz"})) != base, (
        "changing a byte of a file leaves the digest unchanged"
    )
    assert learner.fingerprint(folder_with(tmp_path, "nested", {**DATA, "notes/README": b"May"})) != base, (
        "changing a file in a subfolder leaves the digest unchanged: include subfolders (Path.rglob)"
    )


@pytest.mark.graded("fingerprint", points=0.5, visible=True)
def test_bytes_moved_between_files_change_it(learner, tmp_path):
    "Tells apart files a='ab', b='c' from a='a', b='bc': the boundaries between files count."
    one = learner.fingerprint(folder_with(tmp_path, "one", {"a": b"ab", "b": b"c"}))
    other = learner.fingerprint(folder_with(tmp_path, "other", {"a": b"a", "b": b"bc"}))
    assert one != other, (
        "two folders whose files, run together, read the same ('abc') get one digest: feed each part's length "
        "before it (or another boundary no file can contain)"
    )


@pytest.mark.graded("fingerprint", points=0.5)
def test_order_of_creation_does_not_matter(learner, tmp_path):
    "Is the same for files made in another order, and differs for an empty file and none."
    names = [f"shard-{i:03d}.parquet" for i in range(40)]
    forward = folder_with(tmp_path, "forward", {n: n.encode() for n in names})
    backward = folder_with(tmp_path, "backward", {n: n.encode() for n in reversed(names)})
    assert learner.fingerprint(forward) == learner.fingerprint(backward), (
        "files made in another order give another digest: walk the files in sorted order"
    )
    assert learner.fingerprint(folder_with(tmp_path, "empty-file", {"a": b"x", "b": b""})) != learner.fingerprint(
        folder_with(tmp_path, "no-file", {"a": b"x"})
    ), "an empty file and no file give the same digest"


# --- Part 3: build_parser ----------------------------------------------------------------------------


@pytest.mark.graded("build_parser", points=1, visible=True)
def test_train_and_evaluate_arguments(learner):
    "Parses `train --config run.toml --set a.b=1 --set c.d=2 --runs out` and `evaluate runs/run-001`, with defaults."
    parser = learner.build_parser()
    values, code, printed = learner.beside(
        parsed, parser, ["train", "--config", "run.toml", "--set", "a.b=1", "--set", "c.d=2", "--runs", "out"]
    )
    assert values is not None, f"`train --config run.toml --set a.b=1 --set c.d=2 --runs out` exited with {code}: {printed}"
    want = {"command": "train", "config": "run.toml", "overrides": ["a.b=1", "c.d=2"], "runs": "out"}
    got = {k: values.get(k) for k in want}
    assert got == want, f"parsed as {got}, should be {want} (every --set kept, in order, in `overrides`)"
    values, code, printed = learner.beside(parsed, parser, ["train", "--config", "run.toml"])
    assert values is not None and values.get("overrides") == [] and values.get("runs") == "runs", (
        f"without --set and --runs, overrides should be [] and runs Path('runs'); got {values or printed}"
    )
    values, code, printed = learner.beside(parsed, parser, ["evaluate", "runs/run-001"])
    assert values is not None and values.get("command") == "evaluate" and values.get("run") == "runs/run-001", (
        f"`evaluate runs/run-001` should give command 'evaluate' and run Path('runs/run-001'); got {values or printed}"
    )


@pytest.mark.graded("build_parser", points=1, visible=True)
def test_help_names_the_exit_codes_and_mistakes_exit_2(learner):
    "`--help` of the program and of `train` exit 0 and end with EXIT_CODES; a missing --config or command exits 2."
    parser = learner.build_parser()
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"]):
        values, code, printed = learner.beside(parsed, parser, argv)
        assert code == 0, f"`cardfraud {' '.join(argv)}` should print the help and exit 0; got {code}"
        assert "exit codes" in printed and "2 a usage" in " ".join(printed.split()), (
            f"the help of `cardfraud {' '.join(argv[:-1]) or ''}` should say what the exit codes mean (epilog=EXIT_CODES):\n{printed}"
        )
    for argv in (["train"], [], ["fit", "--config", "run.toml"]):
        values, code, printed = learner.beside(parsed, parser, argv)
        assert code == 2, f"`cardfraud {' '.join(argv)}` is a usage error: it should exit with code 2, not {code} ({values})"


# --- Part 4: main ----------------------------------------------------------------------------------


def quick_config(tmp_path, text: str = QUICK, name: str = "quick.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def last_line(text: str) -> str:
    return text.strip().rpartition("\n")[2]


def weights(path) -> dict:
    import torch

    return {name: hashlib.sha256(t.numpy().tobytes()).hexdigest() for name, t in torch.load(path, weights_only=True).items()}


@pytest.mark.graded("main", points=1, visible=True)
def test_main_trains_records_and_evaluates(learner, tmp_path):
    "main(['train', ...]) returns 0, prints the run folder and saves model.pt, config.toml and run.json; evaluate prints JSON."
    runs = tmp_path / "runs"
    code, out, err = learner.beside(
        call_main, learner.main, ["train", "--config", quick_config(tmp_path), "--runs", str(runs), "--set", "train.lr=0.01"]
    )
    assert code == 0, f"train should return 0; it returned {code}, with this on standard error:\n{err[-1500:]}"
    run = runs / "run-001"
    assert out.strip() == str(run), f"train should print the run folder alone ({run}) on standard output; it printed {out!r}"
    missing = [name for name in ("model.pt", "config.toml", "run.json") if not (run / name).is_file()]
    assert not missing, f"the run folder has no {', '.join(missing)}"
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["train"]["lr"] == 0.01 and saved["model"]["hidden"] == 8, (
        f"config.toml should hold the settings the run ran with, the --set included (train.lr 0.01, model.hidden 8); got {saved}"
    )
    record = json.loads((run / "run.json").read_text())
    keys = {"config", "data", "data_fingerprint", "code_version", "metrics"}
    assert keys <= set(record), f"run.json should have the keys {sorted(keys)}; it has {sorted(record)}"
    code, out, err = learner.beside(call_main, learner.main, ["evaluate", str(run)])
    assert code == 0, f"evaluate should return 0; it returned {code}:\n{err[-1500:]}"
    metrics = json.loads(out)
    assert metrics["average_precision"] == record["metrics"]["average_precision"], (
        f"evaluate's average precision {metrics['average_precision']} differs from the one recorded at training, "
        f"{record['metrics']['average_precision']}"
    )


@pytest.mark.graded("main", points=1, visible=True)
def test_main_refuses_a_configuration_that_cannot_work(learner, tmp_path):
    "An unknown model returns 2 with `cardfraud: error:` naming it, before any data is made; a missing run returns 1."
    runs = tmp_path / "runs"
    config = quick_config(tmp_path)
    code, out, err = learner.beside(
        call_main, learner.main, ["train", "--config", config, "--runs", str(runs), "--set", "model.name=fraudnett"]
    )
    assert code == 2, f"an unknown model name is a configuration error: return 2, not {code}"
    assert last_line(err).startswith("cardfraud: error:") and "fraudnett" in err, (
        f"print `cardfraud: error: <message>` on standard error, naming the model; got {err[-500:]!r}"
    )
    assert not runs.exists() or not any(runs.iterdir()), (
        f"a refused configuration should make no data and no run: {sorted(p.name for p in runs.iterdir())} were made"
    )
    code, out, err = learner.beside(call_main, learner.main, ["evaluate", str(tmp_path / "nowhere")])
    assert code == 1 and last_line(err).startswith("cardfraud: failed:"), (
        f"evaluating a folder without model.pt fails while running: `cardfraud: failed: ...` and 1; got {code}, {err[-300:]!r}"
    )


@pytest.mark.graded("main", points=1)
def test_the_command_line_repeats_a_run_bit_for_bit(learner, tmp_path):
    "`python -m cardfraud train` from a run's saved config.toml trains the same weights and metrics; evaluate agrees."
    folder = str(tmp_path)
    code, out, err = learner.beside(
        run_command, ["train", "--config", quick_config(tmp_path), "--runs", "runs", "--set", "train.seed=3"], folder
    )
    assert code == 0, f"`python -m cardfraud train --config quick.toml --runs runs` exited with {code}:\n{err[-1500:]}"
    first = tmp_path / out.strip()
    assert first.name == "run-001", f"it should print the run folder (runs/run-001) alone on standard output; it printed {out!r}"
    code, out, err = learner.beside(run_command, ["train", "--config", str(first / "config.toml"), "--runs", "runs"], folder)
    assert code == 0, f"training again from runs/run-001/config.toml exited with {code}:\n{err[-1500:]}"
    second = tmp_path / out.strip()
    assert second != first, "a second run must get a folder of its own"
    assert weights(second / "model.pt") == weights(first / "model.pt"), (
        "the run repeated from its config.toml trained other weights: is every setting (train.seed among them) saved?"
    )
    records = [json.loads((run / "run.json").read_text()) for run in (first, second)]
    assert records[0]["metrics"] == records[1]["metrics"], "the repeated run's metrics differ"
    assert records[0]["data_fingerprint"] == records[1]["data_fingerprint"], "the same data gave another data_fingerprint"
    code, out, err = learner.beside(run_command, ["evaluate", str(second)], folder)
    assert code == 0 and json.loads(out)["log_loss"] == records[1]["metrics"]["log_loss"], (
        f"`python -m cardfraud evaluate {second.name}` should print the metrics as JSON, equal to the record's; got {code}, {out!r}"
    )


@pytest.mark.graded("main", points=1)
def test_the_command_line_ends_bad_input_with_a_message_and_an_exit_code(learner, tmp_path):
    "`python -m cardfraud` exits 2 for a wrong type, an unknown model, a missing file or a bad --set, 1 for a missing run."
    folder = str(tmp_path)
    config = quick_config(tmp_path)
    wrong_type = quick_config(tmp_path, '[train]\nepochs = "two"\n', "wrong.toml")
    cases = [
        (["train", "--config", wrong_type], 2, "train.epochs"),
        (["train", "--config", config, "--set", "model.name=transformer"], 2, "transformer"),
        (["train", "--config", "missing.toml"], 2, "missing.toml"),
        (["train", "--config", config, "--set", "train.lr"], 2, "train.lr"),
        (["evaluate", "runs/run-999"], 1, "run-999"),
    ]
    for args, want, named in cases:
        code, out, err = learner.beside(run_command, args, folder)
        command = f"python -m cardfraud {' '.join(args)}"
        assert code == want, f"`{command}` should exit with {want}, not {code}:\n{err[-800:]}"
        assert "Traceback" not in err, f"`{command}` printed a traceback; print one line that says what to fix:\n{err[-800:]}"
        assert last_line(err).startswith("cardfraud: ") and named in last_line(err), (
            f"`{command}` should end with one line `cardfraud: ...` naming {named!r}; got {err[-800:]!r}"
        )
    assert not (tmp_path / "runs").exists(), "a refused command should leave no run folder behind"
