"""Hidden tests of exercises/data_infrastructure/training_data.ipynb."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from autograder.drivers.data import first_of_endless_stream, read_with_dataloader, relation_of

FEATURES = ["amount", "hour", "online"]


def examples_table(n: int, seed: int = 3) -> pa.Table:
    """n training examples with mixed column types, in a known order."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(np.arange(n), pa.int64()),
            "amount": rng.gamma(2, 30, n).round(2),
            "hour": pa.array(rng.integers(0, 24, n), pa.int32()),
            "online": pa.array(rng.integers(0, 2, n), pa.int32()),
            "label": pa.array((rng.random(n) < 0.1).astype(np.int32)),
            "note": [f"row {i}" for i in range(n)],
        }
    )


def examples(learner, n: int, seed: int = 3):
    """The examples as a DuckDB relation, made beside the learner's code."""
    return learner.beside(relation_of, examples_table(n, seed))


def returned_paths(result, what="write_shards") -> list[Path]:
    assert isinstance(result, list), f"{what} should return a list of paths, but returned {type(result).__name__}"
    return [Path(p) for p in result]


# --- Part 1: write_shards ----------------------------------------------------------


@pytest.mark.graded("write_shards", points=1, visible=True)
def test_shards_named_and_counted(learner, tmp_path):
    "Writes ceil(rows / rows_per_shard) files named part-00000.parquet, ... and returns them in order."
    paths = returned_paths(learner.write_shards(examples(learner, 2_500), tmp_path / "shards", 1_000))
    names = [p.name for p in paths]
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"], (
        f"2,500 rows at 1,000 per shard should give part-00000.parquet to part-00002.parquet; got {names}"
    )
    on_disk = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert on_disk == names, f"the folder should hold exactly the returned shards; it holds {on_disk}"


@pytest.mark.graded("write_shards", points=1, visible=True)
def test_shards_keep_rows_in_order(learner, tmp_path):
    "Keeps every row once, in order, with the relation's column names and types."
    paths = returned_paths(learner.write_shards(examples(learner, 2_500), tmp_path, 1_000))
    written = pq.ParquetDataset(paths).read() if paths else None
    expected = examples_table(2_500)
    assert written is not None and written.num_rows == expected.num_rows, (
        f"the shards should hold {expected.num_rows} rows together; they hold {0 if written is None else written.num_rows}"
    )
    assert written.schema.names == expected.schema.names, f"columns should be {expected.schema.names}, got {written.schema.names}"
    for name in expected.schema.names:
        assert written.schema.field(name).type == expected.schema.field(name).type, (
            f"column `{name}` should stay {expected.schema.field(name).type}, but was written as {written.schema.field(name).type}"
        )
    assert written.column("id").to_pylist() == expected.column("id").to_pylist(), "rows should keep the relation's order"


@pytest.mark.graded("write_shards", points=1)
def test_shard_sizes_and_edge_cases(learner, tmp_path):
    "Fills every shard but the last, creates missing folders, and writes nothing for no rows."
    paths = returned_paths(learner.write_shards(examples(learner, 7_001), tmp_path / "a" / "b", 2_000))
    sizes = [pq.ParquetFile(p).metadata.num_rows for p in paths]
    assert sizes == [2_000, 2_000, 2_000, 1_001], f"7,001 rows at 2,000 per shard should give 2000, 2000, 2000, 1001; got {sizes}"
    exact = returned_paths(learner.write_shards(examples(learner, 4_000), tmp_path / "exact", 2_000))
    assert len(exact) == 2, f"4,000 rows at 2,000 per shard should give 2 shards (no empty third one); got {len(exact)}"
    empty = returned_paths(learner.write_shards(examples(learner, 0), tmp_path / "empty", 100))
    assert empty == [], f"a relation without rows should give no shards, got {[p.name for p in empty]}"


# --- Part 2: ParquetStream ---------------------------------------------------------


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> list[Path]:
    """Five shards of 900 rows, written by the tests (not by the learner's write_shards)."""
    folder = tmp_path_factory.mktemp("shards")
    table = examples_table(4_500, seed=11)
    paths = []
    for i in range(5):
        paths.append(folder / f"part-{i:05d}.parquet")
        pq.write_table(table.slice(i * 900, 900), paths[-1], row_group_size=300)
    return paths


def all_rows(batches) -> tuple[np.ndarray, np.ndarray]:
    features = [x for x, _ in batches]
    labels = [y for _, y in batches]
    return torch.cat(features).numpy(), torch.cat(labels).numpy()


def reference_rows(shards) -> tuple[np.ndarray, np.ndarray]:
    table = pq.ParquetDataset(shards).read()
    features = np.stack([table.column(c).to_numpy() for c in FEATURES], axis=1).astype(np.float32)
    return features, table.column("label").to_numpy().astype(np.float32)


