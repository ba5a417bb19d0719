"""Stable Diffusion fine-tuning speed and memory: optimizer steps per second and peak memory.

    .venv/bin/python -m benchmarks.bench_train                 # tiny random SD, CPU, 64 px
    .venv/bin/python -m benchmarks.bench_train --sdxl          # tiny random SDXL, CPU, 64 px
    .venv/bin/python -m benchmarks.bench_train --full          # SD 1.5-sized, 512 px, GPU
    .venv/bin/python -m benchmarks.bench_train --full --gradient_checkpointing --modes lora
    .venv/bin/python -m benchmarks.bench_train --sdxl --full --modes lora --ckpt_both
                                                               # SDXL-sized LoRA, 1024 px, GPU

Times ``train.finetune.trainer.Trainer.train_step`` (the scripts' own step: VAE encode, text
encoder(s), UNet forward/backward with SDXL's size/crop conditioning, clipping, AdamW) on the
objects the scripts prepare, after ``--warmup`` untimed steps. Each mode runs in a fresh
subprocess so its peak memory is its own: CUDA ``max_memory_allocated`` (tensors only, no CUDA
context), or on CPU the process peak RSS (which includes the Python/torch runtime and model
loading).

``--full`` builds the SD 1.5 architecture with random weights (UNet 320/640/1280/1280 with 768-d
cross-attention, CLIP ViT-L/14 text encoder, VAE 128/256/512/512; ~1.07 B parameters), saved to
a temp folder; nothing is downloaded. It needs ~4.5 GB of temp disk. ``--sdxl --full`` builds
SDXL base 1.0's (~3.5 B parameters, saved in float16 on a GPU: ~7 GB of temp disk) and trains at
1024 px. ``--ckpt_both`` runs each mode without and with gradient checkpointing. Prints a
markdown table; CPU time per step too, because on a shared machine wall time is load-bound.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import describe

ROOT = Path(__file__).resolve().parents[1]


def write_images(folder: Path, n: int, size: int) -> Path:
    """An imagefolder of ``n`` random ``size`` px covers with prompts."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with open(folder / "metadata.jsonl", "w") as f:
        for i in range(n):
            pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
            text = f"cover album of rock song, titled Song {i}, with the following music tags rock"
            f.write(json.dumps({"file_name": f"{i}.png", "text": text}) + "\n")
    return folder


def measure(mode: str, model: Path, data: Path, opts: argparse.Namespace) -> dict:
    """Time ``opts.steps`` training steps of ``mode`` (full or lora) in this process."""
    import resource

    import torch
    from accelerate import Accelerator

    from train.finetune.family import detect_family
    from train.finetune.trainer import Trainer
    from train.imagefolder import read_metadata
    from train.train_text_to_image import parse_args

    argv = [
        "--pretrained_model_name_or_path",
        str(model),
        "--train_data_dir",
        str(data),
        "--output_dir",
        str(data.parent / "out"),
        "--resolution",
        str(opts.resolution),
        "--train_batch_size",
        str(opts.batch),
        "--seed",
        "0",
    ]
    argv += ["--max_train_steps", str(opts.warmup + opts.steps)]
    if mode == "lora":
        argv += ["--use_lora", "--rank", str(opts.rank)]
    if opts.gradient_checkpointing:
        argv.append("--gradient_checkpointing")
    if opts.use_8bit_adam:
        argv.append("--use_8bit_adam")
    if opts.mixed_precision:
        argv += ["--mixed_precision", opts.mixed_precision]
    args = parse_args(argv)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    args.mixed_precision = accelerator.mixed_precision
    family = detect_family(model)
    trainer = Trainer(args, accelerator, family, read_metadata(data), None, settings={})
    trainable = sum(p.numel() for p in trainer.params)
    cuda = accelerator.device.type == "cuda"

    def batches():
        while True:
            yield from trainer.dataloader

    stream = batches()
    for _ in range(opts.warmup):
        with accelerator.accumulate(trainer.unet):
            trainer.train_step(next(stream))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(opts.steps):
        with accelerator.accumulate(trainer.unet):
            loss = trainer.train_step(next(stream))
    loss.item()  # waits for the device
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # all threads; unlike wall, not load-bound
    if cuda:
        peak, kind = torch.cuda.max_memory_allocated(), "CUDA allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "RSS"
    return {
        "mode": mode,
        "family": family.name,
        "gradient_checkpointing": opts.gradient_checkpointing,
        "device": str(accelerator.device),
        "precision": accelerator.mixed_precision,
        "threads": torch.get_num_threads(),
        "trainable": trainable,
        "steps_per_s": opts.steps / seconds,
        "cpu_s_per_step": cpu_seconds / opts.steps,
        "peak_bytes": peak,
        "peak_kind": kind,
    }


