"""benchmarks/ship_transcoder.py: the card states only measured figures, of this very file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest
from benchmark_helpers import import_benchmark

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SHIPPED = ROOT / "plugins" / "specxform_builtins" / "transcoders" / "cense-yamnet.pt"
TABLE2 = BENCHMARKS / "results" / "table2-cense-yamnet" / "table2.json"


@pytest.fixture(scope="module")
def ship() -> ModuleType:
    return import_benchmark("ship_transcoder")


def _downstream(path: Path, sha: str) -> Path:
    estimate = {"value": 0.5, "low": 0.4, "high": 0.6}
    row = {"dataset": "esc10", "scheme": "folds", "teacher": "yamnet", "true": estimate,
           "pinv": estimate, "transcoded": estimate, "checkpoint": {"sha256": sha, "epoch": 4}}
    path.write_text(json.dumps({"rows": [row]}))
    return path


def test_the_card_carries_the_table_and_only_downstream_rows_of_the_same_file(
        ship: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib

    monkeypatch.setattr(ship, "SHIPPED", tmp_path / "out")
    checkpoint = tmp_path / "best.pt"
    shutil.copyfile(SHIPPED, checkpoint)
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    common = ["--name", "cense-yamnet", "--checkpoint", str(checkpoint), "--table2", str(TABLE2),
              "--command", "python benchmarks/train_table2.py ..."]
    assert ship.main([*common, "--downstream", str(_downstream(tmp_path / "a.json", sha))]) == 0
    card = (tmp_path / "out" / "cense-yamnet.md").read_text()
    report = json.loads(TABLE2.read_text())
    pinv = report["methods"]["pinv"]["metrics"]["ptopa_fc"]["value"]
    assert f"{100 * pinv:.1f} %" in card and "| esc10 | folds |" in card
    assert "non-commercial" in card and "python benchmarks/train_table2.py ..." in card
    other = _downstream(tmp_path / "b.json", "0" * 64)  # measured with another file
    assert ship.main([*common, "--downstream", str(other)]) == 0
    assert "have not been run with this file" in (tmp_path / "out" / "cense-yamnet.md").read_text()
    # shipping the shipped file again rewrites its card (after a new downstream run)
    shipped = tmp_path / "out" / "cense-yamnet.pt"
    assert ship.main(["--name", "cense-yamnet", "--checkpoint", str(shipped), "--table2",
                      str(TABLE2), "--command", "python benchmarks/train_table2.py ...",
                      "--downstream", str(_downstream(tmp_path / "c.json", sha))]) == 0
    assert "| esc10 | folds |" in (tmp_path / "out" / "cense-yamnet.md").read_text()


def test_a_name_that_is_not_the_checkpoint_pair_is_refused(ship: ModuleType, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys) -> None:
    monkeypatch.setattr(ship, "SHIPPED", tmp_path / "out")
    code = ship.main(["--name", "cense-pann", "--checkpoint", str(SHIPPED), "--table2",
                      str(TABLE2), "--command", "x"])
    assert code == 2 and "the checkpoint is cense-yamnet" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_card_names_a_kl_term_class_balancing_and_a_schedule(ship: ModuleType) -> None:
    plain = {"loss": {"method": "logits", "kl_weight": 0.0}, "train": {}}
    assert ship._extra_terms(plain) == ""
    both = {"loss": {"method": "logits", "kl_weight": 0.01}, "train": {"balance": 0.5}}
    assert ship._extra_terms(both) == (", plus 0.01 x the KL divergence between the teacher's "
                                       "normalised class vectors, chunks drawn class-balanced "
                                       "(balance 0.5)")
    cosine = {"loss": {"kl_weight": 0.0}, "train": {"lr": 0.001, "lr_schedule": "cosine"}}
    assert ship._extra_terms(cosine) == ", learning rate on a cosine schedule from 0.001"
