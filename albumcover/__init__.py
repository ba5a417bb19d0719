"""albumcover: album cover art from a song.

Musicnn tags + song metadata -> a prompt -> a (DreamBooth-fine-tuned) Stable Diffusion pipeline.

The rooms (each subpackage's docstring says what it owns and may import):

    pipeline, prompts, recipe   the serving contract: audio + metadata -> tags -> prompt -> covers,
                                prompts written the way the model's captions were (the recipe)
    ear/                        decoding, Musicnn features and tagging
    paint/                      diffusers text-to-image pipelines and model families
    release/                    lettering, export, the distributor check
    songfile/                   song tags read, covers embedded
    kit/                        the release kit: art-track video, Spotify Canvas, social formats
    cli/                        the ``albumcover`` command
    files                       the one way a file is written (atomically)
    images                      the one way an image is read (decoded within a pixel budget)

Dependencies run one way: cli -> pipeline -> ear, paint -> prompts/recipe -> files.

Importing the package is cheap: submodules (and torch, diffusers, librosa) load on first use of
the name that needs them, so ``import albumcover`` pulls in no gradio, diffusers or TensorFlow.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "AudioError": "ear.audio",
    "load_audio": "ear.audio",
    "Tagger": "ear.tagger",
    "TagResult": "ear.tagger",
    "SongInfo": "prompts",
    "build_prompt": "prompts",
    "fit_text": "prompts",
    "CoverGenerator": "paint.generator",
    "GenerationSettings": "paint.generator",
    "FastPath": "paint.generator",
    "ModelFamily": "paint.families",
    "CaptionRecipe": "recipe",
    "load_recipe": "recipe",
    "describe_song": "pipeline",
    "make_covers": "pipeline",
    "SongFileError": "songfile.tags",
    "SongTags": "songfile.tags",
    "embed_cover": "songfile.embed",
    "read_song_tags": "songfile.tags",
    "letter": "release.lettering",
    "letter_cover": "release.lettering",
    "LetteringError": "release.lettering",
    "ExportSettings": "release.export",
    "ExportError": "release.export",
    "export_cover": "release.export",
    "check_cover": "release.check",
    "make_kit": "kit.bundle",
    "KitError": "kit.ffmpeg",
    "read_image": "images",
    "ImageError": "images",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
