"""``specxform demo``: the main job on a synthetic street scene, then a small transcoder trained
on generated scenes, with a PINV vs student table."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from specxform.cli import common


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo", help="run the main job on a generated urban scene, then train a transcoder",
        description="Generate a 10 s street scene (siren, car horns, idling engine, pink noise), "
        "compute its Cense levels, transcode them with PINV to the PANN and YAMNet Mels, "
        "write comparison PNGs and print the Mel MSE against the true Mels. Then train a small "
        "cense -> soundaqnet transcoder on generated scenes (a few minutes on 2 cores) and "
        "print PINV beside the student on the validation scenes.",
    )
    parser.add_argument("-o", "--output", default="specxform-demo", metavar="DIR",
                        help="output folder (default: ./specxform-demo)")
    parser.add_argument("--no-train", action="store_true",
                        help="skip training the small demo transcoder (seconds instead of "
                        "minutes)")
    parser.add_argument("--no-teacher", action="store_true",
                        help="skip the shipped transcoders with their real AudioSet teachers")
    parser.add_argument("--clip", action="append", default=[], metavar="FILE",
                        help="also show the shipped transcoders on this audio file "
                        "(repeatable)")
    parser.add_argument("--train-scenes", type=int, default=4, metavar="N",
                        help="generated scenes to train on (default: 4)")
    parser.add_argument("--valid-scenes", type=int, default=2, metavar="N",
                        help="generated scenes to validate on (default: 2)")
    parser.add_argument("--scene-seconds", type=float, default=8.0, metavar="S",
                        help="length of each generated training scene (default: 8)")
    parser.add_argument("--epochs", type=int, default=6, metavar="N",
                        help="training epochs (default: 6)")
    common.add_json_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run :func:`specxform.pipeline.demo.run_demo` (and
    :func:`~specxform.pipeline.demo.train_demo`), print both."""
    from specxform.pipeline import demo

    result = demo.run_demo(args.output)
    shown = [] if args.no_teacher else _teacher_demos(args.output, result.audio, args.clip)
    trained = None
    if not args.no_train:
        from specxform.cli import progress

        with progress.progress_bars(not args.json) as bars:
            trained = demo.train_demo(
                args.output, train_scenes=args.train_scenes, valid_scenes=args.valid_scenes,
                duration=args.scene_seconds, epochs=args.epochs, progress=bars)
    if args.json:
        from specxform.pipeline.demo_teacher import summary

        common.print_json(_json(result, trained) | {
            "teachers": [summary(d) | {"audio": str(a)} for a, d in shown]})
        return 0
    console = common.stdout()
    console.print(f"scene: {result.audio} ({result.source} levels: {result.levels}, "
                  f"{result.source_frames} frames)", highlight=False, soft_wrap=True)
    console.print(_pinv_table(result))
    console.print("How to read it: the Mel MSE is the mean squared difference between the "
                  "PINV Mel and the Mel computed from the audio, in the target's unit squared "
                  "(dB^2 for PANN, ln^2 for YAMNet); 0 would be a perfect copy. The PNGs show "
                  "source levels, PINV Mel and true Mel side by side.", soft_wrap=True)
    for audio, shown_demo in shown:
        console.print(_teacher_table(audio, shown_demo))
    if shown:
        console.print(TEACHER_READING, soft_wrap=True)
    elif not args.no_teacher:
        console.print("No shipped transcoder ran: its teacher's weights are not on this "
                      "machine (`specxform weights fetch yamnet efficientat_mn04`).",
                      soft_wrap=True)
    if trained is not None:
        console.print(_training_table(trained))
        console.print(training_reading(trained), soft_wrap=True)
    return 0


def _chunk_seconds(teacher: str) -> float:
    """The chunk length the demo trained and validated on: the teacher's (4 s for SoundAQnet)."""
    from specxform import plugins

    return float(plugins.get_registry().teacher(teacher).chunk_seconds)


def training_reading(trained: Any) -> str:
    """How to read the training table, in one paragraph."""
    return (
        "How to read it: both rows are scored on the validation scenes, against the teacher's "
        "outputs on the true Mels. Teacher BCE is the training loss (lower is better; its "
        "floor is the entropy of the teacher's own outputs, not 0). Top-1 (chunks) is the "
        f"share of {_chunk_seconds(trained.target):g} s chunks whose most probable class "
        "matches; top-1 (scenes, PtoPa-FC) averages the chunk probabilities of each scene "
        "first. The Mel MSE here is in standardised dB squared: SoundAQnet reads its Mel "
        "standardised per band (dB minus the band's mean, divided by its deviation), so these "
        "values are not comparable with the dB^2 and ln^2 of the PINV table above. A few "
        "scenes and epochs only show that training runs; they do not measure a transcoder.")


