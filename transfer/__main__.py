"""``python -m transfer``: the ``dropbox-transfer`` command."""

import sys

from transfer.cli import main

sys.exit(main())
