"""One exception family for specxform.

Every message carries the offending value and says how to fix it, so that the
CLI can print it as is. Each class also derives from the matching built-in
exception, so callers that catch ``ValueError`` or ``KeyError`` keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SpecxformError(Exception):
    """Base class of every error specxform raises on purpose."""


class SpecError(SpecxformError, ValueError):
    """A representation, filterbank or framing definition is invalid."""


class InputError(SpecxformError, ValueError):
    """Data given to specxform (audio, arrays, files) cannot be used."""


class UnknownNameError(SpecxformError, KeyError):
    """A name is not registered; the message suggests the closest ones."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known) if known else "none"
        message = (
            f"unknown {kind} {name!r}.{hint} Registered {kind}s: {listing}. "
            f"Run `specxform list` to see what is installed."
        )
        super().__init__(message)
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class PluginError(SpecxformError):
    """A plugin failed to load or registered something inconsistent."""


class WeightsError(SpecxformError):
    """A weight file is missing, corrupt or cannot be downloaded."""


class CheckpointError(SpecxformError):
    """A checkpoint does not match the model or representation it is loaded into."""


class InputWarning(SpecxformError, UserWarning):
    """Input that can be used but is not what it claims (a truncated file, bands above Nyquist).

    Issued with :func:`warnings.warn`; the command line prints it as one
    ``specxform: warning:`` line, and ``--strict`` turns it into an error
    (exit status 2). Being a :class:`SpecxformError` too, it is reported like
    any other error when raised.
    """


class OutputBusyError(SpecxformError):
    """Another specxform process is writing to the same output (exit status 1: try later)."""


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded and was skipped."""
