"""``python -m dropbox.cli``: the ``dropbox`` command without its console script."""

import sys

from dropbox.cli import main

sys.exit(main())
