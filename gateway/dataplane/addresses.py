"""Data addresses: where a resource's data lives, one pydantic model per kind, chosen by `type`.

Every address has a public part and a `secret` part (pydantic SecretStr values). The secret part
never leaves: `repr`/`str` show `**********`, `model_dump()` and `model_dump_json()` render the
secrets masked, and `public()` returns the address without its `secret` at all (what an API reply,
a log line or a ledger entry may carry). `reveal()` is the one way to read a secret's value, used
only where a source or sink opens its connection.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator

FORMATS = ("parquet", "csv", "jsonl")
Format = Literal["parquet", "csv", "jsonl"]

# One SQL identifier part (schema or table or column): letters, digits, _ and $, not starting
# with a digit. Stricter than SQL allows, so that nothing a quoting bug could exploit gets in;
# the parts are quoted by the dialect besides.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def valid_identifier(name: str) -> bool:
    """Return whether `name` is one identifier part the data plane accepts."""
    return bool(_IDENT.match(name))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Address(_Model):
    def public(self) -> dict[str, Any]:
        """Return this address without its secret part (safe for replies, logs and ledger)."""
        return self.model_dump(mode="json", exclude={"secret"})


class SecretPart(_Model):
    """Base of every address's secret part."""

    def has_any(self) -> bool:
        """Return whether any secret value is set."""
        return any(v is not None for v in self.__dict__.values())


def reveal(value: SecretStr | None) -> str | None:
    """Return a secret's value (only where a connection is opened)."""
    return None if value is None else value.get_secret_value()


# -- sql -------------------------------------------------------------------------------------


class SqlSecret(SecretPart):
    password: SecretStr | None = None


class SqlAddress(_Address):
    """A table or view in the holder's own database (any SQLAlchemy URL, password apart)."""

    type: Literal["sql"] = "sql"
    url: str = Field(description="SQLAlchemy URL without a password, e.g. postgresql://u@h/db")
    table: str = Field(description="table or view, optionally schema-qualified: schema.table")
    columns: list[str] | None = Field(default=None, description="columns to read (default all)")
    order_by: list[str] | None = Field(
        default=None,
        max_length=8,
        description="columns the rows are read in the order of (ascending), e.g. the primary "
        "key, so that pages and repeated reads see one order; default: the database's order",
    )
    secret: SqlSecret = Field(default_factory=SqlSecret)

    @model_validator(mode="before")
    @classmethod
    def _password_to_secret(cls, data: Any) -> Any:
        """Move a password given inside `url` into the secret part."""
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(data["url"])
        except ArgumentError as err:
            raise ValueError(f"url is not a SQLAlchemy URL: {err}") from None
        if url.password is None:
            return data
        secret = dict(data.get("secret") or {})
        secret.setdefault("password", str(url.password))
        return {
            **data,
            "url": url._replace(password=None).render_as_string(hide_password=False),
            "secret": secret,
        }

    @model_validator(mode="after")
    def _identifiers(self) -> SqlAddress:
        parts = self.table.split(".")
        if len(parts) > 2 or not all(valid_identifier(p) for p in parts):
            raise ValueError(
                f"table must be 'name' or 'schema.name' of letters, digits, _ and $; "
                f"got {self.table!r}"
            )
        for name in [*(self.columns or []), *(self.order_by or [])]:
            if not valid_identifier(name):
                raise ValueError(f"column {name!r} is not a plain identifier")
        return self

    @property
    def schema_name(self) -> str | None:
        return self.table.split(".")[0] if "." in self.table else None

    @property
    def table_name(self) -> str:
        return self.table.split(".")[-1]


# -- http ------------------------------------------------------------------------------------


class HttpSecret(SecretPart):
    token: SecretStr | None = Field(default=None, description="bearer token (auth: bearer)")
    password: SecretStr | None = Field(default=None, description="password (auth: basic)")
    header_value: SecretStr | None = Field(default=None, description="value (auth: header)")


class HttpAuth(_Model):
    """How the gateway authenticates to the endpoint; the values are in the secret part."""

    kind: Literal["none", "bearer", "basic", "header"] = "none"
    username: str | None = Field(default=None, description="user name (basic)")
    header: str | None = Field(default=None, description="header name (header), e.g. X-Api-Key")


def _check_http_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url must be an absolute http(s) URL; got {url!r}")
    if parts.username or parts.password:
        raise ValueError("url must not carry credentials: use auth and the secret part")


def _check_auth(auth: HttpAuth, secret: HttpSecret) -> None:
    need = {"bearer": "token", "basic": "password", "header": "header_value"}.get(auth.kind)
    if need and getattr(secret, need) is None:
        raise ValueError(f"auth {auth.kind} needs secret.{need}")
    if auth.kind == "basic" and not auth.username:
        raise ValueError("auth basic needs auth.username")
    if auth.kind == "header" and not (auth.header and re.match(r"^[A-Za-z0-9-]+$", auth.header)):
        raise ValueError("auth header needs auth.header, a header name")


