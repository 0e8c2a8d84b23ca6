"""Hidden tests of exercises/serving/scoring_service.ipynb.

Part 1 validates payments with the learner's schema directly. Parts 2 and 3 run on a
real server: uvicorn on 127.0.0.1, on a free port, started by
``booktools.loopback.serve`` and stopped when each test ends, whatever happened in it.
Every request has a timeout, so a service that hangs fails its test instead of the run.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import shutil
from contextlib import contextmanager

import httpx
import pytest
import torch

from autograder.drivers.serving import CountingCalls, app_to_measure, serve_app, validated
from autograder.judge import type_name
from booktools.loopback import ServerDidNotStart, run_async
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

# The learner's app is served in the learner's process; the tests, in the judge, reach it
# over loopback (see autograder/judge.py).

TIMEOUT = 10.0  # seconds per request: generous on a busy machine, short next to the test's own limit
JSON = {"content-type": "application/json"}
VERSION = "2025-06-test"  # not the notebook's version, so an answer that hard-codes it fails


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory):
    # Not the notebook's seed either: the scores differ from the ones the learner saw.
    return example_bundle(tmp_path_factory.mktemp("bundle") / "fraudnet", version=VERSION, n_merchants=250, seed=3)


@pytest.fixture
def load_model(bundle_dir):
    """What create_app is given: a function that loads the bundle."""
    return functools.partial(load_bundle, bundle_dir)


def payment(i: int = 0, **changes) -> dict:
    """A valid payment; different ``i`` give different features, so different scores."""
    return {
        **EXAMPLE_PAYMENT,
        "payment_id": f"pay_{i:05d}",
        "category": CATEGORY_NAMES[i % len(CATEGORY_NAMES)],
        "merchant_id": (i * 37) % 300,
        "log_amount_vs_card_avg_30d": round(math.sin(i) * 3, 3),
        "log_payments_prev_1h": (i % 5) * 0.7,
        "abroad": i % 3 == 0,
        "night": i % 4 == 1,
        **changes,
    }


def first_error(errors: list[dict]) -> str:
    e = errors[0]
    return f"{'.'.join(str(p) for p in e['loc']) or 'the payment'}: {e['msg']}"


def validate(learner, model, data) -> tuple[dict | None, list[dict] | None]:
    """(what the learner's pydantic model made of ``data``, None), or (None, the errors it raised)."""
    return learner.beside(validated, model, data)


def refused(learner, model, data) -> list[dict] | None:
    """The errors of the validation of ``data``, or None if the model accepted it."""
    return validate(learner, model, data)[1]


# --- Part 1: the request schema -------------------------------------------------------------


@pytest.mark.graded("schemas", points=1, visible=True)
def test_accepts_valid_payments(learner):
    "Accepts valid payments of every category, bounds included, with their values unchanged."
    valid = [payment(i) for i in range(len(CATEGORY_NAMES))]
    for field, (low, high) in FEATURE_RANGES.items():
        valid += [payment(0, **{field: low}), payment(1, **{field: high})]
    valid.append(payment(2, merchant_id=0))
    for data in valid:
        parsed, errors = validate(learner, learner.PaymentRequest, data)
        assert errors is None, f"a valid payment was refused ({first_error(errors or [{}])}): {data}"
        assert parsed == data, f"PaymentRequest changed a valid payment: {data} became {parsed}"


@pytest.mark.graded("schemas", points=1, visible=True)
def test_refuses_unknown_categories(learner):
    "Refuses a category the model does not know, with an error on `category` that lists the known ones."
    for bad in ("casino", "", "ELECTRONICS"):
        error = refused(learner, learner.PaymentRequest, payment(category=bad))
        assert error is not None, f"category {bad!r} was accepted: only the categories in CATEGORY_NAMES are known to the model"
        on_category = [e for e in error if e["loc"] == ("category",)]
        assert on_category, f"category {bad!r} was refused, but the error is not on `category`: {first_error(error)}"
        message = on_category[0]["msg"]
        assert all(name in message for name in CATEGORY_NAMES), (
            f"the error for category {bad!r} should list the known categories, so the caller sees what is allowed; it says: {message}"
        )


@pytest.mark.graded("schemas", points=1)
def test_refuses_non_finite_and_out_of_range_numbers(learner):
    "Refuses NaN, infinities and values outside FEATURE_RANGES in both numeric features, with the error on that field."
    for field, (low, high) in FEATURE_RANGES.items():
        for bad in (math.nan, math.inf, -math.inf, low - 0.5, high + 0.5):
            error = refused(learner, learner.PaymentRequest, payment(**{field: bad}))
            assert error is not None, f"{field} = {bad} was accepted" + (
                ": NaN fails every comparison, so a range check alone lets it through" if math.isnan(bad) else ""
            )
            assert any(e["loc"] == (field,) for e in error), (
                f"{field} = {bad} was refused, but the error is not on `{field}`: {first_error(error)}"
            )


@pytest.mark.graded("schemas", points=1)
def test_batch_size_is_bounded(learner):
    "Accepts 1 to MAX_BATCH payments per batch; refuses more or none at once, with one error that says the limit."
    for n in (1, MAX_BATCH):
        errors = refused(learner, learner.BatchRequest, {"payments": [payment(i) for i in range(n)]})
        assert errors is None, f"a batch of {n} valid payments was refused: {first_error(errors or [{}])}"
    for n in (0, MAX_BATCH + 1):
        error = refused(learner, learner.BatchRequest, {"payments": [payment(i) for i in range(n)]})
        assert error is not None, f"a batch of {n} payments was accepted; a batch holds 1 to MAX_BATCH ({MAX_BATCH})"
        if n:
            assert str(MAX_BATCH) in first_error(error), (
                f"the error for {n} payments should say the limit, {MAX_BATCH}: {first_error(error)}"
            )
    # Invalid payments, far too many: one error about the size, not ten thousand about the payments.
    error = refused(learner, learner.BatchRequest, {"payments": [{"payment_id": i} for i in range(10_000)]})
    assert error is not None and len(error) == 1, (
        "a batch of 10,000 invalid payments should be refused for its size alone, before any payment is validated "
        f"(got {len(error) if error else 0} errors)"
    )


# --- Part 2: create_app ------------------------------------------------------------------------


@contextmanager
def service(learner, load_model):
    """The learner's service on a real server, and an HTTP client for it."""
    app = learner.create_app(load_model)
    assert callable(app), f"create_app should return the FastAPI app it built, not {app!r}"
    try:
        with learner.beside(serve_app, app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            yield server, client
    except ServerDidNotStart as e:
        reason = str(e).strip().splitlines()
        raise AssertionError(f"your service did not start with a valid bundle: {' / '.join(reason[-3:])}") from None


def explain(response: httpx.Response, server) -> str:
    """What came back, and for a 500 what the app raised."""
    text = f"{response.status_code} {response.text[:300]}"
    if response.status_code >= 500:
        text += f" (your app raised {server.last_error() or 'an error'})"
    return text


def strict_json(response: httpx.Response):
    """The response body as standard JSON: NaN and Infinity are not JSON, whatever Python's json module reads."""

    def not_json(constant):
        raise ValueError(f"{constant} is not valid JSON")

    try:
        return json.loads(response.text, parse_constant=not_json)
    except ValueError as e:
        raise AssertionError(f"the response body is not valid JSON ({e}): {response.text[:200]}") from None


def scored(response: httpx.Response, server, expected: dict, probability: float, what: str) -> None:
    assert response.status_code == 200, f"{what}: expected 200, got {explain(response, server)}"
    body = strict_json(response)
    assert body.get("payment_id") == expected["payment_id"], f"{what}: the answer is for payment {body.get('payment_id')!r}"
    assert body.get("model_version") == VERSION, (
        f"{what}: model_version should be the bundle's, {VERSION!r}; got {body.get('model_version')!r}"
    )
    got = body.get("fraud_probability")
    assert isinstance(got, float) and abs(got - probability) < 1e-5, (
        f"{what}: fraud_probability should be the model's, {probability:.6f}, got {got!r}"
    )


def assert_alive(client: httpx.Client, server, after: str) -> None:
    health = client.get("/health")
    assert health.status_code == 200, f"after {after}, /health should still answer 200; got {explain(health, server)}"


@pytest.mark.graded("create_app", points=1, visible=True)
def test_starts_and_answers_probes(learner, load_model):
    'Starts with a valid bundle; /health answers 200 {"status": "ok"}, /ready 200 with the bundle\'s version.'
    with service(learner, load_model) as (server, client):
        health = client.get("/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}, (
            f'GET /health should answer 200 {{"status": "ok"}}; got {explain(health, server)}'
        )
        ready = client.get("/ready")
        assert ready.status_code == 200, f"GET /ready should answer 200 once the model is loaded; got {explain(ready, server)}"
        body = ready.json()
        assert body.get("status") == "ready" and body.get("model_version") == VERSION, (
            f'GET /ready should answer {{"status": "ready", "model_version": "{VERSION}"}} (the bundle\'s version); got {body}'
        )


@pytest.mark.graded("create_app", points=1, visible=True)
def test_scores_payments(learner, bundle_dir, load_model):
    "POST /score answers each payment with its id, the model's probability of fraud and the bundle's version."
    reference = load_bundle(bundle_dir)
    payments = [payment(i) for i in (0, 7, 13)]
    with service(learner, load_model) as (server, client):
        for data, probability in zip(payments, reference.predict(payments)):
            scored(client.post("/score", json=data), server, data, probability, f"POST /score with payment {data['payment_id']}")


@pytest.mark.graded("create_app", points=1, visible=True)
def test_malformed_requests_get_422_with_reason(learner, load_model):
    "Answers malformed JSON, a missing field, a wrong type or a list with 422 and details that say where, and lives on."
    cases = {
        "JSON cut short": ('{"payment_id": "pay_1", "category":', None),
        "a missing field": (json.dumps({k: v for k, v in payment(1).items() if k != "category"}), "category"),
        "a string for merchant_id": (json.dumps(payment(2, merchant_id="twelve")), "merchant_id"),
        "a list instead of a payment": ("[1, 2, 3]", None),
    }
    with service(learner, load_model) as (server, client):
        for what, (body, field) in cases.items():
            response = client.post("/score", content=body, headers=JSON)
            assert response.status_code == 422, f"POST /score with {what} should get 422; got {explain(response, server)}"
            detail = strict_json(response).get("detail")
            assert isinstance(detail, list) and detail and all({"loc", "msg", "type"} <= set(d) for d in detail), (
                f'the 422 for {what} should hold {{"detail": [{{"loc": ..., "msg": ..., "type": ...}}, ...]}}; got {response.text[:300]}'
            )
            if field:
                assert any(d["loc"] and d["loc"][-1] == field for d in detail), (
                    f"the 422 for {what} should point at `{field}`; its details point at {[d['loc'] for d in detail]}"
                )
        assert_alive(client, server, "malformed requests")


@pytest.mark.graded("create_app", points=1)
def test_nan_and_infinity_get_422_not_500(learner, load_model):
    "Answers a request holding NaN or Infinity with a 422 in valid JSON, not a 500."
    data = json.dumps(payment(3))
    bodies = {
        "NaN as payment_id": data.replace('"pay_00003"', "NaN"),
        "Infinity as merchant_id": re.sub(r'"merchant_id": \d+', '"merchant_id": Infinity', data),
        "-Infinity as payment_id in a batch": '{"payments": [' + data.replace('"pay_00003"', "-Infinity") + "]}",
    }
    with service(learner, load_model) as (server, client):
        for what, body in bodies.items():
            path = "/score/batch" if "batch" in what else "/score"
            response = client.post(path, content=body, headers=JSON)
            assert response.status_code == 422, (
                f"POST {path} with {what} should get 422; got {explain(response, server)}. "
                "Does the error response repeat the invalid input, and is NaN valid JSON?"
            )
            strict_json(response)
        assert_alive(client, server, "requests holding NaN")


@pytest.mark.graded("create_app", points=1)
def test_scores_batches_in_order(learner, bundle_dir, load_model):
    "POST /score/batch answers with one score per payment, in their order, equal to single scores."
    reference = load_bundle(bundle_dir)
    payments = [payment(i) for i in range(40, 60)]
    expected = reference.predict(payments)
    with service(learner, load_model) as (server, client):
        response = client.post("/score/batch", json={"payments": payments})
        assert response.status_code == 200, f"POST /score/batch with 20 payments: expected 200, got {explain(response, server)}"
        scores = strict_json(response).get("scores")
        assert isinstance(scores, list) and len(scores) == len(payments), (
            f'the answer should be {{"scores": [...]}} with 20 scores; got {response.text[:200]}'
        )
        for i, (data, probability) in enumerate(zip(payments, expected)):
            got = scores[i]
            assert got.get("payment_id") == data["payment_id"], (
                f"score {i} should be for {data['payment_id']} (the order of the request), but is for {got.get('payment_id')!r}"
            )
            assert abs(got.get("fraud_probability", math.nan) - probability) < 1e-5 and got.get("model_version") == VERSION, (
                f"the score of {data['payment_id']} in a batch should be {probability:.6f} with version {VERSION}; got {got}"
            )
        scored(client.post("/score", json=payments[5]), server, payments[5], expected[5], "POST /score after a batch")


@pytest.mark.graded("create_app", points=1)
def test_refuses_oversized_bodies_with_413(learner, load_model):
    "Refuses a body over MAX_BODY_BYTES with 413, with or without a Content-Length, and lives on."
    too_big = MAX_BODY_BYTES * 4

    def chunks():  # sent with chunked transfer encoding: no Content-Length to check
        for _ in range(too_big // 4096):
            yield b" " * 4096

    with service(learner, load_model) as (server, client):
        declared = client.post("/score/batch", content=b" " * too_big, headers=JSON)
        assert declared.status_code == 413, (
            f"a body of {too_big:,} bytes (MAX_BODY_BYTES is {MAX_BODY_BYTES:,}) should be refused with 413 before it is "
            f"parsed; got {explain(declared, server)}"
        )
        chunked = client.post("/score/batch", content=chunks(), headers=JSON)
        assert chunked.status_code == 413, (
            f"a body of {too_big:,} bytes sent in chunks, without a Content-Length, should be refused with 413 too: "
            f"count the bytes as they arrive; got {explain(chunked, server)}"
        )
        assert declared.text and chunked.text, "a 413 should come with a message that says what is wrong"
        assert_alive(client, server, "oversized requests")


@pytest.mark.graded("create_app", points=1)
def test_model_is_loaded_once_at_start_up(learner, bundle_dir):
    "Calls load_model once, at start-up, before the first request, and never again."
    load_model = learner.beside(CountingCalls, functools.partial(load_bundle, bundle_dir))
    data = payment(21)
    [probability] = load_bundle(bundle_dir).predict([data])
    with service(learner, load_model) as (server, client):
        calls = load_model.calls
        assert calls == 1, (
            f"once the server has started, and before any request, load_model should have been called once; it was called "
            f"{calls} times (load it in the lifespan, before the yield)"
        )
        for _ in range(3):
            scored(client.post("/score", json=data), server, data, probability, "POST /score")
        client.post("/score/batch", json={"payments": [data]})
        client.get("/ready")
        calls = load_model.calls
        assert calls == 1, (
            f"after five requests, load_model was called {calls} times: load the model once, at start-up, "
            "not per request (each load reads and checks the weights again)"
        )


def broken_bundles(folder) -> dict:
    """Bundles that must not be served, by what is wrong with them."""
    missing = folder / "never-written"
    corrupt = example_bundle(folder / "corrupt", version=VERSION)
    with (corrupt / "weights.pt").open("r+b") as f:
        f.seek(300)
        f.write(b"\xff" * 8)
    mismatched = example_bundle(folder / "mismatched", version=VERSION)
    config = json.loads((mismatched / "config.json").read_text())
    wider = save_bundle(FraudNet(FraudNetConfig(n_merchants=250, hidden=64)), folder / "wider", version=VERSION)
    config["weights"]["sha256"] = json.loads((wider / "config.json").read_text())["weights"]["sha256"]
    shutil.copy(wider / "weights.pt", mismatched / "weights.pt")
    (mismatched / "config.json").write_text(json.dumps(config))
    return {
        "a folder that does not exist": missing,
        "corrupt weights": corrupt,
        "a config that does not fit its weights": mismatched,
    }


@pytest.mark.graded("create_app", points=1)
def test_refuses_to_start_without_a_sound_bundle(learner, tmp_path):
    "Refuses to start on a missing, corrupt or inconsistent bundle, with load_bundle's message."
    torch.manual_seed(0)
    for what, folder in broken_bundles(tmp_path).items():
        try:
            load_bundle(folder)
        except BundleError as e:
            expected = str(e)
        started, said = False, ""
        try:
            with learner.beside(serve_app, learner.create_app(functools.partial(load_bundle, folder))):
                started = True
        except (ServerDidNotStart, BundleError) as e:  # refusing as early as create_app is fine too
            said = str(e)
        assert not started, (
            f"the service started although load_model() raised for {what}: it would answer every request with an error, "
            "or with wrong scores. Let the error stop the start-up"
        )
        assert expected in said, (
            f"with {what}, the start-up should fail with load_model's own error ({expected}); it said: {said[-300:]}"
        )


@pytest.mark.graded("create_app", points=1)
def test_concurrent_requests_each_get_their_own_answer(learner, bundle_dir, load_model):
    "Answers 100 concurrent requests, valid and invalid mixed, each with its own score or a 422."
    reference = load_bundle(bundle_dir)
    payments = [payment(i) for i in range(100, 200)]
    broken = set(range(0, 100, 5))  # every fifth lacks its category
    bodies = [{k: v for k, v in p.items() if k != "category"} if i in broken else p for i, p in enumerate(payments)]
    expected = reference.predict(payments)

    async def all_at_once(url: str) -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, limits=limits) as client:
            return await asyncio.gather(*(client.post("/score", json=body) for body in bodies))

    with service(learner, load_model) as (server, client):
        responses = run_async(all_at_once(server.url), timeout=60)
        for i, response in enumerate(responses):
            if i in broken:
                assert response.status_code == 422, (
                    f"request {i} lacked `category` and should get 422; got {explain(response, server)}"
                )
            else:
                scored(response, server, payments[i], expected[i], f"request {i} of 100 sent at once")
        assert_alive(client, server, "100 concurrent requests")


# --- Part 3: instrument ----------------------------------------------------------------------


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
LABEL = re.compile(r'\s*([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_exposition(text: str) -> list[tuple[str, dict, float]]:
    """(name, labels, value) of each sample in Prometheus's text format; AssertionError for a malformed line."""
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = SAMPLE.match(line.strip())
        assert match, f"this line of /metrics is not in Prometheus's text format (name{{labels}} value): {line!r}"
        name, labels_text, value = match.groups()
        labels, end = {}, 0
        for label in LABEL.finditer(labels_text or ""):
            assert label.start() == end, f"malformed labels in /metrics: {line!r}"
            labels[label.group(1)] = label.group(2)
            end = label.end()
        assert end == len(labels_text or ""), f'malformed labels in /metrics (write them as name="value", ...): {line!r}'
        try:
            samples.append((name, labels, float(value)))
        except ValueError:
            raise AssertionError(f"the value on this line of /metrics is not a number: {line!r}") from None
    return samples


def value(samples, name: str, **labels) -> float | None:
    """The value of the sample with this name and exactly these labels; None if there is none."""
    found = [v for n, ls, v in samples if n == name and ls == labels]
    assert len(found) <= 1, f"/metrics holds {name} with labels {labels} {len(found)} times"
    return found[0] if found else None


@contextmanager
def instrumented(learner):
    app = learner.instrument(learner.beside(app_to_measure))
    assert type_name(app) == "FastAPI", f"instrument(app) should return the app it instrumented, not {type_name(app)}"
    with learner.beside(serve_app, app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        yield server, client


def scrape(client: httpx.Client, server) -> list[tuple[str, dict, float]]:
    response = client.get("/metrics")
    assert response.status_code == 200, f"GET /metrics should answer 200; got {explain(response, server)}"
    assert response.headers.get("content-type", "").startswith("text/plain"), (
        f"/metrics should be text/plain (EXPOSITION_TYPE), not {response.headers.get('content-type')}"
    )
    return parse_exposition(response.text)


@pytest.mark.graded("instrument", points=1, visible=True)
def test_counts_requests_by_method_route_and_status(learner):
    "Counts requests in http_requests_total by method, route and status, served as text at /metrics."
    with instrumented(learner) as (server, client):
        for _ in range(3):
            client.get("/ok")
        client.post("/echo", json={"a": 1})
        client.post("/echo", json={"b": 2})
        client.post("/echo", content="not json", headers=JSON)
        samples = scrape(client, server)
    expected = {("GET", "/ok", "200"): 3, ("POST", "/echo", "200"): 2, ("POST", "/echo", "422"): 1}
    for (method, route, status), n in expected.items():
        got = value(samples, "http_requests_total", method=method, route=route, status=status)
        assert got == n, f'http_requests_total{{method="{method}",route="{route}",status="{status}"}} should be {n}; got {got}'


@pytest.mark.graded("instrument", points=1, visible=True)
def test_latency_histogram(learner):
    "Times requests in a cumulative histogram per route, with the BUCKETS as bounds, a +Inf bucket, _sum and _count."
    with instrumented(learner) as (server, client):
        for _ in range(2):
            client.get("/slow")  # at least 30 ms each
        for _ in range(3):
            client.get("/ok")
        samples = scrape(client, server)
    name = "http_request_duration_seconds"
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, math.inf]
    for route, n in (("/slow", 2), ("/ok", 3)):
        buckets = [(float(ls["le"]), v) for nm, ls, v in samples if nm == f"{name}_bucket" and ls.get("route") == route]
        assert sorted(b for b, _ in buckets) == bounds, (
            f'{name}_bucket for route="{route}" should have le = the BUCKETS and "+Inf"; got {sorted(b for b, _ in buckets)}'
        )
        counts = [v for _, v in sorted(buckets)]
        assert counts == sorted(counts) and counts[-1] == n, (
            f"the buckets of {route} should be cumulative (each counts the requests at most that slow), "
            f'le="+Inf" counting all {n} requests; got {counts}'
        )
        assert value(samples, f"{name}_count", route=route) == n, f'{name}_count{{route="{route}"}} should be {n}'
        total = value(samples, f"{name}_sum", route=route)
        assert total is not None and 0 < total < 10, f'{name}_sum{{route="{route}"}} should be the total seconds; got {total}'
    slow = dict((float(ls["le"]), v) for nm, ls, v in samples if nm == f"{name}_bucket" and ls.get("route") == "/slow")
    assert slow[0.025] == 0 and value(samples, f"{name}_sum", route="/slow") >= 0.06, (
        "/slow sleeps 30 ms: none of its 2 requests belongs in le=0.025, and their _sum is at least 0.06 s "
        "(time with time.perf_counter(), in seconds)"
    )


@pytest.mark.graded("instrument", points=1)
def test_route_templates_not_raw_paths(learner):
    'Labels requests with the route\'s template (/items/{item_id}), and "unmatched" for unknown paths.'
    with instrumented(learner) as (server, client):
        for item in (1, 2, 3, 0):
            client.get(f"/items/{item}")
        client.get("/no/such/path/42")
        samples = scrape(client, server)
    routes = {ls.get("route") for n, ls, _ in samples if n == "http_requests_total"}
    raw = sorted(r for r in routes if r and re.fullmatch(r"/items/\d+|/no/such/path/42", r))
    assert not raw, f"route labels should be templates, one series per route, not per path; found {raw}"
    template = "/items/{item_id}"
    got = value(samples, "http_requests_total", method="GET", route=template, status="200")
    assert got == 3, f'http_requests_total{{method="GET",route="{template}",status="200"}} should be 3; got {got}'
    got = value(samples, "http_requests_total", method="GET", route=template, status="404")
    assert got == 1, f"the handler's own 404 for item 0 should count under {template} with status 404; got {got}"
    got = value(samples, "http_requests_total", method="GET", route="unmatched", status="404")
    assert got == 1, f'a request to a path no route matches should count as route="unmatched", status="404"; got {got}'


@pytest.mark.graded("instrument", points=1)
def test_counts_handler_errors_as_500(learner):
    "Counts and times a request whose handler raises as a 500, and keeps serving."
    with instrumented(learner) as (server, client):
        for _ in range(2):
            # A fresh connection each time: after an unhandled error the server closes the one it was on.
            response = client.get("/boom", headers={"connection": "close"})
            assert response.status_code == 500, (
                f"GET /boom raises in its handler; the client should get 500, got {response.status_code}"
            )
        assert client.get("/ok").status_code == 200, "after handler errors, the app should keep serving"
        samples = scrape(client, server)
    got = value(samples, "http_requests_total", method="GET", route="/boom", status="500")
    assert got == 2, (
        'two requests whose handler raised should count as http_requests_total{method="GET",route="/boom",status="500"} 2; '
        f"got {got} (the exception passes through your middleware: try/finally)"
    )
    count = value(samples, "http_request_duration_seconds_count", route="/boom")
    assert count == 2, f"the requests whose handler raised should be timed too: _count for /boom should be 2, got {count}"
