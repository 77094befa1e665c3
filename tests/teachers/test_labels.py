"""Class names of the teachers: bundled, read from the weight cache, or placeholders."""

from __future__ import annotations

from pathlib import Path

import pytest
from specxform_builtins.teachers.pann import Cnn14, ResNet38
from specxform_builtins.teachers.soundaqnet import EVENT_LABELS, SoundAQnetTeacher
from specxform_builtins.teachers.yamnet import YAMNet

from specxform import weights
from specxform.errors import InputError, PluginError, WeightsError
from specxform.teachers.labels import (
    ClassLabels,
    placeholder_names,
    read_label_file,
    teacher_labels,
)


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("SPECXFORM_HOME", str(tmp_path))
    monkeypatch.delenv("SPECXFORM_WEIGHTS_PATH", raising=False)  # only the cache is searched
    folder = tmp_path / "weights"
    folder.mkdir()
    return folder


def _class_map(path: Path, n: int, prefix: str) -> list[str]:
    names = [f"{prefix} {i}, with a comma" for i in range(n)]
    rows = "".join(f'{i},/m/{i:05d},"{name}"\n' for i, name in enumerate(names))
    path.write_text("index,mid,display_name\n" + rows, encoding="utf-8")
    return names


def test_catalogue_lists_audioset_class_labels() -> None:
    wf = weights.get("audioset-class-labels")
    assert wf.filename == "class_labels_indices.csv"
    assert wf.url == ("http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"
                      "class_labels_indices.csv")
    assert (wf.size, wf.md5) == (14_675, "68c0b5c199d6cc789852b144cc3ab500")


def test_both_pann_teachers_list_the_label_file(registry) -> None:
    for name in ("pann_resnet38", "pann_cnn14"):
        assert "audioset-class-labels" in registry.teacher(name).weights


def test_placeholder_names() -> None:
    assert placeholder_names(3) == ("class_0", "class_1", "class_2")
    with pytest.raises(InputError, match="num_classes"):
        placeholder_names(0)


def test_soundaqnet_labels_are_bundled() -> None:
    assert SoundAQnetTeacher.labels() == EVENT_LABELS
    assert teacher_labels(SoundAQnetTeacher, 15) == ClassLabels(EVENT_LABELS)


@pytest.mark.parametrize(("model", "file", "n"), [
    (ResNet38, "class_labels_indices.csv", 527), (Cnn14, "class_labels_indices.csv", 527),
    (YAMNet, "yamnet_class_map.csv", 521)])
def test_file_labels_come_from_the_cache(cache: Path, model: type, file: str, n: int) -> None:
    names = _class_map(cache / file, n, model.__name__)
    assert model.labels() == tuple(names)
    labels = teacher_labels(model, n)
    assert labels.names == tuple(names) and not labels.placeholders


@pytest.mark.parametrize(("model", "name", "n"), [
    (ResNet38, "audioset-class-labels", 527), (YAMNet, "yamnet-class-map", 521)])
def test_missing_label_file_gives_placeholders_and_the_fetch_command(
        cache: Path, model: type, name: str, n: int) -> None:
    with pytest.raises(WeightsError, match=f"`specxform weights fetch {name}`"):
        model.labels()
    labels = teacher_labels(model, n)
    assert labels.placeholders and labels.names == placeholder_names(n)
    assert labels.warning is not None and f"specxform weights fetch {name}" in labels.warning
    assert str(cache) in labels.warning and "\n" not in labels.warning


def test_wrong_or_corrupt_label_file(cache: Path) -> None:
    _class_map(cache / "yamnet_class_map.csv", 520, "x")
    with pytest.raises(WeightsError, match="lists 520 classes, expected 521"):
        read_label_file("yamnet-class-map", 521)
    (cache / "yamnet_class_map.csv").write_text("id,name\n0,a\n")
    with pytest.raises(WeightsError, match=r"does not parse.*delete it"):
        read_label_file("yamnet-class-map", 521)


def test_teacher_without_labels_or_with_wrong_count() -> None:
    class Bare:
        pass

    labels = teacher_labels(Bare(), 2)
    assert labels.names == ("class_0", "class_1")
    assert labels.warning is not None and "Bare defines no labels()" in labels.warning

    class Wrong:
        @classmethod
        def labels(cls) -> tuple[str, ...]:
            return ("only one",)

    with pytest.raises(PluginError, match=r"Wrong.labels\(\) returned 1 names for 3 classes"):
        teacher_labels(Wrong(), 3)
