"""How much a ``coarse_texture`` transcoder relies on its own noise field.

The student adds ``gain * noise`` with a fixed Gaussian field (from its
``seed``). A field of another seed has the same statistics; a student that
learned texture in general scores the same with it, one that learned its own
field's pattern scores lower. For one pair of ``benchmarks/train_table2.py``
(its data and split), scores each checkpoint with its own field and with
``--fields`` others (seeds own+1 ... own+N) on the same chunks::

    python benchmarks/texture_fields.py --pair cense-efficientat --part valid \\
        --checkpoint shipped=plugins/specxform_builtins/transcoders/cense-efficientat.pt \\
        --output benchmarks/results/texture-fields-cense-efficientat

Output: ``<output>.json`` and ``<output>.md``, written atomically.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from failures import _pct, pair_parser, write_output  # noqa: E402
from harness import machine  # noqa: E402

from specxform.errors import InputError  # noqa: E402

METRICS = ("ptopa_fc", "kl")


def texture_students(transcoder: Any) -> list[Any]:
    """The modules of ``transcoder`` that hold a texture field (``noise`` and ``field``)."""
    found = [m for m in transcoder.modules() if hasattr(m, "field") and hasattr(m, "noise")]
    if not found:
        raise InputError("this transcoder has no texture field (not a coarse_texture "
                         "student); texture_fields.py measures coarse_texture checkpoints only.")
    return found


def reseeded(method: Any, seed: int, name: str) -> Any:
    """A copy of ``method`` whose students use the field of ``seed``."""
    transcoder = copy.deepcopy(method.transcoder)
    for student in texture_students(transcoder):
        student.noise = student.field(seed)
    return attrs.evolve(method, name=name, transcoder=transcoder)


def summarise(values: Mapping[str, Mapping[str, float]], own: str,
              others: Sequence[str]) -> dict[str, Any]:
    """Own field's figures, the other fields', their mean and the own-minus-mean gap."""
    out: dict[str, Any] = {"own": dict(values[own]), "others": [dict(values[o]) for o in others]}
    for metric in METRICS:
        mean = sum(values[o][metric] for o in others) / len(others)
        out[f"others_mean_{metric}"] = mean
        out[f"own_minus_others_{metric}"] = values[own][metric] - mean
    return out


def markdown(report: Mapping[str, Any]) -> str:
    lines = [f"# Own texture field against other draws: {report['pair']} ({report['part']} "
             f"part, {report['files']} files)", "",
             "PtoPa-FC and KL (nats) of each checkpoint with its own field and with "
             f"{report['fields']} fields of other seeds, on the same chunks. A student that "
             "learned texture in general scores the same with any field; a drop means it "
             "learned its own field's pattern.", "",
             "| checkpoint | own field | other fields | mean of others | own - mean |",
             "|---|---:|---|---:|---:|"]
    for name, row in report["checkpoints"].items():
        others = ", ".join(_pct(o['ptopa_fc']) for o in row["others"])
        lines.append(f"| {name} | {_pct(row['own']['ptopa_fc'])}, KL {row['own']['kl']:.2f} | "
                     f"{others} | {_pct(row['others_mean_ptopa_fc'])}, KL "
                     f"{row['others_mean_kl']:.2f} | "
                     f"{100 * row['own_minus_others_ptopa_fc']:+.1f} points, "
                     f"{row['own_minus_others_kl']:+.2f} nats |")
    lines += ["", f"Machine: {report['machine'].get('cpu', '?')}; {report['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import table2

    from specxform.evaluation.comparison import cache_pair, checkpoint_method, evaluate_methods
    from specxform.plugins import get_registry
    from specxform.training.cache import teacher_digest

    started = time.perf_counter()
    registry = get_registry()
    loaded = table2.pair_data(args.pair, args.data, args.cache_dir, registry)
    source, target = cache_pair(loaded.cache)
    digest = teacher_digest(loaded.teacher)
    methods, names = [], {}
    for name, path in args.checkpoint:
        own = checkpoint_method(name, path, source=source, target=target,
                                teacher_name=loaded.args.teacher, teacher_digest=digest,
                                registry=registry)
        seed = texture_students(own.transcoder)[0].config.seed
        others = [reseeded(own, seed + i, f"{name}@{seed + i}")
                  for i in range(1, args.fields + 1)]
        methods += [own, *others]
        names[name] = [o.name for o in others]
    rows = loaded.cache.rows([c.name for c in getattr(loaded.split, args.part)])
    result = evaluate_methods(loaded.cache, rows, loaded.teacher, methods,
                              groups={c.name: c.group for c in loaded.clips}, n_examples=0)
    values = {m: {k: result.metrics[m].values()[k] for k in METRICS} for m in result.metrics}
    return {"pair": args.pair, "part": args.part, "files": len(result.files),
            "fields": args.fields, "data": str(args.data),
            "checkpoint_paths": dict(args.checkpoint),
            "checkpoints": {n: summarise(values, n, o) for n, o in names.items()},
            "machine": machine(), "seconds": time.perf_counter() - started}


def main(argv: Sequence[str] | None = None) -> int:
    parser = pair_parser((__doc__ or "").splitlines()[0],
                         "a coarse_texture checkpoint (repeatable)")
    parser.add_argument("--part", choices=("valid", "test"), default="valid",
                        help="files scored (default: the validation part)")
    parser.add_argument("--fields", type=int, default=4, help="other fields (4)")
    args = parser.parse_args(argv)
    if not args.checkpoint:
        parser.error("give at least one --checkpoint NAME=PATH of a coarse_texture run")
    if args.fields < 1:
        parser.error(f"--fields must be at least 1 (other fields to compare), got {args.fields}")
    report = measure(args)
    write_output(args.output, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
