"""Thin entry point: ``python bench/run.py [family ...] [--quick] [--json PATH] [--plot PATH]``."""
import sys

from forgeml.bench import main

if __name__ == "__main__":
    sys.exit(main())
