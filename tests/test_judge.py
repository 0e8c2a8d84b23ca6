"""Judged grading: the tests in one process, the learner's code in another, and values between them by value only."""

import datetime
import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

from autograder import codec
from autograder.codec import CodecError, Given, Ref
from autograder.judge import LearnerError, rebuild
from autograder.pytest_plugin import LearnerCode, LearnerLoadError, load_modules
from autograder.runner import run_in_process, run_in_subprocess
from casestudy.model import FraudNetConfig
from casestudy.warehouse import tiny_warehouse
from tests.helpers import write_module

VALUES = {
    "scalars": [None, True, 3, -(2**70), 1.5, "text", "ünï"],
    "non-finite floats": [math.inf, -math.inf],
    "containers": ({1: "a", (2, 3): [4, {5}]}, frozenset({"x"}), b"\x00\xff"),
    "dates": [datetime.datetime(2025, 3, 1, 10, 0, 1, 5), datetime.date(2025, 3, 1), datetime.timedelta(days=2, seconds=3)],
    "path": Path("/tmp/somewhere"),
    "arrays": [
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.array(["2025-03-01"], dtype="datetime64[ns]"),
        np.array(["ab", "c"]),
    ],
    "NumPy scalars": [np.float32(1.5), np.int64(7), np.bool_(True)],
    "frame": pd.DataFrame(
        {
            "id": [1, 2],
            "ts": pd.to_datetime(["2025-03-01", None]),
            "x": [0.5, float("nan")],
            "category": pd.Categorical(["a", "b"]),
            "name": ["p", None],
        }
    ),
    "series": pd.Series([1.0, 2.0], name="amount"),
    "pandas scalars": [pd.Timestamp("2025-03-01 10:00"), pd.NaT, pd.Timedelta("1h")],
    "arrow": pa.table({"a": [1, 2], "b": ["x", None]}),
    "tensors": [torch.arange(4.0).reshape(2, 2), torch.ones(3, dtype=torch.bfloat16), torch.tensor([True])],
    "tensors that need a gradient, or hold no data": [torch.ones(2, requires_grad=True), torch.empty(3, 2, device="meta")],
    "torch types": [torch.device("cpu"), torch.float16],
    "given records": [FraudNetConfig(hidden=16)],
}


def same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b)
        return True
    if isinstance(a, pd.Series):
        pd.testing.assert_series_equal(a, b)
        return True
    if isinstance(a, torch.Tensor):
        meta = a.device.type == "meta"
        same_values = a.shape == b.shape if meta else torch.equal(a.detach(), b.detach())
        return a.dtype == b.dtype and a.device == b.device and a.requires_grad == b.requires_grad and same_values
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if a is pd.NaT:
        return b is pd.NaT
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("kind", VALUES)
def test_values_cross_unchanged(kind):
    "Does every kind of value the hidden tests exchange come back equal, and of the same type?"
    value = VALUES[kind]
    assert same(value, codec.decode(codec.encode(value)))


def message(tree: dict, *buffers: bytes) -> bytes:
    """A message written by hand, as a submission that writes on its socket could."""
    import json

    header = json.dumps(tree).encode()
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    for buffer in buffers:
        parts += [struct.pack("<Q", len(buffer)), buffer]
    return b"".join(parts)


def _nested(depth: int) -> dict:
    tree: list = []
    for _ in range(depth):
        tree = [tree]
    return {"$": "tuple", "v": tree}


HOSTILE_MESSAGES = {
    "a pickle": (message({"$": "pickle", "b": 0}, b"cos\nsystem\n(S'echo hi'\ntR."), "unknown kind"),
    "an object array": (message({"$": "array", "dtype": "|O", "shape": [1], "b": 0}, b"\0" * 8), "never sent"),
    "a record of a class outside the given code": (message({"$": "record", "type": "os:system", "v": None}), "not given code"),
    "a reference to a given function": (
        message({"$": "given", "module": "casestudy.warehouse", "qualname": "x"}),
        "only the judge",
    ),
    "a buffer that is not there": (message({"$": "bytes", "b": 3}), "does not hold"),
    "a message cut short": (codec.encode(b"x" * 100)[:-10], "ends inside"),
    "not JSON": (struct.pack("<II", 5, 0) + b"{{{{{", "not a message"),
    "nesting two hundred deep": (message(_nested(200)), "nested"),
}


@pytest.mark.parametrize("kind", HOSTILE_MESSAGES)
def test_messages_that_would_run_code_are_refused(kind):
    "Is every message the codec does not write refused with a reason, never read by running code?"
    data, reason = HOSTILE_MESSAGES[kind]
    with pytest.raises(CodecError, match=reason):
        codec.decode(data)


def test_live_objects_cross_only_as_references():
    "Does a live object cross only as a reference to where it stays, and given code only from the judge?"
    lock = object()
    kept = {}

    def keep(obj):
        kept[7] = obj
        return Ref(7, "builtins.object")

    assert codec.decode(codec.encode([lock], keep=keep)) == [Ref(7, "builtins.object")]
    with pytest.raises(CodecError, match="cannot be sent by value"):
        codec.encode(lock)
    function = codec.decode(codec.encode(tiny_warehouse, allow_given=True), allow_given=True)
    assert function is tiny_warehouse
    assert (
        codec.decode(codec.encode(Given("casestudy.warehouse", "tiny_warehouse"), allow_given=True), allow_given=True)
        is tiny_warehouse
    )
    with pytest.raises(CodecError, match="only the judge"):
        codec.encode(Given("casestudy.warehouse", "tiny_warehouse"))


