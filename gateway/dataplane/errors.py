"""The data plane's failures, each an RFC 9457 problem with a stable type.

They never carry a secret: details name the address by its public view only.
"""

from gateway.core.errors import Problem


class DataPlaneError(Problem):
    """A data-plane failure (base class)."""


def address_invalid(detail: str) -> DataPlaneError:
    """Return the 422 problem for a data address that cannot be used as given."""
    return DataPlaneError(422, "data-address-invalid", "Invalid data address", detail)


def source_unavailable(detail: str) -> DataPlaneError:
    """Return the 502 problem for a source that could not be reached or read."""
    return DataPlaneError(502, "data-source-unavailable", "Data source unavailable", detail)


def sink_unavailable(detail: str) -> DataPlaneError:
    """Return the 502 problem for a sink that could not be reached or written."""
    return DataPlaneError(502, "data-sink-unavailable", "Data sink unavailable", detail)


def cursor_invalid(detail: str) -> DataPlaneError:
    """Return the 400 problem for a paging cursor this gateway did not issue for this stream."""
    return DataPlaneError(400, "cursor-invalid", "Invalid cursor", detail)


def not_acceptable(detail: str) -> DataPlaneError:
    """Return the 406 problem for an Accept header naming no format the data plane writes."""
    return DataPlaneError(406, "not-acceptable", "No acceptable format", detail)
