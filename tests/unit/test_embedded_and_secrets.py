"""The embedded dataset keeps JSON rows as Parquet and gives them back as they were; sealed
secrets open only with their key and for their resource; compute types a stream as it types
JSON rows."""

import pytest

from gateway.compute import engine
from gateway.dataplane.embedded import (
    ParquetBytesSource,
    json_rows,
    parquet_columns,
    rows_to_parquet,
)
from gateway.dataplane.secrets import SecretBox, SecretsError

ROWS = [
    {"id": 1, "name": "张伟", "score": 1.5, "ok": True, "mixed": 1, "nested": {"a": [1, 2]}},
    {"id": 2, "name": None, "score": 2, "ok": False, "mixed": "N/A", "nested": None},
    {"id": 3, "score": None, "mixed": None, "nested": [1, "x"]},  # keys left out: null
]


def _back(rows, columns=None, batch_size=2):
    data, count, _ = rows_to_parquet(rows)
    assert count == len(rows)
    return json_rows(ParquetBytesSource(data).open(batch_size=batch_size, columns=columns))


def test_posted_rows_come_back_from_parquet_with_their_values_and_kinds():
    names = ["id", "name", "score", "ok", "mixed", "nested"]
    assert _back(ROWS) == [{n: r.get(n) for n in names} for r in ROWS]


def test_a_declared_field_no_row_uses_reads_as_nulls_and_columns_are_chosen():
    back = _back(ROWS, columns=["district", "id"])
    assert back == [{"district": None, "id": i} for i in (1, 2, 3)]


def test_no_rows_make_an_empty_dataset_that_reads_as_nothing():
    data, count, sha = rows_to_parquet([])
    assert count == 0 and len(sha) == 64 and parquet_columns(data) == []
    assert json_rows(ParquetBytesSource(data).open(columns=["a"])) == []


def test_the_same_rows_make_the_same_file():
    assert rows_to_parquet(ROWS)[2] == rows_to_parquet(ROWS)[2]


def test_a_sealed_secret_opens_only_for_its_purpose_and_key(tmp_path):
    box = SecretBox.for_keys_dir(tmp_path / "keys")
    assert (tmp_path / "keys" / "data-secrets.key").stat().st_mode & 0o777 == 0o600
    sealed = box.seal({"password": "hunter2"}, purpose="resource:res_a")
    assert "hunter2" not in sealed and sealed.startswith("v1.")
    assert SecretBox.for_keys_dir(tmp_path / "keys").open_secret(
        sealed, purpose="resource:res_a"
    ) == {"password": "hunter2"}
    with pytest.raises(SecretsError):
        box.open_secret(sealed, purpose="resource:res_b")
    with pytest.raises(SecretsError):
        SecretBox.for_keys_dir(tmp_path / "other").open_secret(sealed, purpose="resource:res_a")
    with pytest.raises(SecretsError):
        box.open_secret(sealed[:-4] + "AAAA", purpose="resource:res_a")


def test_compute_types_a_stream_as_it_types_the_same_json_rows():
    rows = [
        {"year": 2024, "flag": True, "v": 1, "mixed": 1, "t": "a"},
        {"year": 2025, "flag": False, "v": 2.5, "mixed": "x", "t": None},
        {"year": None, "flag": None, "v": None, "mixed": None, "t": "b"},
    ]
    columns = ["year", "flag", "v", "mixed", "t"]
    text = frozenset({"year"})
    data, _, _ = rows_to_parquet(rows)
    stream = ParquetBytesSource(data).open(columns=columns)
    got = engine.table_from_stream(stream, columns, text=text)
    want = engine.table_from_rows(rows, columns, text=text)
    assert got.to_pylist() == want.to_pylist()
    assert got.schema.types == want.schema.types
