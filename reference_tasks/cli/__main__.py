"""``python -m reference_tasks.cli``: the ``lmn`` command."""

import sys

from reference_tasks.cli import main

sys.exit(main())
