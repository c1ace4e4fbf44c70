"""Readers and validation for event files (DESIGN.md, "Contracts").

The rule is "bad input gets a clear error, and nothing is lost": every problem is reported as
an :class:`InputError` naming the file, the 1-based data row (and, for text formats, the line)
and the column; or, when the caller asks for it, the offending rows are written to a quarantine
Parquet file and counted, never silently dropped.

Parsing is done by pandas/pyarrow and validation is vectorised per column: each column is
coerced once (``errors="coerce"``) and the offending rows are located from the resulting masks.
Python-level scans of a file only happen on the error path, to turn a row into a line number.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from pandas.api import types as ptypes

from clustering.kinds import Kind, get_kind, get_spec
from clustering.spec import FORMAT_EXAMPLE

log = logging.getLogger(__name__)

#: dtype of every contract timestamp column after reading.
TIMESTAMP_DTYPE: Final = "datetime64[us, UTC]"

#: file suffix -> format name.
SUFFIX_FORMATS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}

#: closed value ranges of numeric contract columns.
VALUE_RANGES: dict[str, tuple[float, float]] = {"captcha_score": (0.0, 1.0)}

#: bookkeeping columns added to quarantined rows.
QUARANTINE_COLUMNS = ("_file", "_row", "_column", "_reason")

_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
_INT_TEXT = r"[+-]?\d+(?:\.0*)?"  # "13335.0" is what float-typed exporters write for an int
_NUMBER_TEXT = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_INT64_LIMIT = 2.0**63
_EPOCH_HINT = " (epoch numbers are not accepted; use ISO 8601)"
_ISO_HINT = " (expected ISO 8601, e.g. 2024-05-01T12:30:00Z)"
_MAX_LISTED_COLUMNS = 30

# Arrow integer/boolean columns become nullable pandas dtypes so nulls do not turn ints to floats.
_NULLABLE_TYPES: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


class InputError(ValueError):
    """Bad input: names the file, row, line and column where known.

    Parameters
    ----------
    message
        What is wrong (kept as ``reason``).
    path
        The file (or folder, or in-memory source) as the user named it.
    row
        1-based data row, counted as a user would count rows in the file.
    column
        The offending column.
    line
        1-based physical line of the row in a text file (CSV, JSON Lines).

    Examples
    --------
    >>> str(InputError("cannot parse timestamp 'yesterday'", path="signups.csv", row=17,
    ...                column="created_at"))
    "signups.csv: row 17, column 'created_at': cannot parse timestamp 'yesterday'"
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.reason = message
        self.path = path
        self.row = row
        self.column = column
        self.line = line
        where = []
        if row is not None:
            where.append(f"row {row}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(": ".join(p for p in (path, ", ".join(where), message) if p))


@dataclass
class ReadResult:
    """Validated events and what is needed to record the read in a run record.

    Attributes
    ----------
    frame
        Good rows, contract columns typed per the contract, extra columns unchanged.
    path
        The path that was read, as given.
    format
        ``"parquet"``, ``"csv"`` or ``"jsonl"``.
    rows_read
        Data rows in the input, rejected ones included.
    rows_rejected
        Rows written to the quarantine file.
    sha256
        Hex SHA-256 of the file bytes; for a folder, of the bytes of its files in name order.
    quarantine_path
        The quarantine file written, or ``None`` when no quarantine was asked for.
    """

    frame: pd.DataFrame
    path: str
    format: str
    rows_read: int
    rows_rejected: int
    sha256: str
    quarantine_path: str | None


# --------------------------------------------------------------------------------------------
# Public API


def read_events(
    path: str | os.PathLike[str],
    kind: str,
    *,
    quarantine: str | os.PathLike[str] | None = None,
    fmt: str | None = None,
) -> ReadResult:
    """Read and validate an event file, or a folder of files of one format.

    Parameters
    ----------
    path
        A ``.parquet``/``.pq``, ``.csv`` or ``.jsonl``/``.ndjson``/``.json`` (JSON Lines) file,
        or a folder of such files (all of one format; read in name order and concatenated;
        names starting with ``.`` or ``_`` such as ``_SUCCESS`` are skipped).
    kind
        Entity kind whose input contract applies (see :mod:`clustering.kinds`).
    quarantine
        If given, rows that break a value-level rule are written to this Parquet file (original
        values as strings plus ``_file``, ``_row``, ``_column``, ``_reason``) instead of raising.
        The file is always (re)written, possibly empty, so a stale one cannot mislead.
    fmt
        Format name overriding the file suffix (``parquet``, ``csv``, ``jsonl``).

    Returns
    -------
    ReadResult
        The good rows and the read's bookkeeping.

    Raises
    ------
    InputError
        On any structural problem (unreadable or malformed file, missing required column, no
        rows); on the first bad value when ``quarantine`` is not given; when every row is
        rejected.
    """
    spec = get_kind(kind)
    shown = os.fspath(path)
    files, fmt = _list_inputs(Path(path), shown, fmt)
    dest = Path(quarantine) if quarantine is not None else None
    if dest is not None:
        _check_quarantine_target(dest, Path(path), files, shown)

    sources, frames = [], []
    for file in files:
        source = _Source(shown if file == Path(path) else os.path.join(shown, file.name), fmt, file)
        started = time.perf_counter()
        frame = _READERS[fmt](file, source.shown, spec)
        _check_structure(frame, spec, source.shown)
        log.info(
            "read %s: %d rows in %.2fs", source.shown, len(frame), time.perf_counter() - started
        )
        sources.append(source)
        frames.append(frame)
    raw = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    origin = _Origin.of(sources, [len(f) for f in frames])

    typed, problems = _validate(raw, spec, origin, _time_formats(kind))
    if dest is None and problems.bad.any():
        raise origin.error(problems, int(np.argmax(problems.bad)))
    if dest is not None:
        _write_quarantine(_quarantine_frame(raw, problems, origin), dest)
        _report_rejections(problems, origin, dest, shown)
    if problems.bad.any():
        typed = typed.loc[~problems.bad].reset_index(drop=True)
    return ReadResult(
        frame=typed,
        path=shown,
        format=fmt,
        rows_read=len(raw),
        rows_rejected=int(problems.bad.sum()),
        sha256=_sha256(files),
        quarantine_path=os.fspath(dest) if dest is not None else None,
    )


def read_events_frame(df: pd.DataFrame, kind: str, *, source: str = "<frame>") -> pd.DataFrame:
    """Validate and type an in-memory frame exactly as :func:`read_events` does a file.

    Parameters
    ----------
    df
        Events with the contract's columns; not modified.
    kind
        Entity kind whose input contract applies.
    source
        Name used in error messages in place of a file name.

    Returns
    -------
    pandas.DataFrame
        A new frame with the same rows and index, contract columns typed.

    Raises
    ------
    InputError
        On the first problem; rows are 1-based positions in ``df``.
    """
    spec = get_kind(kind)
    _check_unique_names(list(map(str, df.columns)), source)
    _check_structure(df, spec, source)
    origin = _Origin.of([_Source(source, None, None)], [len(df)])
    typed, problems = _validate(df.reset_index(drop=True), spec, origin, _time_formats(kind))
    if problems.bad.any():
        raise origin.error(problems, int(np.argmax(problems.bad)))
    typed.index = df.index
    return typed


# --------------------------------------------------------------------------------------------
# Where rows came from


@dataclass
class _Source:
    """One input file (or in-memory frame) and how to turn its rows into line numbers."""

    shown: str
    fmt: str | None
    file: Path | None

    def line_of(self, row: int) -> int | None:
        """Physical line where data row ``row`` starts (text formats only; error path)."""
        if self.file is None:
            return None
        if self.fmt == "csv":
            return next((line for r, line, _ in _csv_records(self.file) if r == row), None)
        if self.fmt == "jsonl":
            return _jsonl_line(self.file, row)
        return None


@dataclass
class _Origin:
    """Maps positions of a concatenated frame back to (file, 1-based row)."""

    sources: list[_Source]
    file_index: np.ndarray
    row: np.ndarray

    @classmethod
    def of(cls, sources: list[_Source], counts: Sequence[int]) -> _Origin:
        file_index = np.repeat(np.arange(len(sources)), counts)
        row = np.concatenate([np.arange(1, n + 1) for n in counts]) if counts else np.array([])
        return cls(sources, file_index, row.astype(np.int64))

    def shown(self, positions: np.ndarray) -> np.ndarray:
        """File names of ``positions``."""
        return np.array([s.shown for s in self.sources], dtype=object)[self.file_index[positions]]

    def error(self, problems: _Problems, pos: int) -> InputError:
        """The error for the problem recorded at ``pos``."""
        source = self.sources[self.file_index[pos]]
        row = int(self.row[pos])
        return InputError(
            str(problems.reason[pos]),
            path=source.shown,
            row=row,
            column=str(problems.column[pos]),
            line=source.line_of(row),
        )


# --------------------------------------------------------------------------------------------
# Locating and reading files


def _format_of(file: Path, fmt: str | None, shown: str) -> str:
    """Canonical format from ``fmt`` (``"csv"``, ``".csv"``, ...) or else the file suffix."""
    name = fmt if fmt is not None else file.suffix
    key = name.lower() if name.startswith(".") else "." + name.lower()
    if key not in SUFFIX_FORMATS:
        known = ", ".join(sorted(SUFFIX_FORMATS))
        what = f"format {fmt!r}" if fmt is not None else f"file suffix {file.suffix!r}"
        raise InputError(f"unknown input {what}; known: {known}", path=shown)
    return SUFFIX_FORMATS[key]


def _list_inputs(path: Path, shown: str, fmt: str | None) -> tuple[list[Path], str]:
    """The files to read, in order, and their common format."""
    if not path.exists():
        raise InputError("no such file or folder", path=shown)
    if not path.is_dir():
        return [path], _format_of(path, fmt, shown)
    entries = sorted(
        (p for p in path.iterdir() if not p.name.startswith((".", "_"))), key=lambda p: p.name
    )
    subfolders = [p.name for p in entries if p.is_dir()]
    if subfolders:
        # Reading only the top level would silently leave those rows out.
        raise InputError(f"folder has sub-folders {subfolders}; expected only files", path=shown)
    if not entries:
        raise InputError("folder has no input files: no rows", path=shown)
    formats = {p.name: _format_of(p, fmt, os.path.join(shown, p.name)) for p in entries}
    if len(set(formats.values())) > 1:
        raise InputError(
            f"folder mixes formats: {formats}; expected files of one format", path=shown
        )
    return entries, next(iter(formats.values()))


def _check_quarantine_target(dest: Path, path: Path, files: list[Path], shown: str) -> None:
    """Refuse a quarantine file that would overwrite or later be read as input."""
    target = dest.resolve()
    skipped = dest.name.startswith((".", "_"))
    inside = path.is_dir() and target.parent == path.resolve() and not skipped
    if inside or target in {f.resolve() for f in files}:
        raise InputError(f"quarantine file {os.fspath(dest)!r} is part of the input", path=shown)


def _sha256(files: list[Path]) -> str:
    """SHA-256 of the bytes of ``files``, in order."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _check_unique_names(names: list[str], shown: str) -> None:
    """Duplicate column names would be renamed or merged by pandas: refuse them."""
    dups = sorted(name for name, count in Counter(names).items() if count > 1)
    if dups:
        raise InputError(f"duplicate column names {dups}", path=shown)


def _check_structure(frame: pd.DataFrame, spec: Kind, shown: str) -> None:
    """Structural rules, which always raise: rows present, required columns present."""
    if len(frame) == 0:
        raise InputError("no rows", path=shown)
    missing = [c for c in spec.required if c not in frame.columns]
    if not missing:
        return
    have = [str(c) for c in frame.columns]
    listed = ", ".join(have[:_MAX_LISTED_COLUMNS]) + (
        ", ..." if len(have) > _MAX_LISTED_COLUMNS else ""
    )
    close = difflib.get_close_matches(missing[0], have, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    names = ", ".join(repr(c) for c in missing)
    raise InputError(
        f"missing required column{'s' if len(missing) > 1 else ''} {names}{hint}; "
        f"the file has columns: {listed}",
        path=shown,
        column=missing[0],
    )


def _read_parquet(file: Path, shown: str, spec: Kind) -> pd.DataFrame:
    """Read a Parquet file; any failure to read it is an InputError naming it."""
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"cannot read Parquet file: {exc}", path=shown) from None
    _check_unique_names(table.column_names, shown)
    # ignore_metadata: a stored pandas index becomes an ordinary column rather than vanishing.
    return table.to_pandas(types_mapper=_NULLABLE_TYPES.get, ignore_metadata=True)


def _read_csv(file: Path, shown: str, spec: Kind) -> pd.DataFrame:
    """Read a CSV file with every field as text (typing is the contract's job)."""
    records = _csv_records(file)
    header, first = next(records, None), next(records, None)
    records.close()
    if header is not None:
        _check_unique_names(header[2], shown)
        if first is not None and len(first[2]) > len(header[2]):
            # pandas would silently turn the first column into the index.
            raise _csv_width_error(first, len(header[2]), shown)
    try:
        # Only empty fields are null: "NA" or "null" may be a real display name.
        return pd.read_csv(file, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
    except pd.errors.EmptyDataError:
        raise InputError("empty file: no rows", path=shown) from None
    except UnicodeDecodeError as exc:
        raise _decode_error(file, exc, shown) from None
    except pd.errors.ParserError as exc:
        raise _csv_parser_error(file, exc, len(header[2]) if header else 0, shown) from None


def _csv_records(file: Path, start: int = 0) -> Generator[tuple[int, int, list[str]]]:
    """Yield ``(data_row, first_line, fields)`` per record, header as row 0, from ``start``.

    Blank lines are skipped as pandas skips them; quoted fields may span lines. Slow (Python):
    used for the header and on the error path only.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with file.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        row, consumed = -1, 0
        try:
            for fields in reader:
                first_line, consumed = consumed + 1, reader.line_num
                if not fields:
                    continue
                row += 1
                if row >= start:
                    yield row, first_line, fields
        except csv.Error:
            return


def _csv_width_error(record: tuple[int, int, list[str]], width: int, shown: str) -> InputError:
    row, line, fields = record
    return InputError(
        f"malformed CSV: expected {width} fields, saw {len(fields)}", path=shown, row=row, line=line
    )


def _csv_parser_error(file: Path, exc: Exception, width: int, shown: str) -> InputError:
    """Turn a pandas ParserError into an error naming the row and physical line."""
    message = str(exc).strip().replace("Error tokenizing data. C error: ", "")
    quote = re.search(r"EOF inside string starting at row (\d+)", message)
    if quote:
        row = int(quote.group(1))
        line = next((ln for r, ln, _ in _csv_records(file, start=row) if r == row), None)
        return InputError(
            "malformed CSV: unterminated quoted field", path=shown, row=row, line=line
        )
    if width:
        wide = next((r for r in _csv_records(file, start=1) if len(r[2]) > width), None)
        if wide is not None:
            return _csv_width_error(wide, width, shown)
    return InputError(f"malformed CSV: {message}", path=shown)


def _decode_error(file: Path, exc: UnicodeDecodeError, shown: str) -> InputError:
    """Name the first line that is not UTF-8."""
    with file.open("rb") as fh:
        for number, raw_line in enumerate(fh, 1):
            try:
                raw_line.decode("utf-8")
            except UnicodeDecodeError:
                return InputError(f"not valid UTF-8 text ({exc.reason})", path=shown, line=number)
    return InputError(f"not valid UTF-8 text ({exc.reason})", path=shown)


def _read_jsonl(file: Path, shown: str, spec: Kind) -> pd.DataFrame:
    """Read JSON Lines: pyarrow when the file is plain, Python line by line otherwise.

    The Python reader is the reference (exact line numbers, any mix of value types); pyarrow is
    only a fast path and any doubt about its result sends the file to the Python reader.
    """
    if file.stat().st_size == 0:
        raise InputError("empty file: no rows", path=shown)
    frame = _read_jsonl_arrow(file, spec)
    return frame if frame is not None else _read_jsonl_python(file, shown)


def _read_jsonl_arrow(file: Path, spec: Kind) -> pd.DataFrame | None:
    """Fast path; ``None`` when the file needs the exact reader."""
    # Contract columns are declared so that timestamps stay text (pyarrow would infer them) and
    # a value of an unexpected JSON type fails here instead of being coerced.
    natural = {"string": pa.string(), "timestamp": pa.string(), "integer": pa.int64()}
    natural |= {"float": pa.float64(), "boolean": pa.bool_()}
    columns = {c.name: c for c in spec.columns}
    schema = pa.schema([(name, natural[c.type]) for name, c in columns.items()])
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        table = pa_json.read_json(file, parse_options=options)
    except (pa.ArrowException, OSError):
        return None
    if any(pa.types.is_temporal(f.type) for f in table.schema):
        return None  # an extra column inferred as a timestamp would lose its original text
    # Declared columns that no row has are absent from the file: drop them, but let the exact
    # reader decide between "missing column" and "missing values" for required ones.
    empty = [n for n in columns if table.column(n).null_count == table.num_rows]
    if any(columns[n].required for n in empty) or table.num_rows == 0:
        return None
    table = table.drop_columns(empty)
    # Declared columns come first in pyarrow's result: restore the file's order.
    first = _first_jsonl_keys(file)
    order = [k for k in first if k in table.column_names]
    order += [k for k in table.column_names if k not in first]
    return table.select(order).to_pandas(types_mapper=_NULLABLE_TYPES.get)


def _first_jsonl_keys(file: Path) -> list[str]:
    """Keys of the first record, in file order."""
    with file.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    return []
                return list(record) if isinstance(record, dict) else []
    return []


def _read_jsonl_python(file: Path, shown: str) -> pd.DataFrame:
    """Exact reader: one JSON object per non-blank line."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not valid UTF-8 text ({exc.reason})", path=shown, line=lineno) from None
    decode = json.JSONDecoder().decode
    records: list[dict[str, Any]] = []
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and friends.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = decode(line)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"malformed JSON: {exc.msg} (char {exc.colno})",
                path=shown,
                row=len(records) + 1,
                line=number,
            ) from None
        if not isinstance(record, dict):
            raise InputError(
                f"expected a JSON object on each line, got {type(record).__name__}",
                path=shown,
                row=len(records) + 1,
                line=number,
            )
        records.append(record)
    if not records:
        raise InputError("no rows", path=shown)
    return pd.DataFrame(records)


def _jsonl_line(file: Path, row: int) -> int | None:
    """Physical line of JSON Lines record ``row`` (blank lines are not records)."""
    count = 0
    with file.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                count += 1
                if count == row:
                    return number
    return None


_READERS: dict[str, Callable[[Path, str, Kind], pd.DataFrame]] = {
    "parquet": _read_parquet,
    "csv": _read_csv,
    "jsonl": _read_jsonl,
}


# --------------------------------------------------------------------------------------------
# Typing and validation (vectorised, one column at a time)


@dataclass
class _Parsed:
    """A column typed per the contract, and which rows could not be typed and why."""

    values: pd.Series
    bad: np.ndarray
    reasons: pd.Series | None = None  # indexed by position, defined where ``bad``


@dataclass
class _Problems:
    """The first problem of each row: column and reason (``bad`` marks rows that have one)."""

    bad: np.ndarray
    column: np.ndarray
    reason: np.ndarray

    @classmethod
    def empty(cls, n: int) -> _Problems:
        return cls(np.zeros(n, bool), np.full(n, None, object), np.full(n, None, object))

    def add(self, mask: np.ndarray, column: str, reasons: pd.Series | str | None) -> None:
        """Record ``reasons`` for rows in ``mask`` that have no earlier problem."""
        positions = np.flatnonzero(mask & ~self.bad)
        if positions.size == 0:
            return
        self.bad[positions] = True
        self.column[positions] = column
        if isinstance(reasons, pd.Series):
            self.reason[positions] = reasons.reindex(positions).to_numpy(dtype=object)
        else:
            self.reason[positions] = reasons


def _time_formats(kind: str) -> dict[str, str]:
    """Timestamp column -> the ``strptime`` format its kind's spec declares for its text."""
    return {c.name: c.format for c in get_spec(kind).columns if c.format is not None}


def _validate(
    raw: pd.DataFrame, spec: Kind, origin: _Origin, formats: dict[str, str] | None = None
) -> tuple[pd.DataFrame, _Problems]:
    """Type the contract columns of ``raw`` and find every row's first problem.

    ``raw`` must have a RangeIndex; it is not modified (its text is needed for quarantine).
    ``formats`` maps timestamp columns to the format their text is in (else ISO 8601).
    """
    problems = _Problems.empty(len(raw))
    typed = raw.copy(deep=False)
    formats = formats or {}
    for column in spec.columns:
        if column.name not in raw.columns:
            continue
        if column.name in formats:
            parsed = _parse_timestamp(raw[column.name], formats[column.name])
        else:
            parsed = _PARSERS[column.type](raw[column.name])
        problems.add(parsed.bad, column.name, parsed.reasons)
        if column.required:
            problems.add(_mask(parsed.values.isna()), column.name, "missing required value")
            if column.type == "string":
                blank = _mask(parsed.values.str.strip().eq(""))
                problems.add(blank, column.name, "empty required value")
        if column.name in VALUE_RANGES:
            out, reasons = _out_of_range(parsed.values, VALUE_RANGES[column.name], raw[column.name])
            problems.add(out, column.name, reasons)
        typed[column.name] = parsed.values
    ids = typed[spec.id_column]
    dup, reasons = _duplicates(ids, origin, spec.id_column)
    problems.add(dup, spec.id_column, reasons)
    return typed, problems


def _mask(values: pd.Series | np.ndarray) -> np.ndarray:
    """A plain bool array, nulls counting as False."""
    if isinstance(values, pd.Series):
        return values.fillna(False).to_numpy(dtype=bool)
    return np.asarray(values, dtype=bool)


def _quote(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _quoted(values: pd.Series, mask: np.ndarray) -> pd.Series:
    """``repr``-quoted text of ``values`` at ``mask``, indexed by position (the bad rows only)."""
    return values[mask].map(_quote).astype(object)


def _render(value: object) -> str:
    """Text of a non-string value; JSON objects and arrays as JSON."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _as_text(raw: pd.Series) -> pd.Series:
    """Values as pandas ``"string"`` (nulls as NA)."""
    if raw.dtype == object and ptypes.infer_dtype(raw, skipna=True) not in ("string", "empty"):
        raw = raw.map(_render, na_action="ignore")
    return raw.astype("string")


def _as_value_text(raw: pd.Series) -> pd.Series:
    """Text of a value to be typed: stripped, blank meaning null."""
    text = _as_text(raw).str.strip()
    return text.mask(_mask(text.eq("")))


def _is_bool(raw: pd.Series) -> bool:
    return ptypes.is_bool_dtype(raw.dtype)


def _is_number(raw: pd.Series) -> bool:
    # is_numeric_dtype is true for booleans too; they are handled apart.
    return ptypes.is_numeric_dtype(raw.dtype) and not _is_bool(raw)


def _floats(raw: pd.Series) -> np.ndarray:
    return raw.to_numpy(dtype="float64", na_value=np.nan)


def _wrong_type(raw: pd.Series, what: str, expected: str) -> tuple[np.ndarray, pd.Series]:
    """Every non-null value is wrong (e.g. a boolean where an integer is expected)."""
    bad = _mask(raw.notna())
    reasons = f"expected {expected}, got {what} " + _quoted(raw, bad)
    return bad, reasons


def _parse_string(raw: pd.Series) -> _Parsed:
    values = _as_text(raw)
    bad = np.zeros(len(raw), bool)
    reasons = None
    if raw.dtype == object and ptypes.infer_dtype(raw, skipna=True) not in ("string", "empty"):
        bad = raw.map(lambda v: isinstance(v, dict | list)).to_numpy(dtype=bool)
        reasons = "expected text, got JSON " + _quoted(values, bad)
    return _Parsed(values.mask(bad), bad, reasons)


def _parse_timestamp(raw: pd.Series, fmt: str | None = None) -> _Parsed:
    """Timestamps as UTC: typed ones converted, text as ISO 8601 or in ``fmt`` (strptime).

    Naive times (no offset in the text or the format) are taken as UTC.
    """
    if ptypes.is_datetime64_any_dtype(raw.dtype):
        stamps = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        return _Parsed(stamps.astype(TIMESTAMP_DTYPE), np.zeros(len(raw), bool))
    if _is_number(raw) or _is_bool(raw):
        bad = _mask(raw.notna())
        reasons = "cannot parse timestamp " + _quoted(raw, bad) + _EPOCH_HINT
        return _Parsed(pd.Series(pd.NaT, index=raw.index, dtype=TIMESTAMP_DTYPE), bad, reasons)
    text = _as_value_text(raw)
    if fmt is not None:
        return _parse_formatted(text, fmt)
    # Naive times are UTC (utc=True localises them); offsets are converted.
    stamps = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    numeric = _mask(text.str.fullmatch(_NUMBER_TEXT))
    bad = _mask(text.notna()) & (_mask(stamps.isna()) | numeric)
    reasons = "cannot parse timestamp " + _quoted(text, bad)
    reasons += np.where(numeric[bad], _EPOCH_HINT, _ISO_HINT).astype(object)
    return _Parsed(stamps.mask(bad).astype(TIMESTAMP_DTYPE), bad, reasons)


def _parse_formatted(text: pd.Series, fmt: str) -> _Parsed:
    """Stripped text in the spec's declared ``fmt``; anything else, ISO included, is bad."""
    hint = f" (expected format {fmt!r}, e.g. {FORMAT_EXAMPLE.strftime(fmt)!r})"
    try:
        stamps = pd.to_datetime(text, utc=True, errors="coerce", format=fmt)
    except ValueError as exc:  # a format Python reads but pandas does not
        bad = _mask(text.notna())
        reasons = "cannot parse timestamp " + _quoted(text, bad) + f" (format {fmt!r}: {exc})"
        return _Parsed(pd.Series(pd.NaT, index=text.index, dtype=TIMESTAMP_DTYPE), bad, reasons)
    bad = _mask(text.notna()) & _mask(stamps.isna())
    reasons = "cannot parse timestamp " + _quoted(text, bad) + hint
    return _Parsed(stamps.mask(bad).astype(TIMESTAMP_DTYPE), bad, reasons)


def _parse_integer(raw: pd.Series) -> _Parsed:
    if _is_bool(raw):
        bad, reasons = _wrong_type(raw, "boolean", "an integer")
        return _Parsed(pd.Series(pd.NA, index=raw.index, dtype="Int64"), bad, reasons)
    if ptypes.is_integer_dtype(raw.dtype):
        try:
            return _Parsed(raw.astype("Int64"), np.zeros(len(raw), bool))
        except (OverflowError, TypeError, ValueError):
            pass  # uint64 beyond the int64 range: checked as floats below
    if _is_number(raw):
        x = _floats(raw)
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(x) & (x == np.round(x)) & (np.abs(x) < _INT64_LIMIT)
        bad = ~np.isnan(x) & ~ok
        reasons = "expected an integer, got " + _quoted(raw, bad)
        values = pd.Series(np.where(ok, x, np.nan), index=raw.index).astype("Int64")
        return _Parsed(values, bad, reasons)
    text = _as_value_text(raw)
    ok = _mask(text.str.fullmatch(_INT_TEXT))
    long = ok & _mask(text.str.len() > 18)  # only these can overflow int64
    if long.any():
        ok[long] = np.abs(_floats(pd.to_numeric(text[long], errors="coerce"))) < _INT64_LIMIT
    bad = _mask(text.notna()) & ~ok
    reasons = "cannot parse integer " + _quoted(text, bad)
    # Via text, not floats, so large ids keep every digit.
    digits = text.where(ok).str.replace(r"^\+|\.0*$", "", regex=True)
    return _Parsed(digits.astype("Int64"), bad, reasons)


def _parse_float(raw: pd.Series) -> _Parsed:
    if _is_bool(raw):
        bad, reasons = _wrong_type(raw, "boolean", "a number")
        return _Parsed(pd.Series(np.nan, index=raw.index), bad, reasons)
    shown: pd.Series
    if _is_number(raw):
        x = _floats(raw)
        bad, shown = np.isinf(x), raw
    else:
        shown = _as_value_text(raw)
        x = _floats(pd.to_numeric(shown, errors="coerce"))
        bad = _mask(shown.notna()) & ~np.isfinite(x)
    reasons = "cannot parse number " + _quoted(shown, bad)
    return _Parsed(pd.Series(np.where(bad, np.nan, x), index=raw.index), bad, reasons)


def _parse_boolean(raw: pd.Series) -> _Parsed:
    if _is_bool(raw):
        return _Parsed(raw.astype("boolean"), np.zeros(len(raw), bool))
    if _is_number(raw):
        x = _floats(raw)
        bad = ~np.isnan(x) & ~np.isin(x, (0.0, 1.0))
        ones = pd.Series(np.where(np.isnan(x) | bad, np.nan, x), index=raw.index)
        reasons = "cannot parse boolean " + _quoted(raw, bad)
        return _Parsed(ones.astype("boolean"), bad, reasons + " (expected 1 or 0)")
    text = _as_value_text(raw)
    values = text.str.lower().map(_BOOL_WORDS).astype("boolean")
    bad = _mask(text.notna()) & _mask(values.isna())
    reasons = "cannot parse boolean " + _quoted(text, bad) + " (expected true/false, yes/no, 1/0)"
    return _Parsed(values, bad, reasons)


_PARSERS: dict[str, Callable[[pd.Series], _Parsed]] = {
    "string": _parse_string,
    "timestamp": _parse_timestamp,
    "integer": _parse_integer,
    "float": _parse_float,
    "boolean": _parse_boolean,
}


def _out_of_range(
    values: pd.Series, bounds: tuple[float, float], raw: pd.Series
) -> tuple[np.ndarray, pd.Series]:
    low, high = bounds
    x = _floats(values)
    with np.errstate(invalid="ignore"):
        out = (x < low) | (x > high)
    reasons = raw[out].map(lambda v: str(v).strip()).astype(object)
    reasons += f" is outside [{low:g}, {high:g}]"
    return out, reasons


def _duplicates(ids: pd.Series, origin: _Origin, name: str) -> tuple[np.ndarray, pd.Series]:
    """Rows whose id was already seen (the first occurrence is kept), naming that row."""
    valid = _mask(ids.notna()) & ~_mask(ids.str.strip().eq(""))
    dup = _mask(ids.duplicated(keep="first")) & valid
    if not dup.any():
        return dup, pd.Series(dtype=object)
    firsts = np.flatnonzero(valid & ~dup)
    first_of = pd.Series(firsts, index=ids.iloc[firsts].to_numpy())
    dup_pos = np.flatnonzero(dup)
    first_pos = first_of.reindex(ids.iloc[dup_pos].to_numpy()).to_numpy()
    where = "row " + pd.Series(origin.row[first_pos], index=dup_pos).astype(str).astype(object)
    # Name the other file when the first occurrence is in a different one (folder input).
    elsewhere = origin.file_index[first_pos] != origin.file_index[dup_pos]
    where[elsewhere] = origin.shown(first_pos[elsewhere]) + ", " + where[elsewhere].to_numpy()
    reasons = f"duplicate {name} " + _quoted(ids, dup) + " (first seen at " + where + ")"
    return dup, reasons


# --------------------------------------------------------------------------------------------
# Quarantine


def _quarantine_frame(raw: pd.DataFrame, problems: _Problems, origin: _Origin) -> pd.DataFrame:
    """Rejected rows: original values as text plus where they came from and why."""
    positions = np.flatnonzero(problems.bad)
    rows = raw.iloc[positions]
    out = pd.DataFrame({str(c): _as_text(rows[c]).reset_index(drop=True) for c in rows.columns})
    out["_file"] = pd.array(origin.shown(positions), dtype="string")
    out["_row"] = origin.row[positions]
    out["_column"] = pd.array(problems.column[positions], dtype="string")
    out["_reason"] = pd.array(problems.reason[positions], dtype="string")
    return out


def _write_quarantine(frame: pd.DataFrame, dest: Path) -> None:
    """Write atomically: a temp file in the same folder, then ``os.replace``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([(c, pa.int64() if c == "_row" else pa.string()) for c in frame.columns])
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _report_rejections(problems: _Problems, origin: _Origin, dest: Path, shown: str) -> None:
    """Log rejections; raise when nothing is left."""
    rejected = int(problems.bad.sum())
    if rejected == 0:
        return
    first = origin.error(problems, int(np.argmax(problems.bad)))
    log.warning("%s: %d rows rejected, written to %s; first: %s", shown, rejected, dest, first)
    if rejected == len(problems.bad):
        raise InputError(
            f"all {rejected} rows were rejected (see {os.fspath(dest)}); first: {first}",
            path=shown,
        )


__all__ = [
    "QUARANTINE_COLUMNS",
    "SUFFIX_FORMATS",
    "TIMESTAMP_DTYPE",
    "VALUE_RANGES",
    "InputError",
    "ReadResult",
    "read_events",
    "read_events_frame",
]
