"""The ear: what a song sounds like, as Musicnn's tags (genre, mood, instruments).

Public:
    audio      decode any song to 16 kHz mono float32 (``load_audio``, ``AudioError``)
    features   log-mel spectrograms cut into 3 s patches (``song_patches``, ``spread_patches``)
    tagger     ``Tagger``: load a pretrained Musicnn once, tag many songs (``TagResult``)

Internal to the ear (imported by ``tagger`` only):
    musicnn    the PyTorch port of Musicnn and its strict converter from the TF weights
    weights    finding, converting and caching the official weights
    tfbundle   reading TensorFlow checkpoints with NumPy (no TensorFlow)
    frontend   the float32/bfloat16 front end as sgemm calls, one patch per core
    ortengine  exact float32 through ONNX Runtime, exported once into the cache

May import: numpy, torch, librosa/soundfile, ``albumcover.files`` and ``albumcover.recipe``
(the tagger's default). Never diffusers, gradio or training code.
"""
