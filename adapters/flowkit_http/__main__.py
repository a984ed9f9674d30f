"""``python -m flowkit_http``: the ``flowkit`` command, e.g. ``python -m flowkit_http serve --demo``."""

import sys

from ._cli import main

sys.exit(main())
