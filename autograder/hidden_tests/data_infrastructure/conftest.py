"""Fixtures shared by the data-infrastructure chapter's hidden tests."""

import pytest

from casestudy.warehouse import generate_warehouse, warehouse_connection


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    # Not the notebook's seed or size, so an answer tuned to the notebook's data fails here.
    return generate_warehouse(tmp_path_factory.mktemp("warehouse") / "w", n_transactions=12_000, seed=7)


@pytest.fixture
def con(learner, warehouse):
    """A connection made by the tests, so parts after the first do not depend on it (beside the learner's code)."""
    return learner.beside(warehouse_connection, warehouse)
