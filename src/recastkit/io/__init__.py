"""File access: with :mod:`recastkit.bookkeeping`, the only code that opens ROOT files.

- :mod:`recastkit.io.root`: opening ROOT files with clear errors, finding objects.
- :mod:`recastkit.io.hists`: histograms in ROOT (TH1D), hist/UHI JSON and the two-line text
  format.
- :mod:`recastkit.io.events`: chunked reading of event data (PHYSLITE, NanoAOD, flat ntuples).
"""

from __future__ import annotations

from recastkit.io.hists import read_hist, read_hists, split_spec, write_hist, write_hists
from recastkit.io.root import close_matches, open_root

__all__ = [
    "close_matches",
    "open_root",
    "read_hist",
    "read_hists",
    "split_spec",
    "write_hist",
    "write_hists",
]
