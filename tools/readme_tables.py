"""Rewrite the README's generated tables from their declarations (the unit tests fail while one is stale):

* worker settings (``etl/settings.py``), platform settings (``infra/platform_settings.py``), emulator fixes
  (``local/endpoint/fixes.py``).

Run from the project's root: ``PYTHONPATH=src .venv/bin/python tools/readme_tables.py``.
"""

from __future__ import annotations

from pathlib import Path

from analytics_platform.etl.settings import settings_table as worker_table
from analytics_platform.infra import platform_settings
from analytics_platform.local.endpoint import fixes

README = Path(__file__).resolve().parents[1] / "README.md"
TABLES = (
    ("<!-- worker-settings:start -->", "<!-- worker-settings:end -->", worker_table),
    (platform_settings.TABLE_START, platform_settings.TABLE_END, platform_settings.settings_table),
    (fixes.TABLE_START, fixes.TABLE_END, fixes.markdown_table),
)


def main() -> None:
    text = README.read_text()
    for start, end, table in TABLES:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{start}\n{table()}\n{end}{after}"
    README.write_text(text)
    print(f"rewrote {len(TABLES)} table(s) in {README}")


if __name__ == "__main__":
    main()
