"""CSV / JSON Lines / JSON array (optionally gzip) to typed Parquet (zstd) with DuckDB.

Memory stays bounded whatever the file size: DuckDB streams the file from local disk, with its memory capped
(``memory_limit``), insertion order not preserved, and spill files on the same disk. Rows that do not parse go
to a quarantine file (JSON Lines: line number, raw text, error) with a count; a column whose type changes late
in the file is widened, so no valid row is rejected. By role:

* :mod:`.sniff` - format, compression, delimiter, header, from a sample read once,
* :mod:`.integrity` - a gzip input is complete and intact before DuckDB reads it,
* :mod:`.columns` - column names (:mod:`analytics_platform.etl.column_names`) quoted into SQL,
* :mod:`.session` - the DuckDB session and the deadline watchdog,
* :mod:`.errors` - what a failure means (full disk, corrupt gzip, DuckDB errors), in one place,
* :mod:`.csv_reader`, :mod:`.json_reader` - the readers, both taking one :class:`Source`; :mod:`.csv_types`
  guards and widens CSV columns, :mod:`.json_split` streams JSON into the clean JSON Lines copy DuckDB reads,
* :mod:`.numbers` - numbers kept exact: BIGINT, DECIMAL(38,0), DOUBLE or text, settled from their text,
* :mod:`.parquet_types` - every column written as exactly its catalog type,
* :mod:`.casts` - values cast to a catalog type without being altered (contracts, table types),
* :mod:`.contract` - dataset contracts and table types applied to the converted Parquet,
* :mod:`.convert` - :func:`convert_file`, :func:`conform_file`,
* :mod:`.disk` - :func:`disk_needed`, the disk a conversion needs.
"""

from analytics_platform.etl.transform.columns import column_name, normalise_columns
from analytics_platform.etl.transform.convert import conform_file, convert_file
from analytics_platform.etl.transform.disk import disk_needed
from analytics_platform.etl.transform.model import CSV, JSON_ARRAY, JSON_LINES, ConversionResult, Limits, Sniffed
from analytics_platform.etl.transform.sniff import detect_delimiter, sniff

__all__ = [
    "CSV", "JSON_ARRAY", "JSON_LINES", "ConversionResult", "Limits", "Sniffed", "column_name", "conform_file",
    "convert_file", "detect_delimiter", "disk_needed", "normalise_columns", "sniff",
]  # fmt: skip
