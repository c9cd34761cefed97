"""A HEPData submission of a grid: the exclusion contour and the per-point CLs table.

Written with :mod:`hepdata_lib` (``Submission``, ``Table``, ``Variable``): one table per
contour line (observed, expected, expected ±1σ; each line's points in order, several lines
numbered in a ``line`` column) and one table of every point's parameters and CLs values.
hepdata_lib writes ``submission.tar.gz`` into the current directory; here the whole submission
is made in a temporary folder beside the output and moved into place, so a failure leaves
nothing half-written; the tarball (the file HEPData uploads) is kept beside the folder, as
``<folder>.tar.gz``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recastkit.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from recastkit.stats.contour import Contour
    from recastkit.stats.results import PointResult

log = logging.getLogger(__name__)

_LINE_TABLES = (("observed", "Observed"), ("expected", "Expected (median)"),
                ("expected_up", "Expected +1 sigma"), ("expected_down", "Expected -1 sigma"))


def _hepdata_lib() -> Any:
    try:
        import hepdata_lib
    except ImportError:
        msg = ("the HEPData submission needs hepdata_lib: pip install 'recastkit[hepdata]' "
               "(or skip it with --no-hepdata)")
        raise MissingDependencyError(msg) from None
    return hepdata_lib


def _label(name: str, labels: Mapping[str, str]) -> tuple[str, str]:
    """(header, units) from a user label like ``m(b̃₁) [GeV]``."""
    text = labels.get(name, name)
    if text.endswith("]") and "[" in text:
        head, _, units = text[:-1].rpartition("[")
        return head.strip(), units.strip()
    return text, ""


def _num(x: float | None) -> float | str:
    return "-" if x is None or not math.isfinite(x) else float(x)


def _line_table(lib: Any, contour: Contour, attr: str, title: str, *,
                labels: Mapping[str, str], description: str) -> Any:
    table = lib.Table(f"{title} exclusion contour")
    fixed = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                      for k, v in contour.fixed.items())
    table.description = (f"{title} exclusion contour at CLs = {contour.level:g} in the "
                         f"({contour.x}, {contour.y}) plane"
                         + (f" for {fixed}" if fixed else "") + f". {description}").strip()
    table.keywords["cmenergies"] = [13000]
    lines: Sequence[Sequence[tuple[float, float]]] = getattr(contour, attr)
    xs = [p[0] for line in lines for p in line]
    ys = [p[1] for line in lines for p in line]
    ids = [float(i) for i, line in enumerate(lines) for _ in line]
    hx, ux = _label(contour.x, labels)
    hy, uy = _label(contour.y, labels)
    vx = lib.Variable(hx, is_independent=True, is_binned=False, units=ux)
    vx.values = xs
    vy = lib.Variable(hy, is_independent=False, is_binned=False, units=uy)
    vy.values = ys
    table.add_variable(vx)
    table.add_variable(vy)
    if len(lines) > 1:
        vl = lib.Variable("line", is_independent=False, is_binned=False, units="")
        vl.values = ids
        table.add_variable(vl)
    return table


def _points_table(lib: Any, results: Sequence[PointResult], parameters: Sequence[str],
                  labels: Mapping[str, str], description: str) -> Any:
    table = lib.Table("CLs of every signal point")
    table.description = ("Observed and expected CLs (asymptotic, qtilde) at the tested "
                         "signal strength for every signal point. " + description).strip()
    table.keywords["cmenergies"] = [13000]
    indep = parameters[0] if parameters else None
    if indep is None:
        v = lib.Variable("point", is_independent=True, is_binned=False, units="")
        v.values = [float(i) for i in range(len(results))]
        table.add_variable(v)
    for k, name in enumerate(parameters):
        head, units = _label(name, labels)
        v = lib.Variable(head, is_independent=k == 0, is_binned=False, units=units)
        v.values = [_num(_as_float(r.parameters.get(name))) for r in results]
        table.add_variable(v)
    obs = lib.Variable("CLs observed", is_independent=False, is_binned=False, units="")
    obs.values = [_num(r.cls_observed) for r in results]
    table.add_variable(obs)
    exp = lib.Variable("CLs expected", is_independent=False, is_binned=False, units="")
    exp.values = [_num(r.cls_expected[2]) for r in results]
    band = lib.Uncertainty("expected +-1 sigma", is_symmetric=False)
    band.values = [(_band(r.cls_expected[1], r.cls_expected[2]),
                    _band(r.cls_expected[3], r.cls_expected[2])) for r in results]
    exp.add_uncertainty(band)
    table.add_variable(exp)
    if any(r.observed_limit is not None for r in results):
        lim = lib.Variable("mu upper limit observed", is_independent=False, is_binned=False,
                           units="")
        lim.values = [_num(r.observed_limit) for r in results]
        table.add_variable(lim)
        elim = lib.Variable("mu upper limit expected", is_independent=False, is_binned=False,
                            units="")
        elim.values = [_num(r.expected_limits[2] if r.expected_limits else None)
                       for r in results]
        table.add_variable(elim)
    return table


def _as_float(v: float | str | None) -> float | None:
    try:
        return None if v is None else float(v)
    except ValueError:
        return None


def _band(edge: float, centre: float) -> float:
    d = edge - centre
    return float(d) if math.isfinite(d) else 0.0


def write_submission(outdir: str | os.PathLike[str], results: Sequence[PointResult],
                     contour: Contour | None, *, parameters: Sequence[str] = (),
                     labels: Mapping[str, str] | None = None, description: str = "",
                     comment: str = "") -> Path:
    """Write ``outdir/submission.yaml`` + table YAMLs (and ``outdir.tar.gz``) atomically.

    Args:
        outdir: The submission folder (replaced as a whole).
        results: The grid's points.
        contour: The exclusion contour, or None for the table only.
        parameters: Parameter names for the table columns (the first is independent).
        labels: Axis labels with units, e.g. ``{"m1": "m(b̃₁) [GeV]"}``.
        description: Sentence added to every table's description (the source).
        comment: The submission's comment.

    Returns:
        The folder.
    """
    lib = _hepdata_lib()
    labels = dict(labels or {})
    sub = lib.Submission()
    sub.comment = comment or "Signal grid evaluated with recastkit (pyhf likelihoods)."
    if contour is not None:
        for attr, title in _LINE_TABLES:
            if getattr(contour, attr):
                sub.add_table(_line_table(lib, contour, attr, title, labels=labels,
                                          description=description))
    if results:
        sub.add_table(_points_table(lib, results, parameters, labels, description))
    target = Path(outdir)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staged = tmp / target.name
        with contextlib.chdir(tmp):
            sub.create_files(str(staged), validate=False, remove_old=True)
        # the tarball HEPData uploads, beside the folder (inside, the validator would
        # reject it as an unreferenced file)
        os.replace(tmp / "submission.tar.gz", tmp / f"{target.name}.tar.gz")
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(staged, target)
        os.replace(tmp / f"{target.name}.tar.gz", target.with_name(f"{target.name}.tar.gz"))
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote the HEPData submission %s", target)
    return target


def validate_submission(folder: str | os.PathLike[str]) -> list[str]:
    """Check a submission folder with hepdata-validator; return the error messages (empty: ok)."""
    try:
        from hepdata_validator.full_submission_validator import FullSubmissionValidator
    except ImportError:
        msg = "validating needs hepdata-validator: pip install hepdata-validator"
        raise MissingDependencyError(msg) from None
    validator = FullSubmissionValidator()
    ok = validator.validate(directory=str(folder))
    if ok:
        return []
    return [f"{name}: {m.message}" for name, msgs in validator.get_messages().items()
            for m in msgs if getattr(m, "level", "error") == "error"]
