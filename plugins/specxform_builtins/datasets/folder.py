"""The ``folder`` dataset adapter: any audio tree, labelled by sub-folder."""

from __future__ import annotations

from pathlib import Path

from specxform.audio import AUDIO_SUFFIXES
from specxform.datasets.base import (
    AudioDataset,
    Clip,
    dataset_root,
    group_of,
    write_example_audio,
)
from specxform.errors import InputError
from specxform.io import visible_files

__all__ = ["folder", "write_example"]


def folder(root: str | Path, *, group: str = "auto") -> AudioDataset:
    """Every audio file under ``root`` (recursively), labelled by its parent folder.

    Hidden names (a leading ``.``: staging folders of killed runs, ``.git``) are skipped.

    Parameters
    ----------
    root : path
        Dataset folder.
    group : {"auto", "freesound", "file"}
        Group rule (see :data:`~specxform.datasets.GROUP_RULES`): ``"auto"``
        groups UrbanSound8K names by fsID and treats any other file as its own group.
    """
    root = dataset_root(root, "dataset")
    files = [p for p in visible_files(root) if p.suffix.lower() in AUDIO_SUFFIXES]
    if not files:
        raise InputError(
            f"{root}: no audio files ({', '.join(AUDIO_SUFFIXES)}) found; check --data."
        )
    clips = tuple(
        Clip(
            path=path,
            name=path.relative_to(root).as_posix(),
            label=path.parent.name if path.parent != root else None,
            group=group_of(path, group),
        )
        for path in files
    )
    return AudioDataset("folder", root, clips)


def write_example(root: Path) -> None:
    """A tiny tree: two class folders, four UrbanSound8K-named recordings (groups) of two slices."""
    for fsid, label, class_id in (("100", "dog_bark", 3), ("200", "siren", 8),
                                  ("300", "dog_bark", 3), ("400", "siren", 8)):
        for piece in range(2):
            write_example_audio(root / label / f"{fsid}-{class_id}-0-{piece}.wav")
