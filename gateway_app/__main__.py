"""``python -m gateway_app serve|migrate`` (the container's entry point)."""

import sys

from gateway_app.cli import main

sys.exit(main())
