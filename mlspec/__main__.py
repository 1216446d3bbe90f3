"""`python -m mlspec`: the same as the `mlspec` command."""

import sys

from mlspec.cli import main

sys.exit(main())
