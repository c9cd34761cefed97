"""The exceptions recastkit raises.

Every exception derives from :class:`RecastkitError` and from the builtin that describes the
kind of failure, so callers can catch either (``except KeyError`` still works for a missing
catalog entry). Messages are built before raising and name the file, the field, the bad value
and the valid choices.
"""

from __future__ import annotations


class RecastkitError(Exception):
    """Base class of every error raised by recastkit."""

    def __str__(self) -> str:
        # KeyError would otherwise show the repr() of the message, quotes included.
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class UnitError(RecastkitError, ValueError):
    """A quantity without a unit, or with a unit that is not accepted."""


class DatasetNameError(RecastkitError, ValueError):
    """A dataset name or AMI tag string that does not follow the ATLAS pattern."""


class CampaignError(RecastkitError, ValueError):
    """An unknown MC campaign, data year, reconstruction tag or run number."""


class ConfigError(RecastkitError, ValueError):
    """A configuration file that fails schema or semantic validation."""


class TableFormatError(RecastkitError, ValueError):
    """A cross-section table that cannot be parsed (names the file and line)."""


class MissingMetadataError(RecastkitError, KeyError):
    """No catalog record for a sample."""


class AmbiguousMetadataError(RecastkitError, LookupError):
    """Several catalog records match and nothing selects one of them."""


class CatalogError(RecastkitError, RuntimeError):
    """The metadata catalog database cannot be opened or written."""


class MissingCatalogError(CatalogError, MissingMetadataError):
    """A look-up in a catalog file that does not exist (the message says how to create it)."""


class RootFileError(RecastkitError, OSError):
    """A file that does not exist, is not ROOT, or is truncated."""


class MissingObjectError(RecastkitError, KeyError):
    """A tree, branch or histogram missing from a file (the message lists close matches)."""


class BookkeepingError(RecastkitError, ValueError):
    """No usable sum of generator weights in a file (the message lists the alternatives)."""


class HistogramError(RecastkitError, ValueError):
    """A histogram with an unsupported format, mismatched binning or invalid contents."""


class SelectionError(RecastkitError, ValueError):
    """An event selection that cannot run or selects nothing."""


class ScalingError(RecastkitError, ValueError):
    """A normalization factor that is missing, negative or inconsistent."""


class StatsError(RecastkitError, ValueError):
    """A statistical model or inference request that cannot be built or evaluated."""


class InvalidRecordError(RecastkitError, ValueError):
    """A cross-section record with an out-of-range field (ε, k, BR, uncertainty, key)."""


class FileAccessError(RecastkitError, OSError):
    """A file or folder that cannot be read or written (permission denied, disk full, a
    directory where a file is expected, a path under a file) or text that is not UTF-8."""


class MissingDependencyError(RecastkitError, ImportError):
    """An optional dependency (e.g. dask for the dask executor) is not installed."""
