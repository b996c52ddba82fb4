#!/usr/bin/env python
"""Run the whole adversarial loop once: the same as ``arena pipeline run``.

    python scripts/run_pipeline.py [--config arena.yaml] [--json]
"""

import sys

from content_arena.cli import app

if __name__ == "__main__":
    sys.exit(app(["pipeline", "run", *sys.argv[1:]]))
