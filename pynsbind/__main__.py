"""``python -m pynsbind`` is ``pynsbind-run``."""

import sys

from pynsbind.cli import main

sys.exit(main())
