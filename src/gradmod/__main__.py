"""Entry point for ``python -m gradmod`` (and ``torchrun -m gradmod``)."""

import sys

from gradmod.cli import main

if __name__ == "__main__":
    sys.exit(main())
