"""Training: build the (cover, prompt) dataset, fine-tune Stable Diffusion on it, train the GAN
baselines and score them all. Each ``python -m train.X`` command is a module here; its work lives
in a subpackage or a shared module.

Commands:
    build_dataset         a music library -> the imagefolder dataset (``merge`` joins shards)
    jamendo               Creative Commons tracks and covers from Jamendo, for build_dataset
    train_text_to_image   fine-tune SD 1.x/2.x or SDXL on the dataset's captions
    train_dreambooth      DreamBooth: one prompt for a folder of images
    gan, gan.sample       train and draw the DCGAN baselines
    evaluate              score every model on the held-out split
    push                  upload a finished model or dataset folder to the Hub

Subpackages:
    dataset    the dataset builder (library, tracks, covers, captions, shards, Jamendo, ...)
    finetune   Stable Diffusion fine-tuning shared by the two SD commands
    gan        the GAN baselines

Shared modules:
    imagefolder   reads the built dataset as training tensors (finetune, gan, evaluate)
    outputs       a run's output folder, checked first and never over another run
    push          the one Hub upload path (build_dataset, finetune, and its own command)
    model_card    a fine-tuned model's README.md (finetune's)
    metrics       CLIP-FID, CLIP-KID, CLIP score and retrieval on feature arrays (evaluate's)
"""
