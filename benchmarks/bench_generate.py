"""Cover generation speed: time to first cover, per-cover time for 1 and 4 variations split into
text encoding / denoising / VAE decode, and CoverGenerator.generate's overhead over a bare
``pipe(...)`` call with identical arguments.

    .venv/bin/python -m benchmarks.bench_generate          # tiny random SD, CPU, 64x64
    .venv/bin/python -m benchmarks.bench_generate --full     # SD 1.5 architecture, GPU, 512x512
    .venv/bin/python -m benchmarks.bench_generate --full --fast --threads 2   # fast vs default
    .venv/bin/python -m benchmarks.bench_generate --sdxl --full --fast        # SDXL 1024, a GPU
    .venv/bin/python -m benchmarks.bench_generate --full --fast --skip-default --threads 2 \
        --dtypes float32,bfloat16 --stages --cli      # issue 19's CPU targets, in one run

``--fast`` times one cover with each few-step path (a random LoRA fused in where the distilled
one goes, with that path's real scheduler and no guidance: one UNet pass per step): LCM-LoRA
at 4 steps, Hyper-SD at 2 (DDIM trailing) and 1 (TCD), each with the tiny autoencoder (TAESD's
architecture), against the family's default (25 steps DPM-Solver++ with classifier-free
guidance: two passes per step) in the same run, wall and CPU seconds, for every dtype in
``--dtypes``; with it, one float32 UNet pass is timed alone as the yardstick of the targets.
``--stages`` splits the CPU default (2 steps + TAESD) into text encoding, denoising, decode,
safety checker and conversion to PIL; ``--cli`` times a fresh ``albumcover cover`` of the
shared 30 s clip (imports, model load, tagging, one cover) on the same random model.
``--sdxl`` uses SDXL (with ``--full`` SDXL base 1.0's architecture, 1024x1024; ~7 GB in float16).

``--full`` builds the full Stable Diffusion 1.5 architecture (UNet 320/640/1280/1280 with 768-d
cross-attention, the 12-layer CLIP ViT-L text encoder, VAE 128/256/512/512, and the ViT-L/14
safety checker) with random weights: nothing is downloaded, and the compute is the real model's
(the text is always padded to 77 tokens, so the stand-in tokenizer changes nothing). Random
weights paint noise, which is all a timing needs. Each figure is the median of ``--runs`` runs
after one warm-up; the time to first cover runs once in a fresh Python process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROMPT = (
    "cover album of rock song, titled Bohemian Rhapsody, released in 1975, by Queen, "
    "with the following music tags rock, piano, male vocals"
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="the SD 1.5 architecture (for a GPU)")
    p.add_argument("--sdxl", action="store_true", help="SDXL instead of SD 1.x")
    p.add_argument(
        "--fast", action="store_true", help="one cover: the fast path against the 25-step default"
    )
    p.add_argument(
        "--skip-default",
        action="store_true",
        help="with --fast: leave out the (slow) default sampler, time only the fast rows",
    )
    p.add_argument("--device", default=None, help="default: cuda, else mps, else cpu")
    p.add_argument(
        "--dtype",
        choices=("float16", "bfloat16", "float32"),
        default=None,
        help="default: the library's (float16 on CUDA, bfloat16 on a CPU that runs it, else "
        "float32)",
    )
    p.add_argument(
        "--dtypes",
        default=None,
        help="with --fast: a comma list of dtypes, each timed in the same run (default --dtype)",
    )
    p.add_argument("--stages", action="store_true", help="with --fast: the CPU default's stages")
    p.add_argument("--cli", action="store_true", help="with --fast: a fresh albumcover cover")
    p.add_argument(
        "--targets",
        action="store_true",
        help="with --fast: only issue 19's targets, in interleaved rounds (--runs of them)",
    )
    p.add_argument(
        "--engines",
        default="torch",
        help="with --targets, --stages, --cli: a comma list of denoiser engines (torch, openvino, "
        "auto), each timed in the same run; OpenVINO's conversion and cached load are timed too",
    )
    p.add_argument("--steps", type=int, default=None, help="default: 25 with --full, else 10")
    p.add_argument("--size", type=int, default=None, help="default: 512 with --full, else 64")
    p.add_argument("--runs", type=int, default=5, help="timed runs per figure (median)")
    p.add_argument("--no-safety-checker", action="store_true")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (1 on a shared machine)"
    )
    args = p.parse_args(argv)
    args.steps = args.steps or (25 if args.full or args.fast else 10)
    args.size = args.size or ((1024 if args.sdxl else 512) if args.full else 64)
    if args.sdxl and not args.fast:
        p.error("--sdxl times the fast path against the default: add --fast")
    if (args.stages or args.cli or args.dtypes or args.targets) and not args.fast:
        p.error("--stages, --cli and --dtypes go with --fast")
    if args.sdxl and (args.stages or args.cli):
        p.error("--stages and --cli time the CPU default, SD 1.5: leave out --sdxl")
    if args.runs < 1 or args.steps < 1 or args.size < 64 or args.size % 8:
        p.error("--runs and --steps must be >= 1, --size a multiple of 8 >= 64")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not args.engines or set(args.engines) - {"torch", "openvino", "auto"}:
        p.error("--engines: a comma list of torch, openvino, auto")
    return args


_FIRST_COVER = """
import json, sys, time
t0 = time.perf_counter()
import torch
import diffusers, transformers
diffusers.utils.logging.set_verbosity_error()
transformers.utils.logging.set_verbosity_error()
from diffusers import AutoPipelineForText2Image  # the heavy part of the imports
from albumcover.paint.generator import CoverGenerator, GenerationSettings
if int(sys.argv[7]):
    torch.set_num_threads(int(sys.argv[7]))
