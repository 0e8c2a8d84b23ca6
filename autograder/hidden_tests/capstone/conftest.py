"""Fixtures shared by the capstone's hidden tests."""

import pytest

from casestudy.warehouse import generate_warehouse


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    # Not the notebook's seed or size, so an answer tuned to the notebook's data fails here.
    return generate_warehouse(tmp_path_factory.mktemp("warehouse") / "w", n_transactions=8_000, seed=5)
