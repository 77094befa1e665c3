"""``specxform features``: audio files to arrays of a representation."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from specxform.cli import common


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``features`` command."""
    parser = subparsers.add_parser(
        "features", help="compute a representation (e.g. cense levels) from audio files",
        description="Compute a registered representation from audio files or folders "
        "(WAV, FLAC, OGG; downmixed to mono and resampled to the representation's rate).",
    )
    parser.add_argument("--rep", required=True, metavar="NAME",
                        help="representation name (see `specxform list representations`)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    common.add_output_args(parser)
    common.add_strict_flag(parser)
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute ``--rep`` for every input and write the arrays all-or-nothing."""
    from specxform import api  # deferred: torch is slow to import

    rep = api.representation(args.rep)
    files = common.expand_inputs(args.inputs, kinds=("audio",))
    plan = common.OutputPlan.from_args(args.output, args.format)
    with common.progress() as bar:
        task = bar.add_task(rep.name, total=len(files))

        def produce() -> Iterator[tuple[str, Path, np.ndarray]]:
            for file in files:
                yield file.name, file.path, api.compute_file(rep, file.path)
                bar.advance(task)

        records = common.write_outputs(plan, produce(), rep)
    common.report_outputs(args, plan, records, representation=rep.name, bands=rep.n_bands)
    return 0
