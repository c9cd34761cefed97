"""Checks run by :func:`recastkit.workflow.scale_file` before anything is scaled or written.

A file is refused when scaling it would give a wrong or unusable result: no histogram to
scale, NaN/inf contents or negative variances (named by histogram and bin), an input that is
already scaled (its metadata holds a normalization ledger; ``--force`` scales it again), and
an output that is the input itself (also through a symlink or another relative path).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import hist

from recastkit.exceptions import ScalingError
from recastkit.scaling import check_scalable


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file (resolved paths, or the same inode)."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.resolve() == pb.resolve():
            return True
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def check_scale_inputs(path: Path, output: str | os.PathLike[str],
                       chosen: Mapping[str, hist.Hist], metadata: Mapping[str, Any], *,
                       force: bool = False) -> None:
    """Refuse inputs that ``scale`` must not scale (see the module docstring).

    Args:
        path: The input file.
        output: The output path.
        chosen: The histograms about to be scaled, by name.
        metadata: The input's recastkit metadata.
        force: Scale an input that is already scaled.

    Raises:
        ScalingError: One line naming the file (and histogram and bin) and the way out.
    """
    if same_file(path, output):
        msg = (
            f"-o/--output {output} is the input file {path}; write the scaled histograms to "
            "another file"
        )
        raise ScalingError(msg)
    if not chosen:
        msg = (
            f"{path}: no histogram to scale (the file holds no TH1/TH2/TH3 or UHI histogram)"
        )
        raise ScalingError(msg)
    ledger = metadata.get("normalization")
    if ledger and not force:
        scale = ledger.get("scale") if isinstance(ledger, Mapping) else None
        scale_text = f", scale {scale:.6g}" if isinstance(scale, (int, float)) else ""
        msg = (
            f"{path}: already scaled (its metadata holds a normalization ledger{scale_text}); "
            "scale the unscaled selection output, or give --force to scale it again"
        )
        raise ScalingError(msg)
    for name, h in chosen.items():
        check_scalable(h, f"{path}:{name}")
