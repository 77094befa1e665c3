"""``specxform transcode``: source levels (or audio) to a target's Mel with the derived PINV."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from specxform.cli import common
from specxform.errors import InputError

#: specxform.transcoders.pinv.METHODS, repeated so that building the parser does not import torch.
METHODS = ("pinv", "nnls", "ridge")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``transcode`` command."""
    parser = subparsers.add_parser(
        "transcode", help="transcode source levels (or audio) into a target Mel",
        description="Transcode source-representation arrays (.npy/.npz/.h5) into the target "
        "representation with the derived PINV, or with a trained transcoder (--checkpoint). "
        "Audio inputs are first computed with the source.",
    )
    parser.add_argument("--source", metavar="S",
                        help="source representation (default: the checkpoint's, or the one "
                        "the .npz/.h5 inputs record)")
    parser.add_argument("--target", metavar="T",
                        help="target representation (default with --checkpoint: its target)")
    parser.add_argument("--method", choices=METHODS,
                        help="inversion of the source filterbank (default: pinv; with "
                        "--checkpoint, the checkpoint's own)")
    parser.add_argument("--checkpoint", metavar="CKPT",
                        help="a trained transcoder (best.pt or a run folder of specxform train)")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="array files, audio files, or folders holding them")
    common.add_output_args(parser)
    common.add_strict_flag(parser)
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def source_items(file: common.InputFile, source: str) -> dict[str, np.ndarray]:
    """The source arrays of one input file, named for their outputs.

    Audio is computed with ``source``; an array file yields each array it
    holds (a collection's names are prefixed by the file's folder).
    """
    from specxform import api, io

    if file.kind == "audio":
        return {file.name: api.compute_file(source, file.path)}
    arrays = io.read_arrays(file.path, api.representation(source))
    folder = file.name.rpartition("/")[0]
    return {(f"{folder}/{name}" if folder else name): a for name, a in arrays.items()}


def run(args: argparse.Namespace) -> int:
    """Transcode every input and write the target arrays all-or-nothing."""
    from specxform import api, plugins

    applied: dict[str, Any] = {"method": args.method or "pinv", "checkpoint": None}
    if args.checkpoint is not None:
        if args.method is not None:
            raise InputError(f"--method {args.method} does not apply with --checkpoint: the "
                             "checkpoint's own PINV and student are applied; drop --method.")
        model = api.trained(args.checkpoint)
        args.source = args.source or model.source.name
        args.target = args.target or model.target.name
        applied = _checkpoint_summary(args.checkpoint)
    elif args.target is None:
        raise InputError("give --target (and --source, unless the inputs record it), or "
                         "--checkpoint of a trained transcoder.")
    files = common.expand_inputs(args.inputs, kinds=("array", "audio"))
    args.source = args.source or common.recorded_source(files)
    plugins.get_registry().pair(args.source, args.target)  # checks names and roles first
    source, target = api.representation(args.source), api.representation(args.target)
    api.transcoder(source, target, applied["method"] if args.checkpoint is None else "pinv")
    plan = common.OutputPlan.from_args(args.output, args.format)
    with common.progress() as bar:
        task = bar.add_task(f"{source.name} -> {target.name}", total=len(files))

        def produce() -> Iterator[tuple[str, Path, np.ndarray]]:
            for file in files:
                for name, levels in source_items(file, source.name).items():
                    try:
                        mel = api.transcode(levels, source, target, args.method or "pinv",
                                            checkpoint=args.checkpoint)
                    except InputError as exc:
                        raise InputError(f"{file.path}: {exc}") from exc
                    yield name, file.path, mel
                bar.advance(task)

        records = common.write_outputs(plan, produce(), target)
    common.report_outputs(args, plan, records, source=source.name, target=target.name,
                          **applied)
    return 0


def _checkpoint_summary(checkpoint: str) -> dict[str, Any]:
    """What a checkpoint applies, for the report: its path, student and PINV method."""
    from specxform.training.checkpoint import read_checkpoint

    desc = read_checkpoint(checkpoint)["description"]
    return {"method": "checkpoint", "checkpoint": str(checkpoint),
            "student": desc.get("student", {}).get("name"),
            "pinv_method": desc.get("pinv", {}).get("method")}