t1 = time.perf_counter()
dtype = getattr(torch, sys.argv[3])
gen = CoverGenerator.from_pretrained(sys.argv[1], device=sys.argv[2], dtype=dtype)
t2 = time.perf_counter()
size, steps = int(sys.argv[4]), int(sys.argv[5])
gen.generate(sys.argv[6], GenerationSettings(steps=steps, width=size, height=size, seed=0))
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "cover": t3 - t2}))
"""


def time_first_cover(folder: Path, device: str, dtype: str, args) -> dict:
    """Fresh process: import + load + one cover, in seconds."""
    env = dict(os.environ)  # albumcover comes from the installed package (pip install -e .)
    settings = (args.size, args.steps, PROMPT, args.threads or 0)
    argv = [str(folder), device, dtype, *map(str, settings)]
    out = subprocess.run(
        [sys.executable, "-c", _FIRST_COVER, *argv],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode:
        raise RuntimeError(f"first-cover run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_timed(fn, sync) -> tuple[float, float]:
    """(wall, CPU) seconds of one call; CPU time is this process's, all threads."""
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_times(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return tuple(statistics.median(column) for column in zip(*samples, strict=True))


def decode_latents(pipe, latents):
    """The VAE's decode of ``latents`` as the pipeline does it: (B, C, H, W) images in [-1, 1]."""
    import torch

    with torch.no_grad():
        return pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]


