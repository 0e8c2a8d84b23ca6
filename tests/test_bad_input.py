"""A class of broken and hostile submissions: each gets a clear message and the points it honestly earned.

The whole corpus is graded as one batch, two at a time, so these tests also prove that
no submission stops the others. The assignment is tiny (`double` is worth 3 points over
two tests, `halve` 1), so every expected score can be checked by hand.
"""

import json
import shutil
import tempfile
from pathlib import Path

import nbformat
import pytest

from autograder import runner
from autograder.batch import grade_class
from autograder.runner import TAMPERED
from autograder.sandbox import Limits, private_tmp_available
from tests.helpers import HIDDEN_NUMBERS, code_cell, notebook

GOOD = "def double(x):\n    return 2 * x\n\ndef halve(x):\n    return x / 2\n"


def exported(*sources: str, default_exp: str = "numbers") -> bytes:
    """A notebook with a default_exp cell and one `#| export` cell per source."""
    cells = [code_cell(f"#| default_exp {default_exp}"), *(code_cell(f"#| export\n{source}") for source in sources)]
    return nbformat.writes(notebook(*cells)).encode()


def tampered() -> bytes:
    """The right answers in a notebook whose nbgrader metadata claims 100 points and lost its grade id."""
    answer = code_cell(f"#| export\n{GOOD}", grade=True, solution=True, points=100, locked=False)
    return nbformat.writes(notebook(code_cell("#| default_exp numbers"), answer)).encode()


# Learner code that writes into the results of its own grading: it finds the pipe they
# go through in pytest's configuration, in its own memory. What it writes there must not
# count, nor stop the batch.
RESULTS_CHANNELS = (
    "import gc, json, os\n"
    "def each_results_channel():\n"
    "    import pytest\n"
    "    for config in [o for o in gc.get_objects() if isinstance(o, pytest.Config)]:\n"
    "        if config.getoption('results_fd', None) is not None:\n"
    "            yield config.getoption('results_fd')\n"
)
MALFORMED = RESULTS_CHANNELS + (
    "def double(x):\n"
    "    for channel in each_results_channel():\n"
    "        os.write(channel, b'{}\\n[]\\n\\n' + b'x' * 100_000 + b'\\n')\n"
    "    return 2 * x\n"
    "\n"
    "def halve(x):\n"
    "    return x / 2\n"
)
# As the process ends, after the real verdicts: one more for every test it finds in memory,
# a billion points each, in a part of its own.
INFLATE = RESULTS_CHANNELS + (
    "def inflate():\n"
    "    import pytest\n"
    "    tests = [o.nodeid for o in gc.get_objects() if isinstance(o, pytest.Item)]\n"
    "    for channel in each_results_channel():\n"
    "        for test_id in tests:\n"
    "            record = {'event': 'finished', 'test_id': test_id, 'score': 1e9, 'max_score': 1e9, 'part': 'bonus'}\n"
    "            record.update(name='x', status='passed', output='', visible=True, notebook='')\n"
    "            os.write(channel, (json.dumps(record) + '\\n').encode())\n"
    "real_exit = os._exit\n"
    "def forging_exit(code):\n"
    "    inflate()\n"
    "    real_exit(code)\n"
    "os._exit = forging_exit\n"
)

