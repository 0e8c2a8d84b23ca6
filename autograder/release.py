"""Release: ``exercises/`` is generated from ``solutions/`` by nbgrader, never edited by hand.

nbgrader's generate_assignment replaces each solution region with
``raise NotImplementedError()``, removes hidden-test regions and clears outputs.
``--check`` generates into a scratch folder and compares, so CI catches a solution
that was changed without releasing it again.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

from autograder.paths import EXERCISES, ROOT, SOLUTIONS


def chapters() -> list[str]:
    """The assignments: one per chapter folder in solutions/ (not the cardfraud/ package a solution run exports)."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))


def generate(target: Path) -> None:
    """Run nbgrader's generate_assignment for every chapter, writing into ``target``."""
    for chapter in chapters():
        cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", chapter, "--force", "--no-db", "--log-level=WARN"]
        cmd += [f"--CourseDirectory.root={ROOT}", f"--CourseDirectory.release_directory={target}"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader could not release {chapter}:\n{done.stdout}{done.stderr}")


def release() -> None:
    """Regenerate exercises/ from solutions/."""
    generate(EXERCISES)


def stale_files() -> list[str]:
    """Files of exercises/ that differ from a fresh release (missing and extra ones too)."""
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "exercises"
        generate(fresh)
        return differences(fresh, EXERCISES)


def differences(fresh: Path, current: Path, shown_as: Path = Path("exercises")) -> list[str]:
    """What differs between a fresh release and ``current``, each path shown under ``shown_as``."""
    if not current.exists():
        return [f"{shown_as}/ (missing)"]
    comparison = filecmp.dircmp(fresh, current, ignore=[".ipynb_checkpoints", "__pycache__", ".hypothesis"])
    found = [f"{shown_as / name} (differs)" for name in comparison.diff_files]
    found += [f"{shown_as / name} (missing)" for name in comparison.left_only]
    found += [f"{shown_as / name} (not in solutions/)" for name in comparison.right_only]
    for name in comparison.common_dirs:
        found += differences(fresh / name, current / name, shown_as / name)
    return sorted(found)
