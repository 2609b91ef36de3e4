"""The tier rule in conftest.py: a module's tier comes from what it imports (read, not imported)."""

from __future__ import annotations

from gradient_pipeline_tests.conftest import E2E_DIR, module_tier


def test_a_module_that_imports_dagster_or_the_cli_anywhere_is_integration(tmp_path):
    plain = tmp_path / "test_plain.py"
    plain.write_text("import numpy as np\nfrom gradient_pipeline.core import portfolio\n\ndef test_x():\n    pass\n")
    lazy = tmp_path / "test_lazy.py"
    lazy.write_text("def test_x():\n    from gradient_pipeline.cli import main\n")
    dagster = tmp_path / "test_dagster.py"
    dagster.write_text("import dagster as dg\n")
    procs = tmp_path / "test_procs.py"
    procs.write_text("import subprocess\n")
    assert module_tier(plain) == "unit"
    assert module_tier(lazy) == module_tier(dagster) == module_tier(procs) == "integration"


def test_the_e2e_directory_is_e2e():
    assert all(module_tier(p) == "e2e" for p in E2E_DIR.glob("test_*.py"))
    assert list(E2E_DIR.glob("test_*.py"))


def test_this_module_is_unit(request):
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None
