"""The configuration errors the README promises: each names what is wrong and where (file, key, rule, value)."""

from __future__ import annotations

import json

import pytest

from gradient_pipeline.config import ConfigError, load_config


def write(tmp_path, text: str, name: str = "gradient_live.json"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return str(err.value)


def test_a_valid_file_loads(tmp_path):
    cfg = load_config(write(tmp_path, json.dumps({"capital_usd": 7000.0, "concentration_pct": 20.0})))
    assert cfg.capital_usd == 7000.0 and cfg.concentration_pct == 20.0


def test_unparsable_file_names_the_file_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "capital_usd": 5000.0,\n  "concentration_pct": 35.0,\n}\n')  # trailing comma
    msg = error_of(path)
    assert str(path) in msg and "not valid JSON" in msg and "line 4" in msg and "column 1" in msg


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = write(tmp_path, json.dumps({"capital_usd": 5000.0, "concentraton_pct": 35.0}))  # misspelt
    msg = error_of(path)
    assert str(path) in msg and "concentraton_pct: unknown key" in msg and "(got 35.0)" in msg
    assert "capital_usd" not in msg  # only the bad key is reported


def test_unknown_nested_key_is_named_by_its_path(tmp_path):
    msg = error_of(write(tmp_path, json.dumps({"risk": {"max_drawdown": 5}})))
    assert "risk.max_drawdown: unknown key" in msg


def test_out_of_range_value_names_key_rule_and_value(tmp_path):
    # the README's own example
    msg = error_of(write(tmp_path, json.dumps({"concentration_pct": 60})))
    assert "concentration_pct: Input should be less than or equal to 50 (got 60)" in msg


def test_wrong_type_is_refused_not_coerced(tmp_path):
    msg = error_of(write(tmp_path, json.dumps({"capital_usd": "5000"})))
    assert "capital_usd:" in msg and "(got '5000')" in msg


def test_every_bad_key_is_reported_at_once(tmp_path):
    msg = error_of(write(tmp_path, json.dumps({"concentration_pct": 60, "bogus": 1})))
    assert "concentration_pct:" in msg and "bogus: unknown key" in msg


def test_top_level_must_be_an_object(tmp_path):
    path = write(tmp_path, "[1, 2]")
    msg = error_of(path)
    assert str(path) in msg and "top level must be a JSON object" in msg


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere" / "gradient_live.json"
    msg = error_of(path)
    assert msg == f"cannot read configuration file {path}: No such file or directory"


def test_gradient_config_names_the_file_that_is_missing(tmp_path, monkeypatch):
    path = tmp_path / "from-env.json"
    monkeypatch.setenv("GRADIENT_CONFIG", str(path))
    with pytest.raises(ConfigError, match=f"cannot read configuration file {path}"):
        load_config()