HALVE = "\ndef halve(x):\n    return x / 2\n"
# Learner code runs in a worker apart from the tests (see autograder/judge.py): it holds no
# results channel. What these write to every file descriptor they have must change nothing.
EVERY_FD = (
    "import json, os\n"
    "for fd in map(int, os.listdir('/proc/self/fd')):\n"
    "    for test_id in ('test_numbers.py::test_doubles', 'test_numbers.py::test_negative'):\n"
    "        record = {'event': 'finished', 'test_id': test_id, 'score': 2, 'max_score': 2, 'part': 'double'}\n"
    "        record.update(name='x', status='passed', output='', visible=True)\n"
    "        try:\n"
    "            os.write(fd, (json.dumps(record) + '\\n').encode())\n"
    "        except OSError:\n"
    "            pass\n"
)
# Every signal a process may send, to every process it can see: the judge (process 1)
# ignores those it has no handler for, and has none.
SIGNALS = (
    "import os, signal\n"
    "for pid in [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()]:\n"
    "    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGUSR1, signal.SIGSTOP, signal.SIGKILL):\n"
    "        try:\n"
    "            os.kill(pid, sig)\n"
    "        except OSError:\n"
    "            pass\n"
)
# Kills its parent, the zygote, on the first call; its session answers on, but no new
# session can start (a wrong `double` fails, and the judge goes on with what it has).
KILLS_ZYGOTE = "import os, signal\ndef double(x):\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x\n"
# Writes, on the socket to the judge, a message that is not the codec's (a pickle), or the
# length of a terabyte, ahead of its real answer.
_SOCKET = (
    "import os, socket, struct, stat\n"
    "def judge_socket():\n"
    "    for fd in map(int, os.listdir('/proc/self/fd')):\n"
    "        try:\n"
    "            if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
    "                return fd\n"
    "        except OSError:\n"
    "            pass\n"
)
FORGED_ANSWER = _SOCKET + (
    "import pickle\n"
    "def double(x):\n"
    "    payload = pickle.dumps(('ok', 2 * x))\n"
    "    os.write(judge_socket(), struct.pack('<Q', len(payload)) + payload)\n"
    "    return x\n"
)
HUGE_ANSWER = _SOCKET + "def double(x):\n    os.write(judge_socket(), struct.pack('<Q', 2**40))\n    return x\n"

