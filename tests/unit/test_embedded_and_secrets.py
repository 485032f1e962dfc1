"""The embedded dataset keeps JSON rows as Parquet and gives them back as they were; sealed
secrets open only with their key and for their resource; compute types a stream as it types
JSON rows."""

import pytest

from gateway.compute import engine
from gateway.dataplane import embedded
from gateway.dataplane.embedded import (
    TableSource,
    decoded,
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
    data, count, sha = rows_to_parquet(rows)
    assert count == len(rows)
    table = decoded(sha, lambda: data)
    return json_rows(TableSource(table).open(batch_size=batch_size, columns=columns))


def test_posted_rows_come_back_from_parquet_with_their_values_and_kinds():
    names = ["id", "name", "score", "ok", "mixed", "nested"]
    assert _back(ROWS) == [{n: r.get(n) for n in names} for r in ROWS]


def test_a_declared_field_no_row_uses_reads_as_nulls_and_columns_are_chosen():
    back = _back(ROWS, columns=["district", "id"])
    assert back == [{"district": None, "id": i} for i in (1, 2, 3)]


def test_no_rows_make_an_empty_dataset_that_reads_as_nothing():
    data, count, sha = rows_to_parquet([])
    assert count == 0 and len(sha) == 64 and parquet_columns(data) == []
    assert json_rows(TableSource(decoded(sha, lambda: data)).open(columns=["a"])) == []


def test_a_dataset_is_decoded_once_by_its_digest_and_bytes_that_differ_are_refused(
    monkeypatch,
):
    monkeypatch.setattr(embedded, "_decoded", type(embedded._decoded)())
    data, _, sha = rows_to_parquet(ROWS)
    loads = []

    def load():
        loads.append(1)
        return data

    first = decoded(sha, load)
    assert decoded(sha, load) is first and loads == [1]  # the second exchange reads nothing
    other, _, other_sha = rows_to_parquet(ROWS[:1])  # a replaced dataset: another key
    assert decoded(other_sha, lambda: other).num_rows == 1
    with pytest.raises(ValueError, match="SHA-256"):
        decoded("0" * 64, lambda: data)  # bytes that are not the dataset the key names
    assert "0" * 64 not in embedded._decoded


def test_the_decoded_cache_is_bounded_by_bytes(monkeypatch):
    monkeypatch.setattr(embedded, "_decoded", type(embedded._decoded)())
    tables = [rows_to_parquet([{"i": i, "pad": "x" * 1000}]) for i in range(4)]
    one = decoded(tables[0][2], lambda: tables[0][0]).nbytes
    monkeypatch.setattr(embedded, "CACHE_BYTES", one * 2)
    for data, _, sha in tables[1:]:
        decoded(sha, lambda data=data: data)
    assert list(embedded._decoded) == [tables[2][2], tables[3][2]]  # least recent out


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
    data, _, sha = rows_to_parquet(rows)
    stream = TableSource(decoded(sha, lambda: data)).open(columns=columns)
    got = engine.table_from_stream(stream, columns, text=text)
    want = engine.table_from_rows(rows, columns, text=text)
    assert got.to_pylist() == want.to_pylist()
    assert got.schema.types == want.schema.types