TEACHER_READING = (
    "How to read it: each table is one shipped transcoder on one recording. The frozen "
    "teacher classifies three Mels: the true Mel computed from the audio, the PINV Mel "
    "derived from the third-octave levels alone, and the transcoded Mel (the trained student "
    "on top of the PINV). 'same top-1' says whether that Mel's most probable class equals the "
    "true Mel's (what PtoPa-FC counts over many files); KL is the divergence of its class "
    "distribution from the true Mel's (0 = the teacher hears the same thing). The PNG stacks "
    "levels, PINV, transcoded and true Mels.")


def _teacher_demos(folder: str, scene: Any, clips: list[str]) -> list[tuple[Any, Any]]:
    """Every shipped transcoder (teacher weights present) on the scene and the clips."""
    from pathlib import Path

    from specxform.audio import load_audio
    from specxform.pipeline.demo import SAMPLE_RATE
    from specxform.pipeline.demo_teacher import SHIPPED, teacher_demo

    shown = []
    for path in [scene, *clips]:
        audio, rate = load_audio(path)
        for name in SHIPPED:
            out = Path(folder) / ("scene" if path == scene else Path(path).stem)
            found = teacher_demo(out, audio, rate or SAMPLE_RATE, checkpoint=name)
            if found is not None:
                shown.append((path, found))
    return shown


def _teacher_table(audio: Any, shown: Any) -> Table:
    table = Table(title=f"{shown.checkpoint} on {audio}: teacher {shown.teacher}, "
                  f"{shown.chunks} chunk(s) of {shown.chunk_seconds:g} s averaged "
                  f"(figure: {shown.png})", title_justify="left")
    for header in ("Mel", "teacher's top classes (probability)", "same top-1", "KL"):
        table.add_column(header)
    for v in shown.verdicts:
        table.add_row(v.mel, ", ".join(f"{n} {p:.2f}" for n, p in v.top),
                      "-" if v.mel == "true" else ("yes" if v.agrees else "no"),
                      "-" if v.mel == "true" else f"{v.kl:.3f}")
    return table


def _json(result: Any, trained: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "folder": str(result.folder), "audio": str(result.audio),
        "levels": str(result.levels), "source": result.source,
        "source_frames": result.source_frames,
        "targets": [{"target": t.target, "mel_mse": t.mse, "frames": t.frames,
                     "png": str(t.png)} for t in result.targets],
        "training": None,
    }
    if trained is not None:
        report["training"] = {
            "run": str(trained.run), "target": trained.target,
            "train_scenes": trained.train_scenes, "valid_scenes": trained.valid_scenes,
            "valid_chunks": trained.valid_chunks, "best_epoch": trained.best_epoch,
            "epochs": trained.epochs, "pinv": trained.pinv, "student": trained.student,
            "seconds": trained.seconds,
        }
    return report


def _pinv_table(result: Any) -> Table:
    from specxform import api

    table = Table(title=f"{result.source} -> Mel by PINV: Mel MSE against the true Mel",
                  title_justify="left")
    for header in ("target", "frames", "Mel MSE", "unit", "plot"):
        table.add_column(header)
    for t in result.targets:
        unit = api.representation(t.target).unit
        table.add_row(t.target, str(t.frames), f"{t.mse:.3f}", f"{unit}^2", str(t.png))
    return table


def _training_table(trained: Any) -> Table:
    table = Table(
        title=f"cense -> {trained.target} on {trained.valid_scenes} validation scenes "
        f"({trained.valid_chunks} chunks of {_chunk_seconds(trained.target):g} s; trained on "
        f"{trained.train_scenes} scenes, training took {trained.seconds:.0f} s)",
        title_justify="left")
    for header in ("model", "teacher BCE", "top-1 (chunks)", "top-1 (scenes, PtoPa-FC)",
                   "Mel MSE (std dB^2)"):
        table.add_column(header, justify="right")
    for label, row in (("PINV", trained.pinv),
                       (f"student (best epoch {trained.best_epoch}/{trained.epochs})",
                        trained.student)):
        table.add_row(label, f"{row['loss']:.4f}", f"{row['top1']:.1%}",
                      f"{row['ptopa_fc']:.1%}", f"{row['mel_mse']:.3f}")
    return table
