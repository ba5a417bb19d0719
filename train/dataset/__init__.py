"""The dataset builder: a music library in, the (cover, prompt) ``imagefolder`` the trainers read
out. Its commands are ``python -m train.build_dataset`` (and its ``merge``) and ``python -m
train.jamendo``; their flags live in train/build_dataset.py and train/jamendo.py, the work here.

Public:
    build      ``build_dataset``: tag, caption and write every usable track (``CACHE_DIR``)
    summary    ``BuildSummary`` and ``Skipped``: what a build wrote and what it left out, and why
    library    reading a music folder or a manifest: files, tags, covers (``LibraryError``)
    shards     a build split over machines (``write_shard``), and the ``merge`` of the shards
    jamendo    ``collect``: Creative Commons tracks and covers from Jamendo, with a manifest

Internal to the builder (imported by ``build`` and ``shards``):
    tracks     the tracks of a library and where each one's cover comes from
    covers     one cover per album, checked and rendered as the square PNG (``square_cover``)
    captions   the taggers a build loads and one track's caption (``caption_recipe``)
    tagcache   tagger outputs per audio file, replayed on a rebuild
    workers    decoding and features in worker processes (NumPy only: no torch there)
    batching   several tracks per tagger call (CUDA)
    files      the written dataset: the album split, metadata rows, PNGs and dataset card

May import: ``albumcover`` (the ear, the songfile reader, ``pipeline``, ``prompts``,
``recipe``, ``files``), numpy, Pillow, tqdm, threadpoolctl, and torch inside functions. Never
the trainers (``train.finetune``, ``train.gan``, ``train.imagefolder``), ``train.push`` (the
command pushes) or diffusers.
"""
