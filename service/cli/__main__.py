"""``python -m service.cli``: the ``callwatch`` command."""

import sys

from service.cli import main

sys.exit(main())
