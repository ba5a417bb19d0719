"""``python -m albumcover``: see :mod:`albumcover.cli.main`."""

from .cli.main import main

raise SystemExit(main())