def measure(gen, n: int, args, sync) -> dict:
    """(wall, CPU) seconds per call for n variations: each stage, a bare pipe(...) call and
    CoverGenerator.generate."""
    import torch

    from albumcover.paint.generator import GenerationSettings

    pipe = gen.pipeline
    settings = GenerationSettings(
        steps=args.steps, width=args.size, height=args.size, seed=0, num_images=n
    )
    negative = settings.negative_prompt
    common = dict(
        num_inference_steps=settings.steps,
        guidance_scale=settings.guidance_scale,
        width=settings.width,
        height=settings.height,
    )

    def generators():
        return [torch.Generator("cpu").manual_seed(s) for s in range(n)]

    state = {}

    def encode():
        with torch.no_grad():
            state["embeds"] = pipe.encode_prompt(PROMPT, pipe.device, n, True, negative)

    def denoise():
        positive, neg = state["embeds"]
        state["latents"] = pipe(
            prompt_embeds=positive,
            negative_prompt_embeds=neg,
            generator=generators(),
            output_type="latent",
            **common,
        ).images

    def decode():
        state["image"] = decode_latents(pipe, state["latents"])

    def finish():  # what the pipeline does after decoding: safety checker, then PIL images
        with torch.no_grad():
            image, _ = pipe.run_safety_checker(state["image"], pipe.device, state["image"].dtype)
            pipe.image_processor.postprocess(image, output_type="pil")

    def bare():
        pipe(
            prompt=PROMPT,
            negative_prompt=negative,
            num_images_per_prompt=n,
            generator=generators(),
            **common,
        )

    def wrapped():
        gen.generate(PROMPT, settings)

    wrapped()  # warm-up: kernels, allocator, scheduler tables
    stages = (("text", encode), ("denoise", denoise), ("vae", decode), ("finish", finish))
    result = {
        name: median_times([run_timed(fn, sync) for _ in range(args.runs)]) for name, fn in stages
    }
    # interleave bare and wrapped calls, swapping which goes first, so that drifting load and
    # cache effects hit both alike
    samples = {"bare": [], "generate": []}
    for i in range(args.runs + args.runs % 2):  # an even count: each goes first equally often
        pair = [("bare", bare), ("generate", wrapped)]
        for name, fn in pair if i % 2 else pair[::-1]:
            samples[name].append(run_timed(fn, sync))
    result.update({name: median_times(times) for name, times in samples.items()})
    return result


def _few_step_paths(folder: Path) -> list:
    """(label, FastPath or None) for each sampler timed by --fast: a random rank-4 LoRA stands
    in for each distilled one (the compute is the same once fused), TAESD's architecture for
    the tiny decoder."""
    from diffusers import AutoencoderTiny

    from albumcover.paint.generator import FastPath
    from tests.tiny_models import save_tiny_lora

    lora = str(save_tiny_lora(folder, folder.parent / "few_step_lora"))
    taesd = folder.parent / "taesd"  # TAESD's architecture (AutoencoderTiny's defaults), random
    if not taesd.exists():
        AutoencoderTiny().save_pretrained(taesd)
    return [
        ("default", None),
        ("LCM-LoRA + TAESD", FastPath(lora=lora, steps=4, vae=str(taesd))),
        ("Hyper-SD 2 steps + TAESD (CPU default)", FastPath(lora=lora, steps=2, vae=str(taesd))),
        ("Hyper-SD 1 step + TAESD", FastPath(lora=lora, steps=1, vae=str(taesd))),
    ]


def unet_caller(gen, size: int):
    """A function running one UNet evaluation of ``gen`` (batch 1, no guidance, 999)."""
    import torch

    pipe = gen.pipeline
    dtype = pipe.unet.dtype
    channels = pipe.unet.config.in_channels
    latents = torch.randn(1, channels, size // 8, size // 8, dtype=dtype, device=pipe.device)
    with torch.no_grad():
        encoded = pipe.encode_prompt(
            PROMPT,
            device=pipe.device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
        )
    text, extra = encoded[0], {}
    if gen.family.name == "sdxl":  # SDXL's pooled text and size ids
        ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=dtype, device=pipe.device)
        extra["added_cond_kwargs"] = {"text_embeds": encoded[2], "time_ids": ids}
    timestep = torch.tensor([999], device=pipe.device)

    def once():
        with torch.no_grad():
            pipe.unet(latents, timestep, text, return_dict=False, **extra)

    return once


def unet_pass(gen, size: int, sync, runs: int = 2) -> float:
    """Seconds of one UNet evaluation (batch 1, no guidance), best of ``runs`` after a warm-up."""
    once = unet_caller(gen, size)
    once()
    return min(run_timed(once, sync)[0] for _ in range(runs))


