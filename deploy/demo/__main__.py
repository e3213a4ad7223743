"""``python -m deploy.demo`` (``make demo``) from the repository, or from any directory as
``/path/to/postern/.venv/bin/python /path/to/postern/deploy/demo``."""

import sys
from pathlib import Path

if not __package__:
    # Run by its path: the repository is not on sys.path unless it is the working directory.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deploy.demo import main

sys.exit(main())
