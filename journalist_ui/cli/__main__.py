"""``python -m journalist_ui.cli``: the ``journalist`` command without its console script."""

import sys

from journalist_ui.cli import main

sys.exit(main())
