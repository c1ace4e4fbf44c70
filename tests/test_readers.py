"""Tests for pipelines.readers: typing per contract, and clear errors for bad input."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import readers
from pipelines.readers import (
    QUARANTINE_COLUMNS,
    TIMESTAMP_DTYPE,
    InputError,
    read_events,
    read_events_frame,
)

FORMATS = ["csv", "jsonl", "parquet"]
SUFFIX = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}
# Text formats also name the physical line; with no blank lines it is row + 1 (CSV header).
LINE = {"csv": lambda row: f" (line {row + 1})", "jsonl": lambda row: f" (line {row})"}


def signups() -> dict[str, list[str]]:
    """Four good signups, every value as text; "" means null."""
    return {
        "account_id": ["a1", "a2", "a3", "a4"],
        "created_at": [
            "2024-01-05T10:00:00Z",
            "2024-01-05 11:00:00",
            "2024-01-05T12:00:00+02:00",
            "2024-01-06T00:00:00.5Z",
        ],
        "email": ["ann@x.com", "bob@y.org", "cy@z.net", "dee@x.com"],
        "ip": ["1.2.3.4", "5.6.7.8", "2001:db8::1", "9.9.9.9"],
        "ip_asn": ["13335", "15169", "", "16509"],
        "captcha_score": ["0.9", "0", "1", ""],
        "user_agent": ["Mozilla/5.0", "curl/8.0", "", "Mozilla/5.0"],
        "note": ["007", "NA", "x", "y"],  # not in the contract: passed through
    }


def _native(column: str, value: str) -> object:
    """The JSON/Parquet-native value of a text cell: numbers as numbers where they parse."""
    if value == "":
        return None
    converters = {"ip_asn": int, "captcha_score": float}
    try:
        return converters.get(column, str)(value)
    except ValueError:
        return value


def write(folder: Path, fmt: str, rows: dict[str, list[str]], name: str = "signups") -> Path:
    """Write ``rows`` as a file of format ``fmt`` and return its path."""
    path = folder / f"{name}{SUFFIX[fmt]}"
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif fmt == "jsonl":
        n = len(next(iter(rows.values())))
        records = [{c: _native(c, v[i]) for c, v in rows.items()} for i in range(n)]
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        columns = {}
        for column, values in rows.items():
            natives = [_native(column, v) for v in values]
            kinds = {type(v) for v in natives if v is not None}
            # A column mixing numbers and text is stored as text, as a real exporter would.
            columns[column] = natives if len(kinds) <= 1 else [v or None for v in values]
        pq.write_table(pa.table(columns), path)
    return path


def raises(path: Path, kind: str = "signups", **kwargs: object) -> InputError:
    with pytest.raises(InputError) as info:
        read_events(path, kind, **kwargs)  # type: ignore[arg-type]
    return info.value


# --------------------------------------------------------------------------------------------
# Happy paths


@pytest.mark.parametrize("fmt", FORMATS)
def test_reads_and_types_each_format(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt, signups())
    result = read_events(path, "signups")
    frame = result.frame

    assert (result.path, result.format, result.rows_read, result.rows_rejected) == (
        str(path),
        fmt,
        4,
        0,
    )
    assert result.quarantine_path is None
    assert list(frame.columns) == list(signups())
    assert {c: str(frame[c].dtype) for c in ("account_id", "email", "ip", "user_agent")} == {
        c: "string" for c in ("account_id", "email", "ip", "user_agent")
    }
    assert str(frame["created_at"].dtype) == TIMESTAMP_DTYPE
    assert str(frame["ip_asn"].dtype) == "Int64"
    assert frame["captcha_score"].dtype == np.float64
    assert "username" not in frame.columns  # optional and absent: not invented
    assert frame["account_id"].tolist() == ["a1", "a2", "a3", "a4"]
    assert frame["created_at"].tolist() == [
        pd.Timestamp("2024-01-05T10:00:00Z"),
        pd.Timestamp("2024-01-05T11:00:00Z"),  # naive means UTC
        pd.Timestamp("2024-01-05T10:00:00Z"),  # offset converted
        pd.Timestamp("2024-01-06T00:00:00.5Z"),
    ]
    assert frame["ip_asn"].tolist() == [13335, 15169, pd.NA, 16509]
    assert frame["captcha_score"].tolist()[:3] == [0.9, 0.0, 1.0]
    assert np.isnan(frame["captcha_score"].iloc[3])


@pytest.mark.parametrize("fmt", FORMATS)
def test_extra_column_passes_through(tmp_path: Path, fmt: str) -> None:
    frame = read_events(write(tmp_path, fmt, signups()), "signups").frame
    assert frame["note"].tolist() == ["007", "NA", "x", "y"]  # no number or null guessing


def test_senders_booleans_and_integers_from_text(tmp_path: Path) -> None:
    path = tmp_path / "senders.csv"
    path.write_text(
        "message_id,sent_at,sender,bounced,complained,recipient_count\n"
        "m1,2024-02-01T00:00:00Z,a@x.com,yes,0,3\n"
        "m2,2024-02-01T00:01:00Z,a@x.com,No,TRUE,+4\n"
        "m3,2024-02-01T00:02:00Z,b@x.com,1,false,5.0\n"
        "m4,2024-02-01T00:03:00Z,b@x.com,,,\n"
    )
    frame = read_events(path, "senders").frame
    assert str(frame["bounced"].dtype) == "boolean"
    assert frame["bounced"].tolist() == [True, False, True, pd.NA]
    assert frame["complained"].tolist() == [False, True, False, pd.NA]
    assert frame["recipient_count"].tolist() == [3, 4, 5, pd.NA]


def test_integers_keep_every_digit_and_overflow_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "senders.csv"
    body = "message_id,sent_at,sender,recipient_count\n"
    path.write_text(body + "m1,2024-02-01,a,9007199254740993\n")
    assert read_events(path, "senders").frame["recipient_count"].tolist() == [2**53 + 1]
    path.write_text(body + "m1,2024-02-01,a,1\nm2,2024-02-01,a,99999999999999999999\n")
    assert str(raises(path, "senders")) == (
        f"{path}: row 2 (line 3), column 'recipient_count': "
        "cannot parse integer '99999999999999999999'"
    )


def test_bad_boolean(tmp_path: Path) -> None:
    path = tmp_path / "senders.csv"
    path.write_text("message_id,sent_at,sender,bounced\nm1,2024-02-01,a,maybe\n")
    assert str(raises(path, "senders")) == (
        f"{path}: row 1 (line 2), column 'bounced': "
        "cannot parse boolean 'maybe' (expected true/false, yes/no, 1/0)"
    )


def test_json_fast_and_exact_readers_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "jsonl", signups())
    fast = read_events(path, "signups").frame
    monkeypatch.setattr(readers, "_read_jsonl_arrow", lambda *args: None)
    exact = read_events(path, "signups").frame
    pd.testing.assert_frame_equal(fast, exact)


def test_json_values_of_mixed_types(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    base = {"created_at": "2024-01-05T10:00:00Z", "email": "e@x", "ip": "1.2.3.4"}
    lines = [
        {"account_id": 42, **base, "ip_asn": "13335", "extra": {"k": [1, 2]}},
        {"account_id": "a2", **base, "ip_asn": 15169, "extra": None},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    frame = read_events(path, "signups").frame
    assert frame["account_id"].tolist() == ["42", "a2"]
    assert frame["ip_asn"].tolist() == [13335, 15169]
    assert frame["extra"].tolist() == [{"k": [1, 2]}, None]


def test_senders_native_json_booleans(tmp_path: Path) -> None:
    path = tmp_path / "senders.ndjson"
    lines = [
        {"message_id": "m1", "sent_at": "2024-02-01T00:00:00Z", "sender": "a", "bounced": True},
        {"message_id": "m2", "sent_at": "2024-02-01T00:00:00Z", "sender": "a", "bounced": None},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines))
    frame = read_events(path, "senders").frame
    assert str(frame["bounced"].dtype) == "boolean"
    assert frame["bounced"].tolist() == [True, pd.NA]


def test_parquet_typed_timestamps_are_converted_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    rows = pd.DataFrame(signups()).drop(columns="created_at")
    rows["created_at"] = pd.to_datetime(["2024-01-05 10:00"] * 4)  # naive: means UTC
    rows.loc[1, "created_at"] = pd.NaT
    rows.to_parquet(path)
    with pytest.raises(InputError, match=r"row 2, column 'created_at': missing required value"):
        read_events(path, "signups")
    rows["created_at"] = pd.to_datetime(["2024-01-05 12:00"] * 4).tz_localize("Europe/Paris")
    rows.to_parquet(path)
    frame = read_events(path, "signups").frame
    assert str(frame["created_at"].dtype) == TIMESTAMP_DTYPE
    assert frame["created_at"].iloc[0] == pd.Timestamp("2024-01-05T11:00:00Z")


# A kind whose spec declares its time format: Twitter's, not ISO 8601.
TWEETS_SPEC = {
    "name": "tweets_fmt",
    "id_column": "id",
    "time_column": "created_at",
    "columns": {
        "id": {"type": "string", "role": "id", "required": True},
        "created_at": {
            "type": "timestamp",
            "role": "time",
            "required": True,
            "format": "%a %b %d %H:%M:%S %z %Y",
        },
        "text": {"type": "string", "role": "text"},
    },
}


def tweets() -> dict[str, list[str]]:
    return {
        "id": ["t1", "t2", "t3"],
        "created_at": [
            "Fri Apr 06 10:58:22 +0000 2007",
            "Sun Feb 16 19:11:55 +0200 2014",  # offset converted
            " Tue Jun 11 11:20:35 -0500 2013 ",  # surrounding blanks stripped
        ],
        "text": ["hello", "win a prize", "hi"],
    }


@pytest.fixture
def tweets_kind() -> str:
    from clustering.kinds import register_spec
    from clustering.spec import parse_spec

    return register_spec(parse_spec(TWEETS_SPEC, "tweets.toml")).name


@pytest.mark.parametrize("fmt", FORMATS)
def test_declared_time_format_parses_to_utc(tmp_path: Path, fmt: str, tweets_kind: str) -> None:
    path = write(tmp_path, fmt, tweets(), name="tweets")
    frame = read_events(path, tweets_kind).frame
    assert str(frame["created_at"].dtype) == TIMESTAMP_DTYPE
    assert frame["created_at"].tolist() == [
        pd.Timestamp("2007-04-06T10:58:22Z"),
        pd.Timestamp("2014-02-16T17:11:55Z"),
        pd.Timestamp("2013-06-11T16:20:35Z"),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_declared_time_format_bad_row_names_row_and_column(
    tmp_path: Path, fmt: str, tweets_kind: str
) -> None:
    rows = tweets()
    rows["created_at"][1] = "2014-02-16T19:11:55Z"  # ISO, but the spec declares another format
    path = write(tmp_path, fmt, rows, name="tweets")
    error = raises(path, tweets_kind)
    assert (error.path, error.row, error.column) == (str(path), 2, "created_at")
    assert str(error) == (
        location(path, fmt, 2, "created_at")
        + "cannot parse timestamp '2014-02-16T19:11:55Z' (expected format "
        "'%a %b %d %H:%M:%S %z %Y', e.g. 'Fri Apr 06 10:58:22 +0000 2007')"
    )
    # with a quarantine the row is set aside and the others are read
    result = read_events(path, tweets_kind, quarantine=tmp_path / "q.parquet")
    assert result.frame["id"].tolist() == ["t1", "t3"] and result.rows_rejected == 1


def test_declared_time_format_leaves_typed_timestamps_alone(
    tmp_path: Path, tweets_kind: str
) -> None:
    path = tmp_path / "tweets.parquet"
    rows = pd.DataFrame(tweets())
    rows["created_at"] = pd.to_datetime(["2024-01-05 12:00"] * 3).tz_localize("Europe/Paris")
    rows.to_parquet(path)
    frame = read_events(path, tweets_kind).frame
    assert frame["created_at"].tolist() == [pd.Timestamp("2024-01-05T11:00:00Z")] * 3


def test_declared_time_format_in_a_frame(tweets_kind: str) -> None:
    typed = read_events_frame(pd.DataFrame(tweets()), tweets_kind)
    assert typed["created_at"].iloc[0] == pd.Timestamp("2007-04-06T10:58:22Z")
    bad = pd.DataFrame(tweets())
    bad.loc[2, "created_at"] = "yesterday"
    with pytest.raises(InputError) as info:
        read_events_frame(bad, tweets_kind, source="notebook")
    assert str(info.value).startswith(
        "notebook: row 3, column 'created_at': cannot parse timestamp 'yesterday' (expected format"
    )


def test_fmt_overrides_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    pd.DataFrame(signups()).to_csv(path, index=False)
    assert raises(path).reason.startswith("unknown input file suffix '.txt'")
    assert read_events(path, "signups", fmt="csv").rows_read == 4


def test_missing_path(tmp_path: Path) -> None:
    error = raises(tmp_path / "nope.csv")
    assert str(error) == f"{tmp_path / 'nope.csv'}: no such file or folder"


# --------------------------------------------------------------------------------------------
# One bad thing at a time, for every format


def location(path: Path, fmt: str, row: int, column: str) -> str:
    line = LINE[fmt](row) if fmt in LINE else ""
    return f"{path}: row {row}{line}, column {column!r}: "


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_required_column(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    del rows["email"]
    error = raises(write(tmp_path, fmt, rows))
    assert (error.column, error.row) == ("email", None)
    assert str(error) == (
        f"{tmp_path / ('signups' + SUFFIX[fmt])}: column 'email': missing required column 'email'; "
        "the file has columns: account_id, created_at, ip, ip_asn, captcha_score, user_agent, note"
    )


def test_missing_column_suggests_a_near_name(tmp_path: Path) -> None:
    rows = signups()
    rows["Created_At"] = rows.pop("created_at")
    assert "(did you mean 'Created_At'?)" in str(raises(write(tmp_path, "csv", rows)))


@pytest.mark.parametrize("fmt", FORMATS)
def test_bad_timestamp(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["created_at"][2] = "yesterday"
    path = write(tmp_path, fmt, rows)
    error = raises(path)
    assert (error.path, error.row, error.column) == (str(path), 3, "created_at")
    assert str(error).startswith(
        location(path, fmt, 3, "created_at") + "cannot parse timestamp 'yesterday'"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_epoch_numbers_are_not_timestamps(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["created_at"] = ["1704448800"] * 4
    path = write(tmp_path, fmt, rows)
    if fmt != "csv":  # store real numbers, not digits in text
        frame = pd.DataFrame(rows).assign(created_at=1704448800)
        if fmt == "parquet":
            frame.to_parquet(path)
        else:
            frame.to_json(path, orient="records", lines=True)
    error = raises(path)
    assert str(error).startswith(
        location(path, fmt, 1, "created_at") + "cannot parse timestamp '1704448800' (epoch"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_duplicate_id_names_both_rows(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["account_id"][3] = "a2"
    path = write(tmp_path, fmt, rows)
    error = raises(path)
    assert (error.row, error.column) == (4, "account_id")
    assert str(error) == (
        location(path, fmt, 4, "account_id") + "duplicate account_id 'a2' (first seen at row 2)"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_non_numeric_ip_asn(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["ip_asn"][1] = "AS15169"
    path = write(tmp_path, fmt, rows)
    assert str(raises(path)) == (
        location(path, fmt, 2, "ip_asn") + "cannot parse integer 'AS15169'"
    )


def test_fractional_ip_asn_is_not_an_integer(tmp_path: Path) -> None:
    rows = signups()
    rows["ip_asn"][3] = "16509.5"
    path = write(tmp_path, "jsonl", rows)  # a JSON float
    path.write_text(path.read_text().replace('"16509.5"', "16509.5"))
    assert str(raises(path)).endswith(
        "row 4 (line 4), column 'ip_asn': expected an integer, got '16509.5'"
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_captcha_score_out_of_range(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["captcha_score"][0] = "1.5"
    path = write(tmp_path, fmt, rows)
    assert str(raises(path)) == (location(path, fmt, 1, "captcha_score") + "1.5 is outside [0, 1]")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_missing_and_blank_required_values(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    rows["email"][1] = ""
    path = write(tmp_path, fmt, rows)
    assert str(raises(path)) == location(path, fmt, 2, "email") + "missing required value"
    if fmt == "jsonl":
        path.write_text(path.read_text().replace('"email": null', '"email": "  "'))
        assert str(raises(path)) == location(path, fmt, 2, "email") + "empty required value"


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_input(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"empty{SUFFIX[fmt]}"
    if fmt == "parquet":  # a valid file with a schema but no rows
        pq.write_table(pa.table({c: pa.array([], pa.string()) for c in signups()}), path)
    else:
        path.write_bytes(b"")
    error = raises(path)
    assert str(error).startswith(f"{path}: ")
    assert str(error).endswith("no rows")


def test_header_only_csv(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(",".join(signups()) + "\n")
    assert str(raises(path)) == f"{path}: no rows"


def test_blank_lines_only_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text("\n  \n\n")
    assert str(raises(path)) == f"{path}: no rows"


def test_malformed_jsonl_line(tmp_path: Path) -> None:
    path = write(tmp_path, "jsonl", signups())
    lines = path.read_text().splitlines()
    # A blank line is not a row: the bad record is row 3 but line 4.
    path.write_text("\n".join([lines[0], "", lines[1], '{"account_id": "a3",', lines[3]]))
    error = raises(path)
    assert (error.row, error.line) == (3, 4)
    assert str(error).startswith(f"{path}: row 3 (line 4): malformed JSON: ")


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "jsonl", signups())
    path.write_text(path.read_text() + "[1, 2]\n")
    assert str(raises(path)) == (
        f"{path}: row 5 (line 5): expected a JSON object on each line, got list"
    )


def test_malformed_csv_line(tmp_path: Path) -> None:
    path = write(tmp_path, "csv", signups())
    lines = path.read_text().splitlines()
    lines[3] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    assert str(raises(path)) == f"{path}: row 3 (line 4): malformed CSV: expected 8 fields, saw 9"


def test_surplus_field_on_first_csv_row_is_not_taken_as_an_index(tmp_path: Path) -> None:
    path = write(tmp_path, "csv", signups())
    lines = path.read_text().splitlines()
    lines[1] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    assert str(raises(path)) == f"{path}: row 1 (line 2): malformed CSV: expected 8 fields, saw 9"


def test_unterminated_csv_quote(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('account_id,created_at,email,ip\na1,2024-01-01,e,i\n"a2,2024-01-01,e,i\n')
    assert str(raises(path)) == f"{path}: row 2 (line 3): malformed CSV: unterminated quoted field"


def test_csv_line_numbers_follow_quoted_newlines(tmp_path: Path) -> None:
    rows = signups()
    rows["user_agent"][0] = "two\nlines"
    rows["created_at"][1] = "not a time"
    path = write(tmp_path, "csv", rows)
    error = raises(path)
    assert (error.row, error.line) == (2, 4)
    assert str(error).startswith(f"{path}: row 2 (line 4), column 'created_at': ")


def test_csv_duplicate_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("account_id,created_at,email,ip,ip\na1,2024-01-01,e,i,j\n")
    assert str(raises(path)) == f"{path}: duplicate column names ['ip']"


def test_csv_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "csv", signups())
    path.write_bytes(path.read_bytes().replace(b"cy@z.net", b"c\xff@z.net"))
    error = raises(path)
    assert (error.path, error.line) == (str(path), 4)
    assert "not valid UTF-8" in str(error)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    error = raises(path)
    assert error.path == str(path)
    assert str(error).startswith(f"{path}: cannot read Parquet file")


# --------------------------------------------------------------------------------------------
# Folders


def test_folder_reads_files_in_name_order(tmp_path: Path) -> None:
    rows = signups()
    first = {c: v[:2] for c, v in rows.items()}
    second = {c: v[2:] for c, v in rows.items()}
    write(tmp_path, "parquet", second, name="part-1")
    write(tmp_path, "parquet", first, name="part-0")
    (tmp_path / "_SUCCESS").write_text("")
    result = read_events(tmp_path, "signups")
    assert result.frame["account_id"].tolist() == ["a1", "a2", "a3", "a4"]
    assert (result.format, result.rows_read) == ("parquet", 4)


@pytest.mark.parametrize("fmt", FORMATS)
def test_folder_error_names_the_bad_file(tmp_path: Path, fmt: str) -> None:
    rows = signups()
    write(tmp_path, fmt, {c: v[:2] for c, v in rows.items()}, name="a")
    bad = {c: v[2:] for c, v in rows.items()}
    bad["created_at"][1] = "soon"
    bad_path = write(tmp_path, fmt, bad, name="b")
    error = raises(tmp_path)
    assert error.path == str(bad_path)
    assert str(error).startswith(
        location(bad_path, fmt, 2, "created_at") + "cannot parse timestamp 'soon'"
    )


def test_folder_duplicate_names_the_other_file(tmp_path: Path) -> None:
    rows = signups()
    a = write(tmp_path, "csv", {c: v[:2] for c, v in rows.items()}, name="a")
    later = {c: v[2:] for c, v in rows.items()}
    later["account_id"][1] = "a1"
    b = write(tmp_path, "csv", later, name="b")
    assert str(raises(tmp_path)) == (
        f"{b}: row 2 (line 3), column 'account_id': "
        f"duplicate account_id 'a1' (first seen at {a}, row 1)"
    )


def test_folder_structural_problems(tmp_path: Path) -> None:
    assert str(raises(tmp_path)) == f"{tmp_path}: folder has no input files: no rows"
    write(tmp_path, "csv", signups(), name="a")
    write(tmp_path, "jsonl", signups(), name="b")
    assert "folder mixes formats" in str(raises(tmp_path))
    (tmp_path / "b.jsonl").unlink()
    (tmp_path / "sub").mkdir()
    assert "sub-folders ['sub']" in str(raises(tmp_path))


# --------------------------------------------------------------------------------------------
# Quarantine


def bad_signups() -> dict[str, list[str]]:
    """Six rows; rows 2, 4 and 6 are bad in three different ways."""
    rows = {c: [*v, v[0], v[1]] for c, v in signups().items()}
    rows["account_id"][4:] = ["a5", "a1"]  # row 6 repeats row 1's id
    rows["created_at"][1] = "yesterday"
    rows["ip_asn"][3] = "AS16509"
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_quarantine_keeps_good_rows_and_writes_bad_ones(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, fmt, bad_signups())
    dest = tmp_path / "out" / "quarantine.parquet"
    result = read_events(path, "signups", quarantine=dest)

    assert result.frame["account_id"].tolist() == ["a1", "a3", "a5"]
    assert (result.rows_read, result.rows_rejected) == (6, 3)
    assert result.quarantine_path == str(dest)
    assert str(result.frame["created_at"].dtype) == TIMESTAMP_DTYPE

    bad = pd.read_parquet(dest)
    assert list(bad.columns) == [*bad_signups(), *QUARANTINE_COLUMNS]
    assert bad["_file"].tolist() == [str(path)] * 3
    assert bad["_row"].tolist() == [2, 4, 6]
    assert bad["_column"].tolist() == ["created_at", "ip_asn", "account_id"]
    assert bad["_reason"].str.split(" [(]", regex=True).str[0].tolist() == [
        "cannot parse timestamp 'yesterday'",
        "cannot parse integer 'AS16509'",
        "duplicate account_id 'a1'",
    ]
    assert bad["_reason"].iloc[2].endswith("(first seen at row 1)")
    assert bad["created_at"].iloc[0] == "yesterday"  # original value, as text
    assert bad["ip_asn"].iloc[1] == "AS16509"
    assert all(pa.types.is_string(f.type) for f in pq.read_schema(dest) if f.name != "_row")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["quarantine.parquet"]  # no temp


def test_quarantine_is_written_even_when_nothing_is_rejected(tmp_path: Path) -> None:
    dest = tmp_path / "q.parquet"
    dest.write_bytes(b"stale")
    result = read_events(write(tmp_path, "csv", signups()), "signups", quarantine=dest)
    assert result.rows_rejected == 0
    assert len(pd.read_parquet(dest)) == 0


def test_quarantine_with_every_row_rejected_raises(tmp_path: Path) -> None:
    rows = signups()
    rows["created_at"] = ["later"] * 4
    dest = tmp_path / "q.parquet"
    error = raises(write(tmp_path, "csv", rows), quarantine=dest)
    assert str(error).startswith(f"{tmp_path / 'signups.csv'}: all 4 rows were rejected")
    assert pd.read_parquet(dest)["_row"].tolist() == [1, 2, 3, 4]


def test_quarantine_does_not_hide_structural_problems(tmp_path: Path) -> None:
    rows = signups()
    del rows["ip"]
    error = raises(write(tmp_path, "csv", rows), quarantine=tmp_path / "q.parquet")
    assert error.column == "ip"
    assert not (tmp_path / "q.parquet").exists()


def test_quarantine_inside_the_input_folder_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "parquet", signups())
    error = raises(tmp_path, quarantine=tmp_path / "q.parquet")
    assert "is part of the input" in str(error)


# --------------------------------------------------------------------------------------------
# Checksums and in-memory frames


def test_checksum_is_of_the_file_bytes_and_stable(tmp_path: Path) -> None:
    path = write(tmp_path, "csv", signups())
    first = read_events(path, "signups").sha256
    assert first == read_events(path, "signups").sha256
    assert first == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_bytes(path.read_bytes().replace(b"ann@", b"anne@"))
    assert read_events(path, "signups").sha256 != first


def test_folder_checksum_is_of_the_sorted_files(tmp_path: Path) -> None:
    rows = signups()
    b = write(tmp_path, "csv", {c: v[2:] for c, v in rows.items()}, name="b")
    a = write(tmp_path, "csv", {c: v[:2] for c, v in rows.items()}, name="a")
    expected = hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    assert read_events(tmp_path, "signups").sha256 == expected


def test_read_events_frame_types_and_keeps_the_index() -> None:
    df = pd.DataFrame(signups(), index=[10, 11, 12, 13]).replace("", None)
    typed = read_events_frame(df, "signups")
    assert typed.index.tolist() == [10, 11, 12, 13]
    assert str(typed["created_at"].dtype) == TIMESTAMP_DTYPE
    assert typed["ip_asn"].tolist() == [13335, 15169, pd.NA, 16509]
    assert df["ip_asn"].iloc[0] == "13335"  # the input is not modified


def test_read_events_frame_errors_name_the_source() -> None:
    df = pd.DataFrame(signups())
    df.loc[1, "created_at"] = "nope"
    with pytest.raises(InputError) as info:
        read_events_frame(df, "signups", source="notebook")
    assert str(info.value).startswith(
        "notebook: row 2, column 'created_at': cannot parse timestamp 'nope'"
    )
    with pytest.raises(InputError, match=r"^<frame>: no rows$"):
        read_events_frame(df.iloc[:0], "signups")


def test_input_error_format() -> None:
    error = InputError(
        "cannot parse timestamp 'yesterday'", path="signups.csv", row=17, column="created_at"
    )
    assert (
        str(error) == "signups.csv: row 17, column 'created_at': cannot parse timestamp 'yesterday'"
    )
    assert (error.path, error.row, error.column, error.reason) == (
        "signups.csv",
        17,
        "created_at",
        "cannot parse timestamp 'yesterday'",
    )
    assert isinstance(error, ValueError)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_million_rows_validate_in_seconds(tmp_path: Path, fmt: str) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "account_id": [f"a{i}" for i in range(n)],
            "created_at": "2024-01-05T10:00:00Z",
            "email": "someone@example.com",
            "ip": "1.2.3.4",
            "ip_asn": rng.integers(1, 60000, n),
            "captcha_score": rng.random(n),
        }
    )
    path = tmp_path / f"big{SUFFIX[fmt]}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    started = time.perf_counter()
    result = read_events(path, "signups")
    assert result.rows_read == n
    assert time.perf_counter() - started < 15  # generous: shared CI machines are slow
