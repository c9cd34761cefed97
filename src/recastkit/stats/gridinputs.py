"""Where the signal points of a grid come from: patch folders, pyhf PatchSets, HEPData tarballs.

A grid is one background-only workspace plus one JSON Patch (RFC 6902) per signal point. The
patches can be given as

* a folder of ``patch.<name>.json`` files (optionally with its ``BkgOnly.json``),
* a pyhf PatchSet file (``{"metadata": ..., "patches": [{"metadata": {"name", "values"},
  "patch": [...]}]}``; the ``values`` become the point's parameters),
* the tarball HEPData publishes (``pyhf-ins1748602-probability-models.tar.gz[:REGION]``), read
  member by member with :mod:`tarfile` streaming, nothing unpacked to disk,
* single patch files.

:func:`load_grid_source` resolves a command line (``[BKGONLY.json] PATCHES``) into a
:class:`GridSource`. Every background and patch carries a SHA-256 digest of its canonical JSON,
which keys the resumable store (:mod:`recastkit.stats.gridstore`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import re
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from recastkit.exceptions import StatsError

log = logging.getLogger(__name__)

#: File names of the background-only workspace in HEPData likelihood archives.
BKG_NAMES: tuple[str, ...] = ("BkgOnly.json", "bkgonly.json", "BkgOnly.JSON")
_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz")


def digest(doc: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``doc`` (sorted keys, no whitespace)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SignalPoint:
    """One signal point: its name, JSON Patch and digest.

    Attributes:
        name: Point name (``sbottom_1300_205_60`` from ``patch.sbottom_1300_205_60.json``).
        patch: The RFC 6902 operations that add the signal to the background workspace.
        digest: SHA-256 of the canonical JSON of ``patch``.
        parameters: Values known from the input (a PatchSet's ``values``), else empty.
    """

    name: str
    patch: tuple[Any, ...]
    digest: str
    parameters: Mapping[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class GridSource:
    """A background-only workspace and its signal points.

    Attributes:
        background: The background-only workspace.
        background_digest: SHA-256 of its canonical JSON.
        points: The signal points, in input order.
        label: Where the inputs came from (for messages and outputs).
    """

    background: Mapping[str, Any]
    background_digest: str
    points: tuple[SignalPoint, ...]
    label: str

    def selected(self, patterns: Sequence[str] = (), limit: int | None = None) -> GridSource:
        """A copy with only the points whose name matches one of the glob ``patterns``.

        Args:
            patterns: Shell-style patterns (``sbottom_1[2-4]00_*``); empty keeps all.
            limit: Keep at most this many points (the first ones) after the selection.

        Raises:
            StatsError: When nothing matches (names a few available points).
        """
        points = self.points
        if patterns:
            points = tuple(p for p in points
                           if any(fnmatch.fnmatchcase(p.name, pat) for pat in patterns))
            if not points:
                some = ", ".join(p.name for p in self.points[:5])
                msg = (f"--select {' '.join(patterns)}: no point of {self.label} matches; "
                       f"points are named like {some}")
                raise StatsError(msg)
        if limit is not None:
            points = points[:max(0, limit)]
        return GridSource(self.background, self.background_digest, points, self.label)


def point_name(path: str | os.PathLike[str]) -> str:
    """``patch.sbottom_1300_205_60.json`` -> ``sbottom_1300_205_60``."""
    stem = PurePosixPath(os.fspath(path)).name.removesuffix(".json")
    return stem.removeprefix("patch.")


def _parse_json(text: bytes | str, where: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StatsError(f"{where}: {what} is not valid JSON ({exc})") from None


def _read_json(path: Path, what: str) -> Any:
    from recastkit._files import read_text

    return _parse_json(read_text(path, what, StatsError), str(path), what)


def _check_workspace(doc: Any, where: str) -> dict[str, Any]:
    if not isinstance(doc, Mapping) or "channels" not in doc:
        kind = type(doc).__name__ if not isinstance(doc, Mapping) else "a mapping without"
        msg = (f"{where}: expected a background-only pyhf workspace (a mapping with "
               f"'channels', 'observations', 'measurements'), got {kind}"
               + (" 'channels'" if isinstance(doc, Mapping) else ""))
        raise StatsError(msg)
    return dict(doc)


def _point(name: str, patch: Any, where: str,
           parameters: Mapping[str, float | str] | None = None) -> SignalPoint:
    ops = patch.get("patch") if isinstance(patch, Mapping) and "patch" in patch else patch
    if not isinstance(ops, list):
        msg = (f"{where}: expected a JSON Patch (a list of {{op, path, value}} operations or a "
               f"pyhf patch with a 'patch' list), got {type(patch).__name__}")
        raise StatsError(msg)
    return SignalPoint(name, tuple(ops), digest(ops), dict(parameters or {}))


def _patchset_points(doc: Mapping[str, Any], where: str) -> list[SignalPoint]:
    patches = doc.get("patches")
    if not isinstance(patches, list) or not patches:
        raise StatsError(f"{where}: a pyhf PatchSet needs a non-empty 'patches' list")
    labels = doc.get("metadata", {}).get("labels") or []
    out = []
    for i, item in enumerate(patches):
        meta = item.get("metadata", {}) if isinstance(item, Mapping) else {}
        name = str(meta.get("name") or f"patch{i}")
        values = meta.get("values") or []
        params: dict[str, float | str] = {}
        if labels and len(labels) == len(values):
            for lab, val in zip(labels, values, strict=True):
                params[str(lab)] = float(val) if isinstance(val, (int, float)) else str(val)
        out.append(_point(name, item, f"{where}: patches[{i}] ({name})", params))
    return out


def _is_patchset(doc: Any) -> bool:
    return isinstance(doc, Mapping) and "patches" in doc


def split_region(spec: str) -> tuple[Path, str | None]:
    """``archive.tar.gz:RegionA`` -> (``archive.tar.gz``, ``RegionA``); no region -> None."""
    path = Path(spec)
    if path.exists():
        return path, None
    head, sep, region = spec.rpartition(":")
    if sep and head and Path(head).exists() and head.endswith(_TAR_SUFFIXES):
        return Path(head), region
    return path, None


def _tar_regions(names: Sequence[str]) -> dict[str, str]:
    """``{region: directory}`` for every directory of the archive holding a BkgOnly.json."""
    out = {}
    for name in names:
        p = PurePosixPath(name)
        if p.name in BKG_NAMES:
            parent = str(p.parent)
            out[p.parent.name if parent != "." else ""] = parent
    return out


def _load_tarball(path: Path, region: str | None, with_background: bool
                  ) -> tuple[dict[str, Any] | None, list[SignalPoint], str]:
    label = f"{path}:{region}" if region else str(path)
    try:
        tar = tarfile.open(path, mode="r:*")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise StatsError(f"{path}: cannot read the archive ({exc})") from None
    with tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        regions = _tar_regions(list(members))
        if not regions:
            raise StatsError(f"{path}: no BkgOnly.json in the archive (not a HEPData "
                             "likelihood archive)")
        if region is None:
            if len(regions) > 1:
                msg = (f"{path}: the archive holds several likelihoods; choose one with "
                       f"{path}:REGION, regions: {', '.join(sorted(regions))}")
                raise StatsError(msg)
            region = next(iter(regions))
            label = f"{path}:{region}" if region else str(path)
        if region not in regions:
            msg = (f"{path}: no region {region!r} in the archive; regions: "
                   f"{', '.join(sorted(regions))}")
            raise StatsError(msg)
        folder = regions[region]
        prefix = "" if folder == "." else folder + "/"

        def read(name: str, what: str) -> Any:
            fobj = tar.extractfile(members[name])
            if fobj is None:  # pragma: no cover - regular members always have a file object
                raise StatsError(f"{path}:{name}: cannot read {what}")
            with fobj:
                return _parse_json(fobj.read(), f"{path}:{name}", what)

        background = None
        if with_background:
            bkg_name = next(prefix + n for n in BKG_NAMES if prefix + n in members)
            background = _check_workspace(read(bkg_name, "background-only workspace"),
                                          f"{path}:{bkg_name}")
        inside = sorted(n for n in members
                        if n.startswith(prefix) and "/" not in n[len(prefix):])
        patchsets = [n for n in inside if PurePosixPath(n).name == "patchset.json"]
        points: list[SignalPoint] = []
        if patchsets:
            points = _patchset_points(read(patchsets[0], "patchset"), f"{path}:{patchsets[0]}")
        else:
            for name in inside:
                base = PurePosixPath(name).name
                if base.startswith("patch") and base.endswith(".json"):
                    points.append(_point(point_name(base), read(name, "patch"),
                                         f"{path}:{name}"))
        if not points:
            raise StatsError(f"{label}: no patch.*.json or patchset.json in the region")
    return background, points, label


def _load_folder(folder: Path, with_background: bool
                 ) -> tuple[dict[str, Any] | None, list[SignalPoint]]:
    background = None
    if with_background:
        bkg = next((folder / n for n in BKG_NAMES if (folder / n).is_file()), None)
        if bkg is None:
            msg = (f"{folder}: expected a BkgOnly.json (or give it before the patches) and "
                   "patch.*.json files (the layout of HEPData likelihood archives)")
            raise StatsError(msg)
        background = _check_workspace(_read_json(bkg, "background-only workspace"), str(bkg))
    points: list[SignalPoint] = []
    patchset = folder / "patchset.json"
    if patchset.is_file():
        points = _patchset_points(_read_json(patchset, "patchset"), str(patchset))
    else:
        for f in sorted(folder.glob("patch*.json")):
            if f.name != "patchset.json":
                points.append(_point(point_name(f.name), _read_json(f, "patch"), str(f)))
    if not points:
        raise StatsError(f"{folder}: no patch.*.json files and no patchset.json (expected the "
                         "layout of HEPData likelihood archives)")
    return background, points


def _load_patch_spec(spec: str, with_background: bool
                     ) -> tuple[dict[str, Any] | None, list[SignalPoint], str]:
    path, region = split_region(spec)
    if not path.exists():
        raise StatsError(f"{spec}: no such file or folder (expected a folder of patches, a "
                         "pyhf patchset.json, a patch file or a HEPData .tar.gz[:REGION])")
    if path.is_dir():
        bkg, points = _load_folder(path, with_background)
        return bkg, points, str(path)
    if region is not None or str(path).endswith(_TAR_SUFFIXES):
        return _load_tarball(path, region, with_background)
    doc = _read_json(path, "patch")
    if _is_patchset(doc):
        if with_background:
            msg = (f"{path}: a PatchSet carries no background-only workspace; give "
                   "BKGONLY.json before it")
            raise StatsError(msg)
        return None, _patchset_points(doc, str(path)), str(path)
    return None, [_point(point_name(path.name), doc, str(path))], str(path)


def load_grid_source(inputs: Sequence[str]) -> GridSource:
    """Resolve ``[BKGONLY.json] PATCHES...`` into a :class:`GridSource`.

    Accepted forms: ``DIR`` (BkgOnly.json + patches inside), ``ARCHIVE.tar.gz[:REGION]``,
    ``BKGONLY.json DIR|PATCHSET.json|ARCHIVE[:REGION]|PATCH.json...``.

    Raises:
        StatsError: For missing files, invalid JSON, unknown regions (lists the valid ones),
            duplicate point names.
    """
    if not inputs:
        raise StatsError("give BKGONLY.json and the patches, a folder or a HEPData archive")
    first = Path(inputs[0])
    background: dict[str, Any] | None = None
    rest = list(inputs)
    label = ""
    if len(inputs) >= 2 and first.is_file() and not str(first).endswith(_TAR_SUFFIXES):
        doc = _read_json(first, "background-only workspace")
        if not _is_patchset(doc):
            background = _check_workspace(doc, str(first))
            rest = list(inputs[1:])
            label = str(first)
    points: list[SignalPoint] = []
    for spec in rest:
        bkg, pts, where = _load_patch_spec(spec, with_background=background is None)
        if background is None:
            background = bkg
            label = where
        points.extend(pts)
    if background is None:
        raise StatsError(f"{inputs[0]}: no background-only workspace; give BKGONLY.json first")
    from recastkit.stats.workspace_checks import check_workspace

    check_workspace(background, label, integer=False)
    seen: dict[str, int] = {}
    for p in points:
        seen[p.name] = seen.get(p.name, 0) + 1
    dups = [n for n, c in seen.items() if c > 1]
    if dups:
        raise StatsError(f"{label}: duplicate point names {dups[:5]} in the patches")
    log.info("%s: %d signal points", label, len(points))
    return GridSource(background, digest(background), tuple(points), label)


def make_pattern(pattern: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """Compile ``sbottom_{m1}_{m2}_{m3}`` into a regex with one group per ``{field}``.

    Raises:
        StatsError: For a pattern without fields or with a repeated field.
    """
    fields = tuple(re.findall(r"\{(\w+)\}", pattern))
    if not fields:
        raise StatsError(f"--pattern {pattern!r}: needs at least one {{field}}, e.g. "
                         "'sbottom_{m1}_{m2}_{m3}'")
    if len(set(fields)) != len(fields):
        raise StatsError(f"--pattern {pattern!r}: a field appears twice")
    parts = re.split(r"\{\w+\}", pattern)
    regex = re.escape(parts[0])
    for name, literal in zip(fields, parts[1:], strict=True):
        regex += f"(?P<{name}>.+?)" + re.escape(literal)
    return re.compile(f"^{regex}$"), fields


def parse_parameters(name: str, pattern: str) -> dict[str, float | str]:
    """Parameters of ``name`` by ``pattern``; numbers become floats (``1300`` -> 1300.0).

    Raises:
        StatsError: When the name does not match the pattern.
    """
    regex, _ = make_pattern(pattern)
    m = regex.match(name)
    if m is None:
        raise StatsError(f"point {name!r} does not match --pattern {pattern!r}")
    out: dict[str, float | str] = {}
    for key, value in m.groupdict().items():
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out
