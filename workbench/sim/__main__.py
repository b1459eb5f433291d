"""``python -m workbench.sim``: run a virtual board (same options as ``workbench sim``)."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["sim", *sys.argv[1:]]))
