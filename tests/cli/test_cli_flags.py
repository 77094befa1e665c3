"""Library messages name parameters; the command line shows its own flags instead."""

from __future__ import annotations

import pytest

from specxform.cli.common import as_flags
from specxform.cli.main import main
from specxform.transcoders.pinv import PinvTranscoder

FLAGS = ("--source", "--db-offset", "--levels-key")


def test_parameters_become_the_flags_that_set_them() -> None:
    assert as_flags("`source=cense`: not a source", FLAGS) == "--source cense: not a source"
    shown = as_flags("give `db_offset=0` or `levels_key`", FLAGS)
    assert shown == "give --db-offset 0 or --levels-key"
    assert as_flags("quoted `source='cense'`", FLAGS) == "quoted --source cense"


def test_names_that_are_no_option_stay_as_written() -> None:
    text = "see `specxform list`; `k=5` folds"
    assert as_flags(text, FLAGS) == text


def test_the_library_error_names_the_parameter() -> None:
    import torch

    from specxform.plugins import get_registry

    registry = get_registry()
    pinv = PinvTranscoder(registry.representation("cense"), registry.representation("yamnet"))
    with pytest.raises(Exception, match="check `source`"):
        pinv(torch.zeros(1, 8, 3))


def test_the_command_line_shows_the_flag(tmp_path, capsys) -> None:
    levels = tmp_path / "levels.csv"
    levels.write_text("time," + ",".join(f"b{i}" for i in range(5)) + "\n0.0,1,2,3,4,5\n")
    status = main(["classify", "--source", "cense", "--checkpoint", "cense-yamnet", str(levels)])
    err = capsys.readouterr().err
    assert status == 2
    assert "pass the --source the levels were stored in" in err
    assert "`source`" not in err
