"""The analysis specification (``analysis.yml``): load, validate, turn into frozen dataclasses.

A spec is YAML validated against the packaged schema ``recastkit/schemas/analysis.json``
(errors carry the file and the JSON path of the bad field), then checked semantically here:

- no credentials, ever: a key that looks like one (password, passwd, token, secret, key,
  apikey, credential, ...; case-insensitive, at any depth) is rejected before anything else;
- every region's ``selection`` sub-document is handed to the selection layer
  (:meth:`recastkit.selection.SelectionConfig.from_mapping`), which validates and interprets
  it: the spec does not know what a region can say, so the selection can grow;
- relative paths resolve against the spec's directory and ``${VAR}`` expands from the
  environment (an unset variable is an error naming the field);
- sample names are unique, overrides name existing samples, the fitted regions exist.

The result, :class:`AnalysisSpec`, is what ``recastkit run``, ``reinterpret`` and the yadage
export read: ``name``, ``version``, ``samples`` (``signal`` with ``dataset`` and ``files``),
``regions``, ``normalization``, ``interpretation``, ``outputs``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from recastkit.exceptions import ConfigError
from recastkit.regions import AnalysisConfig, region_selection_from_mapping
from recastkit.selection import SelectionConfig
from recastkit.units import CrossSection, Luminosity, parse_lumi, parse_xsec

#: Version of the spec format this module reads.
SPEC_VERSION = 1

#: Words that mark a key as a credential (compared with the key's words, case-insensitive).
CREDENTIAL_WORDS: tuple[str, ...] = (
    "password", "passwd", "pwd", "passphrase", "token", "secret", "key", "apikey",
    "credential", "credentials", "cert", "proxy",
)
#: Substrings that mark a key as a credential wherever they appear in it.
_CREDENTIAL_SUBSTRINGS = ("password", "passwd", "secret", "token", "apikey", "credential")

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WORD_RE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")

SampleKind = Literal["mc", "mock", "toy", "data"]
SampleRole = Literal["signal", "background", "data"]


@dataclass(frozen=True)
class GenerateSpec:
    """A generated sample (:func:`recastkit.io.synthetic.write_signal_sample`).

    Attributes:
        events: Events generated before the skim.
        seed: Random seed.
        resonance_gev: Resonance mass in GeV.
        sum_of_weights: Pre-skim Σw written to the ``Runs`` tree.
        objects: Also write leptons, b-tag scores, MET, a pile-up weight and the LHE
            variation weights (the ZH → ℓℓbb example).
    """

    events: int
    seed: int
    resonance_gev: float = 120.0
    sum_of_weights: float = 6813.025800
    objects: bool = False


@dataclass(frozen=True)
class MockSpec:
    """The tutorial's mock background (exponential in the observable, unit weights).

    Attributes:
        seed: Seed of ``numpy.random.default_rng``.
        events: Events drawn.
        decay_gev: Decay constant of the exponential in GeV.
    """

    seed: int = 42
    events: int = 50_000
    decay_gev: float = 150.0


@dataclass(frozen=True)
class SampleSpec:
    """One sample of the analysis.

    Attributes:
        name: Unique name (used in step and output names).
        role: ``signal``, ``background`` or ``data``.
        kind: ``mc`` (files or generated events, normalized), ``mock`` (the tutorial's mock
            background), ``toy`` (Poisson toy data) or ``data`` (data files).
        dataset: Full ATLAS dataset name or DSID (MC samples).
        files: Input files or glob patterns, resolved (MC and data files).
        generate: Generator settings, for a generated MC sample.
        mock: Mock-background settings.
        toy_seed: Seed of the toy data.
        description: Free text.
        where: JSON path of the sample in the spec (for messages).
    """

    name: str
    role: SampleRole
    kind: SampleKind
    dataset: str | None = None
    files: tuple[str, ...] = ()
    generate: GenerateSpec | None = None
    mock: MockSpec | None = None
    toy_seed: int | None = None
    description: str = ""
    where: str = ""

    @property
    def is_mc(self) -> bool:
        """True for a Monte Carlo sample normalized by σ·ε·k·L/Σw."""
        return self.kind == "mc"


@dataclass(frozen=True)
class Samples:
    """The signal, the backgrounds and the data."""

    signal: SampleSpec
    backgrounds: tuple[SampleSpec, ...]
    data: SampleSpec

    def all(self) -> tuple[SampleSpec, ...]:
        """Every sample: signal, backgrounds, data."""
        return (self.signal, *self.backgrounds, self.data)


@dataclass(frozen=True)
class RegionSpec:
    """One region: a name and the selection the select step runs.

    Attributes:
        name: Region name.
        selection: The interpreted selection (built by the selection layer).
        document: The ``selection`` sub-document as written in the spec.
        description: Free text.
    """

    name: str
    selection: SelectionConfig | AnalysisConfig
    document: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class Overrides:
    """Normalization factors given by hand for one sample (``None``: resolve them)."""

    xsec: CrossSection | None = None
    filter_eff: float | None = None
    k_factor: float | None = None
    sumw: float | None = None
    etag: str | None = None
    xsec_source: str | None = None
    lumi: Luminosity | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (σ and L as text with their unit)."""
        return {
            "xsec": None if self.xsec is None else str(self.xsec),
            "filter_eff": self.filter_eff, "k_factor": self.k_factor, "sumw": self.sumw,
            "etag": self.etag, "xsec_source": self.xsec_source,
            "lumi": None if self.lumi is None else str(self.lumi),
        }


