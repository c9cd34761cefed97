"""Run a preserved analysis (``recastkit run``) and reinterpret it with new signals.

:func:`run_analysis` runs, for an :class:`~recastkit.workflow.spec.AnalysisSpec`:

1. ``catalog``: the spec's cross-section tables imported into the run's own catalog;
2. per MC sample: ``generate-<sample>`` (generated samples only), ``select-<sample>`` (every
   region), ``scale-<sample>`` (σ·ε·k·L/Σw, one ledger); ``mock-<sample>`` for the mock
   background; ``toy-<data>`` (toy data from the total background) or ``select-<data>``;
3. ``fit-<signal>``: CLs scan and limits in the fitted region.

Each step is cached under ``DIR/steps/<name>-<key>/`` (:mod:`recastkit.workflow.steps`), so a
re-run with nothing changed runs nothing, a changed fit setting re-runs the fit only, and a run
killed mid-way resumes. Then it writes ``DIR/steps.json``, ``result.json``, the fit's files in
``fit/``, ``manifest.json`` (:mod:`recastkit.workflow.provenance`) and ``report.html``.

:func:`reinterpret` re-runs the chain with other signals, reusing the cached background and
data steps; each signal's outputs go to ``DIR/reinterpret/<signal>/``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recastkit._atomic import atomic_path, write_text_atomic
from recastkit._json import dumps
from recastkit.exceptions import ConfigError
from recastkit.regions import AnalysisConfig
from recastkit.scaling import Ledger
from recastkit.selection import CutflowEntry
from recastkit.workflow import stages
from recastkit.workflow.provenance import build_manifest, utc_now, write_manifest
from recastkit.workflow.spec import AnalysisSpec, Overrides, SampleSpec
from recastkit.workflow.steps import StepCache, StepOutput, StepRecord, file_identity, step_key

if TYPE_CHECKING:
    from recastkit.stats.results import LimitResult

log = logging.getLogger(__name__)

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class SampleOutcome:
    """One sample after its steps.

    Attributes:
        name: Sample name.
        role: ``signal``, ``background`` or ``data``.
        kind: ``mc``, ``mock``, ``toy`` or ``data``.
        dataset: Dataset name (MC).
        ledger: The normalization ledger (MC samples).
        region_files: Region -> the histogram file entering the fit (scaled for MC).
        cutflows: Region -> cutflow (generator weights, before scaling).
        catalog_records: Catalog records used, with their sources.
        notes: Catalog conflicts and remarks.
        inputs: Identities of the input files.
        source: How a mock background or toy data was made.
        yields: Region -> histogram -> expected events.
    """

    name: str
    role: str
    kind: str
    dataset: str | None = None
    ledger: Ledger | None = None
    region_files: Mapping[str, Path] = field(default_factory=dict)
    cutflows: Mapping[str, tuple[CutflowEntry, ...]] = field(default_factory=dict)
    catalog_records: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = ()
    inputs: tuple[Mapping[str, Any], ...] = ()
    source: str | None = None
    yields: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's sample entry."""
        return {
            "name": self.name, "role": self.role, "kind": self.kind, "dataset": self.dataset,
            "ledger": None if self.ledger is None else self.ledger.to_dict(),
            "sum_of_weights_source": (None if self.ledger is None
                                      else self.ledger.sum_of_weights_source),
            "catalog_records": [dict(r) for r in self.catalog_records],
            "notes": list(self.notes), "source": self.source,
            "yields": {k: dict(v) for k, v in self.yields.items()},
            "cutflows": {r: [dataclasses.asdict(c) for c in cf]
                         for r, cf in self.cutflows.items()},
        }


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_analysis` produced.

    Attributes:
        spec: The analysis (with the signal it ran on).
        outdir: The output folder holding the step cache.
        result_dir: Where this signal's outputs were written.
        samples: Signal first, then the backgrounds, then the data.
        limit: The limits.
        fit_region: The fitted region.
        steps: The steps of this run, in order.
        files: Output name -> path.
        manifest: The provenance manifest.
    """

    spec: AnalysisSpec
    outdir: Path
    result_dir: Path
    samples: tuple[SampleOutcome, ...]
    limit: LimitResult
    fit_region: str
    steps: tuple[StepRecord, ...]
    files: Mapping[str, Path]
    manifest: Mapping[str, Any]

    @property
    def signal(self) -> SampleOutcome:
        """The signal sample."""
        return self.samples[0]


# --------------------------------------------------------------------------- helpers


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _identity(path: Path, spec: AnalysisSpec, where: str) -> dict[str, Any]:
    try:
        return file_identity(path)
    except FileNotFoundError:
        src = spec.path or "<analysis spec>"
        raise ConfigError(f"{src}: {where}: file {path} not found") from None


def _check_input_files(spec: AnalysisSpec) -> None:
    """Fail on a missing event file before anything is written (naming the spec field)."""
    from recastkit.io.events import expand_inputs

    for sample in spec.samples.all():
        if sample.generate is not None or not sample.files:
            continue
        try:
            files = expand_inputs(list(sample.files))
        except Exception as exc:
            raise ConfigError(f"{spec.path}: {sample.where}.files: {exc}") from None
        for f in files:
            if not Path(f).exists():
                raise ConfigError(f"{spec.path or '<analysis spec>'}: {sample.where}.files: "
                                  f"file {f} not found")


class _Runner:
    """The state of one run: the spec, the cache and what the steps produced."""

    def __init__(self, spec: AnalysisSpec, cache: StepCache, *, executor: str,
                 workers: int | None, scheduler: str | None, signal_catalog: Path | None,
                 progress: Progress | None) -> None:
        self.spec = spec
        self.cache = cache
        self.executor = executor
        self.workers = workers
        self.scheduler = scheduler
        self.signal_catalog = signal_catalog
        self.progress = progress
        self.catalog_tables: list[dict[str, Any]] = []
        self._catalogs: dict[tuple[Path, ...], tuple[Path | None, str]] = {}

    # ----------------------------------------------------------------- catalog
    def catalog(self, extra: Sequence[Path] = ()) -> tuple[Path | None, str]:
        """Import the tables into a catalog step; returns (catalog path, key)."""
        tables = [*self.spec.normalization.catalogs, *extra]
        if tuple(tables) not in self._catalogs:
            self._catalogs[tuple(tables)] = self._catalog(tables)
        return self._catalogs[tuple(tables)]

    def _catalog(self, tables: Sequence[Path]) -> tuple[Path | None, str]:
        if not tables:
            from recastkit.metadata import Catalog

            default = Catalog.default_path()
            ident = file_identity(default) if default.exists() else None
            return None, step_key("default-catalog", {"catalog": ident})
        ids = [_identity(t, self.spec, "$.normalization.catalogs") for t in tables]
        for t in ids:
            if t not in self.catalog_tables:
                self.catalog_tables.append(t)
        key = step_key("catalog", {"tables": ids, "names": [t.name for t in tables]})

        def body(out: Path) -> dict[str, Any]:
            from recastkit.metadata import Catalog

            with Catalog(out / "catalog.sqlite") as cat:
                for t in tables:
                    cat.import_table(t)
            return {"file": "catalog.sqlite", "tables": ids}

        step = self.cache.run("catalog", key, body, {"tables": ids})
        return step.directory / "catalog.sqlite", key

    # ----------------------------------------------------------------- MC samples
    def inputs(self, sample: SampleSpec) -> tuple[list[Path], list[dict[str, Any]], str | None]:
        """The sample's files (generating them if the spec says so) and their identities."""
        if sample.generate is not None:
            key = step_key("generate", {"generate": dataclasses.asdict(sample.generate)})
            step = self.cache.run(f"generate-{sample.name}", key,
                                  lambda out: stages.generate_step(sample, out),
                                  {"generate": dataclasses.asdict(sample.generate)})
            files = [step.directory / str(step.info["file"])]
            return files, [file_identity(f) for f in files], key
        from recastkit.io.events import expand_inputs

        try:
            files = expand_inputs(list(sample.files))
        except Exception as exc:
            raise ConfigError(f"{self.spec.path}: {sample.where}.files: {exc}") from None
        return files, [_identity(f, self.spec, f"{sample.where}.files") for f in files], None

    def select(self, sample: SampleSpec) -> tuple[StepOutput, list[dict[str, Any]]]:
        """The select step of an MC or data sample."""
        files, ids, gen_key = self.inputs(sample)
        regions = self.spec.regions
        payload = {
            "files": ids, "generate": gen_key, "dataset": sample.dataset, "kind": sample.kind,
            "regions": {r.name: r.selection.to_mapping() for r in regions},
            # Python hooks of a region: their source files' checksums are inputs too
            "hooks": {r.name: r.selection.hooks() for r in regions
                      if isinstance(r.selection, AnalysisConfig)},
        }
        key = step_key("select", payload)
        step = self.cache.run(
            f"select-{sample.name}", key,
            lambda out: stages.select_step(sample, files, regions, out, executor=self.executor,
                                           workers=self.workers, scheduler=self.scheduler),
            payload)
        return step, ids

    def mc_sample(self, sample: SampleSpec) -> tuple[SampleOutcome, str]:
        """select + scale of one MC sample; returns the outcome and the scale step's key."""
        sel, ids = self.select(sample)
        extra: list[Path] = []
        catalog_override: Path | None = None
        if sample.role == "signal" and self.signal_catalog is not None:
            if _is_sqlite(self.signal_catalog):
                catalog_override = self.signal_catalog
            else:
                extra = [self.signal_catalog]
        if catalog_override is not None:
            catalog_path: Path | None = catalog_override
            cat_key = step_key("user-catalog", {"catalog": file_identity(catalog_override)})
        else:
            catalog_path, cat_key = self.catalog(extra)
        region_names = [r.name for r in self.spec.regions]
        norm = self.spec.normalization
        payload = {
            "select": sel.key, "catalog": cat_key, "dataset": sample.dataset,
            "overrides": self.spec.overrides_for(sample.name).to_dict(),
            "lumi": None if norm.lumi is None else str(norm.lumi),
            "lumi_rel_unc": norm.lumi_rel_unc, "regions": region_names,
        }
        key = step_key("scale", payload)
        step = self.cache.run(
            f"scale-{sample.name}", key,
            lambda out: stages.scale_step(self.spec, sample, sel.directory, region_names, out,
                                          catalog_path=catalog_path),
            payload)
        info = step.info
        outcome = SampleOutcome(
            name=sample.name, role=sample.role, kind=sample.kind, dataset=sample.dataset,
            ledger=stages.ledger_from_dict(info["ledger"]),
            region_files={r: step.directory / stages.region_file(r) for r in region_names},
            cutflows=stages.cutflows_from_info(sel.info),
            catalog_records=tuple(info.get("catalog_records", ())),
            notes=tuple(info.get("conflicts", ())), inputs=tuple(ids),
            yields=info.get("yields", {}),
        )
        return outcome, key

    def mock(self, sample: SampleSpec) -> tuple[SampleOutcome, str]:
        """The mock background in the fitted regions."""
        it = self.spec.interpretation
        regions = [self.spec.region(r) for r in it.regions]
        assert sample.mock is not None
        payload = {"mock": dataclasses.asdict(sample.mock), "observable": it.observable,
                   "binning": {r.name: stages.observable_axis(r, it.observable)[:3]
                               for r in regions}}
        key = step_key("mock", payload)
        step = self.cache.run(f"mock-{sample.name}", key,
                              lambda out: stages.mock_step(sample, regions, it.observable, out),
                              payload)
        return SampleOutcome(
            name=sample.name, role="background", kind="mock",
            region_files={r.name: step.directory / stages.region_file(r.name)
                          for r in regions},
            source=str(step.info.get("source")), yields=step.info.get("yields", {}),
        ), key

    def data(self, sample: SampleSpec, backgrounds: Sequence[tuple[SampleOutcome, str]]
             ) -> tuple[SampleOutcome, str]:
        """Toy data from the total background, or the selected data files."""
        it = self.spec.interpretation
        if sample.kind == "toy":
            payload = {"seed": sample.toy_seed, "backgrounds": [k for _, k in backgrounds],
                       "observable": it.observable, "regions": list(it.regions)}
            key = step_key("toy", payload)
            files = {r: [b.region_files[r] for b, _ in backgrounds] for r in it.regions}
            step = self.cache.run(
                f"toy-{sample.name}", key,
                lambda out: stages.toy_step(sample, files, it.observable, out), payload)
            return SampleOutcome(
                name=sample.name, role="data", kind="toy",
                region_files={r: step.directory / stages.region_file(r) for r in it.regions},
                source=str(step.info.get("source")), yields=step.info.get("yields", {}),
            ), key
        sel, ids = self.select(sample)
        return SampleOutcome(
            name=sample.name, role="data", kind="data",
            region_files={r.name: sel.directory / stages.region_file(r.name)
                          for r in self.spec.regions},
            cutflows=stages.cutflows_from_info(sel.info), inputs=tuple(ids),
            source="data files, unit weights",
        ), sel.key

    def fit(self, signal: tuple[SampleOutcome, str],
            backgrounds: Sequence[tuple[SampleOutcome, str]], data: tuple[SampleOutcome, str],
            fit_workers: int) -> StepOutput:
        """The fit: in the fitted region, or of all fitted regions together (several regions,
        free background normalizations or theory uncertainties)."""
        it = self.spec.interpretation
        region = it.regions[0]
        payload = {"signal": signal[1], "backgrounds": [k for _, k in backgrounds],
                   "data": data[1], "interpretation": it.to_dict(),
                   "plots": self.spec.outputs.plots}
        key = step_key("fit", payload)
        if it.multi_region:
            return self.cache.run(
                f"fit-{signal[0].name}", key,
                lambda out: stages.fit_regions_step(
                    self.spec, signal[0].region_files,
                    [(b.name, b.region_files) for b, _ in backgrounds],
                    data[0].region_files, out, workers=fit_workers, progress=self.progress),
                payload)
        return self.cache.run(
            f"fit-{signal[0].name}", key,
            lambda out: stages.fit_step(
                self.spec, signal[0].region_files[region],
                [b.region_files[region] for b, _ in backgrounds],
                data[0].region_files[region], out, workers=fit_workers,
                progress=self.progress),
            payload)


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def run_analysis(
    spec: AnalysisSpec,
    outdir: str | os.PathLike[str],
    *,
    executor: str = "iterative",
    workers: int | None = None,
    scheduler: str | None = None,
    command: Sequence[str] = (),
    progress: Progress | None = None,
    result_dir: str | os.PathLike[str] | None = None,
    signal_catalog: Path | None = None,
    cache: StepCache | None = None,
    write_steps: bool = True,
    force: bool = False,
) -> RunResult:
    """Run select → scale → fit for every sample and region of ``spec``.

    Args:
        spec: The analysis.
        outdir: Output folder; the step cache is ``outdir/steps``.
        executor: Selection executor (``iterative``, ``processes``, ``dask``); not part of
            any key (results are identical across executors).
        workers: Selection worker processes, also used for the CLs scan.
        scheduler: Dask scheduler address (``dask`` executor).
        command: The command line, recorded in the manifest.
        progress: Called after each CLs evaluation.
        result_dir: Where the outputs go (default ``outdir``).
        signal_catalog: A catalog database or a table used for the signal (reinterpret).
        cache: A step cache shared between runs (reinterpret).
        write_steps: Write ``outdir/steps.json``.
        force: Run every step even when it is cached.

    Raises:
        ConfigError: A missing input file or table (naming the spec field).
        RecastkitError: From any step (nothing half-written is left).
    """
    started = utc_now()
    out = Path(outdir)
    res_dir = Path(result_dir) if result_dir is not None else out
    _check_input_files(spec)  # before the cache creates the output folder
    cache = cache or StepCache(out, force=force)
    first_record = len(cache.records)
    runner = _Runner(spec, cache, executor=executor, workers=workers, scheduler=scheduler,
                     signal_catalog=signal_catalog, progress=progress)
    signal = runner.mc_sample(spec.samples.signal)
    backgrounds = [runner.mock(b) if b.kind == "mock" else runner.mc_sample(b)
                   for b in spec.samples.backgrounds]
    data = runner.data(spec.samples.data, backgrounds)
    fit = runner.fit(signal, backgrounds, data, fit_workers=workers or 1)
    limit = stages.limit_from_dict(fit.info["limit"])
    samples = (signal[0], *(b for b, _ in backgrounds), data[0])
    steps = tuple(cache.records[first_record:])
    if write_steps:
        cache.write_steps_json()

    files: dict[str, Path] = {"steps": out / "steps.json"}
    for rel in fit.info["files"]:
        dst = res_dir / rel
        _copy_atomic(fit.directory / rel, dst)
        files[Path(rel).name] = dst
    result_doc = {
        "analysis": spec.name, "spec_sha256": spec.sha256, "signal": signal[0].name,
        "dataset": signal[0].dataset, "fit_region": spec.interpretation.regions[0],
        "interpretation": spec.interpretation.to_dict(),
        "normalization": {s.name: s.ledger.to_dict() for s in samples if s.ledger},
        "yields": {s.name: {r: dict(v) for r, v in s.yields.items()} for s in samples},
        "limit": limit.to_dict(),
    }
    files["result"] = res_dir / "result.json"
    write_text_atomic(files["result"], dumps(result_doc) + "\n")
    files["manifest"] = res_dir / "manifest.json"
    if spec.outputs.report:
        files["report"] = res_dir / "report.html"
    inputs = [{"sample": s.name, "role": s.role, **i} for s in samples for i in s.inputs]
    manifest = build_manifest(
        analysis={"name": spec.name, "version": spec.version,
                  "spec": None if spec.path is None else str(spec.path),
                  "spec_sha256": spec.sha256, "signal": signal[0].name,
                  "signal_dataset": signal[0].dataset,
                  "signal_replaced": spec.samples.signal.where == "--signal"},
        command=command, started_utc=started, finished_utc=utc_now(), inputs=inputs,
        catalog_tables=runner.catalog_tables, samples=[s.to_dict() for s in samples],
        steps=[r.to_dict() for r in steps],
        outputs={k: stages.relpath(v, res_dir) for k, v in files.items()},
        results={"signal": signal[0].name, "observed_mu": limit.observed_mu,
                 "expected_mu": list(limit.expected_mu),
                 "observed_xsec_fb": limit.observed_xsec_fb, "cl": limit.cl},
    )
    write_manifest(manifest, res_dir)
    result = RunResult(spec=spec, outdir=out, result_dir=res_dir, samples=samples,
                       limit=limit, fit_region=spec.interpretation.regions[0], steps=steps,
                       files=files, manifest=manifest)
    if spec.outputs.report:
        from recastkit.workflow.reporting import write_run_report

        write_run_report(result, files["report"])
    return result


# --------------------------------------------------------------------------- reinterpret


@dataclass(frozen=True)
class SignalInput:
    """A new signal for :func:`reinterpret`: a dataset name and its files."""

    dataset: str
    files: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> SignalInput:
        """Parse ``DATASET_NAME=FILE[,FILE...]``.

        Raises:
            ConfigError: Without ``=`` or files.
        """
        name, sep, rest = text.partition("=")
        files = tuple(f.strip() for f in rest.split(",") if f.strip())
        if not sep or not name.strip() or not files:
            msg = (f"--signal {text!r}: expected DATASET_NAME=FILE[,FILE...] (a full dataset "
                   "name or DSID, then the files)")
            raise ConfigError(msg)
        return cls(name.strip(), files)

    @property
    def sample_name(self) -> str:
        """A sample name from the dataset: ``<DSID>`` (+ ``.<etag>``), else sanitized."""
        from recastkit.datasets import is_dataset_name, parse_dataset_name

        text = self.dataset
        if text.isdigit():
            return text
        if is_dataset_name(text):
            ds = parse_dataset_name(text)
            etag = ds.tags.etag
            return f"{ds.dsid}.{etag}" if etag else str(ds.dsid)
        return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:64] or "signal"


@dataclass(frozen=True)
class ReinterpretResult:
    """One :class:`RunResult` per new signal, and the results table."""

    results: tuple[RunResult, ...]
    table: Path
    steps: tuple[StepRecord, ...]


def reinterpret(
    spec: AnalysisSpec,
    signals: Sequence[SignalInput],
    outdir: str | os.PathLike[str],
    *,
    overrides: Overrides | None = None,
    catalog: Path | None = None,
    executor: str = "iterative",
    workers: int | None = None,
    scheduler: str | None = None,
    command: Sequence[str] = (),
    progress: Progress | None = None,
) -> ReinterpretResult:
    """Re-run the preserved chain with each new signal; backgrounds and data come from cache.

    σ, ε and k come from the catalog by the dataset name (DSID and e-tag), Σw from the new
    files' bookkeeping; ``overrides`` (and ``catalog``: a database or a table) apply to every
    new signal. Outputs: ``DIR/reinterpret/<signal>/`` and ``DIR/reinterpretation.json``.
    """
    if not signals:
        raise ConfigError("give at least one --signal DATASET_NAME=FILE[,FILE...]")
    names = [sig.sample_name for sig in signals]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        msg = (f"--signal: several signals with the sample name {', '.join(dup)} (the same "
               "DSID and e-tag); give each dataset once")
        raise ConfigError(msg)
    out = Path(outdir)
    specs = []
    for sig, name in zip(signals, names, strict=True):
        files = tuple(str(Path(f).resolve()) for f in sig.files)
        sample = SampleSpec(name=name, role="signal", kind="mc", dataset=sig.dataset,
                            files=files, where="--signal")
        specs.append((name, spec.with_signal(sample, overrides)))
        _check_input_files(specs[-1][1])  # every signal, before anything is written
    cache = StepCache(out)
    results: list[RunResult] = []
    for name, signal_spec in specs:
        results.append(run_analysis(
            signal_spec, out, executor=executor, workers=workers,
            scheduler=scheduler, command=command, progress=progress,
            result_dir=out / "reinterpret" / name, signal_catalog=catalog, cache=cache,
            write_steps=False))
    cache.write_steps_json()
    rows = [{
        "signal": r.signal.name, "dataset": r.signal.dataset,
        "scale": None if r.signal.ledger is None else r.signal.ledger.scale,
        "observed_mu": r.limit.observed_mu, "expected_mu": list(r.limit.expected_mu),
        "observed_xsec_fb": r.limit.observed_xsec_fb,
        "expected_xsec_fb": (None if r.limit.expected_xsec_fb is None
                             else list(r.limit.expected_xsec_fb)),
        "outputs": stages.relpath(r.result_dir, out),
    } for r in results]
    table = out / "reinterpretation.json"
    write_text_atomic(table, dumps({"analysis": spec.name, "signals": rows}) + "\n")
    return ReinterpretResult(tuple(results), table, tuple(cache.records))
