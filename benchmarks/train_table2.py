"""The training recipe behind the Table 2 rows with real AudioSet teachers.

One command trains one row; it is resumable (``--resume`` continues ``last.pt``
after an interruption, with a larger ``--epochs`` to train longer)::

    python benchmarks/train_table2.py --pair cense-yamnet --student coarse_texture \\
        --out runs/table2/cense-yamnet-coarse_texture --epochs 30 --resume

Data: every real recording of ``../shared/data`` (README there):
UrbanSound8K fold 1 (grouped by ``fsID``), ESC-10 (grouped by its source
file ``src_file``) and the street clips (one group each), split 75 / 12.5 /
12.5 % by group with ``--seed``; test recordings never reach training.
``--train-fraction F`` keeps a seeded share of the training recordings (the
points of a learning curve). ``--mixtures N`` and ``--scenes N`` add augmented
training clips made only from training clips (:mod:`specxform.datasets.augment`).

Chunking follows the teacher: YAMNet's 1 s peak-normalised chunks (one 0.96 s
patch each), EfficientAT's whole 4 s clips at the recorded level (it was
trained on 10 s AudioSet clips; our clips are 4 to 5 s, so chunks are as long
as the clips allow).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import attrs

from specxform.cli.train import LR_SCHEDULES  # torch-free, like the parser

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

#: pair name -> (source, target, teacher, chunk seconds)
PAIRS = {
    "cense-yamnet": ("cense", "yamnet", "yamnet", 1.0),
    "cense-efficientat": ("cense", "efficientat", "efficientat_mn04", 4.0),
    "slow-efficientat": ("slow_third_octave", "efficientat", "efficientat_mn04", 4.0),
}


def shared_clips(data: Path) -> list:
    """Every recording in ``data`` (../shared/data) as clips grouped by source recording.

    UrbanSound8K and ESC-10 are read by their registered dataset adapters
    (``urbansound8k``, ``esc50``); names and groups get the dataset as a prefix,
    so that clips of different datasets never share one. The street clips are
    one group each.
    """
    import warnings

    from specxform.datasets.base import Clip
    from specxform.plugins import get_registry

    registry = get_registry()
    clips = []
    for adapter, folder in (("urbansound8k", "urbansound8k"), ("esc50", "esc10")):
        with warnings.catch_warnings():  # their own fold-1-only split is not used here
            warnings.simplefilter("ignore")
            dataset = registry.dataset(adapter).factory(data / folder)
        clips += [attrs.evolve(c, name=f"{folder}/{Path(c.name).name}",
                               group=f"{folder}:{c.group}") for c in dataset.clips]
    for path in sorted((data / "street-clips").glob("*.wav")):
        clips.append(Clip(path, f"street-clips/{path.name}", None, f"street:{path.stem}"))
    return clips


def make_split(data: Path, seed: int):
    from specxform.datasets.base import grouped_split

    return grouped_split(shared_clips(data), (0.75, 0.125, 0.125), seed=seed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pair", choices=sorted(PAIRS), required=True)
    parser.add_argument("--student", default="coarse_texture")
    parser.add_argument("--student-config", default="{}", help="JSON options of the student")
    parser.add_argument("--method", default="logits", help="loss: logits, mels or hybrid")
    parser.add_argument("--kl-weight", type=float, default=0.0,
                        help="weight of the KL term added to the loss (0: off)")
    parser.add_argument("--balance", type=float, default=0.0,
                        help="class balancing of the chunks drawn (TrainConfig.balance)")
    parser.add_argument("--retrain-teacher", action="store_true")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                        help="TrainConfig.lr_schedule")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto, ...")
    parser.add_argument("--train-fraction", type=float, default=1.0,
                        help="keep this share of the training recordings (whole groups, seeded): "
                             "the points of a learning curve; validation and test are unchanged")
    parser.add_argument("--mixtures", type=int, default=0)
    parser.add_argument("--scenes", type=int, default=0)
    parser.add_argument("--data", type=Path, default=SHARED / "data")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "features")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from specxform.cli.progress import progress_bars
    from specxform.datasets import subsample_groups
    from specxform.datasets.augment import Augmentation, augment_clips
    from specxform.pipeline.training import train_pair
    from specxform.training.losses import LossConfig
    from specxform.training.trainer import TrainConfig

    torch.set_num_threads(args.threads)
    source, target, teacher_name, seconds = PAIRS[args.pair]
    split = make_split(args.data, args.seed)
    if args.train_fraction < 1:
        split = attrs.evolve(split, train=subsample_groups(split.train, args.train_fraction,
                                                           seed=args.seed))
    extra: tuple = ()
    if args.mixtures or args.scenes:
        # 4 s like the recordings, whatever the chunk: a YAMNet mixture gives 4 chunks.
        config = Augmentation(mixtures=args.mixtures, scenes=args.scenes, seconds=4.0,
                              seed=args.seed)
        background = args.data / "street-clips" / "150993__saphe__street-scene-1.wav"
        train_clips = [c for c in split.train if c.path != background]
        extra = augment_clips(train_clips, args.cache_dir / f"augment-{args.seed}", config,
                              background=background)
        split = attrs.evolve(split, train=split.train + extra)
    with progress_bars(sys.stderr.isatty()) as progress:
        run = train_pair(
            source, target, split=split, teacher=teacher_name, student=args.student,
            student_config=json.loads(args.student_config), chunk_seconds=seconds,
            out_dir=args.out, cache_dir=args.cache_dir,
            loss=LossConfig(method=args.method, kl_weight=args.kl_weight),
            config=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                               seed=args.seed, device=args.device, balance=args.balance,
                               lr_schedule=args.lr_schedule),
            resume=args.resume, retrain_teacher=args.retrain_teacher, tensorboard=False,
            progress=progress,
        )
    result, cache_seconds = run.result, run.cache_seconds
    best = next(r for r in result.history if r["epoch"] == result.best_epoch)
    summary = {"pair": args.pair, "student": None if args.retrain_teacher else args.student,
               "method": args.method, "kl_weight": args.kl_weight, "balance": args.balance,
               "lr_schedule": args.lr_schedule, "augmented_clips": len(extra),
               "train_fraction": args.train_fraction,
               "train_clips": len(split.train), "valid_clips": len(split.valid),
               "test_clips": len(split.test), "cache_seconds": round(cache_seconds, 1),
               "train_seconds": round(sum(r["seconds"] for r in result.history), 1),
               "epochs": len(result.history), "best_epoch": result.best_epoch,
               "pinv_valid": result.pinv_metrics,
               "best_valid": {k: v for k, v in best.items() if k.startswith("valid_")}}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