@dataclass(frozen=True)
class NormalizationSpec:
    """Catalog tables, luminosity and per-sample overrides.

    Attributes:
        catalogs: Cross-section tables imported into the run's own catalog (resolved paths).
        lumi: Luminosity of every MC sample (None: each dataset's campaign).
        lumi_rel_unc: Relative luminosity uncertainty.
        overrides: Sample name -> factors given by hand.
    """

    catalogs: tuple[Path, ...] = ()
    lumi: Luminosity | None = None
    lumi_rel_unc: float | None = None
    overrides: Mapping[str, Overrides] = field(default_factory=dict)


@dataclass(frozen=True)
class InterpretationSpec:
    """The fit settings.

    Attributes:
        regions: Regions fitted (one channel each; today one).
        observable: Histogram of the selection output that is fitted.
        test_stat: ``qtilde`` or ``q``.
        cl: Confidence level.
        mu_max: Upper end of the μ scan (None: automatic).
        n_points: Number of scan points.
        rebin: Bins merged before the fit.
        backend: pyhf backend.
        xsec_unc: ``"from-catalog"``, a relative value or None.
        lumi_unc: ``"from-catalog"``, a relative value or None.
        significance: Also compute the discovery significance.
    """

    regions: tuple[str, ...]
    observable: str = "h_mjj_kin"
    test_stat: str = "qtilde"
    cl: float = 0.95
    mu_max: float | None = None
    n_points: int = 21
    rebin: int = 1
    backend: str = "numpy"
    xsec_unc: float | str | None = None
    lumi_unc: float | str | None = None
    significance: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the fit step's cache key reads these)."""
        return {
            "regions": list(self.regions), "observable": self.observable,
            "test_stat": self.test_stat, "cl": self.cl, "mu_max": self.mu_max,
            "n_points": self.n_points, "rebin": self.rebin, "backend": self.backend,
            "xsec_unc": self.xsec_unc, "lumi_unc": self.lumi_unc,
            "significance": self.significance,
        }


@dataclass(frozen=True)
class OutputsSpec:
    """What the run writes besides ``steps.json``, ``manifest.json`` and ``result.json``."""

    report: bool = True
    plots: bool = True


