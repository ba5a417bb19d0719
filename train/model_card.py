"""The model card (README.md) of a fine-tuned cover model: Hub metadata + how it was trained."""

from __future__ import annotations

from pathlib import Path

from albumcover.files import write_atomic
from albumcover.prompts import STYLES, SongInfo, build_prompt
from albumcover.recipe import DEFAULT_RECIPE, RECIPE_FILE

from .finetune.family import SD


def _settings_table(args, global_step: int, num_examples: int) -> list[tuple[str, str]]:
    rows = [
        ("method", f"LoRA, rank {args.rank}" if args.use_lora else "full UNet fine-tune"),
        ("text encoder", "trained" if args.train_text_encoder else "frozen"),
        ("caption mode", str(args.caption_mode)),
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
    if args.pretrained_vae_model_name_or_path:
        rows.append(("VAE", args.pretrained_vae_model_name_or_path))
    if args.gradient_checkpointing:
        rows.append(("gradient checkpointing", "yes"))
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


CAPTION_MODE_TEXT = {
    "prompt": "the full prompt albumcover writes from the song (template below)",
    "category": "only the category: `cover album of {category} song` (the study's ablation)",
    "none": "empty captions: an unconditional fine-tune (the study's ablation); prompts are "
    "ignored, the app paints it with an empty prompt",
}


def _recipe_lines(recipe) -> list[str]:
    """The caption recipe as a markdown list (what the app reads from albumcover_recipe.json)."""

    return [
        "## Caption recipe",
        "",
        f"Captions: {CAPTION_MODE_TEXT[recipe.caption_mode]}. `{RECIPE_FILE}` in this folder "
        "records how they were written; albumcover reads it to prompt the model the same way.",
        "",
        f"- caption mode: `{recipe.caption_mode}`",
        f"- style: `{recipe.style}`",
        f"- caption tagger: `{recipe.caption_tagger}` (top {recipe.top} tags scoring at least "
        f"{recipe.threshold:g}); genre tagger: `{recipe.genre_tagger}` "
        f"({_genre_heard(recipe.genre_patches)})",
        f"- tokenizer of: `{recipe.base_model}`",
        f"- tables version: `{recipe.tables_version}`",
        "",
    ]


def write_model_card(
    args,
    output_dir: Path,
    *,
    global_step: int,
    captions: list[str],
    validation_images: list[Path],
    num_examples: int,
    family=None,
    recipe=None,
    grids=(),
) -> Path:
    """Write ``output_dir/README.md``: metadata for the Hub plus how the model was trained.

    The prompt template shown is the recipe's (default: the app's own, ``albumcover.prompts``),
    so the card documents the prompts the model was trained and is served with. ``family`` is
    a ``train.finetune.family.Family`` (default SD 1.x); ``grids`` the (step, path) validation
    grids, oldest first.
    """
    from huggingface_hub import ModelCard, ModelCardData

    family = family or SD
    recipe = recipe or DEFAULT_RECIPE
    style = recipe.style

    base = args.pretrained_model_name_or_path
    # how users will name the model: its Hub repo when pushed, else the local folder
    name = args.hub_model_id if args.push_to_hub else str(output_dir)
    title = args.hub_model_id or output_dir.resolve().name
    lora = args.use_lora
    tags = [
        *family.hub_tags,
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
        license="openrail++" if family.is_xl else "creativeml-openrail-m",
        base_model=base,
        library_name="diffusers",
        pipeline_tag="text-to-image",
        tags=tags,
        instance_prompt=args.instance_prompt,
        widget=[{"text": args.validation_prompt, "output": {"url": path}} for path in relative],
    )
    template = recipe.template
    example = build_prompt(
        SongInfo(title="Night Drive", artist="Ana", date="2024", category="electronic"),
        ["synth", "ambient", "female vocal"],
        STYLES[style],
    )
    if recipe.caption_mode == "prompt":
        template_lines = [
            f"Prompts follow albumcover's `{style}` style:", "", "```", template, "```", "",
            f"for example: `{example}`",
        ]  # fmt: skip
    elif recipe.caption_mode == "category":
        example = recipe.caption(example, "electronic")
        template_lines = ["Only the category: `cover album of {category} song`, "
                          f"for example: `{example}`"]  # fmt: skip
    else:
        example = "cover album"  # any text: the model was trained on empty captions only
        template_lines = ["None: the model was trained on empty captions (unconditional)."]
    prompts = ([args.validation_prompt] if args.validation_prompt else []) + list(
        dict.fromkeys(c for c in captions if c)
    )[:3]
    base_link = base if Path(base).exists() else f"[{base}](https://huggingface.co/{base})"
    if args.train_data_dir:
        data_text = (
            f"{num_examples} album covers from `{args.train_data_dir}` (built by "
            f"`python -m train.build_dataset`), captioned in mode `{recipe.caption_mode}`: "
            f"{CAPTION_MODE_TEXT[recipe.caption_mode]} (`{args.caption_column}` column)."
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
    plain = (
        [
            f'pipe = {family.pipeline_class}.from_pretrained("{base}")',
            f'pipe.load_lora_weights("{name}")',
        ]
        if lora
        else [f'pipe = {family.pipeline_class}.from_pretrained("{name}")']
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
        *template_lines,
        "",
        "## Use",
        "",
        "```python",
        "from albumcover.paint.generator import CoverGenerator",
        "",
        f"generator = {load}",
        f'covers = generator.generate("{prompts[0] if prompts else example}")',
        "```",
        "",
        "or with diffusers alone:",
        "",
        "```python",
        f"from diffusers import {family.pipeline_class}",
        "",
        *plain,
        "```",
        "",
        *_recipe_lines(recipe),
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
    if grids:
        lines += [
            "## Validation grids",
            "",
            f"`{args.validation_prompt}`, painted like the app paints (its scheduler and "
            "negative prompt), one grid per validation step:",
            "",
        ]
        for step, path in grids:
            lines += [
                f"step {step}:",
                "",
                f"![step {step}]({path.relative_to(output_dir).as_posix()})",
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


def _genre_heard(patches: int | None) -> str:
    if patches is None:
        return "on every 3 s patch"
    return f"on {patches} 3 s patches spread over each song"
