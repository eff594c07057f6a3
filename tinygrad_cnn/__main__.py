"""`python -m tinygrad_cnn` runs the command line."""

import sys

from tinygrad_cnn.cli import main

sys.exit(main())
