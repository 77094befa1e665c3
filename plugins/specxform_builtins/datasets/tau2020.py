"""The ``tau2020`` adapter: TAU Urban Acoustic Scenes 2020 Mobile, development set.

Layout relied on (DCASE 2020 Task 1 page, dcase.community/challenge2020/
task-acoustic-scene-classification, and loaders reading the download, e.g.
mirdata's ``tau2020uas``): the archive extracts to a folder holding
``meta.csv`` and ``audio/``. ``meta.csv`` is tab-separated with the header
``filename scene_label identifier source_label``; a row reads
``audio/airport-barcelona-0-0-a.wav  airport  barcelona-0  a``: file names are
``<scene>-<city>-<location id>-<segment>-<device>.wav``, ``identifier`` is the
recording location (``<city>-<location id>``) and ``source_label`` the device
(``a``, ``b``, ``c`` real; ``s1`` .. ``s6`` simulated).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from specxform.datasets.base import (
    AudioDataset,
    Clip,
    check_files,
    dataset_root,
    read_table,
    write_example_audio,
    write_table,
)
from specxform.errors import InputError, SpecError

__all__ = ["META_COLUMNS", "tau2020", "write_example"]

META_COLUMNS = ("filename", "scene_label", "identifier", "source_label")
GROUP_BY = ("identifier", "file")


def tau2020(root: str | Path, *, devices: Sequence[str] | str = ("a",),
            group_by: str = "identifier") -> AudioDataset:
    """The clips of the TAU 2020 Mobile development set, labelled by scene.

    The split is the paper's random 75 / 12.5 / 12.5 % (:meth:`AudioDataset.split`
    with its default fractions and seed 0).

    Parameters
    ----------
    root : path
        Folder holding ``meta.csv`` and ``audio/``.
    devices : sequence of str or "all"
        Devices kept (``source_label``); the paper used device ``"a"`` only.
    group_by : {"identifier", "file"}
        ``"identifier"`` keeps the 10 s segments of one recording location in
        one split: stricter than the paper's random split, whose test segments
        can neighbour training segments of the same recording. ``"file"``
        reproduces the paper exactly (every segment its own group).

    Raises
    ------
    InputError
        If ``meta.csv`` or a listed audio file is missing, a column is absent,
        or a requested device has no file.
    """
    if group_by not in GROUP_BY:
        raise SpecError(f"unknown group_by {group_by!r}; choose one of {', '.join(GROUP_BY)}.")
    root = dataset_root(root, "tau2020")
    meta = root / "meta.csv"
    rows = read_table(meta, columns=META_COLUMNS, dataset="tau2020", delimiter="\t")
    found = sorted({row["source_label"] for row in rows})
    wanted = set(found) if devices == "all" else {devices} if isinstance(devices, str) \
        else set(devices)
    if absent := sorted(wanted - set(found)):
        raise InputError(
            f"device(s) {', '.join(map(repr, absent))} not in {meta} (devices found: "
            f"{', '.join(found)}); pass devices from that list, or devices='all'."
        )
    clips = tuple(sorted(
        (_clip(root, row, group_by) for row in rows if row["source_label"] in wanted),
        key=lambda c: c.name,
    ))
    check_files(clips, metadata=meta, dataset="tau2020")
    return AudioDataset("tau2020", root, clips)


def _clip(root: Path, row: dict[str, str], group_by: str) -> Clip:
    path = root / row["filename"]
    group = row["identifier"] if group_by == "identifier" else Path(row["filename"]).stem
    return Clip(path=path, name=row["filename"], label=row["scene_label"], group=group)


def write_example(root: Path) -> None:
    """A tiny tree: 2 scenes x 2 cities x 2 locations x 2 segments on device a, and one
    device-b file (left out by default)."""
    rows = []
    for scene in ("airport", "park"):
        for city in ("lyon", "paris"):
            for location in (0, 1):
                for segment in range(2):
                    name = f"audio/{scene}-{city}-{location}-{segment}-a.wav"
                    rows.append({"filename": name, "scene_label": scene,
                                 "identifier": f"{city}-{location}", "source_label": "a"})
    rows.append({"filename": "audio/park-lyon-0-0-b.wav", "scene_label": "park",
                 "identifier": "lyon-0", "source_label": "b"})
    for row in rows:
        write_example_audio(root / row["filename"])
    write_table(root / "meta.csv", META_COLUMNS, rows, delimiter="\t")
