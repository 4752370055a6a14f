"""``python -m vsvsr``: the same as the ``vsvsr`` command."""

import sys

from vsvsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
