"""``python -m albumcover``: see :mod:`albumcover.cli`."""

from .cli import main

raise SystemExit(main())
