"""The ``albumcover`` command line (``python -m albumcover``), one module per subcommand.

``main`` parses and dispatches; ``tag``, ``cover`` and ``release`` (the release step of ``cover``
and the ``check`` command) each register their flags and run; ``songs`` lists an album's tracks;
``argtypes`` checks flag values for every command line of the project, training scripts included.
"""

PROG = "albumcover"  # the command's name, at the head of every message it prints
