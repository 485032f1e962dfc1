"""The trusted data-space exchange and authorised-operations gateway."""

__version__ = "0.1.0"