def describe_machine(threads: int) -> str:
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"{props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}"
    return f"{describe()} (torch threads {threads}), torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="real-sized model: SD 1.5 at 512 px, SDXL at 1024 px"
    )
    parser.add_argument("--sdxl", action="store_true", help="SDXL (tiny, or SDXL 1.0-sized)")
    parser.add_argument("--modes", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    parser.add_argument("--resolution", type=int, help="default 64 (tiny) or 512 (--full)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, help="timed steps (default 10 tiny, 20 --full)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rank", type=int, default=4, help="LoRA rank")
    parser.add_argument(
        "--mixed_precision", choices=["no", "fp16", "bf16"], help="default: fp16 on CUDA, no on CPU"
    )
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument(
        "--ckpt_both", action="store_true", help="each mode without and with gradient checkpointing"
    )
    parser.add_argument(
        "--use_8bit_adam", action="store_true", help="bitsandbytes AdamW8bit (CUDA, when installed)"
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: MODE,MODEL,DATA
    opts = parser.parse_args()
    opts.resolution = opts.resolution or ((1024 if opts.sdxl else 512) if opts.full else 64)
    opts.steps = opts.steps or (20 if opts.full else 10)

    if opts.worker:
        if opts.threads:
            import torch

            torch.set_num_threads(opts.threads)
        mode, model, data = opts.worker.split(",")
        print(json.dumps(measure(mode, Path(model), Path(data), opts)))
        return

    import torch

    from tests.tiny_models import (
        save_full_size_sd,
        save_full_size_sdxl,
        save_tiny_sd,
        save_tiny_sdxl,
    )

    if opts.mixed_precision is None:
        opts.mixed_precision = "fp16" if torch.cuda.is_available() else "no"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        half = torch.float16 if torch.cuda.is_available() else None  # halves disk and load time
        if opts.full and opts.sdxl:
            print("building the SDXL 1.0-sized random pipeline ...", file=sys.stderr)
            model = save_full_size_sdxl(tmp / "model", dtype=half)
        elif opts.full:
            print("building the SD 1.5-sized random pipeline ...", file=sys.stderr)
            model = save_full_size_sd(tmp / "model")
        else:
            model = (save_tiny_sdxl if opts.sdxl else save_tiny_sd)(tmp / "model")
        data = write_images(tmp / "data", 8, opts.resolution)
        rows = []
        flags = [f for f in sys.argv[1:] if f not in ("--ckpt_both", "--gradient_checkpointing")]
        ckpts = [False, True] if opts.ckpt_both else [opts.gradient_checkpointing]
        for mode in opts.modes:
            for ckpt in ckpts:
                cmd = [sys.executable, __file__, "--worker", f"{mode},{model},{data}", *flags]
                cmd += ["--mixed_precision", opts.mixed_precision]
                cmd += ["--gradient_checkpointing"] if ckpt else []
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    sys.exit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    if opts.sdxl:
        size = "SDXL 1.0-sized (random)" if opts.full else "tiny random SDXL"
    else:
        size = "SD 1.5-sized (random)" if opts.full else "tiny random SD"
    machine = describe_machine(rows[0]["threads"])
    print(
        f"\n{size}, {opts.resolution}x{opts.resolution}, batch {opts.batch}, "
        f"{opts.steps} timed steps after {opts.warmup} warm-up; {machine}\n"
    )
    print(
        "| mode | device | precision | grad. ckpt | trainable params | steps/s | s/step "
        "| CPU s/step | peak memory |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['device']} | {r['precision']} | "
            f"{'yes' if r['gradient_checkpointing'] else 'no'} | {r['trainable'] / 1e6:.2f} M | "
            f"{r['steps_per_s']:.2f} | {1 / r['steps_per_s']:.2f} | {r['cpu_s_per_step']:.2f} | "
            f"{r['peak_bytes'] / 2**30:.2f} GiB ({r['peak_kind']}) |"
        )


if __name__ == "__main__":
    main()
