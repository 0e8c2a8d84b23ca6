"""Training throughput of the case-study model: CPU vs GPU, float32 vs bfloat16 (and float16).

The GPU chapter's model, ``FraudNet`` with merchant embeddings, is trained on the
case-study training set (Parquet shards from ``casestudy.training``) with
the reference ``train_step`` (and ``scaled_step`` for float16), and measured with the
reference ``throughput``: warm-up first, the device synchronised before each clock
reading. Each step takes the next batch from CPU memory (pinned for the GPU) and
copies it to the device, as a real training loop does, so the figures include the
copy. Every contestant starts from the same weights and must reach the same loss,
within the precision's tolerance, after the same steps, before it is timed.

    .venv/bin/python benchmarks/gpu_training.py                 # CPU only here; CPU and GPU on a GPU machine
    .venv/bin/python benchmarks/gpu_training.py --hidden 256    # a wider MLP, where a GPU pays more
"""

from __future__ import annotations

import argparse
import itertools
import tempfile

import torch
from common import machine, reference, warehouse_at

from casestudy.model import FraudNet, FraudNetConfig
from casestudy.training import n_merchants, read_shards, write_training_shards


def contestants(cuda: bool) -> list[tuple[str, torch.device, torch.dtype | None]]:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    found = [("CPU float32", cpu, None), ("CPU bfloat16 autocast", cpu, torch.bfloat16)]
    if cuda:
        found += [("GPU float32", gpu, None), ("GPU bfloat16 autocast", gpu, torch.bfloat16)]
        found += [("GPU float16 + GradScaler", gpu, torch.float16)]
    return found


def stepper(examples: tuple, batch_size: int, device: torch.device, amp_dtype, hidden: int, merchants: int):
    """A model, an optimizer and a no-argument step over the next batch, for ``throughput``."""
    training = reference("training")
    torch.manual_seed(0)
    model = FraudNet(FraudNetConfig(n_merchants=merchants, hidden=hidden)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batches = list(zip(*(t.split(batch_size) for t in examples)))[:-1]  # full batches only
    if device.type == "cuda":
        batches = [tuple(t.pin_memory() for t in batch) for batch in batches]
    cycle = itertools.cycle(batches)
    losses = []
    if amp_dtype == torch.float16:
        scaler = torch.amp.GradScaler(device.type)

        def step():
            losses.append(training.scaled_step(model, next(cycle), optimizer, scaler, device, amp_dtype))
    else:

        def step():
            losses.append(training.train_step(model, next(cycle), optimizer, device, amp_dtype))

    return step, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="payments in the warehouse (about half are training rows)")
    parser.add_argument("--data", help="warehouse folder: reused if it holds one, else generated there")
    parser.add_argument("--batch-sizes", default="1024,4096,16384", help="comma-separated batch sizes")
    parser.add_argument("--hidden", type=int, default=32, help="width of the MLP (the chapter's model: 32)")
    parser.add_argument("--iters", type=int, default=50, help="timed steps per measurement")
    args = parser.parse_args()
    print(machine())
    cuda = torch.cuda.is_available()
    print(f"GPU: {torch.cuda.get_device_name() if cuda else 'none (GPU figures pending a machine with one)'}")
    checkpoints = reference("checkpoints")

    with warehouse_at(args.data, args.rows) as warehouse, tempfile.TemporaryDirectory() as shards:
        examples = read_shards(write_training_shards(warehouse, shards))
        merchants = n_merchants(warehouse)
    print(f"training set: {len(examples[-1]):,} rows, {merchants:,} merchants, MLP width {args.hidden}")

    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        print(f"\nbatch size {batch_size:,}, best of 5 runs of {args.iters} steps after warm-up")
        print(f"{'contestant':<28}{'samples/s':>14}{'vs CPU float32':>16}{'loss after 20 steps':>22}")
        baseline = expected = None
        for name, device, amp_dtype in contestants(cuda):
            step, losses = stepper(examples, batch_size, device, amp_dtype, args.hidden, merchants)
            for _ in range(20):
                step()
            check = torch.stack(losses).float().cpu()[-5:].mean().item()
            expected = expected or check
            if abs(check - expected) > 0.02:
                raise SystemExit(
                    f"{name} trains differently: loss {check:.4f} after 20 steps, CPU float32 reached {expected:.4f}"
                )
            best = max(checkpoints.throughput(step, batch_size, device, warmup=3, iters=args.iters) for _ in range(5))
            baseline = baseline or best
            print(f"{name:<28}{best:>14,.0f}{best / baseline:>15.2f}x{check:>22.4f}")


if __name__ == "__main__":
    main()