# kind -> (the notebook's bytes, the points it honestly earns, a phrase its feedback must contain)
CORPUS = {
    "invalid JSON": (b"{ this is not json", 0, "not valid notebook JSON"),
    "empty file": (b"", 0, "is empty"),
    "binary file": (bytes(range(256)) * 4, 0, "not UTF-8"),
    "JSON that is not a notebook": (json.dumps({"cells_missing": True}).encode(), 0, "not a notebook"),
    "export cells deleted": (
        nbformat.writes(notebook(code_cell("#| default_exp numbers"), code_cell(GOOD))).encode(),
        0,
        "no `#| export` cells",
    ),
    "default_exp deleted": (nbformat.writes(notebook(code_cell(f"#| export\n{GOOD}"))).encode(), 0, "no `#| default_exp"),
    "export cells duplicated": (exported("def double(x):\n    return x", GOOD), 4, ""),
    "syntax error": (exported("def double(x):\n    return 2 *\n"), 0, "syntax error on its line 3"),
    "syntax error in one cell of two": (
        exported("def double(x):\n    return 2 *\n", "def halve(x):\n    return x / 2"),
        1,
        "that cell was left out",
    ),
    "missing function": (exported("def double(x):\n    return 2 * x"), 3, "does not define `halve`"),
    "wrong signature": (exported("def double(x, y):\n    return 2 * x\n\ndef halve(x):\n    return x / 2"), 1, "TypeError"),
    "import of a module that does not exist": (exported(f"import not_a_real_module\n{GOOD}"), 0, "ModuleNotFoundError"),
    "endless loop at import": (exported(f"while True:\n    pass\n{GOOD}"), 0, "took longer than"),
    "endless loop in a function": (
        exported("def double(x):\n    return 2 * x\n\ndef halve(x):\n    while True:\n        pass"),
        3,
        "took longer than",
    ),
    "endless recursion": (
        exported("def double(x):\n    return double(x)\n\ndef halve(x):\n    return x / 2"),
        1,
        "RecursionError",
    ),
    "memory bomb": (
        exported("def double(x):\n    return len(bytearray(8 * 2**30))\n\ndef halve(x):\n    return x / 2"),
        1,
        "MemoryError",
    ),
    "many child processes": (
        exported(f"import subprocess\nkids = [subprocess.Popen(['sleep', '60']) for _ in range(20)]\n{GOOD}"),
        4,
        "",
    ),
    "thread left running": (
        exported(f"import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n{GOOD}"),
        4,
        "",
    ),
    "sys.exit at import": (exported(f"import sys\nsys.exit(3)\n{GOOD}"), 0, "SystemExit"),
    "os._exit in a function": (
        exported("import os\ndef double(x):\n    return 2 * x\n\ndef halve(x):\n    os._exit(0)"),
        3,
        "ended during this call",
    ),
    "kills its own process group": (
        exported("import os, signal\ndef double(x):\n    return 2 * x\n\ndef halve(x):\n    os.killpg(0, signal.SIGKILL)"),
        3,
        "ended during this call",
    ),
    "changes how its process exits": (
        exported(
            "import os\nreal_exit = os._exit\nos._exit = lambda code: real_exit(3)\ndef double(x):\n    return x\n\ndef halve(x):\n    return x / 2"
        ),
        1,
        "should be 4",
    ),
    "network call": (
        exported(
            "import urllib.request\ndef double(x):\n    return urllib.request.urlopen('http://93.184.215.14/').status\n\ndef halve(x):\n    return x / 2"
        ),
        1,
        "network access is disabled",
    ),
    "name lookup": (
        exported(
            "import socket\ndef double(x):\n    return socket.gethostbyname('example.com')\n\ndef halve(x):\n    return x / 2"
        ),
        1,
        "",
    ),
    "writes outside its folder": (
        exported(
            f"import os, pathlib\npathlib.Path(os.path.expanduser('~/stray.txt')).write_text('x')\npathlib.Path('../stray.txt').write_text('x')\n{GOOD}"
        ),
        4,
        "",
    ),
    "deletes its working directory": (exported(f"import os, shutil\nshutil.rmtree(os.getcwd())\n{GOOD}"), 4, ""),
    # The grader names no hidden-test path on the command line or in the environment it
    # hands down; without the tests in hand, this `double` is wrong and earns nothing.
    "reads the hidden tests": (
        exported(
            "import os, sys\nPATHS = sys.argv + [os.environ.get('AUTOGRADER_HIDDEN_TESTS', '')]\nHIDDEN = any(p.endswith('.py') and 'def test_doubles' in open(p).read() for p in PATHS)\ndef double(x):\n    return 2 * x if HIDDEN else x\n\ndef halve(x):\n    return x / 2"
        ),
        1,
        "",
    ),
    "overwrites the hidden tests": (
        exported(f"import sys\nfor p in sys.argv:\n    if p.endswith('.py'):\n        open(p, 'w').write('')\n{GOOD}"),
        4,
        "",
    ),
    "prints a hundred megabytes": (
        exported("def double(x):\n    print('x' * 10**8)\n    return 2 * x\n\ndef halve(x):\n    return x / 2"),
        4,
        "",
    ),
    "non-UTF-8 output and messages": (
        exported(
            "import sys\ndef double(x):\n    sys.stdout.buffer.write(bytes([255, 254, 0]))\n    return 2 * x\n\ndef halve(x):\n    raise ValueError('bad \\udcff byte')"
        ),
        3,
        "ValueError",
    ),
    "huge numbers": (exported("def double(x):\n    return 10 ** 100_000\n\ndef halve(x):\n    return x / 2"), 1, ""),
    "NaN results": (exported("def double(x):\n    return 2 * x\n\ndef halve(x):\n    return float('nan')"), 3, "should be 2"),
    "wrong return type": (exported("def double(x):\n    return str(2 * x)\n\ndef halve(x):\n    return x / 2"), 1, "should be 4"),
    "path in default_exp": (exported(GOOD, default_exp="../../escaped"), 0, "not a module name"),
    "kills its parent process": (
        exported(
            "import os, signal\ndef double(x):\n    return 2 * x\n\ndef halve(x):\n    os.kill(os.getppid(), signal.SIGKILL)"
        ),
        3,
        "",
    ),
    "imports the grader": (exported(f"import autograder.pytest_plugin\n{GOOD}"), 0, "may not use the grader"),
    "patches pytest to pass every test": (
        exported(f"import pytest\npytest.Function.runtest = lambda self: None\n{GOOD}"),
        0,
        "may not change pytest",
    ),
    "patches the interpreter": (exported(f"import sys\nsetattr(sys, 'exit', print)\n{GOOD}"), 0, "may not change"),
    "nbgrader metadata tampered": (tampered(), 4, ""),
    "writes a malformed record into its results": (exported(MALFORMED), 4, ""),
    "writes verdicts into its results as it exits": (exported(INFLATE + "def double(x):\n    return x\n" + HALVE), 1, ""),
    # Its junk on the socket to the judge garbles its own answers, from the start: no
    # process can keep its own code from writing on its own socket. Forging gains nothing.
    "writes verdicts into every file it has open": (
        exported(EVERY_FD + "def double(x):\n    return x\n" + HALVE),
        0,
        "not an answer",
    ),
    "signals the judge": (exported(SIGNALS + GOOD), 4, ""),
    "kills the process that starts its sessions": (exported(KILLS_ZYGOTE + HALVE), 1, "should be 4"),
    "sends the judge a forged answer": (exported(FORGED_ANSWER + HALVE), 1, "not an answer"),
    "sends the judge a message of a terabyte": (exported(HUGE_ANSWER + HALVE), 1, "not an answer"),
    "returns what cannot be sent": (
        exported("import threading\ndef double(x):\n    return threading.Lock()\n" + HALVE),
        1,
        "should be 4",
    ),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Every submission of the corpus graded in one batch, two at a time; the class has one good submission too."""
    root = tmp_path_factory.mktemp("class")
    hidden = root / "hidden"
    (hidden / "numbers").mkdir(parents=True)
    (hidden / "numbers" / "test_numbers.py").write_text(HIDDEN_NUMBERS)
    submitted = root / "submitted"
    for kind, (content, _, _) in {**CORPUS, "good": (exported(GOOD), 4, "")}.items():
        path = submitted / kind / "numbers" / "numbers.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    other = submitted / "notebook from another chapter" / "numbers"
    other.mkdir(parents=True)
    (other / "training_data.ipynb").write_bytes(exported(GOOD))
    limits = Limits(notebook_seconds=60, test_seconds=3, memory_mb=1024)
    results = grade_class(submitted, hidden, limits, out=root / "graded", workers=2)
    return {r.student: r for r in results}, hidden


def feedback(result) -> str:
    return "\n".join([*result.messages, *(t.output for t in result.tests)])


def test_the_corpus_is_large():
    "Does the corpus cover at least thirty kinds of bad input?"
    assert len(CORPUS) + 1 >= 30


@pytest.mark.slow
@pytest.mark.parametrize("kind", CORPUS)
def test_bad_input_earns_honest_points_with_a_message(graded, kind):
    "Does each bad submission get exactly the points its working code earns, and a message that says what went wrong?"
    results, _ = graded
    _, points, phrase = CORPUS[kind]
    result = results[kind]
    assert result.max_score == 4
    assert result.score == points, feedback(result)
    assert phrase in feedback(result)
    for test in result.tests:
        test.output.encode("utf-8")  # every message is valid text: this raises if not


@pytest.mark.slow
def test_feedback_never_shows_the_hidden_tests_code(graded):
    "Does no message of any submission quote the hidden tests' source, names or path, even from a run that ended abnormally?"
    results, _ = graded
    leaks = {kind: feedback(r) for kind, r in results.items() if any(s in feedback(r) for s in ("learner.", "test_numbers"))}
    assert not leaks, leaks


@pytest.mark.slow
def test_the_batch_goes_on(graded):
    "Is the good submission graded in full, and the one from another chapter told so, despite the rest of the class?"
    results, _ = graded
    assert results["good"].score == 4
    other = results["notebook from another chapter"]
    assert other.score == 0 and any("not an exercise of numbers" in m for m in other.messages)


@pytest.mark.slow
def test_hidden_tests_survive_the_class(graded):
    "Are the hidden tests unchanged after a class that tried to overwrite them?"
    _, hidden = graded
    assert (hidden / "numbers" / "test_numbers.py").read_text() == HIDDEN_NUMBERS


def raider(folder: str) -> bytes:
    """A submission that, for two seconds once loaded, deletes every grader folder it finds in ``folder``.

    Those folders hold each grading's copy of the hidden tests and its results.
    """
    raid = (
        "import glob, shutil, time\n"
        "end = time.monotonic() + 2\n"
        "while time.monotonic() < end:\n"
        f"    for path in glob.glob({folder + '/autograder-grader-*'!r}):\n"
        "        shutil.rmtree(path, ignore_errors=True)\n"
        "    time.sleep(0.005)\n"
    )
    return exported(raid + GOOD)


@pytest.mark.slow
@pytest.mark.parametrize("private_tmp", [True, False], ids=["private /tmp", "shared /tmp"])
def test_a_submission_cannot_change_its_neighbours_tests(tmp_path, monkeypatch, private_tmp):
    """Graded two at a time beside a submission that deletes every grader folder it finds, do the others keep their points?

    They do with a private /tmp. Without one (no namespaces), those it reached fail every
    test with a message saying so: never silently, never with points. The raider sorts
    first, so the other worker grades its neighbours one after another while it searches.
    """
    if not private_tmp:
        monkeypatch.setattr(runner, "namespaces_available", lambda: False)
    elif not private_tmp_available():
        pytest.skip("this system allows no mount namespace inside a user namespace: graded code shares /tmp")
    # The grader's temporary folder, here rather than /tmp, so that without a private
    # /tmp the raider can harm only this test's gradings.
    shared = tmp_path / "tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    (tmp_path / "hidden" / "numbers").mkdir(parents=True)
    (tmp_path / "hidden" / "numbers" / "test_numbers.py").write_text(HIDDEN_NUMBERS)
    for student, content in {
        "a raider": raider(str(shared)),
        "b": exported(GOOD),
        "c": exported(GOOD),
        "d": exported(GOOD),
    }.items():
        path = tmp_path / "submitted" / student / "numbers" / "numbers.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    results = grade_class(tmp_path / "submitted", tmp_path / "hidden", Limits(test_seconds=10), workers=2)
    neighbours = {r.student: r for r in results if r.student != "a raider"}
    assert all(r.max_score == 4 for r in neighbours.values())
    if private_tmp:
        assert {name: r.score for name, r in neighbours.items()} == {"b": 4, "c": 4, "d": 4}, [feedback(r) for r in results]
        return
    reached = [r for r in neighbours.values() if r.score < 4]
    assert reached, "the raider reached no neighbour, so the private /tmp above proves nothing"
    for result in reached:
        assert result.score == 0 and all(t.output.startswith(TAMPERED) for t in result.tests), feedback(result)


def directive_attacks(victim: str) -> dict[str, bytes]:
    """Notebooks whose extra nbdev directives point an export at ``victim`` (a dotted path from /).

    nbdev obeys more than the `#| export` lines that the grader checks: a second directive,
    one written `# | ...`, `exporti`, a second `default_exp`. A module name with a leading
    dot is a path from the root, and nbdev would append to that file from the grader's
    process. The grader writes modules itself, from the checked directives only.
    """
    attacks = {
        "a second directive under `#| export`": [f"#| export\n#| exporti .{victim}\n{GOOD}"],
        "`# | export` with a space": [f"#| export\n{GOOD}", f"# | export .{victim}\nPWNED = 1\n"],
        "`#| exporti`": [f"#| export\n{GOOD}", f"#| exporti .{victim}\nPWNED = 2\n"],
        "a second `default_exp`": [f"#| default_exp .{victim}", f"#| export\n{GOOD}"],
    }
    return {
        kind: nbformat.writes(notebook(code_cell("#| default_exp numbers"), *map(code_cell, cells))).encode()
        for kind, cells in attacks.items()
    }


@pytest.mark.slow
def test_export_directives_cannot_write_outside_the_package(tmp_path):
    "Does a notebook whose nbdev directives name a file outside the package earn its honest points and leave that file alone?"
    # A folder whose path is a dotted name (no dashes), as the attack needs.
    victims = Path(tempfile.mkdtemp(prefix="victim_"))
    try:
        victim = victims / "grader_source.py"
        victim.write_text("# the grader's own code\n")
        dotted = ".".join(victim.with_suffix("").parts[1:])
        (tmp_path / "hidden" / "numbers").mkdir(parents=True)
        (tmp_path / "hidden" / "numbers" / "test_numbers.py").write_text(HIDDEN_NUMBERS)
        for kind, content in directive_attacks(dotted).items():
            path = tmp_path / "submitted" / kind / "numbers" / "numbers.ipynb"
            path.parent.mkdir(parents=True)
            path.write_bytes(content)
        results = grade_class(tmp_path / "submitted", tmp_path / "hidden", Limits(test_seconds=10), workers=2)
        assert victim.read_text() == "# the grader's own code\n"
        assert sorted(victims.iterdir()) == [victim]
        assert {r.student: r.score for r in results} == {kind: 4 for kind in directive_attacks(dotted)}
    finally:
        shutil.rmtree(victims)
