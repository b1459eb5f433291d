"""``python -m workbench.sim``: run a virtual board (the options of ``workbench sim``).

Starts only the simulator (:mod:`workbench.sim.command`), not the workbench's
whole command line: every ``sim://`` URL opened starts one of these.
"""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
