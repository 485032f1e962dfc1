"""`files`: Parquet, CSV or JSON Lines in a local folder, confined to that folder."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.fs as pa_fs

from gateway.dataplane.addresses import FilesAddress
from gateway.dataplane.errors import address_invalid, source_unavailable
from gateway.dataplane.formats import open_file
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream


def confined(root: Path, relative: str) -> Path:
    """Return the real path of `relative` under `root`; refuse any path that resolves outside.

    Symbolic links are followed before the check, so a link inside the root that points out of
    it is refused like a `..`.
    """
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / relative))
    if target != base and base not in target.parents:
        raise address_invalid(f"path {relative!r} leaves the data folder")
    return target


class FilesSource:
    """Reads one file under `root`."""

    def __init__(self, address: FilesAddress, *, root: Path) -> None:
        self.address = address
        self.root = Path(root)

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        path = confined(self.root, self.address.path)
        if not path.is_file():
            raise source_unavailable(f"file {self.address.path!r} does not exist")
        return open_file(
            pa_fs.LocalFileSystem(),
            str(path),
            self.address.resolved_format,
            batch_size=batch_size,
            columns=columns,
            where=f"file {self.address.path!r}",
        )