def compare_fast(folder: Path, device: str, dtypes: list, args, sync) -> list[tuple]:
    """(label, dtype name, wall s, CPU s, UNet passes) of one cover with the family's default
    sampler and with each few-step path, in each dtype, each after a one-step warm-up, loaded
    one after the other (one model in memory); and ("one UNet pass", ...) rows timed alone."""
    import gc

    from albumcover.paint.dtypes import dtype_label
    from albumcover.paint.generator import CoverGenerator

    samplers = _few_step_paths(folder)
    rows = []
    for dtype in dtypes:
        for label, fast in samplers[args.skip_default :]:
            gen = CoverGenerator.from_pretrained(folder, device=device, dtype=dtype, fast=fast)
            settings = gen.default_settings(width=args.size, height=args.size, seed=0)
            if fast is None:
                settings.steps = args.steps
            warm = gen.default_settings(width=args.size, height=args.size, seed=0, steps=1)
            gen.generate(PROMPT, warm)
            wall, cpu = run_timed(
                lambda gen=gen, settings=settings: gen.generate(PROMPT, settings), sync
            )
            passes = settings.steps * (2 if settings.guidance_scale > 1 else 1)
            name = type(gen.pipeline.scheduler).__name__
            rows.append(
                (
                    f"{label}: {settings.steps} steps {name}, guidance "
                    f"{settings.guidance_scale:g} ({passes} UNet passes)",
                    dtype_label(gen.dtype),
                    wall,
                    cpu,
                )
            )
            if fast is not None and fast.steps == 1:  # the same loaded model: one pass alone
                alone = unet_pass(gen, args.size, sync)
                rows.append(("one UNet pass, alone", dtype_label(gen.dtype), alone, None))
            del gen
            gc.collect()
    return rows


def time_stages(folder: Path, device: str, dtype, args, sync, engine: str = "torch") -> dict:
    """Seconds of each stage of one cover on the CPU default (Hyper-SD 2 steps + TAESD, no
    guidance), best of ``args.runs``: text encoding, denoising, decode, safety checker, the
    conversion to PIL, and the whole ``generate`` call."""
    import torch

    from albumcover.paint.generator import CoverGenerator

    fast = _few_step_paths(folder)[2][1]
    gen = CoverGenerator.from_pretrained(
        folder,
        device=device,
        dtype=dtype,
        fast=fast,
        engine=engine,
        engine_cache=folder.parent / "engine-cache",
    )
    pipe = gen.pipeline
    settings = gen.default_settings(width=args.size, height=args.size, seed=0)
    state = {}

    def text():
        with torch.no_grad():
            state["embeds"] = pipe.encode_prompt(PROMPT, pipe.device, 1, False)[0]

    def denoise():
        state["latents"] = pipe(
            prompt_embeds=state["embeds"],
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance_scale,
            width=settings.width,
            height=settings.height,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="latent",
        ).images

    def decode():
        state["image"] = decode_latents(pipe, state["latents"])

    def checker():
        with torch.no_grad():
            state["checked"], _ = pipe.run_safety_checker(
                state["image"], pipe.device, state["image"].dtype
            )

    def convert():
        pipe.image_processor.postprocess(state["checked"], output_type="pil")[0].convert("RGB")

    gen.generate(PROMPT, settings)  # warm-up
    stages = {}
    for name, fn in (
        ("text encoding", text),
        (f"denoising ({settings.steps} UNet passes)", denoise),
        ("decode (TAESD)", decode),
        ("safety checker", checker),
        ("conversion to PIL", convert),
        ("`CoverGenerator.generate`, all of it", lambda: gen.generate(PROMPT, settings)),
    ):
        fn()
        stages[name] = min(run_timed(fn, sync)[0] for _ in range(args.runs))
    return stages