def test_errors_are_raised_again_as_a_test_can_catch_them():
    "Is a built-in error raised again as itself, a learner's class under its name and built-in base, and SystemExit as a plain error?"
    missing = rebuild(codec.raised(FileNotFoundError("no /x"), " (line 3)"))
    assert type(missing) is FileNotFoundError and str(missing) == "no /x" and missing.learner_where == " (line 3)"

    class ShapeError(ValueError):
        pass

    theirs = rebuild(codec.raised(ShapeError("bad shape")))
    assert isinstance(theirs, ValueError) and isinstance(theirs, LearnerError) and type(theirs).__name__ == "ShapeError"
    stop = rebuild(codec.raised(SystemExit(3)))
    assert isinstance(stop, Exception) and type(stop).__name__ == "SystemExit"
    assert isinstance(rebuild(codec.raised(StopIteration())), StopIteration)
    untouched = rebuild(codec.raised(LearnerLoadError("not written yet"), "", True))
    assert isinstance(untouched, LearnerLoadError) and isinstance(untouched.__cause__, NotImplementedError)


# A learner's module, and judged hidden tests that use its objects the ways chapters do.
LEARNER = """
import duckdb

class Counter:
    def __init__(self, start):
        self.count = start
        self.items = ["a", "b"]
    def add(self, n):
        self.count += n
        return self
    def __len__(self):
        return self.count
    def __iter__(self):
        return iter(self.items)
    def __getitem__(self, i):
        return self.items[i]
    def __enter__(self):
        return "entered"
    def __exit__(self, *exc):
        self.count = -1

class ShapeError(ValueError):
    pass

def make_counter(start):
    return Counter(start)

def refuse(path):
    raise FileNotFoundError(f"no warehouse in {path}")

def shape_error():
    raise ShapeError("wrong shape")

def payments(con):
    return con.sql("SELECT transaction_id, amount FROM transactions ORDER BY transaction_id")

def write_file(folder):
    (folder / "out.txt").write_text("written")
    return folder / "out.txt"
"""

JUDGED = """
import pytest

from autograder.tables import frame_of
from casestudy.warehouse import tiny_warehouse


@pytest.mark.graded("objects", points=1)
def test_objects(learner):
    "Uses an object of the learner's through its methods and Python's protocols."
    counter = learner.make_counter(2)
    assert counter.add(3).count == 5
    assert len(counter) == 5 and list(counter) == ["a", "b"] and counter[1] == "b"
    counter.count = 10
    assert counter.count == 10
    with counter as entered:
        assert entered == "entered"
    assert counter.count == -1


@pytest.mark.graded("errors", points=1)
def test_errors(learner):
    "Catches the learner's errors by their built-in class."
    with pytest.raises(FileNotFoundError, match="no warehouse in /nowhere"):
        learner.refuse("/nowhere")
    with pytest.raises(ValueError, match="wrong shape"):
        learner.shape_error()


@pytest.mark.graded("beside", points=1)
def test_beside(learner):
    "Builds a connection beside the learner's code, and reads their relation back as a frame."
    con = learner.beside(tiny_warehouse, transactions={"transaction_id": [2, 1], "amount": [5.0, 7.5]})
    frame = frame_of(learner.payments(con), "payments")
    assert frame["transaction_id"].tolist() == [1, 2] and frame["amount"].tolist() == [7.5, 5.0]


@pytest.mark.graded("files", points=1)
def test_files(learner, tmp_path):
    "Reads what the learner's code wrote in the test's folder."
    assert learner.write_file(tmp_path).read_text() == "written"
"""


@pytest.fixture
def judged(tmp_path):
    hidden = tmp_path / "hidden" / "objects" / "test_objects.py"
    hidden.parent.mkdir(parents=True)
    hidden.write_text(JUDGED)
    write_module(tmp_path / "pkg", LEARNER)
    return hidden, tmp_path / "pkg"


def test_judged_tests_use_the_learners_objects_as_in_one_process(judged, monkeypatch):
    "Does a judged test earn the same points through the worker as beside the learner's code in one process?"
    hidden, package = judged
    verdicts, problem = run_in_subprocess(hidden, package, ["cardfraud.numbers"])
    assert problem is None and [v.output for v in verdicts] == [""] * 4
    monkeypatch.syspath_prepend(str(package))
    in_process = run_in_process(hidden, load_modules(["cardfraud.numbers"]))
    assert [(v.name, v.score) for v in in_process] == [(v.name, v.score) for v in verdicts]


def test_in_one_process_beside_runs_the_given_function():
    "Does a self-check's `learner.beside` simply call the given function?"
    con = LearnerCode({}, "the notebook").beside(tiny_warehouse, transactions={"transaction_id": [1]})
    assert con.execute("SELECT count(*) FROM transactions").fetchone() == (1,)


LIVE = """
import pytest

@pytest.mark.graded("live", points=1)
def test_live(learner):
    "Hands the learner's code a live object of its own."
    learner.make_counter(lambda: 1)
"""


def test_no_live_object_of_the_judge_reaches_the_learners_code(tmp_path):
    "Does a hidden test that hands the learner's code a function of its own fail, saying so, instead of handing it over?"
    hidden = tmp_path / "hidden" / "live" / "test_live.py"
    hidden.parent.mkdir(parents=True)
    hidden.write_text(LIVE)
    write_module(tmp_path / "pkg", LEARNER)
    [verdict], _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert verdict.score == 0 and "cannot hand this to your code" in verdict.output and "never crosses" in verdict.output
