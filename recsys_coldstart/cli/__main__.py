"""``python -m recsys_coldstart.cli``: the ``coldstart`` command (also the ``torchrun`` entry:
``torchrun --nproc-per-node N -m recsys_coldstart.cli pretrain ...``)."""

import sys

from recsys_coldstart.cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
