"""Command-line values are checked before anything runs: a clear usage error, nothing touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics_platform.cli import main

CSV = b"id,name\n1,Ann\n2,Bo\n"


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_an_impossible_port_is_a_usage_error_before_the_platform_starts(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["local", "up", "--port", port], ["demo", "--port", port]):
        with pytest.raises(SystemExit) as stopped:
            main(command)
        assert stopped.value.code == 2
        assert "--port" in capsys.readouterr().err


@pytest.mark.parametrize("ratio", ["5", "-1", "1.0", "nan", "lots"])
def test_a_reject_ratio_outside_the_worker_settings_range_is_refused(
    ratio: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(CSV)
    with pytest.raises(SystemExit) as stopped:
        main(["etl", "convert", str(source), "--max-reject-ratio", ratio])
    assert stopped.value.code == 2 and "--max-reject-ratio" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [source]


def test_convert_refuses_to_write_over_its_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a file converted onto itself (also through another spelling of the same path)
    source = tmp_path / "a.csv"
    source.write_bytes(CSV)
    for output in (str(source), str(tmp_path / "." / "a.csv")):
        # WHEN converted THEN refused as a usage error, and the input is untouched
        assert main(["etl", "convert", str(source), output]) == 2
        assert "is the input file" in capsys.readouterr().err
        assert source.read_bytes() == CSV


def test_convert_names_a_missing_output_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(CSV)
    assert main(["etl", "convert", str(source), str(tmp_path / "nope" / "a.parquet")]) == 2
    err = capsys.readouterr().err
    assert f"the output's folder {tmp_path / 'nope'} does not exist" in err and "malformed" not in err.lower()
    # AND a valid ratio at the edge of the range still converts
    assert main(["etl", "convert", str(source), str(tmp_path / "a.parquet"), "--max-reject-ratio", "0.99"]) == 0


def test_convert_never_writes_over_what_is_not_its_own_output_and_a_failure_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "a.csv"
    source.write_bytes(CSV)
    keep = tmp_path / "keep.txt"
    keep.write_text("precious")
    (tmp_path / "adir").mkdir()
    # WHEN the output names another file, a folder or a device THEN it is refused and left as it was
    for output in (keep, tmp_path / "adir", Path("/dev/null")):
        assert main(["etl", "convert", str(source), str(output)]) == 2
        assert "exists and is not" in capsys.readouterr().err
    assert keep.read_text() == "precious" and Path("/dev/null").is_char_device()
    # AND a failed conversion leaves an earlier output and its rejects where they were
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "closed"\n')
    earlier, earlier_rejects = tmp_path / "out.parquet", tmp_path / "out.rejects.jsonl"
    earlier.write_bytes(b"PAR1 earlier"), earlier_rejects.write_text("{}\n")
    assert main(["etl", "convert", str(bad), str(earlier)]) == 1
    assert earlier.read_bytes() == b"PAR1 earlier" and earlier_rejects.read_text() == "{}\n"
    # AND a successful one replaces its own earlier output
    assert main(["etl", "convert", str(source), str(earlier)]) == 0
    assert earlier.read_bytes()[:4] == b"PAR1" and earlier.stat().st_size > 100
    assert not earlier_rejects.exists()  # the earlier conversion's rejects are not this one's
