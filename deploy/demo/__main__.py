"""``python -m deploy.demo`` (``make demo``)."""

import sys

from deploy.demo import main

sys.exit(main())
