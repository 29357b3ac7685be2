"""Run the volsurf CLI from a checkout: ``python cli.py inspect FILE`` (same as the ``volsurf`` command)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from volsurf.cli.main import main

if __name__ == "__main__":
    main()
