"""`python -m sentinel_stack` is the `sentinel-stack` command."""

import sys

from sentinel_stack.cli.main import main

sys.exit(main())
