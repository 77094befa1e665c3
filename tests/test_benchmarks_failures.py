"""The failure breakdown of benchmarks/failures.py on hand-made outputs."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest
from benchmark_helpers import import_benchmark


@pytest.fixture(scope="module")
def failures() -> ModuleType:
    return import_benchmark("failures")


def test_lead_is_the_log_ratio_of_the_two_likeliest_classes_of_the_mean(failures):
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.1], [0.9, 0.05, 0.01]])
    leads = failures.file_leads(probs, np.array([4, 4, 7]))
    assert leads[4] == pytest.approx(math.log(0.4 / 0.3))  # mean (0.4, 0.3, 0.1)
    assert leads[7] == pytest.approx(math.log(0.9 / 0.05))


def test_by_lead_bins_files_and_agreement(failures):
    rows = failures.by_lead([0.1, 0.2, 0.5, 3.0], {"m": [True, False, True, True]})
    assert [(r["low"], r["files"], r["agree"]["m"]) for r in rows] == [
        (0.0, 2, 0.5), (0.3, 1, 1.0), (1.0, 1, 1.0)]
    assert failures.by_lead([0.1], {"m": [True]})[2]["agree"]["m"] is None  # empty bin


def test_confusions_count_disagreeing_pairs_commonest_first(failures):
    names = ["Siren", "Animal", "Dog"]
    rows = failures.confusions([0, 0, 0, 2, 1], [1, 1, 0, 1, 1], names)
    assert rows == [{"true": "Siren", "transcoded": "Animal", "files": 2},
                    {"true": "Dog", "transcoded": "Animal", "files": 1}]


def test_by_class_gives_shares_per_part_and_agreement_on_the_test_files(failures):
    tops = {"train": [1, 1, 1, 0], "valid": [1], "test": [0, 0, 1]}
    rows = failures.by_class(tops, {"m": [True, False, True]}, ["Siren", "Dog"])
    assert rows[0] == {"class": "Siren", "test_files": 2,
                       "share": {"train": 0.25, "valid": 0.0, "test": pytest.approx(2 / 3)},
                       "agree": {"m": 0.5}}
    assert rows[1]["class"] == "Dog" and rows[1]["agree"] == {"m": 1.0}


def test_markdown_has_every_table(failures):
    estimate = {"value": 0.5, "low": 0.25, "high": 0.75}
    part = {"files": 4, "groups": 2, "methods": {"pinv": {"ptopa_fc": estimate}}}
    report = {"pair": "cense-efficientat", "teacher": "t", "data": "d",
              "parts": {p: part for p in ("train", "valid", "test")},
              "by_lead": failures.by_lead([0.1, 2.0], {"pinv": [True, False]}),
              "by_class": failures.by_class({"train": [0], "valid": [0], "test": [0, 0]},
                                            {"pinv": [True, False]}, ["Siren"]),
              "confusions": {"pinv": [{"true": "Siren", "transcoded": "Dog", "files": 1}]},
              "machine": {"cpu": "cpu"}, "seconds": 1.0}
    text = failures.markdown(report)
    assert "| train | 4 | 2 | 50.0 % [25.0 %, 75.0 %] |" in text
    assert "| 1 or more | 1 | 0.0 % |" in text and "| Siren | 2 |" in text
    assert "Siren -> Dog (1)" in text
