"""Where a transcoder loses agreement: by part of the split, by the true top-1's lead, by class.

For one pair of ``benchmarks/train_table2.py`` (its data and split), scores
PINV and the given checkpoints on the training, validation and test files,
then breaks the test figure down::

    python benchmarks/failures.py --pair cense-efficientat \\
        --checkpoint transcoder=plugins/specxform_builtins/transcoders/cense-efficientat.pt \\
        --checkpoint retrained=runs/cense-efficientat-retrained/best.pt \\
        --output benchmarks/results/failures-cense-efficientat

- **By part**: PtoPa-FC on the training files says whether a model fits
  what it was trained on; the gap to the test files is generalisation.
- **By lead**: a file's lead is ``log p1 - log p2`` of its two most likely
  classes on the true Mels (mean over its chunks). A near-tie (parent and
  child classes, Animal / Dog) flips on a small change of the Mel.
- **By class**: the commonest true top-1 classes of the test files, their
  share of each part (a class common in test but rare in training is hard
  to learn) and each method's agreement on them; and the commonest
  confusions (true -> transcoded top-1).

Output: ``<output>.json`` and ``<output>.md``, written atomically.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from harness import machine, write_results  # noqa: E402

PARTS = ("train", "valid", "test")
#: Lead bins in nats: near-ties, close, clear.
LEAD_EDGES = (0.0, 0.3, 1.0, math.inf)


def file_leads(probs: np.ndarray, file_index: np.ndarray) -> dict[int, float]:
    """Per file index, ``log p1 - log p2`` of its mean chunk probabilities (nats)."""
    leads = {}
    for f in np.unique(file_index):
        mean = np.asarray(probs[file_index == f], np.float64).mean(axis=0)
        p2, p1 = np.sort(mean)[-2:]
        leads[int(f)] = float(np.log(max(p1, 1e-12)) - np.log(max(p2, 1e-12)))
    return leads


def by_lead(leads: Sequence[float], agree: Mapping[str, Sequence[bool]]) -> list[dict[str, Any]]:
    """Files and each method's agreement per lead bin (:data:`LEAD_EDGES`)."""
    values = np.asarray(leads)
    rows = []
    for low, high in itertools.pairwise(LEAD_EDGES):
        inside = (values >= low) & (values < high)
        rows.append({"low": low, "high": high, "files": int(inside.sum()),
                     "agree": {m: (float(np.asarray(a)[inside].mean()) if inside.any() else None)
                               for m, a in agree.items()}})
    return rows


