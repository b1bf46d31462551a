"""The emulator fixes are one registry: each declares what moto does, what AWS does and its test (which exists);
each applies once however often it is called; the README's table is the registry's."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from analytics_platform.local.endpoint import fixes

ROOT = Path(__file__).resolve().parents[2]


def registered() -> list[fixes.EmulatorFix]:
    fixes.markdown_table()  # imports every module holding fixes
    return list(fixes.REGISTRY.values())


def test_every_fix_declares_moto_aws_and_an_existing_test() -> None:
    found = registered()
    assert len(found) >= 8
    for fix in found:
        assert fix.moto and fix.aws and "|" not in fix.moto + fix.aws, fix.name
        path, _, name = fix.test.partition("::")
        tree = ast.parse((ROOT / path).read_text())
        assert name in {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}, fix.test


def test_a_fix_applies_once_however_often_it_is_called() -> None:
    from moto.sqs.models import Queue

    fix = fixes.REGISTRY["queue_attributes_keep_the_policy"]
    fix.apply()
    patched = Queue._set_attributes
    fix.apply()
    fixes.apply_all()
    assert Queue._set_attributes is patched


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @fixes.emulator_fix(moto="m", aws="a", test="t")
        def queue_attributes_keep_the_policy() -> None:
            return None


def test_the_readme_table_is_the_registrys() -> None:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(fixes.TABLE_START), readme.index(fixes.TABLE_END)
    assert readme[start + len(fixes.TABLE_START) : end].strip() == fixes.markdown_table()
