"""The description of one published weight file: a frozen, validated value object.

Its own module so that the registry (which stores these) and :mod:`specxform.weights`
(which finds, downloads and verifies them, and reads the registry's catalogue)
import it without importing each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import attrs

from specxform.errors import WeightsError

__all__ = ["WeightFile"]


def _hex(length: int) -> Callable[[object, attrs.Attribute, str | None], None]:
    pattern = re.compile(rf"[0-9a-f]{{{length}}}")

    def check(instance: object, attribute: attrs.Attribute, value: str | None) -> None:
        if value is not None and not pattern.fullmatch(value):
            raise WeightsError(
                f"{attribute.name} must be {length} lowercase hex digits, got {value!r}."
            )

    return check


def _size(instance: object, attribute: attrs.Attribute, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise WeightsError(f"size must be a positive number of bytes or None, got {value!r}.")


def _filename(instance: object, attribute: attrs.Attribute, value: str) -> None:
    if not isinstance(value, str) or not value or Path(value).name != value or value in (".", ".."):
        raise WeightsError(
            f"filename must be a bare file name such as 'model.pth' (no folder), got {value!r}."
        )


@attrs.frozen
class WeightFile:
    """One published weight (or metadata) file.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"pann-resnet38"``.
    filename : str
        The official file name: the name looked for on the search path and
        used in the cache (a bare name, no folder).
    url : str
        Download URL.
    size : int or None
        Exact size in bytes, ``None`` when not published.
    md5, sha256 : str or None
        Lowercase hex digests; ``None`` when not published. A file with neither a
        size nor a digest can only be checked by parsing it (see :func:`specxform.weights.verify`).
    description : str
        One line for listings and error messages.
    """

    name: str
    filename: str = attrs.field(validator=_filename)
    url: str
    size: int | None = attrs.field(default=None, validator=_size)
    md5: str | None = attrs.field(default=None, validator=_hex(32))
    sha256: str | None = attrs.field(default=None, validator=_hex(64))
    description: str = ""

    @property
    def has_checksum(self) -> bool:
        """Whether a digest is known, so that :func:`specxform.weights.verify` proves integrity."""
        return self.md5 is not None or self.sha256 is not None
