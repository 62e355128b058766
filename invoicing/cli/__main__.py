"""``python -m invoicing.cli``: the same command as the ``invoicing`` console script."""

import sys

from invoicing.cli import main

sys.exit(main())
