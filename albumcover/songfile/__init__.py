"""Song files: their tags in, a cover embedded out, the audio never touched.

Public:
    tags       ``read_song_tags`` (``SongTags``), ``read_front_cover``, ``match_category``,
               ``SongFileError``: the one reader of song tags, every container mutagen knows
    embed      ``embed_cover``: a copy of the song with a new front cover, audio byte-identical

Internal:
    tagtext    cleaning tag text (mojibake, control characters) before it reaches a prompt
    id3frames  ID3 frames mutagen cannot decode, found so an embed never drops them
    riffinfo   a WAV's RIFF LIST/INFO tags, which mutagen does not read

May import: mutagen, PIL, ``albumcover.files``, ``albumcover.images`` (the pixel budget) and
``albumcover.prompts`` (genre -> category).
"""
