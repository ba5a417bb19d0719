"""Stable Diffusion fine-tuning shared by ``train.train_text_to_image`` and
``train.train_dreambooth``: model families, options, LoRA, checkpoints, validation, export and the
training loop."""
