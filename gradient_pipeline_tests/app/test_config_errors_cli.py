"""A configuration error reaches the operator as one line naming the command, the file and the key; exit 2."""

from __future__ import annotations

import json

from gradient_pipeline.cli import main


def test_cli_prints_one_configuration_error_line_and_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRADIENT_DEBUG", raising=False)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"concentration_pct": 60}))
    rc = main(["backtest", "--config", str(path), "--start", "2025-01-01", "--end", "2025-01-02"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"gradient-pipeline backtest: configuration error: invalid configuration in {path}:")
    assert "concentration_pct: Input should be less than or equal to 50 (got 60)" in err
    assert "Traceback" not in err


def test_cli_names_a_missing_configuration_file(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GRADIENT_DEBUG", raising=False)
    path = tmp_path / "missing.json"
    rc = main(["backtest", "--config", str(path), "--start", "2025-01-01", "--end", "2025-01-02"])
    assert rc == 2
    assert f"configuration error: cannot read configuration file {path}" in capsys.readouterr().err
