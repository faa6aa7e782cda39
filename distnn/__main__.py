"""``python -m distnn``: see :mod:`distnn.cli`."""
import sys

from distnn.cli import main

sys.exit(main())