def confusions(true_top: Sequence[int], top: Sequence[int], names: Sequence[str],
               n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` commonest (true top-1 -> transcoded top-1) pairs among disagreeing files."""
    pairs = collections.Counter((t, q) for t, q in zip(true_top, top, strict=True) if t != q)
    return [{"true": names[t], "transcoded": names[q], "files": c}
            for (t, q), c in pairs.most_common(n)]


def by_class(tops: Mapping[str, Sequence[int]], agree: Mapping[str, Sequence[bool]],
             names: Sequence[str], n: int = 8) -> list[dict[str, Any]]:
    """The ``n`` commonest true top-1 classes of the test files: share per part, agreement."""
    test = np.asarray(tops["test"])
    rows = []
    for c, count in collections.Counter(test.tolist()).most_common(n):
        rows.append({"class": names[c], "test_files": count,
                     "share": {p: float(np.mean(np.asarray(t) == c)) for p, t in tops.items()},
                     "agree": {m: float(np.asarray(a)[test == c].mean())
                               for m, a in agree.items()}})
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def markdown(report: Mapping[str, Any]) -> str:
    """``<output>.md``: the three tables and the confusions."""
    from specxform.cli.evaluate import markdown_table

    methods = list(report["parts"]["test"]["methods"])
    part_rows = []
    for part, r in report["parts"].items():
        part_rows.append([part, str(r["files"]), str(r["groups"]),
                          *(f"{_pct(m['ptopa_fc']['value'])} [{_pct(m['ptopa_fc']['low'])}, "
                            f"{_pct(m['ptopa_fc']['high'])}]" for m in r["methods"].values())])
    lead_rows = [[f"{r['low']:g} to {r['high']:g}" if math.isfinite(r["high"]) else
                  f"{r['low']:g} or more", str(r["files"]),
                  *(_pct(r["agree"][m]) for m in methods)] for r in report["by_lead"]]
    class_rows = [[r["class"], str(r["test_files"]),
                   *(_pct(r["share"][p]) for p in PARTS), *(_pct(r["agree"][m]) for m in methods)]
                  for r in report["by_class"]]
    lines = [
        f"# Where agreement is lost: `{report['pair']}` ({report['teacher']})", "",
        f"Data: every recording of `{report['data']}`, the grouped split of "
        "`benchmarks/train_table2.py` (seed 0). PtoPa-FC per part with 95 % bootstrap "
        "intervals over recordings; the lead of a file is `log p1 - log p2` of its two most "
        "likely classes on the true Mels, in nats.", "",
        "## By part", "",
        markdown_table(["part", "files", "recordings", *methods], part_rows), "",
        "## Test files by the lead of their true top-1", "",
        markdown_table(["lead (nats)", "files", *methods], lead_rows), "",
        "## The commonest true top-1 classes of the test files", "",
        "Share: the class's share of the files of each part (its true top-1 on true Mels).", "",
        markdown_table(["class", "test files", "share (train)", "share (valid)", "share (test)",
                        *methods], class_rows), "",
        "## Commonest confusions on the test files (true -> transcoded top-1, files)", "",
    ]
    for m, rows in report["confusions"].items():
        shown = "; ".join(f"{r['true']} -> {r['transcoded']} ({r['files']})" for r in rows)
        lines += [f"- **{m}**: {shown or 'none'}"]
    lines += ["", f"Machine: {report['machine']['cpu']}; took {report['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def analyse(args: argparse.Namespace) -> dict[str, Any]:
    """Score every method on every part and break the test part down."""
    import time

    import table2

    from specxform.evaluation.comparison import (
        cache_pair,
        checkpoint_method,
        evaluate_methods,
        pinv_method,
    )
    from specxform.plugins import get_registry
    from specxform.teachers.labels import teacher_labels
    from specxform.training.cache import teacher_digest

    started = time.perf_counter()
    registry = get_registry()
    loaded = table2.pair_data(args.pair, args.data, args.cache_dir, registry)
    pair_args, clips, split, teacher, cache = (loaded.args, loaded.clips, loaded.split,
                                               loaded.teacher, loaded.cache)
    source, target = cache_pair(cache)
    digest = teacher_digest(teacher)
    methods = [pinv_method("pinv", source, target), *(
        checkpoint_method(name, path, source=source, target=target,
                          teacher_name=pair_args.teacher, teacher_digest=digest,
                          registry=registry) for name, path in args.checkpoint)]
    names = teacher_labels(teacher, cache.probs.shape[1]).names
    groups = {c.name: c.group for c in clips}
    parts, tops, results = {}, {}, {}
    for part in PARTS:
        rows = cache.rows([c.name for c in getattr(split, part)])
        result = evaluate_methods(cache, rows, teacher, methods, n_boot=args.bootstrap,
                                  groups=groups, n_examples=0)
        results[part], tops[part] = result, result.true_top1()
        parts[part] = {"files": len(result.files), "groups": result.n_groups,
                       "methods": {m: {"ptopa_fc": result.metrics[m]["ptopa_fc"].to_dict()}
                                   for m in result.metrics}}
    test = results["test"]
    rows = cache.rows([c.name for c in split.test])
    leads = file_leads(np.asarray(cache.probs[rows]), np.asarray(cache.file_index)[rows])
    agree = {m: test.agree(m) for m in test.metrics}
    return {
        "pair": args.pair, "teacher": pair_args.teacher, "data": str(args.data),
        "checkpoints": dict(args.checkpoint), "parts": parts,
        "by_lead": by_lead([leads[test.file_index[f]] for f in test.files], agree),
        "by_class": by_class(tops, agree, names),
        "confusions": {m: confusions(test.true_top1(), test.top1(m), names)
                       for m in test.metrics},
        "machine": machine(), "seconds": time.perf_counter() - started,
    }


def _checkpoint(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, path


def pair_parser(description: str, checkpoint_help: str) -> argparse.ArgumentParser:
    """The options of a script that scores checkpoints on a pair's split: ``--pair``,
    ``--checkpoint NAME=PATH`` (repeatable), ``--data``, ``--cache-dir``, ``--output``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pair", required=True,
                        help="cense-yamnet, cense-efficientat or slow-efficientat")
    parser.add_argument("--checkpoint", type=_checkpoint, action="append", default=[],
                        metavar="NAME=PATH", help=checkpoint_help)
    parser.add_argument("--data", type=Path, default=ROOT.parent.parent / "shared" / "data")
    parser.add_argument("--cache-dir", type=Path, default=ROOT.parent / "runs" / "features")
    parser.add_argument("--output", type=Path, required=True,
                        help="writes OUTPUT.json and OUTPUT.md")
    return parser


def write_output(output: Path, report: dict[str, Any], text: str) -> None:
    """``OUTPUT.json`` and ``OUTPUT.md``, atomically; prints the Markdown."""
    write_results(output.parent, output.name, report, text)
    print(text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = pair_parser((__doc__ or "").splitlines()[0], "a trained row (repeatable)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    report = analyse(args)
    write_output(args.output, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
