"""Paging cursors: round trip, and no forged, altered or foreign cursor is accepted."""

import base64

import pytest

from gateway.dataplane import DataPlaneError, decode_cursor, encode_cursor

KEY = b"k" * 32


def test_a_cursor_round_trips_its_offset():
    for offset in (0, 1, 10_000_000_000):
        token = encode_cursor(offset, key=KEY, scope="transfer-1|consumer-a")
        assert decode_cursor(token, key=KEY, scope="transfer-1|consumer-a") == offset


def test_a_cursor_issued_for_another_stream_is_refused():
    token = encode_cursor(100, key=KEY, scope="transfer-1")
    with pytest.raises(DataPlaneError) as err:
        decode_cursor(token, key=KEY, scope="transfer-2")
    assert err.value.slug == "cursor-invalid" and err.value.status == 400


def test_a_forged_offset_is_refused():
    token = encode_cursor(100, key=KEY, scope="t")
    _body, mac = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"o":999999,"v":1}').rstrip(b"=").decode()
    with pytest.raises(DataPlaneError):
        decode_cursor(f"{forged}.{mac}", key=KEY, scope="t")
    with pytest.raises(DataPlaneError):
        decode_cursor(token, key=b"other" * 8, scope="t")


@pytest.mark.parametrize("token", ["", ".", "a.b.c", "!!!.???", "x" * 1000, "abc", "e30.e30"])
def test_malformed_cursors_are_refused(token):
    with pytest.raises(DataPlaneError):
        decode_cursor(token, key=KEY, scope="t")
