"""One exception tree for everything sparkhtr raises on purpose.

Callers catch :class:`SparkHtrError` to handle any of the project's own failures;
the subclasses say which stage failed.

>>> try:
...     raise DecodeError("not an image")
... except SparkHtrError as exc:
...     print(type(exc).__name__, exc)
DecodeError not an image
"""

from __future__ import annotations


class SparkHtrError(Exception):
    """Base class of every error sparkhtr raises deliberately."""


class DecodeError(SparkHtrError):
    """A file could not be turned into page images (corrupt, unsupported, encrypted)."""


class LimitExceededError(DecodeError):
    """A file exceeds a configured safety limit (pixels, pages, bytes)."""


class SegmentationError(SparkHtrError):
    """Line segmentation failed on a page."""


class ModelError(SparkHtrError):
    """A model could not be resolved, verified, loaded or run."""


class ConfigError(SparkHtrError):
    """Invalid user configuration (a Param value, a CLI option, a conf profile)."""


class TableError(SparkHtrError):
    """Reading or writing the output tables failed (schema conflict, missing table)."""
