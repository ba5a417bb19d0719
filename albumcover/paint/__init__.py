"""The painter: a prompt in, cover paintings out, through a diffusers text-to-image pipeline.

Public:
    generator    ``CoverGenerator`` (one loaded pipeline; ``generate`` paints 1-4 variations),
                 ``GenerationSettings``, ``FastPath`` (the few-step LoRA path)
    families     ``ModelFamily`` rows (SD 1.x, SD 2.x, SDXL, SD 3.x, FLUX): resolution, steps,
                 guidance, prompt budget, few-step LoRAs; ``load_budget`` reads a model's
                 token budget
    defaults     ``paint_defaults``: the one default model / fast path / tiny decoder of the
                 CLI and the app
    dtypes       ``resolve_dtype``: bfloat16 where the CPU runs it natively, float16 on CUDA;
                 ``pick_device``; the channels-last layout a CPU prefers
    fastpath     ``FastPath``: the few-step LoRA, its scheduler, the fallback when it is missing
    ovengine     the UNet through OpenVINO on a CPU (``engine="auto"``/``"openvino"``): the
                 export cached per set of weights, the fallback to torch

Internal:
    checkpoints  single-file checkpoints (one .safetensors/.ckpt) through ``from_single_file``
    errors       ``GeneratorError`` (re-exported by generator)

May import: ``albumcover.prompts`` (prompt fitting); diffusers, transformers, torch and openvino
inside the functions that load a model, so importing this package stays cheap.
"""
