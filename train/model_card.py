"""The model card (README.md) of a fine-tuned cover model: Hub metadata + how it was trained."""

from __future__ import annotations

from pathlib import Path

from albumcover.files import write_atomic


def _settings_table(args, global_step: int, num_examples: int) -> list[tuple[str, str]]:
    rows = [
        ("method", f"LoRA, rank {args.rank}" if args.use_lora else "full UNet fine-tune"),
        ("text encoder", "trained" if args.train_text_encoder else "frozen"),
        ("training images", str(num_examples)),
        ("steps", str(global_step)),
        ("resolution", f"{args.resolution} x {args.resolution}"),
        (
            "batch size",
            f"{args.train_batch_size} x {args.gradient_accumulation_steps} gradient accumulation",
        ),
        (
            "learning rate",
            f"{args.learning_rate:g} ({args.lr_scheduler}, {args.lr_warmup_steps} warmup steps)",
        ),
        ("optimizer", "AdamW8bit" if args.use_8bit_adam else "AdamW"),
        ("mixed precision", str(args.mixed_precision)),
        (
            "augmentation",
            ", ".join(
                filter(
                    None,
                    [
                        "center crop" if args.center_crop else "random crop",
                        "random flip" if args.random_flip else "",
                    ],
                )
            ),
        ),
        ("seed", str(args.seed)),
    ]
    if args.snr_gamma is not None:
        rows.append(("Min-SNR gamma", f"{args.snr_gamma:g}"))
    if args.noise_offset:
        rows.append(("noise offset", f"{args.noise_offset:g}"))
    if args.use_ema:
        rows.append(("EMA", "yes (the saved UNet holds the EMA weights)"))
    if args.with_prior_preservation:
        rows.append(
            (
                "prior preservation",
                f"{args.num_class_images} images of "
                f"{args.class_prompt!r}, weight {args.prior_loss_weight:g}",
            )
        )
    return rows


def write_model_card(
    args,
    output_dir: Path,
    *,
    global_step: int,
    captions: list[str],
    validation_images: list[Path],
    num_examples: int,
) -> Path:
    """Write ``output_dir/README.md``: metadata for the Hub plus how the model was trained.

    The prompt template shown is the app's own (``albumcover.prompts``), so the card documents
    the prompts the model was trained and is served with.
    """
    from huggingface_hub import ModelCard, ModelCardData

    from albumcover.prompts import DEFAULT_STYLE, STYLES, SongInfo, build_prompt

    base = args.pretrained_model_name_or_path
    # how users will name the model: its Hub repo when pushed, else the local folder
    name = args.hub_model_id if args.push_to_hub else str(output_dir)
    title = args.hub_model_id or output_dir.resolve().name
    lora = args.use_lora
    tags = [
        "stable-diffusion",
        "stable-diffusion-diffusers",
        "text-to-image",
        "diffusers",
        "album-cover",
        "albumcover",
        "lora" if lora else "full-fine-tune",
    ]
    if args.instance_data_dir:
        tags.append("dreambooth")
    relative = [p.relative_to(output_dir).as_posix() for p in validation_images]
    data = ModelCardData(
        license="creativeml-openrail-m",
        base_model=base,
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=tags,
        instance_prompt=args.instance_prompt,
        widget=[{"text": args.validation_prompt, "output": {"url": path}} for path in relative],
    )
    template = STYLES[DEFAULT_STYLE].template
    example = build_prompt(
        SongInfo(title="Night Drive", artist="Ana", date="2024", category="electronic"),
        ["synth", "ambient", "female vocal"],
    )
    prompts = ([args.validation_prompt] if args.validation_prompt else []) + list(
        dict.fromkeys(captions)
    )[:3]
    base_link = base if Path(base).exists() else f"[{base}](https://huggingface.co/{base})"
    if args.train_data_dir:
        data_text = (
            f"{num_examples} album covers, each with the prompt albumcover wrote from "
            f"its song (`{args.caption_column}` column of `{args.train_data_dir}`, "
            "built by `python -m train.build_dataset`)."
        )
    else:
        data_text = (
            f"DreamBooth: {num_examples} images from `{args.instance_data_dir}`, all "
            f"with the prompt `{args.instance_prompt}`."
        )
    load = (
        f'CoverGenerator.from_pretrained("{base}", lora="{name}")'
        if lora
        else f'CoverGenerator.from_pretrained("{name}")'
    )
    lines = [
        f"# {title}",
        "",
        f"{'A LoRA for' if lora else 'A fine-tune of'} {base_link} that paints album covers from "
        "prompts written by albumcover from a song's Musicnn tags and "
        "metadata.",
        "",
        "## Prompt template",
        "",
        f"Prompts follow albumcover's `{DEFAULT_STYLE}` style:",
        "",
        "```",
        template,
        "```",
        "",
        f"for example: `{example}`",
        "",
        "## Use",
        "",
        "```python",
        "from albumcover.generator import CoverGenerator",
        "",
        f"generator = {load}",
        f'covers = generator.generate("{prompts[0] if prompts else example}")',
        "```",
        "",
        "## Training data",
        "",
        data_text,
        "",
        "## Training settings",
        "",
        "| setting | value |",
        "|---|---|",
        *(
            f"| {key} | {value} |"
            for key, value in _settings_table(args, global_step, num_examples)
        ),
        "",
        "## Example prompts",
        "",
        *(f"- `{prompt}`" for prompt in prompts),
        "",
    ]
    if relative:
        lines += [
            "## Validation images",
            "",
            f"`{args.validation_prompt}`, step {global_step}:",
            "",
            *(f"![validation {i}]({path})" for i, path in enumerate(relative)),
            "",
        ]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    path = output_dir / "README.md"
    write_atomic(path, str(card))  # what card.save writes, never half-written
    return path
