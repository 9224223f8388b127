"""``python -m burstkpn.cli`` (and ``torchrun -m burstkpn.cli train ...``)."""

import sys

from burstkpn.cli import main

sys.exit(main())