@pytest.mark.graded("parquet_stream", points=1, visible=True)
def test_stream_yields_float_tensors(learner, shards):
    "Yields (features, labels) float32 tensors shaped [rows, n_features] and [rows]."
    first = next(iter(learner.ParquetStream(shards, FEATURES, "label", batch_size=256)))
    assert isinstance(first, tuple) and len(first) == 2, "each item should be a pair (features, labels)"
    x, y = first
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor), "features and labels should be torch tensors"
    assert x.dtype == torch.float32 and y.dtype == torch.float32, f"both should be float32, got {x.dtype} and {y.dtype}"
    assert x.ndim == 2 and x.shape[1] == len(FEATURES), f"features should be [rows, {len(FEATURES)}], got {list(x.shape)}"
    assert y.shape == (x.shape[0],), f"labels should be [rows] with rows = {x.shape[0]}, got {list(y.shape)}"


@pytest.mark.graded("parquet_stream", points=1, visible=True)
def test_stream_reads_every_row_in_order(learner, shards):
    "Without workers, yields every row once in shard order, no batch above batch_size."
    batches = list(learner.ParquetStream(shards, FEATURES, "label", batch_size=256))
    largest = max(len(y) for _, y in batches)
    assert largest <= 256, f"no batch should hold more than batch_size=256 rows; the largest held {largest}"
    features, labels = all_rows(batches)
    expected_features, expected_labels = reference_rows(shards)
    assert features.shape == expected_features.shape, f"expected {len(expected_labels)} rows in all, got {len(labels)}"
    assert np.array_equal(labels, expected_labels), "the labels should come out in the shards' row order"
    assert np.allclose(features, expected_features), "features should be the columns asked for, in that order"


@pytest.mark.graded("parquet_stream", points=1)
def test_stream_feature_order(learner, shards):
    "Takes the feature columns in the order asked for, and never the label."
    x, y = next(iter(learner.ParquetStream(shards, ["online", "amount"], "label", batch_size=64)))
    table = pq.read_table(shards[0]).slice(0, len(y))
    assert x.shape[1] == 2, f"two features were asked for, got {x.shape[1]} columns"
    assert np.allclose(x[:, 0].numpy(), table.column("online").to_numpy()), "column 0 should be `online`, the first one asked for"
    assert np.allclose(x[:, 1].numpy(), table.column("amount").to_numpy()), "column 1 should be `amount`"


@pytest.mark.graded("parquet_stream", points=1)
def test_stream_splits_shards_between_workers(learner, shards):
    "With two DataLoader workers, every row arrives exactly once."
    stream = learner.ParquetStream(shards, FEATURES, "label", batch_size=200)
    features, _ = all_rows(learner.beside(read_with_dataloader, stream, num_workers=2))
    expected, _ = reference_rows(shards)
    assert len(features) == len(expected), (
        f"two workers together should deliver the {len(expected)} rows once; they delivered {len(features)} "
        "(does every worker read every shard?)"
    )
    got = np.sort(features[:, 0])
    assert np.allclose(got, np.sort(expected[:, 0])), "the two workers should deliver exactly the shards' rows"


# --- Part 3: shuffled --------------------------------------------------------------


def shuffle_list(learner, items, buffer_size, seed):
    result = learner.shuffled(items, buffer_size, seed)
    assert iter(result) is result, "shuffled should be a generator (use `yield`), not return a list"
    return list(result)


@pytest.mark.graded("shuffled", points=1, visible=True)
def test_shuffled_is_a_permutation(learner):
    "Yields every item exactly once."
    got = shuffle_list(learner, range(1_000), 50, 0)
    assert sorted(got) == list(range(1_000)), (
        f"every one of the 1,000 items should come out exactly once; got {len(got)} items, {len(set(got))} distinct"
    )


@pytest.mark.graded("shuffled", points=1, visible=True)
def test_shuffled_is_seeded(learner):
    "The same seed gives the same order, another seed another, and the order is mixed."
    first = shuffle_list(learner, range(200), 20, 1)
    assert first == shuffle_list(learner, range(200), 20, 1), "the same seed should give the same order"
    assert first != shuffle_list(learner, range(200), 20, 2), "a different seed should give a different order"
    assert first != list(range(200)), "the items came out in their input order: nothing was shuffled"


@pytest.mark.graded("shuffled", points=1)
def test_shuffled_holds_a_bounded_buffer(learner):
    "Reads lazily, holding at most buffer_size items; buffer_size=1 keeps the input order."
    first, read = learner.beside(first_of_endless_stream, learner.shuffled, 10, 0)
    assert read <= 11, f"with buffer_size=10, the first item should come after reading at most 11 items; {read} were read"
    assert 0 <= first <= 10, f"the first item out must be one of the first 11 in; got {first}"
    assert shuffle_list(learner, range(50), 1, 0) == list(range(50)), "buffer_size=1 should give the input order"
