"""Data addresses: each kind validates its fields, and no secret shows in repr, str or a dump."""

import json

import pytest
from pydantic import ValidationError

from gateway.dataplane import parse_sink_address, parse_source_address

SECRET = "s3cr3t-value-never-shown"

ADDRESSES = [
    {"type": "sql", "url": f"postgresql://holder:{SECRET}@db.example/city",
     "table": "public.trips"},
    {"type": "sql", "url": "sqlite:///x.db", "table": "trips", "secret": {"password": SECRET}},
    {"type": "http", "url": "https://m.example/rows", "auth": {"kind": "bearer"},
     "secret": {"token": SECRET}},
    {"type": "http", "url": "https://m.example/rows", "auth": {"kind": "basic", "username": "u"},
     "secret": {"password": SECRET}},
    {"type": "http", "url": "https://m.example/p", "format": "json-pages",
     "auth": {"kind": "header", "header": "X-Api-Key"}, "secret": {"header_value": SECRET}},
    {"type": "object", "endpoint": "http://127.0.0.1:9000", "bucket": "city", "key": "t.parquet",
     "secret": {"access_key_id": SECRET, "secret_access_key": SECRET, "session_token": SECRET}},
]  # fmt: skip


@pytest.mark.parametrize("data", ADDRESSES, ids=lambda d: f"{d['type']}")
def test_secrets_never_appear_in_repr_str_dump_or_public_view(data):
    address = parse_source_address(data)
    for text in (
        repr(address),
        str(address),
        str(address.model_dump()),
        address.model_dump_json(),
        json.dumps(address.model_dump(mode="json")),
        json.dumps(address.public()),
    ):
        assert SECRET not in text
    assert "secret" not in address.public()


def test_a_password_in_a_sql_url_moves_to_the_secret_part():
    address = parse_source_address(ADDRESSES[0])
    assert address.url == "postgresql://holder@db.example/city"
    assert address.secret.password.get_secret_value() == SECRET


@pytest.mark.parametrize(
    "table", ["trips; drop table x", 'a"b', "a.b.c", "", "1abc", "x y", "trips--"]
)
def test_sql_identifiers_that_are_not_plain_names_are_refused(table):
    with pytest.raises(ValidationError):
        parse_source_address({"type": "sql", "url": "sqlite:///x.db", "table": table})


def test_sql_columns_that_are_not_plain_names_are_refused():
    with pytest.raises(ValidationError):
        parse_source_address(
            {"type": "sql", "url": "sqlite:///x.db", "table": "t", "columns": ["a", "b) --"]}
        )


@pytest.mark.parametrize("path", ["../x.csv", "/etc/passwd.csv", "a/../../x.csv", "a//b.csv", "."])
def test_files_paths_outside_the_root_are_refused(path):
    with pytest.raises(ValidationError):
        parse_source_address({"type": "files", "path": path})


def test_files_format_comes_from_the_extension_or_must_be_given():
    assert parse_source_address({"type": "files", "path": "a/b.ndjson"}).resolved_format == "jsonl"
    with pytest.raises(ValidationError):
        parse_source_address({"type": "files", "path": "a/b.txt"})


@pytest.mark.parametrize(
    "data",
    [
        {"type": "http", "url": "ftp://m.example/x"},
        {"type": "http", "url": "https://user:pw@m.example/x"},
        {"type": "http", "url": "https://m.example/x", "auth": {"kind": "bearer"}},
        {"type": "object", "bucket": "Bad_Bucket", "key": "a.csv"},
        {
            "type": "object",
            "bucket": "ok-bucket",
            "key": "a.csv",
            "secret": {"access_key_id": "only-half"},
        },
        {"type": "nosuch"},
    ],  # fmt: skip
)
def test_invalid_addresses_are_refused(data):
    with pytest.raises(ValidationError):
        parse_source_address(data)


def test_sink_addresses_are_object_or_http_and_hide_their_secret():
    sink = parse_sink_address(
        {
            "type": "http",
            "url": "https://consumer.example/in",
            "method": "PUT",
            "auth": {"kind": "bearer"},
            "secret": {"token": SECRET},
        }  # fmt: skip
    )
    assert SECRET not in repr(sink) and SECRET not in sink.model_dump_json()
    with pytest.raises(ValidationError):
        parse_sink_address({"type": "sql", "url": "sqlite://", "table": "t"})
