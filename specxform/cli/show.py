"""``specxform show``: PNG of source levels, PINV Mel and (for audio input) the true Mel."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from specxform.cli import common
from specxform.cli.transcode import METHODS
from specxform.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``show`` command."""
    parser = subparsers.add_parser(
        "show", help="plot source, transcoded and true Mel side by side (PNG)",
        description="Write a PNG comparing the source spectrogram, its PINV transcoding and, "
        "when INPUT is audio, the true Mel of the audio (same colour scale for both Mels).",
    )
    parser.add_argument("--source", metavar="S",
                        help="source representation (default: the one a .npz/.h5 INPUT records)")
    parser.add_argument("--target", required=True, metavar="T", help="target representation")
    parser.add_argument("--method", choices=METHODS, default="pinv",
                        help="inversion of the source filterbank (default: pinv)")
    parser.add_argument("--item", metavar="NAME",
                        help="which array to draw when INPUT holds several")
    parser.add_argument("input", metavar="INPUT", help="an audio file or a source array file")
    parser.add_argument("-o", "--output", metavar="OUT.png",
                        help="output PNG (default: <INPUT stem>_<S>_to_<T>.png here)")
    common.add_strict_flag(parser)
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def pick(arrays: dict[str, np.ndarray], item: str | None, path: Path) -> np.ndarray:
    """The array named ``item``, or the only one."""
    if item is None and len(arrays) == 1:
        return next(iter(arrays.values()))
    if item in arrays:
        return arrays[item]
    names = ", ".join(list(arrays)[:5]) + (", ..." if len(arrays) > 5 else "")
    what = f"has no array {item!r}" if item is not None else f"holds {len(arrays)} arrays"
    raise InputError(f"{path}: {what}; choose one with --item NAME ({names}).")


def run(args: argparse.Namespace) -> int:
    """Compute what INPUT allows, plot it, and report the Mel MSE when audio is given."""
    from specxform import api, plugins
    from specxform.cli.transcode import source_items
    from specxform.evaluation.plotting import plot_comparison

    files = common.expand_inputs([args.input], kinds=("array", "audio"))
    if len(files) != 1:
        names = ", ".join(f.path.name for f in files[:3]) + (", ..." if len(files) > 3 else "")
        raise InputError(f"{args.input} holds {len(files)} files ({names}); `show` draws one "
                         "input: give one of them (a file holding several arrays takes "
                         "--item NAME).")
    (file,) = files
    args.source = args.source or common.recorded_source([file])
    plugins.get_registry().pair(args.source, args.target)  # checks names and roles first
    source, target = api.representation(args.source), api.representation(args.target)
    output = Path(args.output or f"{file.path.stem}_{source.name}_to_{target.name}.png")
    if output.suffix.lower() != ".png":
        raise InputError(f"-o {output}: the plot is a PNG; give a file name ending in .png.")
    levels = pick(source_items(file, source.name), args.item, file.path)
    transcoded = api.transcode(levels, source, target, args.method)
    true_mel = api.compute_file(target, file.path) if file.kind == "audio" else None
    plot_comparison(output, levels=levels, source=source, transcoded=transcoded, target=target,
                    true_mel=true_mel, method=args.method, title=str(file.path))
    result: dict[str, Any] = {
        "output": str(output), "input": str(file.path), "source": source.name,
        "target": target.name, "method": args.method, "source_frames": levels.shape[0],
        "target_frames": transcoded.shape[0],
        "mel_mse": None if true_mel is None else api.mel_mse(transcoded, true_mel),
    }
    if args.json:
        common.print_json(result)
    else:
        mse = "" if true_mel is None else f"; Mel MSE vs true Mel {result['mel_mse']:.3g}"
        common.stdout().print(f"wrote {output}{mse}", highlight=False, soft_wrap=True)
    return 0
