"""The release: a painting turned into a cover a distributor accepts.

Public:
    lettering    ``letter``/``letter_cover``: title and artist set where the art is calm, in a
                 colour that reads (``LetteringError``)
    export       ``export_cover``: upscaled, lettered, 8-bit sRGB, under a size limit
                 (``ExportSettings``, ``ExportError``)
    check        ``check_cover``: what an aggregator would refuse, as failures and warnings

Internal (lettering's parts):
    text         title and artist normalised once (what is drawn is what is checked)
    typesetting  lines shaped with raqm, wrapped, stacked and aligned
    fonts        the curated typefaces on disk and per-character fallback
    contrast     WCAG luminance and contrast, texture, the least band opacity that reads

May import: numpy, PIL, ``albumcover.files``, ``albumcover.images``; diffusers only for the
optional upscaler.
"""
