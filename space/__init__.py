"""albumcover's web layer (the Hugging Face Space), beside its entry point ``app.py``.

It owns the gradio page and nothing the library needs: the page with Analyze and Generate
(:mod:`space.page`), the release panel (:mod:`space.release_panel`), the release kit
(:mod:`space.kit_panel`), the songs to click (:mod:`space.examples`), ZeroGPU's rules
(:mod:`space.zerogpu`), the taggram picture (:mod:`space.taggram`), loading the models the page
serves (:mod:`space.models`), the one check of every value the six endpoints take
(:mod:`space.checks`) and the bounds on the server's memory (:mod:`space.memory`). ``app.py``
reads the environment, once, and hands every setting to these modules as arguments; nothing
here reads it. The library (``albumcover``) never imports this package, nor gradio.
"""