class HttpAddress(_Address):
    """The merchant's HTTP endpoint (EDC HttpData): JSON Lines, or JSON pages with a next link.

    `jsonl`: the body is JSON Lines (NDJSON), streamed. `json-pages`: each reply is a JSON object
    whose `items_key` holds the rows and whose `next_key` holds the next page's absolute or
    relative URL, or a cursor token sent back as query parameter `cursor_param`; null or absent
    ends the stream.
    """

    type: Literal["http"] = "http"
    url: str
    format: Literal["jsonl", "json-pages"] = "jsonl"
    items_key: str = "items"
    next_key: str = "next"
    cursor_param: str | None = Field(
        default=None, description="when set, `next` is a token sent as this query parameter"
    )
    auth: HttpAuth = Field(default_factory=HttpAuth)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    secret: HttpSecret = Field(default_factory=HttpSecret)

    @model_validator(mode="after")
    def _check(self) -> HttpAddress:
        _check_http_url(self.url)
        _check_auth(self.auth, self.secret)
        return self


class HttpSinkAddress(_Address):
    """The consumer's HTTP endpoint: the encoded stream is sent as one chunked request body."""

    type: Literal["http"] = "http"
    url: str
    method: Literal["POST", "PUT"] = "POST"
    auth: HttpAuth = Field(default_factory=HttpAuth)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    secret: HttpSecret = Field(default_factory=HttpSecret)

    @model_validator(mode="after")
    def _check(self) -> HttpSinkAddress:
        _check_http_url(self.url)
        _check_auth(self.auth, self.secret)
        return self


# -- object ----------------------------------------------------------------------------------


class ObjectSecret(SecretPart):
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class ObjectAddress(_Address):
    """One object in S3-compatible storage (AWS, MinIO, Versity, Ceph...): Parquet, CSV or JSONL."""

    type: Literal["object"] = "object"
    endpoint: str | None = Field(
        default=None, description="http(s)://host:port of an S3-compatible server (default AWS)"
    )
    region: str = "us-east-1"
    bucket: str
    key: str
    format: Format | None = Field(default=None, description="default: from the key's extension")
    secret: ObjectSecret = Field(default_factory=ObjectSecret)

    @model_validator(mode="after")
    def _check(self) -> ObjectAddress:
        if self.endpoint is not None:
            _check_http_url(self.endpoint)
        if not _BUCKET.match(self.bucket):
            raise ValueError(f"bucket {self.bucket!r} is not an S3 bucket name")
        if not self.key or self.key.startswith("/") or "\x00" in self.key:
            raise ValueError("key must be a non-empty object key not starting with /")
        if self.format is None and format_from_name(self.key) is None:
            raise ValueError(f"format not given and key {self.key!r} has no known extension")
        if (self.secret.access_key_id is None) != (self.secret.secret_access_key is None):
            raise ValueError("secret needs both access_key_id and secret_access_key, or neither")
        return self

    @property
    def resolved_format(self) -> str:
        return self.format or format_from_name(self.key)  # type: ignore[return-value]


# -- files and the embedded store ------------------------------------------------------------


class FilesSecret(SecretPart):
    pass


def _check_relative(path: str) -> None:
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        raise ValueError(f"path must be relative to the allowed root; got {path!r}")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError(f"path must not contain empty, . or .. parts; got {path!r}")


class FilesAddress(_Address):
    """A file in the gateway's local data folder (the embedded default): Parquet, CSV or JSONL.

    `path` is relative to the folder the gateway is configured with; it cannot leave it (no
    absolute paths, no `..`, no symbolic link pointing outside).
    """

    type: Literal["files"] = "files"
    path: str
    format: Format | None = None
    secret: FilesSecret = Field(default_factory=FilesSecret)

    @model_validator(mode="after")
    def _check(self) -> FilesAddress:
        _check_relative(self.path)
        if self.format is None and format_from_name(self.path) is None:
            raise ValueError(f"format not given and path {self.path!r} has no known extension")
        return self

    @property
    def resolved_format(self) -> str:
        return self.format or format_from_name(self.path)  # type: ignore[return-value]


class EmbeddedAddress(_Address):
    """Rows posted with a registration, kept as a Parquet file in the state folder."""

    type: Literal["embedded"] = "embedded"
    path: str = Field(description="relative to the embedded store's folder")
    rows: int = Field(ge=0, description="rows in the file")
    sha256: str = Field(description="SHA-256 of the Parquet file")
    secret: FilesSecret = Field(default_factory=FilesSecret)

    @model_validator(mode="after")
    def _check(self) -> EmbeddedAddress:
        _check_relative(self.path)
        return self


def format_from_name(name: str) -> str | None:
    """Return the format a file name's extension says (parquet, csv, jsonl), else None."""
    lower = name.lower()
    for ext, fmt in ((".parquet", "parquet"), (".csv", "csv"), (".jsonl", "jsonl"),
                     (".ndjson", "jsonl")):  # fmt: skip
        if lower.endswith(ext):
            return fmt
    return None


SourceAddress = Annotated[
    SqlAddress | HttpAddress | ObjectAddress | FilesAddress | EmbeddedAddress,
    Field(discriminator="type"),
]
SinkAddress = Annotated[ObjectAddress | HttpSinkAddress, Field(discriminator="type")]

_SOURCE = TypeAdapter(SourceAddress)
_SINK = TypeAdapter(SinkAddress)


def parse_source_address(
    data: Any,
) -> SqlAddress | HttpAddress | ObjectAddress | FilesAddress | EmbeddedAddress:
    """Return the source address `data` describes (pydantic ValidationError when it is invalid)."""
    return _SOURCE.validate_python(data)


def parse_sink_address(data: Any) -> ObjectAddress | HttpSinkAddress:
    """Return the sink address `data` describes (pydantic ValidationError when it is invalid)."""
    return _SINK.validate_python(data)
