"""The release kit: the cover that moves with the song, for the platforms a release goes to.

Public:
    bundle     ``make_kit``: one command's worth (art track, Canvas, post, story) into a folder
               (``KIT_ITEMS``, ``Kit``)
    video      ``render_art_track``: the 1920 x 1080 MP4 a distributor turns each track into on
               YouTube (the cover over the song's whole audio)
    canvas     ``render_canvas``: Spotify's 9:16 Canvas, a silent seamless loop that pulses on
               the beats of the song's most energetic stretch
    social     ``render_post``/``render_story``: the 1080 x 1080 post and 1080 x 1920 story
    motion     ``read_song`` (``Song``): the decoded song, capped as the app caps songs; its
               loudest stretch, beats and the loop's zoom curve
    compose    ``load_cover``/``check_cover_image``: covers in (checked, sRGB), backdrops
    ffmpeg     ``KitError`` (every refusal of the kit's own), and ``FrameEncoder``: raw rgb24
               frames streamed to the ``ffmpeg`` program, one frame in memory at a time

May import: numpy, PIL, librosa (inside functions), ``albumcover.ear`` (decoding),
``albumcover.release`` (lettering, sRGB), ``albumcover.files``. Only ``albumcover.cli`` imports it.
"""
