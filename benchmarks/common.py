"""What every benchmark script shares: the reference solutions, a warehouse, machine facts.

The contestants on "our" side are the course's reference solutions themselves, exported
from the solution notebooks exactly as a learner's notebook is, so a benchmark can never
drift from what the book teaches.
"""

from __future__ import annotations

import atexit
import importlib
import os
import platform
import resource
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import ModuleType

import duckdb

from autograder.export import export_notebook
from autograder.paths import PACKAGE, SOLUTIONS
from casestudy.warehouse import Warehouse, generate_warehouse

NOTEBOOKS = {
    "warehouse": SOLUTIONS / "data_infrastructure" / "warehouse_queries.ipynb",
    "training_data": SOLUTIONS / "data_infrastructure" / "training_data.ipynb",
    "training_step": SOLUTIONS / "gpu_training" / "training_step.ipynb",
    "resume_and_measure": SOLUTIONS / "gpu_training" / "resume_and_measure.ipynb",
    "scoring_service": SOLUTIONS / "serving" / "scoring_service.ipynb",
    "latency_and_batching": SOLUTIONS / "serving" / "latency_and_batching.ipynb",
}
_exported: Path | None = None


def reference(module: str) -> ModuleType:
    """The reference solution's module ``cardfraud.<module>``, exported from its notebook."""
    global _exported
    if _exported is None:
        _exported = Path(tempfile.mkdtemp(prefix="bench-reference-"))
        atexit.register(shutil.rmtree, _exported, ignore_errors=True)
        for notebook in NOTEBOOKS.values():
            export_notebook(notebook, _exported)
        # First on the path, so a learner package lying around cannot shadow the reference.
        sys.path.insert(0, str(_exported))
    return importlib.import_module(f"{PACKAGE}.{module}")


@contextmanager
def warehouse_at(data: str | None, rows: int) -> Iterator[Warehouse]:
    """A warehouse of ``rows`` payments: in a temporary folder, or in ``data`` (reused if already there)."""
    if data is None:
        with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
            yield generate_warehouse(Path(tmp) / "warehouse", rows, progress=True)
        return
    root = Path(data)
    if (root / "cards.parquet").exists():
        # Only the paths matter to the benchmarks; the generator's seed and days are not recorded on disk.
        found = Warehouse(root, n_transactions=0, seed=0, days=0)
        count = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{found.glob('transactions')}')").fetchone()[0]
        print(f"reusing the warehouse in {root} ({count:,} transactions)")
        yield Warehouse(root, count, seed=0, days=0)
    else:
        yield generate_warehouse(root, rows, progress=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """One line about the machine and library versions, printed with every set of figures."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name in ("duckdb", "pandas", "pyarrow", "numpy", "torch"):
        try:
            versions.append(f"{name} {metadata.version(name)}")  # without importing it
        except metadata.PackageNotFoundError:
            pass
    return f"{cpu}, {os.cpu_count()} cores, {ram:.0f} GiB RAM; Python {platform.python_version()}, " + ", ".join(versions)
