"""ledger.keys: Ed25519 JWKs, RFC 7638 thumbprints and the private key file."""

import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import keys as keys_module
from ledger.canonical import b64url
from ledger.errors import LedgerKeyError
from ledger.keys import Signer, jwk_thumbprint, load_or_create_signer, public_key_from_jwk

# RFC 8037 Appendix A.1 and A.3: an Ed25519 key and its RFC 7638 thumbprint.
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_kid_is_the_rfc7638_thumbprint_from_rfc8037():
    assert jwk_thumbprint({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}) == RFC8037_THUMBPRINT
    signer = Signer.from_jwk({"kty": "OKP", "crv": "Ed25519", "d": RFC8037_D, "x": RFC8037_X})
    assert signer.kid == RFC8037_THUMBPRINT


def test_signer_reproduces_the_rfc8037_signature():
    # RFC 8037 A.4: the JWS signing input and its Ed25519 signature.
    signer = Signer.from_jwk({"kty": "OKP", "crv": "Ed25519", "d": RFC8037_D})
    signing_input = b"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    assert b64url(signer.sign(signing_input)) == (
        "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
    )


def test_thumbprint_ignores_members_outside_the_required_ones():
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jwk_thumbprint({**jwk, "kid": "other", "use": "sig", "alg": "EdDSA"}) == (
        jwk_thumbprint(jwk)
    )


def test_public_and_private_jwks_round_trip():
    signer = Signer.generate()
    public = signer.public_jwk()
    assert public == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": public["x"],
        "kid": signer.kid,
        "use": "sig",
        "alg": "EdDSA",
    }
    again = Signer.from_jwk(signer.private_jwk())
    assert again.kid == signer.kid
    public_key_from_jwk(public).verify(again.sign(b"m"), b"m")


def test_from_jwk_refuses_a_public_key_and_a_mismatched_x():
    signer = Signer.generate()
    with pytest.raises(LedgerKeyError, match="no 'd'"):
        Signer.from_jwk(signer.public_jwk())
    mismatched = {**signer.private_jwk(), "x": Signer.generate().public_jwk()["x"]}
    with pytest.raises(LedgerKeyError, match="not the public key"):
        Signer.from_jwk(mismatched)


@pytest.mark.parametrize(
    "jwk, message",
    [
        ({"kty": "EC", "crv": "P-256", "x": RFC8037_X}, "kty 'OKP'"),
        ({"kty": "OKP", "crv": "X25519", "x": RFC8037_X}, "crv 'Ed25519'"),
        ({"kty": "OKP", "crv": "Ed25519"}, "no 'x'"),
        ({"kty": "OKP", "crv": "Ed25519", "x": b64url(bytes(31))}, "31 bytes"),
        ({"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X + "="}, "base64url"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_public_key_from_jwk_explains_what_is_wrong(jwk, message):
    with pytest.raises(LedgerKeyError, match=message):
        public_key_from_jwk(jwk)


def test_key_file_is_created_0600_and_loaded_again(tmp_path):
    path = tmp_path / "keys" / "gateway-ed25519.jwk"
    signer = load_or_create_signer(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["kid"] == signer.kid
    assert load_or_create_signer(path).kid == signer.kid
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_key_file_is_0600_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        load_or_create_signer(tmp_path / "k.jwk")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "k.jwk").st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_key_file_open_to_group_or_others_is_refused(tmp_path, mode):
    path = tmp_path / "k.jwk"
    load_or_create_signer(path)
    os.chmod(path, mode)
    with pytest.raises(LedgerKeyError, match="refusing the key file"):
        load_or_create_signer(path)


def test_key_file_that_is_not_a_private_jwk_is_refused(tmp_path):
    path = tmp_path / "k.jwk"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(Signer.generate().public_jwk(), f)
    with pytest.raises(LedgerKeyError, match="not a private Ed25519 JWK"):
        load_or_create_signer(path)


def test_key_created_meanwhile_by_another_process_wins(tmp_path, monkeypatch):
    path = tmp_path / "k.jwk"
    theirs = Signer(Ed25519PrivateKey.generate())
    real_generate = Signer.generate

    def generate_after_the_other_process_wrote():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(theirs.private_jwk(), f)
        return real_generate()

    monkeypatch.setattr(keys_module.Signer, "generate", generate_after_the_other_process_wrote)
    assert load_or_create_signer(path).kid == theirs.kid
    assert [p.name for p in tmp_path.iterdir()] == ["k.jwk"]
