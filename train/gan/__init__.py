"""DCGAN baselines of the study: unconditional, category-conditioned (``nn.Embedding``) and
prompt-conditioned (``nn.EmbeddingBag`` over the caption's words).

Train with ``python -m train.gan``, draw with ``python -m train.gan.sample``; in code::

    from train.gan.sample import GanSampler
    images = GanSampler.from_checkpoint("out/gan-prompt").generate(prompt="dark techno", n=4)
"""
