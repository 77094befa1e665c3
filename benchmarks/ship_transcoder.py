"""Ship a trained transcoder: copy its checkpoint into the package and write its model card.

    python benchmarks/ship_transcoder.py --name cense-yamnet \\
        --checkpoint runs/table2/cense-yamnet/coarse-texture/best.pt \\
        --table2 benchmarks/results/table2-cense-yamnet/table2.json --row coarse-texture

The checkpoint goes to ``plugins/specxform_builtins/transcoders/<name>.pt``
(the ``SOURCE-TARGET`` name under which ``--checkpoint <name>`` finds it) and
the card, ``<name>.md``, is written from the checkpoint's own description and
the held-out figures of the Table 2 report (and of the downstream report when
it holds the same checkpoint's teacher), so the card can only state what was
measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "plugins" / "specxform_builtins" / "transcoders"
MAX_BYTES = 1_000_000
LICENCE = ("The training audio is UrbanSound8K fold 1 and ESC-10 (both CC BY-NC 3.0, "
           "Freesound material) and 8 Freesound street clips; the weights are derived from "
           "them: **non-commercial use only** (CC BY-NC 3.0), with attribution to "
           "J. Salamon, C. Jacoby, J. P. Bello (UrbanSound8K, ACM MM 2014) and K. J. Piczak "
           "(ESC, ACM MM 2015).")


def _extra_terms(desc: dict[str, Any]) -> str:
    """The loss terms and sampling beyond the plain BCE, in words (empty when none)."""
    parts = []
    if desc["loss"].get("kl_weight"):
        parts.append(f"plus {desc['loss']['kl_weight']:g} x the KL divergence between the "
                     "teacher's normalised class vectors")
    if desc["train"].get("balance"):
        parts.append(f"chunks drawn class-balanced (balance {desc['train']['balance']:g})")
    if desc["train"].get("lr_schedule", "constant") != "constant":
        parts.append(f"learning rate on a {desc['train']['lr_schedule']} schedule from "
                     f"{desc['train']['lr']:g}")
    return "".join(f", {p}" for p in parts)


def _pct(estimate: dict[str, float]) -> str:
    return (f"{100 * estimate['value']:.1f} % [{100 * estimate['low']:.1f}, "
            f"{100 * estimate['high']:.1f}]")


def _num(estimate: dict[str, float]) -> str:
    return f"{estimate['value']:.3g} [{estimate['low']:.3g}, {estimate['high']:.3g}]"


def table_rows(report: dict[str, Any], row: str) -> list[list[str]]:
    methods = report["methods"]
    labels = {"pinv": "PINV (no training)", row: "this transcoder"}
    out = [["majority class (constant answer)", _pct(report["majority"]["ptopa_fc"]), "-", "-"]]
    for name, label in labels.items():
        m = methods[name]["metrics"]
        out.append([label, _pct(m["ptopa_fc"]), _num(m["kl"]), _num(m["mel_mse"])])
    return out


def downstream_rows(path: Path, digest: str) -> list[list[str]]:
    """The downstream rows measured with this very file (same SHA-256), if any."""
    if not path.is_file():
        return []
    rows = []
    for r in json.loads(path.read_text())["rows"]:
        if r["checkpoint"].get("sha256") != digest:
            continue
        rows.append([r["dataset"], r["scheme"], _pct(r["true"]), _pct(r["pinv"]),
                     _pct(r["transcoded"]), f"epoch {r['checkpoint']['epoch']}"])
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    return "\n".join(lines + [f"| {' | '.join(r)} |" for r in rows])


def card(name: str, data: dict[str, Any], report: dict[str, Any], row: str, digest: str,
         downstream: list[list[str]], command: str) -> str:
    desc = data["description"]
    student = desc["student"]
    split = desc["split"]
    chunking = desc["cache"]["chunking"]
    info = report["checkpoints"][row]
    minutes = info.get("train_seconds")
    lines = [
        f"# Model card: `{name}`", "",
        f"A trained specxform transcoder: `{desc['source']['name']}` third-octave levels "
        f"in, the `{desc['target']['name']}` log-Mel of the `{desc['teacher']['name']}` "
        "classifier out. Load it by name wherever a checkpoint is accepted: "
        f"`specxform classify --checkpoint {name} levels.csv`, `specxform transcode "
        f"--checkpoint {name}`, `specxform evaluate --checkpoint x={name}`.", "",
        "## What it is", "",
        f"- The derived PINV of the pair ({desc['pinv']['method']}, "
        f"{desc['pinv']['interpolation']} time interpolation), then the student "
        f"`{student['name']}` with options `{json.dumps(student['config'])}`.",
        f"- Checkpoint: {info['path'].split('/')[-1]} of the run, best epoch "
        f"{data['epoch']} by validation loss (of {info.get('epochs_run') or '?'} run), "
        f"training time {'?' if minutes is None else f'{minutes / 60:.0f} min'} on 2 CPU "
        f"cores shared with other jobs; SHA-256 of the shipped file `{digest[:16]}...`.",
        f"- Teacher: `{desc['teacher']['name']}` (weights digest "
        f"`{desc['teacher']['digest'][:12]}...`), frozen; its weights are not part of this "
        "file and come from the weights manager (`specxform weights fetch "
        f"{desc['teacher']['name']}`).",
        f"- Loss: `{desc['loss']['method']}` (BCE between the teacher's sigmoid outputs on "
        f"the transcoded and on the true Mel){_extra_terms(desc)}; Adam lr "
        f"{desc['train']['lr']}, batch {desc['train']['batch_size']}, seed "
        f"{desc['train']['seed']}.",
        f"- Chunks: {chunking['seconds']:g} s, normalisation `{chunking['normalise']}`.", "",
        "## Data and licence", "",
        f"Training data: every recording of the project's shared data, split by source "
        f"recording (seed {split['seed']}): {len(split['train'])} training, "
        f"{len(split['valid'])} validation and {len(split['test'])} test clips; no test "
        "recording was heard in training or model selection.", "",
        LICENCE, "",
        "## Held-out figures", "",
        f"The {report['n_files']} test files ({report['n_chunks']} chunks), teacher on true "
        "Mels as the reference; PtoPa-FC = share of files whose top-1 class (chunk "
        "probabilities averaged over the file) equals the true Mel's; KL in nats between "
        "the class distributions; Mel MSE in the target's unit squared; 95 % bootstrap "
        + (f"intervals over the {report['n_groups']} recordings the files come from (whole "
           "recordings resampled)." if report.get("n_groups") else "intervals over files."),
        "",
        markdown_table(["method", "PtoPa-FC", "KL", "Mel MSE"], table_rows(report, row)), "",
    ]
    if downstream:
        lines += [
            "Downstream (frozen teacher + a two-layer probe on the clip outputs; accuracy, "
            "mean over folds with intervals; the transcoder trained on most of these "
            "clips without labels, see `benchmarks/results/downstream/downstream.md` for the "
            "held-out clips only):", "",
            markdown_table(["dataset", "scheme", "true Mels", "PINV", "transcoded",
                            "checkpoint"], downstream), ""]
    else:
        lines += ["Downstream probes have not been run with this file yet "
                  "(`python benchmarks/downstream_table.py`).", ""]
    lines += [
        "## Limits", "",
        "- The paper's 85-89 % PtoPa-FC came from 29 h of 10 s TAU scenes and 200 epochs; "
        "this transcoder saw about 1.1 h of 4-5 s event clips for a few epochs on a CPU.",
        "- Real sensor levels need a dB offset (`--db-offset auto` or the sensor's "
        "calibration): training audio was full-scale digital audio.",
        "- AudioSet's labels are hierarchical: the teacher's top two classes are often a "
        "parent and its child (Animal / Dog) at nearly equal probability, which makes top-1 "
        "agreement a harsh measure.", "",
        "## Reproduce", "", "```bash", command, "```", "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--name", required=True, help="SOURCE-TARGET, e.g. cense-yamnet")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--table2", type=Path, required=True, help="table2.json of the pair")
    p.add_argument("--row", default="coarse-texture", help="the checkpoint's row in it")
    p.add_argument("--downstream", type=Path,
                   default=ROOT / "benchmarks" / "results" / "downstream" / "downstream.json")
    p.add_argument("--command", required=True, help="the training command, for the card")
    args = p.parse_args(argv)
    data = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    expected = "-".join((data["description"]["source"]["name"],
                         data["description"]["target"]["name"]))
    if args.name != expected:
        print(f"--name {args.name}: the checkpoint is {expected}", file=sys.stderr)
        return 2
    size = args.checkpoint.stat().st_size
    if size > MAX_BYTES:
        print(f"{args.checkpoint} has {size:,} bytes, over {MAX_BYTES:,}", file=sys.stderr)
        return 2
    report = json.loads(args.table2.read_text())
    SHIPPED.mkdir(parents=True, exist_ok=True)
    target = SHIPPED / f"{args.name}.pt"
    if not (target.exists() and target.samefile(args.checkpoint)):  # else: only the card
        shutil.copyfile(args.checkpoint, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    downstream = downstream_rows(args.downstream, digest)
    text = card(args.name, data, report, args.row, digest, downstream, args.command)
    (SHIPPED / f"{args.name}.md").write_text(text)
    print(f"{target} ({size:,} bytes) and {target.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
