"""Drivers of the software-testing chapter: the learner's Hypothesis strategies drawn, their tests run on each version."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from autograder.mutation import compile_version, run_learner_tests


def draw_examples(strategy, n: int) -> list | None:
    """``n`` examples of the learner's Hypothesis strategy, the same on every run; None if it is not a strategy."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis.strategies import SearchStrategy

    if not isinstance(strategy, SearchStrategy):
        return None
    examples = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example):
        examples.append(example)

    collect()
    return examples


def learner_test_names(learner) -> list[str]:
    """The test functions the learner wrote, across all the modules their notebook exported."""
    return [name for name, value in learner.everything().items() if name.startswith("test") and inspect.isfunction(value)]


def run_learner_tests_on(learner, reference: Callable, source: str | None) -> dict[str, str | None]:
    """The learner's tests that ask for ``reference``'s name as a fixture, run on ``source`` (None: on the reference).

    ``source`` is a version of the reference's source (``mutation.version_source``): a
    correct copy or a mutant, compiled here as the reference was. Per test, None if it
    passed, else why it failed.
    """
    version = reference if source is None else compile_version(reference, source)
    return run_learner_tests(learner.everything(), reference.__name__, version)
