"""The painter: a prompt in, cover paintings out, through a diffusers text-to-image pipeline.

Public:
    generator    ``CoverGenerator`` (one loaded pipeline; ``generate`` paints 1-4 variations),
                 ``GenerationSettings``, ``FastPath`` (the few-step LoRA path)
    families     ``ModelFamily`` rows (SD 1.x, SD 2.x, SDXL, SD 3.x, FLUX): resolution, steps,
                 guidance, prompt budget; ``load_budget`` reads a model's token budget

Internal:
    checkpoints  single-file checkpoints (one .safetensors/.ckpt) through ``from_single_file``

May import: ``albumcover.prompts`` (prompt fitting); diffusers, transformers and torch inside
the functions that load a model, so importing this package stays cheap.
"""
