"""GAN baseline training speed: iterations/s of the real training step for each condition.

One iteration = what ``python -m train.gan`` does per batch: pick the batch from the in-memory
uint8 images, collate its conditions, draw the noise, one D and one G Adam update. Random data
of the real shapes (64 px, batch 128, default widths; prompts of 15-30 words over a 2000-word
vocabulary, 24 categories). CPU always, CUDA when present (fp32 and bf16 autocast). Prints a
markdown table.

    .venv/bin/python -m benchmarks.bench_gan [--steps 5] [--batch 128] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from train.gan.data import collate_conditions
from train.gan.model import CONDITIONS, GanConfig
from train.gan.train import GanTrainer

VOCAB = {"none": 0, "category": 24, "prompt": 2000}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed iterations per case")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--resolution", type=int, default=64, choices=(64, 128))
    parser.add_argument("--images", type=int, default=1024, help="in-memory dataset size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args(argv)
    if min(args.steps, args.warmup + 1, args.batch - 1) < 1 or args.images < args.batch:
        parser.error("need --steps >= 1, --warmup >= 0, --batch >= 2 and --images >= --batch")
    return args


def time_case(condition: str, device: str, amp: str, args) -> tuple[float, float]:
    """(iterations per wall second, CPU seconds per iteration) of the training step. CPU time
    (all threads of this process) is the steadier figure on a shared machine."""
    rng = np.random.default_rng(0)
    config = GanConfig(
        condition=condition, resolution=args.resolution, num_embeddings=VOCAB[condition]
    )
    trainer = GanTrainer(config, device=device, mixed_precision=amp)
    images = torch.from_numpy(
        rng.integers(0, 256, (args.images, 3, args.resolution, args.resolution), dtype=np.uint8)
    )
    if condition == "category":
        ids = [[int(rng.integers(1, VOCAB["category"]))] for _ in range(args.images)]
    elif condition == "prompt":
        ids = [
            rng.integers(1, VOCAB["prompt"], int(rng.integers(15, 31))).tolist()
            for _ in range(args.images)
        ]
    else:
        ids = [[] for _ in range(args.images)]
    noise = torch.Generator().manual_seed(0)

    def iteration(step: int) -> None:
        index = rng.permutation(args.images)[: args.batch]
        cond = collate_conditions(condition, [ids[i] for i in index])
        z = torch.randn(args.batch, config.latent_dim, generator=noise)
        trainer.step(images[torch.from_numpy(index)], cond, z)

    for step in range(args.warmup):
        iteration(step)
    if device == "cuda":
        torch.cuda.synchronize()
    start, cpu = time.perf_counter(), time.process_time()
    for step in range(args.steps):
        iteration(step)  # .item() on the losses syncs every step, as in training
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return args.steps / wall, cpu / args.steps


def main(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    from benchmarks.machine import describe

    cases = [("cpu", "no")]
    if torch.cuda.is_available() and not args.cpu_only:
        cases += [("cuda", "no"), ("cuda", "bf16")]
    print(
        f"GAN training step, {args.resolution} px, batch {args.batch}, default widths "
        f"(ngf=ndf=64, z=100, embed=64); torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {describe()}"
        + (f", {torch.cuda.get_device_name()}" if len(cases) > 1 else "")
    )
    print()
    print("| condition | device | precision | it/s | images/s | CPU s/it |")
    print("|---|---|---|---:|---:|---:|")
    for device, amp in cases:
        for condition in CONDITIONS:
            rate, cpu = time_case(condition, device, amp, args)
            precision = "fp32" if amp == "no" else amp
            images = rate * args.batch
            print(
                f"| {condition} | {device} | {precision} | {rate:.3g} | {images:.3g} | {cpu:.3g} |"
            )


if __name__ == "__main__":
    main(parse_args())
