"""Fixtures shared by the capstone's hidden tests: one generated warehouse, its training shards and a bundle."""

import pytest

from casestudy.warehouse import generate_warehouse


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory):
    # Not the notebook's seed or size, so an answer tuned to the notebook's data fails here.
    return generate_warehouse(tmp_path_factory.mktemp("warehouse") / "w", n_transactions=8_000, seed=5)


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """Requests to 127.0.0.1 go straight there, whatever proxy the grading machine's environment names."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
