"""`gradient-pipeline` entry point (`python -m gradient_pipeline.cli` too). The dispatcher lives in the application
layer, `gradient_pipeline/app/main.py`; this module only keeps the console-script path stable."""

from __future__ import annotations

import sys

from gradient_pipeline.app.main import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
