"""The serving chapter: its grading, its given code, and a reference service that bad input cannot knock over.

Each graded submission below is the reference with one typical mistake. It still
serves, batches or loads, so only tests that send the right request, at the right
moment, can tell it from a correct one. The whole class (these, the reference and the
untouched exercises) is graded in one batch, in the grader's sandbox.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import math
import shutil
import socket
from types import ModuleType

import httpx
import pytest
import torch

from autograder.export import export_notebook
from autograder.paths import SOLUTIONS
from booktools.loopback import ServerDidNotStart, run_async, serve
from casestudy.model import FraudNet, FraudNetConfig
from casestudy.serving import (
    CATEGORY_NAMES,
    EXAMPLE_PAYMENT,
    FEATURE_RANGES,
    MAX_BATCH,
    MAX_BODY_BYTES,
    BundleError,
    example_bundle,
    load_bundle,
    save_bundle,
)
from tests.helpers import typical_mistakes_tests

CHAPTER = "serving"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start)
MISTAKES = {
    "range_check_lets_nan_through": (
        "scoring_service",
        "schemas",
        [
            ('        if not math.isfinite(value):\n            raise ValueError(f"must be a finite number, not {value}")\n', ""),
            ("if not low <= value <= high:", "if value < low or value > high:"),
        ],
        ["Refuses NaN, infinities"],
    ),
    # The unknown category reaches the model's preprocessing, which raises: a 500.
    "category_unchecked": (
        "scoring_service",
        "schemas",
        [("        if category not in CATEGORY_NAMES:\n", "        if False:\n")],
        ["Refuses a category the model does not know"],
    ),
    "batch_size_checked_after_its_payments": (
        "scoring_service",
        "schemas",
        [('@field_validator("payments", mode="before")', '@field_validator("payments", mode="after")')],
        ["Accepts 1 to MAX_BATCH payments"],
    ),
    "model_loaded_per_request": (
        "scoring_service",
        "create_app",
        [
            (
                "        bundle = request.app.state.bundle\n        [probability]",
                "        bundle = load_model()\n        [probability]",
            )
        ],
        ["Calls load_model once"],
    ),
    "default_validation_handler": (
        "scoring_service",
        "create_app",
        [("    @app.exception_handler(RequestValidationError)\n", "")],
        ["Answers a request holding NaN or Infinity"],
    ),
    "no_body_limit": (
        "scoring_service",
        "create_app",
        [(", max_body_size=MAX_BODY_BYTES", "")],
        ["Refuses a body over MAX_BODY_BYTES"],
    ),
    "starts_without_a_model": (
        "scoring_service",
        "create_app",
        [
            (
                "        app.state.bundle = load_model()\n",
                "        try:\n            app.state.bundle = load_model()\n        except Exception:\n            pass\n",
            )
        ],
        ["Refuses to start on a missing, corrupt or inconsistent bundle"],
    ),
    "raw_paths_as_labels": (
        "scoring_service",
        "instrument",
        [('route.path if route else "unmatched"', "request.url.path")],
        ["Labels requests with the route's template"],
    ),
    "buckets_not_cumulative": (
        "scoring_service",
        "instrument",
        [('le="{bound}"}} {cumulative}\')', 'le="{bound}"}} {n}\')')],
        ["Times requests in a cumulative histogram"],
    ),
    "handler_errors_not_counted": (
        "scoring_service",
        "instrument",
        [
            (
                "        try:\n            response = await call_next(request)\n            status = response.status_code\n"
                "            return response\n        finally:\n",
                "        response = await call_next(request)\n        status = response.status_code\n        if True:\n",
            ),
            ("time.perf_counter() - start)\n", "time.perf_counter() - start)\n        return response\n"),
        ],
        ["Counts and times a request whose handler raises"],
    ),
    "percentile_off_by_one": (
        "latency_and_batching",
        "latency_report",
        [("values[math.ceil(p * n / 100) - 1]", "values[int(p * n / 100)]")],
        ["Reports count, mean, nearest-rank", "Uses nearest rank"],
    ),
    "sorts_the_callers_list": (
        "latency_and_batching",
        "latency_report",
        [
            (
                "    values = [float(v) for v in latencies_ms]\n",
                "    latencies_ms.sort()\n    values = [float(v) for v in latencies_ms]\n",
            )
        ],
        ["Leaves the caller's list in its order"],
    ),
    "waits_for_a_full_batch": (
        "latency_and_batching",
        "micro_batcher",
        [("            remaining = deadline - time.monotonic()\n", "            remaining = None  # no deadline\n")],
        [
            "Gives each of 100 concurrent callers",
            "Answers a lone request",
            "Waits up to max_wait_ms",
            "Closes a batch max_wait_ms after its first item",
            "Gives a failing batch's error",
            "Runs predict_batch in a worker thread",
        ],
    ),
    "timer_restarts_with_each_item": (
        "latency_and_batching",
        "micro_batcher",
        [("            remaining = deadline - time.monotonic()\n", "            remaining = self.max_wait_ms / 1000\n")],
        ["Closes a batch max_wait_ms after its first item"],
    ),
    "never_waits_for_more": (
        "latency_and_batching",
        "micro_batcher",
        [("            remaining = deadline - time.monotonic()\n", "            remaining = 0\n")],
        ["Waits up to max_wait_ms for more"],
    ),
    "predicts_in_the_event_loop": (
        "latency_and_batching",
        "micro_batcher",
        [("await asyncio.to_thread(self.predict_batch, items)", "self.predict_batch(items)")],
        ["Runs predict_batch in a worker thread"],
    ),
    "worker_dies_with_its_batch": (
        "latency_and_batching",
        "micro_batcher",
        [("            except Exception as error:", "            except ZeroDivisionError as error:")],
        ["Gives a failing batch's error"],
    ),
    "closed_loop": (
        "latency_and_batching",
        "load_test",
        [("return list(await asyncio.gather(*(one(i) for i in range(n))))", "return [await one(i) for i in range(n)]")],
        ["Keeps sending at the rate", "Gives up on requests after `timeout` seconds"],
    ),
    "no_timeout": (
        "latency_and_batching",
        "load_test",
        [
            (
                "                async with asyncio.timeout(timeout):\n                    response = await",
                "                if True:\n                    response = await",
            )
        ],
        ["Gives up on requests after `timeout` seconds"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(
    CHAPTER, MISTAKES, caught_by_self_check=False
)


# --- The reference service under bad input --------------------------------------------------------


@pytest.fixture(scope="module")
def reference_service(tmp_path_factory) -> ModuleType:
    """The reference solution's service module, exported from its notebook as a learner's would be."""
    [path] = export_notebook(SOLUTIONS / CHAPTER / "scoring_service.ipynb", tmp_path_factory.mktemp("reference"))
    spec = importlib.util.spec_from_file_location("reference_service", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return example_bundle(tmp_path_factory.mktemp("bundle") / "fraudnet", version="corpus-1")


def bad_requests() -> list[tuple[str, str, str, bytes | str]]:
    """(what, method, path, body): requests that a scoring service must refuse with a 4xx."""
    good = json.dumps(EXAMPLE_PAYMENT)

    def changed(**fields) -> str:
        return json.dumps({**EXAMPLE_PAYMENT, **fields})

    def without(field) -> str:
        return json.dumps({k: v for k, v in EXAMPLE_PAYMENT.items() if k != field})

    corpus = [
        ("an empty body", "POST", "/score", ""),
        ("JSON cut short", "POST", "/score", good[:40]),
        ("not UTF-8", "POST", "/score", b"\xff\xfe\x00{}"),
        ("null", "POST", "/score", "null"),
        ("a list", "POST", "/score", "[1, 2]"),
        ("a string", "POST", "/score", '"pay"'),
        ("a number too large for a float", "POST", "/score", "1e400"),
        ("JSON nested 50,000 deep", "POST", "/score", "[" * 50_000 + "]" * 50_000),
        ("single quotes", "POST", "/score", good.replace('"', "'")),
        ("an unknown field", "POST", "/score", changed(amount_usd=12.5)),
        ("an unknown category", "POST", "/score", changed(category="casino")),
        ("a category that is a number", "POST", "/score", changed(category=7)),
        ("a category that is null", "POST", "/score", changed(category=None)),
        ("a merchant id that is a string", "POST", "/score", changed(merchant_id="17")),
        ("a merchant id that is a fraction", "POST", "/score", changed(merchant_id=1.5)),
        ("a negative merchant id", "POST", "/score", changed(merchant_id=-1)),
        ("a boolean as a number", "POST", "/score", changed(log_amount_vs_card_avg_30d=True)),
        ("a string as a boolean", "POST", "/score", changed(abroad="yes")),
        ("an empty payment id", "POST", "/score", changed(payment_id="")),
        ("a payment id of 10,000 characters", "POST", "/score", changed(payment_id="p" * 10_000)),
        ("a payment id that is NaN", "POST", "/score", changed(payment_id=math.nan)),
        ("a merchant id that is Infinity", "POST", "/score", changed(merchant_id=math.inf)),
        ("an empty batch", "POST", "/score/batch", '{"payments": []}'),
        ("a batch that is not a list", "POST", "/score/batch", '{"payments": {"a": 1}}'),
        ("a batch of MAX_BATCH + 1", "POST", "/score/batch", json.dumps({"payments": [EXAMPLE_PAYMENT] * (MAX_BATCH + 1)})),
        ("a batch with one bad payment", "POST", "/score/batch", json.dumps({"payments": [EXAMPLE_PAYMENT, {"x": 1}]})),
        (
            "a batch holding -Infinity",
            "POST",
            "/score/batch",
            json.dumps({"payments": [{**EXAMPLE_PAYMENT, "night": -math.inf}]}),
        ),
        ("a body of 1 MB", "POST", "/score/batch", b" " * 2**20),
        ("a GET on /score", "GET", "/score", ""),
        ("an unknown path", "POST", "/score/all", good),
    ]
    for field, (low, high) in FEATURE_RANGES.items():
        corpus += [
            (f"{field} NaN", "POST", "/score", changed(**{field: math.nan})),
            (f"{field} Infinity", "POST", "/score", changed(**{field: math.inf})),
            (f"{field} above its range", "POST", "/score", changed(**{field: high + 1})),
            (f"{field} below its range", "POST", "/score", changed(**{field: low - 1})),
            (f"{field} missing", "POST", "/score", without(field)),
        ]
    return corpus


def standard_json(text: str, what: str):
    """The body parsed as standard JSON, in which NaN and Infinity do not exist."""

    def refuse(constant):
        raise AssertionError(f"{what}: the response holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_bad_input_gets_a_4xx_that_says_why_and_the_service_lives_on(reference_service, bundle_dir):
    "Does the reference service answer each kind of bad request with a 4xx and a reason, and keep serving?"
    app = reference_service.instrument(reference_service.create_app(functools.partial(load_bundle, bundle_dir)))
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        for what, method, path, body in bad_requests():
            response = client.request(method, path, content=body, headers={"content-type": "application/json"})
            assert 400 <= response.status_code < 500, f"{what}: {response.status_code} {response.text[:200]}"
            assert response.text.strip(), f"{what}: a {response.status_code} without a message"
            if response.status_code == 422:
                detail = standard_json(response.text, what)["detail"]
                assert detail and all(d["loc"] and d["msg"] for d in detail), f"{what}: {response.text[:200]}"
        assert client.get("/health").json() == {"status": "ok"}
        assert client.post("/score", json=EXAMPLE_PAYMENT).status_code == 200
        metrics = client.get("/metrics").text
        assert 'status="500"' not in metrics and not server.errors, server.errors


def test_unknown_category_is_named_in_the_reply(reference_service, bundle_dir):
    "Does a 422 for an unknown category name the field and list the categories the model knows?"
    app = reference_service.create_app(functools.partial(load_bundle, bundle_dir))
    with serve(app) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        [detail] = client.post("/score", json={**EXAMPLE_PAYMENT, "category": "casino"}).json()["detail"]
    assert detail["loc"] == ["body", "category"] and "'casino'" in detail["msg"] and "online_gaming" in detail["msg"]


def test_the_notebook_states_the_case_studys_contract(reference_service):
    "Does the service notebook's request contract agree with the case study's given code, which the hidden tests use?"
    assert reference_service.CATEGORY_NAMES == CATEGORY_NAMES
    assert reference_service.FEATURE_RANGES == FEATURE_RANGES
    assert (reference_service.MAX_BATCH, reference_service.MAX_BODY_BYTES) == (MAX_BATCH, MAX_BODY_BYTES)


# --- The model bundle -------------------------------------------------------------------------


def test_a_bundle_round_trips(tmp_path):
    "Does a loaded bundle predict exactly what the saved model does, with its version and vocabulary?"
    torch.manual_seed(1)
    model = FraudNet(FraudNetConfig(n_merchants=40, hidden=16)).eval()
    bundle = load_bundle(save_bundle(model, tmp_path / "b", version="v7"))
    payments = [{**EXAMPLE_PAYMENT, "category": name, "merchant_id": i} for i, name in enumerate(CATEGORY_NAMES)]
    with torch.inference_mode():
        expected = torch.sigmoid(model(*bundle.to_tensors(payments))).tolist()
    assert bundle.predict(payments) == expected
    assert (bundle.version, bundle.categories, bundle.n_merchants) == ("v7", CATEGORY_NAMES, 40)


def test_preprocessing_handles_new_merchants_and_refuses_unknown_categories(tmp_path):
    "Does a merchant unseen in training get the unknown-merchant row, and an unknown category a ValueError?"
    bundle = load_bundle(example_bundle(tmp_path / "b", n_merchants=50))
    _, numeric, merchant = bundle.to_tensors([{**EXAMPLE_PAYMENT, "merchant_id": m} for m in (0, 7, 50, 10**12)])
    assert merchant.tolist() == [0, 7, 0, 0]
    assert numeric[0].tolist() == pytest.approx([2.3, 1.1, 1.0, 0.0])
    with pytest.raises(ValueError, match="unknown category 'casino'"):
        bundle.to_tensors([{**EXAMPLE_PAYMENT, "category": "casino"}])


def _broken(tmp_path, how: str):
    folder = example_bundle(tmp_path / how)
    config = json.loads((folder / "config.json").read_text())
    if how == "no_folder":
        shutil.rmtree(folder)
    elif how == "no_config":
        (folder / "config.json").unlink()
    elif how == "no_weights":
        (folder / "weights.pt").unlink()
    elif how == "config_not_json":
        (folder / "config.json").write_text("{ not json")
    elif how == "flipped_byte":
        data = bytearray((folder / "weights.pt").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / "weights.pt").write_bytes(bytes(data))
    elif how == "sizes_do_not_fit":
        config["model"]["hidden"] = 64
        (folder / "config.json").write_text(json.dumps(config))
    elif how == "weights_outside_the_bundle":
        config["weights"]["file"] = "../weights.pt"
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no_folder", "does not exist"),
        ("no_config", "config.json is missing"),
        ("no_weights", "weights.pt is missing"),
        ("config_not_json", "not valid JSON"),
        ("flipped_byte", "checksum mismatch"),
        ("sizes_do_not_fit", "does not match weights.pt"),
        ("weights_outside_the_bundle", "must name the weights file"),
    ],
)
def test_a_broken_bundle_is_refused_with_a_reason(tmp_path, how, message):
    "Does load_bundle refuse a bundle that is missing, corrupt or inconsistent, saying which and where?"
    folder = _broken(tmp_path, how)
    with pytest.raises(BundleError, match=message) as refused:
        load_bundle(folder)
    assert str(folder) in str(refused.value)


# --- The loopback server helper -----------------------------------------------------------------


def test_serve_binds_loopback_and_stops(reference_service, bundle_dir):
    "Does serve() listen on 127.0.0.1 only, answer at once, and free its port when the block ends?"
    app = reference_service.create_app(functools.partial(load_bundle, bundle_dir))
    with serve(app) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.url}/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", server.port))  # the port is free again


def test_serve_reports_why_an_app_did_not_start(reference_service, tmp_path):
    "Does a start-up that fails raise ServerDidNotStart with the app's own message, promptly?"
    app = reference_service.create_app(functools.partial(load_bundle, tmp_path / "nothing-here"))
    with pytest.raises(ServerDidNotStart, match="nothing-here does not exist"):
        with serve(app):
            pass


def test_serve_gives_up_on_a_start_up_that_hangs():
    "Does serve() stop waiting for a start-up that never ends, and say so?"

    async def hangs_at_start_up(scope, receive, send):
        await asyncio.sleep(3600)

    with pytest.raises(ServerDidNotStart, match="did not start within 0.5 s"):
        with serve(hangs_at_start_up, startup_timeout=0.5, shutdown_timeout=0.5):
            pass


def test_run_async_works_inside_a_running_event_loop():
    "Does run_async run a coroutine where asyncio.run refuses to (inside Jupyter's loop), with a deadline?"

    async def inside_a_notebook():
        assert run_async(asyncio.sleep(0, result=42)) == 42
        with pytest.raises(TimeoutError):
            run_async(asyncio.sleep(10), timeout=0.1)

    asyncio.run(inside_a_notebook())
