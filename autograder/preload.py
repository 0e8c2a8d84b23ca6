"""What every graded notebook needs, imported once by the grading fork server.

Each notebook is graded in a process forked from a server that has already imported
these, so PyTorch, DuckDB, pandas and pytest are loaded once per grading run instead of
once per notebook: most of the grader's speed over a kernel per notebook comes from here.
"""

import duckdb  # noqa: F401
import fastapi  # noqa: F401
import httpx  # noqa: F401
import hypothesis  # noqa: F401
import numpy  # noqa: F401
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import pytest  # noqa: F401
import torch  # noqa: F401

import autograder.casestudy.features  # noqa: F401
import autograder.casestudy.images  # noqa: F401
import autograder.casestudy.model  # noqa: F401
import autograder.casestudy.serving  # noqa: F401
import autograder.loopback  # noqa: F401
import autograder.mutation  # noqa: F401
import autograder.pytest_plugin  # noqa: F401
import autograder.testing  # noqa: F401