def time_cli(folder: Path, args, engine: str = "torch") -> tuple[float, float | None]:
    """Seconds of a fresh ``albumcover cover --engine ENGINE`` process on the shared 30 s clip:
    imports, model load (the random full-size model, its few-step LoRA and TAESD from local
    folders), both taggers, one cover, the PNG written. Its cache folder (XDG_CACHE_HOME) is
    the benchmark's: the first OpenVINO run converts, the next reads the export. Returns the
    seconds and the process's peak resident memory in GB (through GNU time, where installed)."""
    lora, taesd = folder.parent / "few_step_lora", folder.parent / "taesd"
    clip = ROOT.parent / "shared" / "audio" / "TRWJAZW128F42760DD_test.mp3"
    with tempfile.TemporaryDirectory() as out:
        argv = ["cover", str(clip), "--model", str(folder), "--n", "1", "--out", out]
        argv += ["--fast-lora", str(lora), "--fast-vae", str(taesd), "--seed", "1"]
        argv += ["--engine", engine]
        env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(folder.parent / "xdg"))
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        gnu_time = Path("/usr/bin/time")
        memory = Path(out) / "peak-kb"
        prefix = [str(gnu_time), "-f", "%M", "-o", str(memory)] if gnu_time.exists() else []
        start = time.perf_counter()
        done = subprocess.run(
            [*prefix, sys.executable, "-m", "albumcover", *argv],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        peak = int(memory.read_text().split()[-1]) / 1e6 if memory.exists() else None
    if done.returncode:
        raise RuntimeError(f"albumcover cover failed:\n{done.stderr[-3000:]}")
    return seconds, peak


def time_targets(folder: Path, device: str, args, sync) -> dict:
    """Best (wall s, CPU s) over ``args.runs`` interleaved rounds of: one float32 UNet pass (the
    yardstick: channels_last, as the library runs it, and plain eager, as issue 19 measured
    it), one cover on the CPU default (2 steps + TAESD, the library's dtype) and one on the
    fastest setting (1 step + TAESD), for each of ``args.engines``; all models stay loaded, so
    each round meets the same load."""
    import torch

    from albumcover.paint.generator import CoverGenerator

    paths = dict(_few_step_paths(folder))
    fp32 = CoverGenerator.from_pretrained(
        folder, device=device, dtype=torch.float32, fast=paths["Hyper-SD 1 step + TAESD"]
    )
    chosen = {
        "CPU default: 2 steps + TAESD": paths["Hyper-SD 2 steps + TAESD (CPU default)"],
        "fastest: 1 step + TAESD": paths["Hyper-SD 1 step + TAESD"],
    }
    gens, loads = {}, {}
    cache = folder.parent / "engine-cache"  # starts empty: the first load converts
    for engine in args.engines:
        for k, f in chosen.items():
            start = time.perf_counter()
            gens[f"{k}, {engine}"] = gen = CoverGenerator.from_pretrained(
                folder, device=device, fast=f, engine=engine, engine_cache=cache
            )
            loads[f"load: {k}, {engine} (denoiser in {gen.engine})"] = time.perf_counter() - start
    for label, seconds in loads.items():
        print(f"{label}: {seconds:.1f} s", flush=True)
    unet = fp32.pipeline.unet

    def layout(fmt):  # the fp32 UNet's memory layout, switched outside the timed pass
        return lambda: unet.to(memory_format=fmt)

    one_pass = unet_caller(fp32, args.size)
    jobs = {  # label: (set-up, untimed; the timed job)
        "one float32 UNet pass (channels_last)": (layout(torch.channels_last), one_pass),
        "one float32 UNet pass, plain eager": (layout(torch.contiguous_format), one_pass),
    }
    as_served = layout(torch.channels_last)  # a no-op once the plain pass has switched back
    for label, gen in gens.items():
        settings = gen.default_settings(width=args.size, height=args.size, seed=0)
        jobs[f"{label} ({gen.dtype})"] = as_served, lambda g=gen, s=settings: g.generate(PROMPT, s)
    for prepare, job in jobs.values():
        prepare()
        job()  # warm-up
    best = {}
    for _ in range(args.runs):
        for label, (prepare, job) in jobs.items():
            prepare()
            wall, cpu = run_timed(job, sync)
            old = best.get(label, (float("inf"), float("inf")))
            best[label] = (min(old[0], wall), min(old[1], cpu))
    return best


def report_fast(folder: Path, device: str, dtypes: list, model: str, args, sync) -> None:
    """What --fast prints: the targets (--targets) or every sampler, then --stages, --cli."""
    if args.targets:
        best = time_targets(folder, device, args, sync)
        (pass_wall, pass_cpu), *_ = best.values()
        print(f"\n{model}; {describe_device(device)}; best of {args.runs} interleaved rounds\n")
        plain_wall, _ = best["one float32 UNet pass, plain eager"]
        print(
            "| what | wall s | CPU s | of one fp32 pass (channels_last), wall | CPU | "
            "of one plain fp32 pass, wall |\n|---|---:|---:|---:|---:|---:|"
        )
        for label, (wall, cpu) in best.items():
            print(
                f"| {label} | {wall:.2f} | {cpu:.2f} | {wall / pass_wall:.2f} | "
                f"{cpu / pass_cpu:.2f} | {wall / plain_wall:.2f} |"
            )
    else:
        report_samplers(folder, device, dtypes, model, args, sync)
    if args.stages:
        fast_dtype = dtypes[-1]
        stages = {e: time_stages(folder, device, fast_dtype, args, sync, e) for e in args.engines}
        print(f"\nStages of the CPU default, {fast_dtype}, best of {args.runs}:\n")
        print(f"| stage | {' | '.join(args.engines)} |\n| --- |{' ---: |' * len(args.engines)}")
        for name in stages[args.engines[0]]:
            print(f"| {name} | {' | '.join(f'{stages[e][name]:.3f}' for e in args.engines)} |")
    if args.cli:
        print("\nfresh `albumcover cover` (imports, load, tagging, one cover), peak memory:")
        for engine in args.engines:
            for run in range(2 if engine != "torch" else 1):  # OpenVINO: converts, then reads
                seconds, peak = time_cli(folder, args, engine)
                memory = f", peak {peak:.1f} GB" if peak else ""
                print(f"- `--engine {engine}`, run {run + 1}: {seconds:.1f} s{memory}", flush=True)
    attention = sorted({type(p).__name__ for p in _attention_processors(folder, device)})
    print(f"\n{describe_device(device)}; attention: {', '.join(attention)}")


def report_samplers(folder: Path, device: str, dtypes: list, model: str, args, sync) -> None:
    """The table of every sampler in every dtype (compare_fast), with the targets' ratios."""
    import diffusers
    import torch

    rows = compare_fast(folder, device, dtypes, args, sync)
    print(
        f"\n{model}; {describe_device(device)}; one {args.size}x{args.size} cover each, after a "
        f"1-step warm-up; torch {torch.__version__}, diffusers {diffusers.__version__}\n"
    )
    print("| sampler | dtype | wall s | CPU s |\n| --- | --- | ---: | ---: |")
    for label, dtype, wall, cpu in rows:
        print(f"| {label} | {dtype} | {wall:.2f} | {'' if cpu is None else f'{cpu:.2f}'} |")
    passes = [r[2] for r in rows if r[0].startswith("one UNet") and r[1] == "float32"]
    yardstick = passes[0] if passes else None
    if yardstick:
        print(f"\nTargets against one float32 UNet pass ({yardstick:.2f} s, same run):")
        for label, dtype, wall, _ in rows:
            if not label.startswith("one UNet"):
                print(f"- {label.split(':')[0]}, {dtype}: {wall / yardstick:.2f} passes")


def _attention_processors(folder: Path, device: str) -> list:
    """The UNet's attention processors (AttnProcessor2_0: torch's scaled_dot_product_attention,
    which picks flash / memory-efficient kernels on a GPU)."""
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(folder / "unet")
    return list(unet.attn_processors.values())


def describe_device(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(device)
    from benchmarks.machine import describe

    return f"{device} ({describe()}; {torch.get_num_threads()} torch threads)"


def main(args) -> None:
    import diffusers
    import torch
    import transformers

    from albumcover.paint.dtypes import default_dtype, dtype_label, pick_device
    from albumcover.paint.generator import CoverGenerator
    from tests.tiny_models import (
        save_full_size_sd,
        save_full_size_sdxl,
        save_tiny_sd,
        save_tiny_sdxl,
    )

    # the stand-in tokenizer splits words into bytes, so the prompt overflows 77 tokens and both
    # libraries say so on every call; the padded length, hence the compute, is the same
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or pick_device()
    dtype = getattr(torch, args.dtype) if args.dtype else default_dtype(torch.device(device))
    dtype_name = dtype_label(dtype)
    dtypes = [getattr(torch, d.strip()) for d in (args.dtypes or dtype_name).split(",")]

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sd"
        start = time.perf_counter()
        checker = not args.no_safety_checker
        if args.sdxl and args.full:
            save_full_size_sdxl(folder, dtype=dtype)
        elif args.sdxl:
            save_tiny_sdxl(folder)
        elif args.full:
            save_full_size_sd(folder, safety_checker=checker)  # converted when loaded
        else:
            save_tiny_sd(folder, safety_checker=checker)
        built = time.perf_counter() - start
        family = "SDXL" if args.sdxl else "SD 1.5"
        model = f"{family} architecture, random weights" if args.full else f"tiny random {family}"
        print(f"built the {model} in {built:.1f} s", flush=True)
        if args.fast:
            report_fast(folder, device, dtypes, model, args, sync)
            return
        first = time_first_cover(folder, device, dtype_name, args)
        gen = CoverGenerator.from_pretrained(folder, device=device, dtype=dtype)
        rows = {n: measure(gen, n, args, sync) for n in (1, 4)}

    checker = "no safety checker" if args.no_safety_checker else "with safety checker"
    print(
        f"\n{model}, {checker}; {describe_device(device)}, {dtype_name}; "
        f"{args.size}x{args.size}, {args.steps} steps DPM-Solver++, guidance 7.5; "
        f"median of {args.runs}; torch {torch.__version__}, diffusers {diffusers.__version__}\n"
    )
    print(
        f"Time to first cover (fresh process): {sum(first.values()):.2f} s = import "
        f"{first['import']:.2f} + load {first['load']:.2f} + first cover {first['cover']:.2f}\n"
    )
    # on a CPU shared with other jobs wall time swings with their load; CPU time much less
    columns = [(n, k) for k in ((0, 1) if device == "cpu" else (0,)) for n in (1, 4)]
    heads = [f"{n} variation{'s' * (n > 1)}{' CPU s' if k else ''}" for n, k in columns]
    print("| seconds | " + " | ".join(heads) + " |")
    print("| --- |" + " ---: |" * len(columns))

    def row(label, fn):
        print(f"| {label} | " + " | ".join(fn(rows[n], n, k) for n, k in columns) + " |")

    for label, key in (
        ("text encoding", "text"),
        ("denoising", "denoise"),
        ("VAE decode", "vae"),
        ("safety checker + PIL", "finish"),
        ("bare `pipe(...)` call", "bare"),
        ("`CoverGenerator.generate`", "generate"),
    ):
        row(label, lambda r, n, k, key=key: f"{r[key][k]:.3f}")
    row("per cover", lambda r, n, k: f"{r['generate'][k] / n:.3f}")
    row(
        "generate overhead",
        lambda r, n, k: f"{100 * (r['generate'][k] / r['bare'][k] - 1):+.1f} %",
    )


if __name__ == "__main__":
    main(parse_args())
