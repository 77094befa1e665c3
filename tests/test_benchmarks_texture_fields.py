"""benchmarks/texture_fields.py: another seed's field swapped in, and its summary."""

from __future__ import annotations

from types import ModuleType

import pytest
import torch
from benchmark_helpers import import_benchmark
from specxform_builtins.coarse_texture import coarse_texture

from specxform.errors import InputError
from specxform.evaluation.comparison import Method
from specxform.registry import Registry


@pytest.fixture(scope="module")
def fields() -> ModuleType:
    return import_benchmark("texture_fields")


def test_reseeded_copy_uses_the_other_seeds_field_and_leaves_the_original(
        fields, registry: Registry):
    student = coarse_texture(registry.representation("cense"), registry.representation("yamnet"))
    own = Method("s", torch.nn.Sequential(student), kind="student")
    other = fields.reseeded(own, 5, "s@5")
    copied = fields.texture_students(other.transcoder)[0]
    assert other.name == "s@5" and other.kind == "student"
    assert torch.equal(copied.noise, student.field(5))
    assert torch.equal(student.noise, student.field(0))  # the original keeps its own
    mel = torch.zeros(1, 98, 64)
    with torch.no_grad():
        assert not torch.equal(other.transcoder(mel), own.transcoder(mel))


def test_a_transcoder_without_a_field_is_refused(fields):
    with pytest.raises(InputError, match="no texture field"):
        fields.texture_students(torch.nn.Linear(2, 2))


def test_summary_and_markdown_give_own_others_mean_and_gap(fields):
    values = {"s": {"ptopa_fc": 0.5, "kl": 1.0}, "s@1": {"ptopa_fc": 0.3, "kl": 1.4},
              "s@2": {"ptopa_fc": 0.4, "kl": 1.2}}
    row = fields.summarise(values, "s", ["s@1", "s@2"])
    assert row["others_mean_ptopa_fc"] == pytest.approx(0.35)
    assert row["own_minus_others_ptopa_fc"] == pytest.approx(0.15)
    assert row["own_minus_others_kl"] == pytest.approx(-0.3)
    report = {"pair": "cense-yamnet", "part": "valid", "files": 3, "fields": 2,
              "checkpoints": {"s": row}, "machine": {"cpu": "cpu"}, "seconds": 2.0}
    text = fields.markdown(report)
    assert "| s | 50.0 %, KL 1.00 | 30.0 %, 40.0 % | 35.0 %, KL 1.30 | +15.0 points, " \
           "-0.30 nats |" in text


def test_bad_options_are_refused_naming_the_value(fields, capsys):
    with pytest.raises(SystemExit):
        fields.main(["--pair", "cense-yamnet", "--output", "x", "--checkpoint", "s=p",
                     "--fields", "0"])
    assert "--fields must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        fields.main(["--pair", "cense-yamnet", "--output", "x"])
    assert "--checkpoint NAME=PATH" in capsys.readouterr().err


def test_pair_parser_and_write_output_give_both_files(tmp_path, capsys):
    failures = import_benchmark("failures")
    args = failures.pair_parser("d", "h").parse_args(
        ["--pair", "cense-yamnet", "--checkpoint", "a=b.pt", "--output", str(tmp_path / "r")])
    assert args.checkpoint == [("a", "b.pt")]
    failures.write_output(args.output, {"x": 1}, "# table\n")
    assert (tmp_path / "r.json").read_text() == '{\n  "x": 1\n}\n'
    assert (tmp_path / "r.md").read_text() == "# table\n"
    assert "# table" in capsys.readouterr().out
