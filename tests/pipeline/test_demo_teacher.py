"""The real-teacher demo: three Mels of one scene classified, and a four-panel figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from specxform import api
from specxform.errors import InputError
from specxform.evaluation.plotting import plot_mels
from specxform.pipeline.demo_teacher import teacher_demo


def test_plot_mels_draws_the_levels_and_every_mel(tmp_path: Path):
    from matplotlib.image import imread

    audio = np.random.default_rng(0).standard_normal(32_000).astype(np.float32) * 0.1
    levels = api.compute("cense", audio, 32_000)
    mel = api.compute("yamnet", audio, 32_000)
    png = plot_mels(tmp_path / "m.png", levels=levels, source=api.representation("cense"),
                    mels=[("a", mel), ("b", mel + 1), ("c", mel - 1)],
                    target=api.representation("yamnet"), title="t")
    height, width = imread(png).shape[:2]
    assert height > 3 * width / 10 * 3  # four stacked panels: taller than a single row
    with pytest.raises(InputError, match="at least one Mel"):
        plot_mels(tmp_path / "n.png", levels=levels, source=api.representation("cense"),
                  mels=[], target=api.representation("yamnet"))


def test_an_absent_checkpoint_skips_the_demo(tmp_path: Path):
    audio = np.zeros(32_000, dtype=np.float32)
    assert teacher_demo(tmp_path, audio, 32_000, checkpoint=str(tmp_path / "none.pt")) is None
