"""``python -m distnn``: see :mod:`distnn.cli`."""
import sys

from distnn.cli import main, record_exit_status

code = 1  # (an exception escaping main is Python's status 1)
try:
    code = main()
except SystemExit as e:
    code = e.code
    raise
finally:
    record_exit_status(code, keep=True)  # (for a batch script: see distnn.cli.STATUS_DIR_ENV)
sys.exit(code)
