"""Serving the fraud model: one model call per request vs dynamic micro-batching.

Two scoring services answer the same ``POST /score`` with the same model bundle:

- ``unbatched``: the reference ``create_app`` of the serving chapter: every request is
  validated, scored alone, and answered;
- ``batched``: the same validation, then the reference ``MicroBatcher`` gathers
  concurrent requests (up to ``--max-batch``, waiting at most ``--max-wait-ms`` after
  the first) into one model call.

The model is the case study's ``FraudNet``, behind a stand-in for an accelerator: every
call also holds the one "device" for a fixed time plus a little per payment (``--call-ms``,
``--item-ms``), the cost structure of a GPU, where launching work costs far more than
one more row in the batch. ``--call-ms 0`` serves the bare CPU model instead.

Each service runs in a process of its own (uvicorn on 127.0.0.1); the reference
``load_test`` sends requests to it open loop at a fixed rate, and the reference
``latency_report`` computes nearest-rank percentiles. Reported, from one run:

- p50 and p99 of both services at one fixed rate (``--rate``);
- the highest rate each sustains with p99 under ``--p99-bound-ms`` and every request
  answered with 200, from a sweep of rates: the throughput at the same p99 bound.

    .venv/bin/python benchmarks/serving.py
    .venv/bin/python benchmarks/serving.py --call-ms 0      # the bare model on this CPU
"""

import argparse
import contextlib
import gc
import multiprocessing
import tempfile
import threading
import time

from common import machine, reference

from booktools.loopback import run_async, serve
from casestudy.serving import example_bundle, load_bundle

PAYMENT = {
    "payment_id": "p-1",
    "category": "electronics",
    "merchant_id": 17,
    "log_amount_vs_card_avg_30d": 1.2,
    "log_payments_prev_1h": 0.7,
    "abroad": True,
    "night": False,
}


class Device:
    """One accelerator: calls take turns, each costs ``call_ms`` plus ``item_ms`` per payment."""

    def __init__(self, predict, call_ms: float, item_ms: float):
        self.predict, self.call_ms, self.item_ms = predict, call_ms, item_ms
        self.lock = threading.Lock()

    def __call__(self, payments: list) -> list[float]:
        with self.lock:
            if self.call_ms:
                time.sleep((self.call_ms + self.item_ms * len(payments)) / 1000)
            return self.predict(payments)


class OnDevice:
    """A loaded bundle whose model calls go through the device: what both services serve."""

    def __init__(self, bundle, call_ms: float, item_ms: float):
        self.version, self.predict = bundle.version, Device(bundle.predict, call_ms, item_ms)


def make_app(kind: str, bundle_dir: str, call_ms: float, item_ms: float, max_batch: int, max_wait_ms: float):
    service, batching = reference("service"), reference("batching")
    from fastapi import FastAPI

    def load_model():
        return OnDevice(load_bundle(bundle_dir), call_ms, item_ms)

    if kind == "unbatched":
        return service.create_app(load_model)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.bundle = load_model()
        async with batching.MicroBatcher(app.state.bundle.predict, max_batch, max_wait_ms) as batcher:
            app.state.batcher = batcher
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/score")
    async def score(payment: service.PaymentRequest):
        probability = await app.state.batcher.submit(payment.model_dump())
        return {"payment_id": payment.payment_id, "fraud_probability": probability, "model_version": app.state.bundle.version}

    return app


def run_server(kind: str, settings: tuple, urls, stop) -> None:
    """In a process of its own, so that the server and the load generator do not share one interpreter."""
    with serve(make_app(kind, *settings)) as server:
        # What long-lived services do: the objects that exist after start-up (PyTorch's
        # among them) are left out of garbage collection, whose full passes over them
        # would otherwise stall the server for a tenth of a second at random moments.
        gc.freeze()
        urls.put(server.url)
        stop.wait()
        gc.unfreeze()  # frozen objects left at exit make extension modules report leaks


@contextlib.contextmanager
def server_process(kind: str, settings: tuple):
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=run_server, args=(kind, settings, urls, stop), daemon=True)
    process.start()
    try:
        yield urls.get(timeout=120)
    finally:
        stop.set()
        process.join(10)
        process.kill()


def load(url: str, rate: float, seconds: float) -> dict:
    batching = reference("batching")
    samples = run_async(batching.load_test(f"{url}/score", rate, seconds, PAYMENT, timeout=2.0), timeout=seconds + 30)
    answered = [s.latency_ms for s in samples if s.status == 200]
    report = batching.latency_report(answered) if answered else {"p50_ms": float("inf"), "p99_ms": float("inf")}
    return {**report, "sent": len(samples), "ok": len(answered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=150, help="requests per second for the fixed-rate comparison")
    parser.add_argument("--rates", default="50,100,150,200,300,400,600,800,1000", help="the sweep's rates")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load test")
    parser.add_argument("--p99-bound-ms", type=float, default=100.0)
    parser.add_argument("--call-ms", type=float, default=4.0, help="fixed cost of one model call on the stand-in device")
    parser.add_argument("--item-ms", type=float, default=0.05, help="cost per payment on the stand-in device")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=2.0)
    args = parser.parse_args()
    print(machine())
    device = f"stand-in device: {args.call_ms:g} ms per call + {args.item_ms:g} ms per payment" if args.call_ms else "bare CPU"
    print(f"model: FraudNet ({device}); batching: up to {args.max_batch}, waiting at most {args.max_wait_ms:g} ms")

    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        bundle_dir = str(example_bundle(folder))
        settings = (bundle_dir, args.call_ms, args.item_ms, args.max_batch, args.max_wait_ms)
        results = {}
        for kind in ("unbatched", "batched"):
            with server_process(kind, settings) as url:
                load(url, 50, 1.0)  # warm-up: connections, first calls, lazy imports
                fixed = load(url, args.rate, args.seconds)
                sweep = {rate: load(url, rate, args.seconds) for rate in rates}
            results[kind] = (fixed, sweep)

    print(f"\nat {args.rate:g} requests/s for {args.seconds:g} s (open loop)")
    print(f"{'service':<12}{'p50 ms':>9}{'p99 ms':>9}{'answered':>12}")
    for kind, (fixed, _) in results.items():
        print(f"{kind:<12}{fixed['p50_ms']:>9.1f}{fixed['p99_ms']:>9.1f}{fixed['ok']:>7}/{fixed['sent']}")

    print(f"\nsweep: p99 in ms at each offered rate (requests answered with 200 / sent); bound {args.p99_bound_ms:g} ms")
    print(f"{'rate/s':>8}" + "".join(f"{kind:>24}" for kind in results))
    for rate in rates:
        cells = [
            f"{results[kind][1][rate]['p99_ms']:>10.1f} ({results[kind][1][rate]['ok']}/{results[kind][1][rate]['sent']})"
            for kind in results
        ]
        print(f"{rate:>8g}" + "".join(f"{cell:>24}" for cell in cells))
    best = {}
    for kind, (_, sweep) in results.items():
        within = [rate for rate, r in sweep.items() if r["p99_ms"] <= args.p99_bound_ms and r["ok"] == r["sent"]]
        best[kind] = max(within, default=0.0)
    print(f"\nhighest rate with p99 <= {args.p99_bound_ms:g} ms and every request answered:")
    for kind, rate in best.items():
        print(f"{kind:<12}{rate:>8g} requests/s")
    if best["unbatched"]:
        print(f"batched / unbatched: {best['batched'] / best['unbatched']:.1f}x at the same p99 bound")


if __name__ == "__main__":
    main()
