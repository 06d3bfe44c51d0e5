"""``python -m lfm_retrievers.cli``: the same as the ``lfm-retrievers`` command."""

import sys

from . import main

sys.exit(main())
