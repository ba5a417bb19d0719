"""albumcover: album cover art from a song.

Musicnn tags + song metadata -> a prompt -> a (DreamBooth-fine-tuned) Stable Diffusion pipeline.

Importing the package is cheap: submodules (and torch, diffusers, librosa) load on first use of
the name that needs them, so ``import albumcover`` pulls in no gradio, diffusers or TensorFlow.
"""

from importlib import import_module

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "AudioError": "audio",
    "load_audio": "audio",
    "Tagger": "tagger",
    "TagResult": "tagger",
    "SongInfo": "prompts",
    "build_prompt": "prompts",
    "fit_text": "prompts",
    "CoverGenerator": "generator",
    "GenerationSettings": "generator",
    "FastPath": "generator",
    "ModelFamily": "families",
    "CaptionRecipe": "recipe",
    "load_recipe": "recipe",
    "describe_song": "pipeline",
    "make_covers": "pipeline",
    "SongFileError": "songfile",
    "SongTags": "songfile",
    "embed_cover": "songfile",
    "read_song_tags": "songfile",
    "letter": "lettering",
    "letter_cover": "lettering",
    "LetteringError": "lettering",
    "ExportSettings": "export",
    "ExportError": "export",
    "export_cover": "export",
    "check_cover": "check",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
