"""``specxform demo``: the main job on a synthetic street scene, with PNGs and a Mel MSE table."""

from __future__ import annotations

import argparse

from rich.table import Table

from specxform.cli import common


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo", help="run the main job on a generated urban scene",
        description="Generate a 10 s street scene (siren, car horns, idling engine, pink noise), "
        "compute its Cense levels, transcode them with PINV to the PANN and YAMNet Mels, "
        "write comparison PNGs and print the Mel MSE against the true Mels.",
    )
    parser.add_argument("-o", "--output", default="specxform-demo", metavar="DIR",
                        help="output folder (default: ./specxform-demo)")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`specxform.demo.run_demo` and print its results."""
    from specxform import api
    from specxform.demo import run_demo

    result = run_demo(args.output)
    if args.json:
        common.print_json({
            "folder": str(result.folder), "audio": str(result.audio),
            "levels": str(result.levels), "source": result.source,
            "source_frames": result.source_frames,
            "targets": [{"target": t.target, "mel_mse": t.mse, "frames": t.frames,
                         "png": str(t.png)} for t in result.targets],
        })
        return 0
    table = Table(title=f"{result.source} -> Mel by PINV: Mel MSE against the true Mel",
                  title_justify="left")
    for header in ("target", "frames", "Mel MSE", "unit", "plot"):
        table.add_column(header)
    for t in result.targets:
        unit = api.representation(t.target).unit
        table.add_row(t.target, str(t.frames), f"{t.mse:.3f}", f"{unit}^2", str(t.png))
    console = common.stdout()
    console.print(f"scene: {result.audio} ({result.source} levels: {result.levels}, "
                  f"{result.source_frames} frames)", highlight=False, soft_wrap=True)
    console.print(table)
    return 0