@dataclass(frozen=True)
class AnalysisSpec:
    """A loaded, validated analysis spec.

    Attributes:
        name: Analysis name.
        version: Spec format version.
        samples: Signal, backgrounds, data.
        regions: The regions, in order.
        normalization: Catalogs, luminosity, overrides.
        interpretation: The fit settings.
        outputs: Output switches.
        path: The spec file (None when built from a mapping).
        sha256: SHA-256 of the spec file's bytes (or of its canonical JSON).
        description: Free text.
        document: The validated document as written.
    """

    name: str
    version: int
    samples: Samples
    regions: tuple[RegionSpec, ...]
    normalization: NormalizationSpec
    interpretation: InterpretationSpec
    outputs: OutputsSpec
    path: Path | None = None
    sha256: str = ""
    description: str = ""
    document: Mapping[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """The directory relative paths resolve against."""
        return self.path.parent if self.path is not None else Path.cwd()

    def region(self, name: str) -> RegionSpec:
        """The region called ``name``."""
        for r in self.regions:
            if r.name == name:
                return r
        msg = f"no region {name!r}; regions: {', '.join(r.name for r in self.regions)}"
        raise ConfigError(msg)

    def overrides_for(self, sample: str) -> Overrides:
        """The overrides of a sample (empty if none)."""
        return self.normalization.overrides.get(sample, Overrides())

    def with_signal(self, signal: SampleSpec, overrides: Overrides | None = None) -> AnalysisSpec:
        """A copy with another signal sample (and its overrides), for reinterpretation."""
        if signal.name in {b.name for b in self.samples.backgrounds} | {self.samples.data.name}:
            msg = f"signal name {signal.name!r} is already the name of a background or the data"
            raise ConfigError(msg)
        over = dict(self.normalization.overrides)
        over.pop(self.samples.signal.name, None)
        if overrides is not None:
            over[signal.name] = overrides
        return replace(
            self, samples=replace(self.samples, signal=replace(signal, role="signal")),
            normalization=replace(self.normalization, overrides=over),
        )


# --------------------------------------------------------------------------- helpers


def _key_words(key: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(key)]


def looks_like_credential(key: str) -> bool:
    """Whether a mapping key looks like a credential (``password``, ``apiKey``, ``AWS_SECRET``).

    A key matches when one of its words (split at ``_``, ``-``, ``.``, case changes) is in
    :data:`CREDENTIAL_WORDS`, or when it contains ``password``, ``secret``, ``token``, ...
    """
    low = key.lower()
    if any(s in low for s in _CREDENTIAL_SUBSTRINGS):
        return True
    return any(w in CREDENTIAL_WORDS for w in _key_words(key))


def _path_text(parts: Sequence[str | int]) -> str:
    text = "$"
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    return text


def find_credentials(doc: Any, parts: tuple[str | int, ...] = ()) -> list[str]:
    """JSON paths of every key that looks like a credential, at any depth."""
    found: list[str] = []
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            here = (*parts, str(k))
            if looks_like_credential(str(k)):
                found.append(_path_text(here))
            found.extend(find_credentials(v, here))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            found.extend(find_credentials(v, (*parts, i)))
    return found


def check_no_credentials(doc: Any, source: str) -> None:
    """Reject a document holding a credential-like key.

    Raises:
        ConfigError: Naming the file and every offending field.
    """
    found = find_credentials(doc)
    if found:
        msg = (
            f"{source}: field {', '.join(found)} looks like a credential; credentials never "
            "go in an analysis spec (it is shared and preserved): give access through the "
            "environment of the machine that runs it (e.g. a grid proxy, REANA secrets), and "
            "rename the field if it is not a credential"
        )
        raise ConfigError(msg)


def expand_env(text: str, where: str, source: str) -> str:
    """Replace ``${VAR}`` by the environment variable ``VAR``.

    Raises:
        ConfigError: If a variable is unset (naming the field and the variable).
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        value = os.environ.get(name)
        if value is None:
            msg = (
                f"{source}: {where}: environment variable {name} in {text!r} is not set; "
                f"set it (e.g. export {name}=/path/to/data)"
            )
            raise ConfigError(msg)
        return value

    return _ENV_RE.sub(sub, text)


def resolve_path(text: str, base: Path, where: str, source: str) -> str:
    """Expand ``${VAR}`` and make a relative path absolute against ``base`` (globs kept)."""
    expanded = os.path.expanduser(expand_env(text, where, source))
    p = Path(expanded)
    return str(p if p.is_absolute() else (base / p))


def _dataset_text(value: Any) -> str:
    return str(value).strip()


def _mc_sample(doc: Mapping[str, Any], role: SampleRole, where: str, base: Path,
               source: str) -> SampleSpec:
    if "dataset" not in doc:
        msg = (f"{source}: {where}: an MC sample needs a dataset (full ATLAS dataset name or "
               "DSID: it selects the catalog row)"
               + ("" if role == "signal" else ", or give mock: {...} for the mock background"))
        raise ConfigError(msg)
    if ("files" in doc) == ("generate" in doc):
        msg = (f"{source}: {where}: give exactly one of files (the event files) and generate "
               "(generated events)")
        raise ConfigError(msg)
    gen = doc.get("generate")
    generate = None if gen is None else GenerateSpec(
        events=int(gen["events"]), seed=int(gen["seed"]),
        resonance_gev=float(gen.get("resonance_gev", 120.0)),
        sum_of_weights=float(gen.get("sum_of_weights", 6813.025800)),
        objects=bool(gen.get("objects", False)))
    files = tuple(resolve_path(f, base, f"{where}.files[{i}]", source)
                  for i, f in enumerate(doc.get("files", ())))
    return SampleSpec(name=str(doc["name"]), role=role, kind="mc",
                      dataset=_dataset_text(doc["dataset"]), files=files, generate=generate,
                      description=str(doc.get("description", "")), where=where)


def _overrides(doc: Mapping[str, Any], where: str, source: str) -> Overrides:
    def conv(key: str, fn: Any) -> Any:
        if doc.get(key) is None:
            return None
        try:
            return fn(doc[key])
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{source}: {where}.{key}: {exc}") from None

    return Overrides(
        xsec=conv("xsec", parse_xsec), filter_eff=conv("filter_eff", float),
        k_factor=conv("k_factor", float), sumw=conv("sumw", float), etag=doc.get("etag"),
        xsec_source=doc.get("xsec_source"), lumi=conv("lumi", parse_lumi),
    )


def _unc(value: Any) -> float | str | None:
    if value is None or isinstance(value, str):
        return value
    return float(value)


def spec_from_mapping(doc: Mapping[str, Any], *, path: Path | None = None,
                      sha256: str | None = None, source: str | None = None) -> AnalysisSpec:
    """Validate a parsed document and build the spec.

    Args:
        doc: The parsed YAML.
        path: The spec file (relative paths resolve against its directory).
        sha256: Hash of the file's bytes (default: of the canonical JSON of ``doc``).
        source: Name used in messages (default: the path).

    Raises:
        ConfigError: A credential-like field, a schema violation (with its JSON path), or a
            semantic error (duplicate names, unknown region or sample).
    """
    from recastkit.config import validate

    src = source or (str(path) if path is not None else "<analysis spec>")
    check_no_credentials(doc, src)
    data = validate(dict(doc), "analysis", src)
    base = path.parent if path is not None else Path.cwd()

    samples_doc = data["samples"]
    signal = _mc_sample(samples_doc["signal"], "signal", "$.samples.signal", base, src)
    backgrounds: list[SampleSpec] = []
    for i, b in enumerate(samples_doc["backgrounds"]):
        where = f"$.samples.backgrounds[{i}]"
        if "mock" in b:
            extra = sorted({"dataset", "files", "generate"} & set(b))
            if extra:
                msg = (f"{src}: {where}: the mock background takes no {', '.join(extra)} "
                       "(it is drawn from an exponential); remove them or remove mock")
                raise ConfigError(msg)
            m = b["mock"] or {}
            backgrounds.append(SampleSpec(
                name=str(b["name"]), role="background", kind="mock",
                mock=MockSpec(seed=int(m.get("seed", 42)), events=int(m.get("events", 50_000)),
                              decay_gev=float(m.get("decay_gev", 150.0))),
                description=str(b.get("description", "")), where=where))
        else:
            backgrounds.append(_mc_sample(b, "background", where, base, src))
    d = samples_doc["data"]
    if ("toy" in d) == ("files" in d):
        msg = (f"{src}: $.samples.data: give exactly one of files (data event files) and toy "
               "(a seeded Poisson toy of the background)")
        raise ConfigError(msg)
    if "toy" in d:
        data_sample = SampleSpec(name=str(d.get("name", "data")), role="data", kind="toy",
                                 toy_seed=int(d["toy"]["seed"]), where="$.samples.data")
    else:
        files = tuple(resolve_path(f, base, f"$.samples.data.files[{i}]", src)
                      for i, f in enumerate(d["files"]))
        data_sample = SampleSpec(name=str(d.get("name", "data")), role="data", kind="data",
                                 files=files, where="$.samples.data")
    samples = Samples(signal, tuple(backgrounds), data_sample)
    names = [s.name for s in samples.all()]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{src}: $.samples: sample name(s) used twice: {', '.join(dup)}")

    regions: list[RegionSpec] = []
    for i, r in enumerate(data["regions"]):
        sel_doc = dict(r.get("selection") or {})
        config = region_selection_from_mapping(sel_doc, str(r["name"]),
                                               f"{src} $.regions[{i}].selection", base)
        regions.append(RegionSpec(name=str(r["name"]), selection=config, document=sel_doc,
                                  description=str(r.get("description", ""))))
    rnames = [r.name for r in regions]
    dup = sorted({n for n in rnames if rnames.count(n) > 1})
    if dup:
        raise ConfigError(f"{src}: $.regions: region name(s) used twice: {', '.join(dup)}")

    norm_doc = data.get("normalization") or {}
    catalogs = tuple(Path(resolve_path(c, base, f"$.normalization.catalogs[{i}]", src))
                     for i, c in enumerate(norm_doc.get("catalogs", ())))
    overrides: dict[str, Overrides] = {}
    for name, o in (norm_doc.get("overrides") or {}).items():
        where = f"$.normalization.overrides.{name}"
        if name not in names:
            msg = (f"{src}: {where}: no sample named {name!r}; samples: {', '.join(names)}")
            raise ConfigError(msg)
        overrides[name] = _overrides(o, where, src)
    lumi = None
    if norm_doc.get("lumi") is not None:
        try:
            lumi = parse_lumi(norm_doc["lumi"])
        except Exception as exc:
            raise ConfigError(f"{src}: $.normalization.lumi: {exc}") from None
    normalization = NormalizationSpec(catalogs=catalogs, lumi=lumi,
                                      lumi_rel_unc=norm_doc.get("lumi_rel_unc"),
                                      overrides=overrides)

    it = data.get("interpretation") or {}
    fit_regions = tuple(it.get("regions", (regions[0].name,)))
    for i, rn in enumerate(fit_regions):
        if rn not in rnames:
            msg = (f"{src}: $.interpretation.regions[{i}]: no region {rn!r} "
                   f"(valid choices: {', '.join(rnames)})")
            raise ConfigError(msg)
    interpretation = InterpretationSpec(
        regions=fit_regions, observable=str(it.get("observable", "h_mjj_kin")),
        test_stat=str(it.get("test_stat", "qtilde")), cl=float(it.get("cl", 0.95)),
        mu_max=None if it.get("mu_max") is None else float(it["mu_max"]),
        n_points=int(it.get("n_points", 21)), rebin=int(it.get("rebin", 1)),
        backend=str(it.get("backend", "numpy")), xsec_unc=_unc(it.get("xsec_unc")),
        lumi_unc=_unc(it.get("lumi_unc")), significance=bool(it.get("significance", False)),
    )
    for region in regions:
        hist_names = [h.name for h in region.selection.histogram_specs]
        if region.name in fit_regions and interpretation.observable not in hist_names:
            msg = (f"{src}: $.interpretation.observable: {interpretation.observable!r} is not "
                   f"a histogram of region {region.name!r} "
                   f"(valid choices: {', '.join(hist_names)})")
            raise ConfigError(msg)
    out = data.get("outputs") or {}
    outputs = OutputsSpec(report=bool(out.get("report", True)),
                          plots=bool(out.get("plots", True)))
    digest = sha256 or hashlib.sha256(
        json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return AnalysisSpec(
        name=str(data["name"]), version=int(data["version"]), samples=samples,
        regions=tuple(regions), normalization=normalization, interpretation=interpretation,
        outputs=outputs, path=path, sha256=digest,
        description=str(data.get("description", "")), document=data,
    )


def load_spec(path: str | os.PathLike[str]) -> AnalysisSpec:
    """Load and validate an analysis spec file.

    Raises:
        ConfigError: Unreadable file, bad YAML, a credential-like field, a schema violation
            (with the JSON path of the bad field) or a semantic error.
    """
    import yaml

    p = Path(path).resolve()
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read analysis spec {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: an analysis spec must be a mapping, got "
                          f"{type(doc).__name__}")
    return spec_from_mapping(doc, path=p, sha256=hashlib.sha256(raw).hexdigest(),
                             source=str(path))
