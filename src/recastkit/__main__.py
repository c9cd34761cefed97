"""Allow ``python -m recastkit``."""

from __future__ import annotations

from recastkit.cli import main

if __name__ == "__main__":
    main()
