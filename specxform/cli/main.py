"""Entry point of the ``specxform`` console script.

Every :class:`~specxform.errors.SpecxformError` (and every OS error on a
user's path) becomes one line on stderr and a non-zero exit status: 2 for
usage and input errors, 1 for the others. Every
:class:`~specxform.errors.InputWarning` becomes one ``specxform: warning:``
line (repeated ones once), or an error with ``--strict``. Heavy modules
(torch) are imported inside the commands that need them, so listings start
fast.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from specxform import __version__
from specxform import weights as weights_module
from specxform.cli import (
    archive,
    classify,
    common,
    demo,
    downstream,
    evaluate,
    features,
    listing,
    show,
    train,
    transcode,
    weights,
)
from specxform.cli.progress import download_bars
from specxform.errors import (
    CheckpointError,
    InputError,
    InputWarning,
    SpecError,
    SpecxformError,
    UnknownNameError,
)

#: Errors that mean "the command cannot run as given" (exit status 2): usage, unknown names,
#: bad input files and values (checkpoints included: unreadable, unsafe, of another pair,
#: NaN weights, other settings on --resume), bad paths, --strict warnings. Every other error
#: is a runtime failure (exit status 1): missing or corrupt cached weights, failed downloads,
#: plugin errors, a busy output, an OS error while running (disk full).
_USAGE_ERRORS = (InputError, InputWarning, SpecError, UnknownNameError, CheckpointError,
                 FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                 NotADirectoryError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    parser = argparse.ArgumentParser(
        prog="specxform",
        description="Transcode undersampled spectral representations (third-octave, Bark) "
        "into the Mel spectrograms pretrained classifiers expect.",
    )
    parser.add_argument("--version", action="version", version=f"specxform {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (listing, features, transcode, show, classify, demo, weights):
        command.register(subparsers)
    train.add_parser(subparsers)
    downstream.register(subparsers)
    evaluate.register(subparsers)
    archive.register(subparsers)
    return parser


def _option_strings(parser: argparse.ArgumentParser) -> set[str]:
    flags: set[str] = set()
    for action in parser._actions:  # argparse keeps no public list of a parser's options
        flags.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _option_strings(sub)
    return flags


def _fail(exc: BaseException) -> int:
    # One line; library messages name parameters (`source=...`): show the flags instead.
    message = common.as_flags(" ".join(str(exc).split()), common.CLI_FLAGS)
    sys.stderr.write(f"specxform: error: {message}\n")
    return common.EXIT_USAGE if isinstance(exc, _USAGE_ERRORS) else 1


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None,
                  _default: Any = warnings.showwarning) -> None:
    """Print specxform's input warnings as one line; others as Python does."""
    if issubclass(category, InputWarning):
        text = common.as_flags(" ".join(str(message).split()), common.CLI_FLAGS)
        sys.stderr.write(f"specxform: warning: {text}\n")
        return
    _default(message, category, filename, lineno, file, line)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    common.CLI_FLAGS.update(_option_strings(parser))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse's own status
        return exc.code if isinstance(exc.code, int) else 1
    try:
        with warnings.catch_warnings():
            strict = getattr(args, "strict", False)
            warnings.simplefilter("error" if strict else "default", InputWarning)
            warnings.showwarning = _show_warning
            with weights_module.downloads_report_to(download_bars()):
                status: int = args.func(args)
    except (SpecxformError, OSError) as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write("specxform: interrupted\n")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
