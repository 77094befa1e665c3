"""The demo's training table says what its numbers are (issue 12, item 18).

Its title said "chunks of 1 s" for SoundAQnet's 4 s chunks, printed a
duration without saying what it was, and gave a second Mel MSE unit
("std dB^2") without a word on how it differs from the PINV table's dB²,
or on how to read the numbers.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from specxform.cli import demo as demo_cli


def _trained() -> SimpleNamespace:
    row = {"loss": 0.5, "top1": 0.5, "ptopa_fc": 0.5, "mel_mse": 0.8}
    return SimpleNamespace(run=Path("run"), target="soundaqnet", train_scenes=4, valid_scenes=2,
                           valid_chunks=4, best_epoch=3, epochs=6, pinv=row, student=row,
                           seconds=93.0)


def _text(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=400).print(renderable)
    return out.getvalue()


def test_training_table_gives_the_real_chunk_length_and_labels_the_duration(registry) -> None:
    text = _text(demo_cli._training_table(_trained()))
    seconds = registry.teacher("soundaqnet").chunk_seconds
    assert f"chunks of {seconds:g} s" in text and seconds != 1
    assert "training took 93 s" in text


def test_training_numbers_come_with_how_to_read_them() -> None:
    reading = demo_cli.training_reading(_trained())
    assert "standardised" in reading and "dB" in reading and "BCE" in reading
    assert "PtoPa-FC" in reading
