"""The shipped service definitions work as shipped: systemd units render and pass `systemd-analyze verify`, and the
docker-compose file wires the services, the workspace and the files it mounts consistently."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "docker-compose.yaml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_systemd_units_render_and_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    env_file = tmp_path / "env"
    env_file.write_text("GRADIENT_CONFIG=/nonexistent.json\n")
    dest = tmp_path / "units"
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "install_systemd.sh"), "--dest", str(dest), "--env-file", str(env_file),
         "--user", "root"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    names = sorted(p.name for p in dest.iterdir())
    assert names == [
        "gradient-backup.service", "gradient-backup.timer", "gradient-dagster-daemon.service",
        "gradient-dagster-webserver.service", "gradient-watchdog.service", "gradient-watchdog.timer",
    ]
    for unit in dest.iterdir():
        text = unit.read_text()
        assert "@" not in text.replace("gradient-", ""), f"{unit.name} kept a template placeholder"
        assert str(REPO) in text or unit.suffix == ".timer"
    # every timer points at a unit that exists
    for timer in dest.glob("*.timer"):
        target = next(line.split("=", 1)[1] for line in timer.read_text().splitlines() if line.startswith("Unit="))
        assert (dest / target).exists(), f"{timer.name} → {target}"


def test_systemd_verify_catches_a_broken_unit(tmp_path):
    """The check above has teeth: a unit whose program does not exist fails verification."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    unit = tmp_path / "broken.service"
    unit.write_text("[Service]\nExecStart=/nonexistent/bin/dagster-daemon run\n")
    assert subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True).returncode != 0


def test_install_script_refuses_without_a_venv(tmp_path):
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "install_systemd.sh", copy / "scripts")
    result = subprocess.run(["bash", str(copy / "scripts" / "install_systemd.sh"), "--dest", str(tmp_path / "u")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert ".venv is missing" in result.stderr


def test_compose_services_and_wiring():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "code", "webserver", "daemon", "watchdog"}
    # one image built from the shipped Dockerfile for every project service
    for name in ("code", "webserver", "daemon", "watchdog"):
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()
        env = services[name]["environment"]
        assert env["DAGSTER_HOME"] == "/var/lib/gradient/dagster"
        assert env["GRADIENT_BOOK_URL"].startswith("postgresql+psycopg://")
        assert "GRADIENT_PRIVATE_KEY" not in env, "the key comes from the env file, never from the compose file"
    # the webserver and daemon load the code location the `code` service serves
    code_cmd = services["code"]["command"]
    port = code_cmd[code_cmd.index("-p") + 1]
    module = code_cmd[code_cmd.index("-m") + 1]
    __import__(module)
    for name in ("webserver", "daemon"):
        cmd = services[name]["command"]
        workspace = yaml.safe_load((REPO / cmd[cmd.index("-w") + 1]).read_text())
        grpc = workspace["load_from"][0]["grpc_server"]
        assert (grpc["host"], str(grpc["port"])) == ("code", port)
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
    # the UI is published on loopback only
    assert all(p.startswith("127.0.0.1:") for p in services["webserver"]["ports"])
    # every bind mount names a file or folder that ships with the repo
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source
    # the instance file mounted is the production one, read-only, and the database it needs is created
    assert "./dagster.production.yaml:/var/lib/gradient/dagster/dagster.yaml:ro" in services["code"]["volumes"]
    initdb = (COMPOSE.parent / "docker" / "initdb").glob("*.sql")
    assert any("CREATE DATABASE gradient_book" in p.read_text() for p in initdb)


def test_dockerfile_copies_only_what_exists():
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in shlex.split(line)[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"


def test_every_command_the_services_run_exists():
    """The units, the compose file and the backup script call `gradient-pipeline …` subcommands that must exist."""
    import re

    from gradient_pipeline.cli import build_parser

    texts = [p.read_text() for p in (REPO / "deploy" / "systemd").iterdir()]
    texts += [COMPOSE.read_text(), (REPO / "scripts" / "gradient_backup.sh").read_text()]
    code = ["\n".join(line for line in t.splitlines()
                       if not line.lstrip().startswith("#") and not line.startswith("Description=")) for t in texts]
    used = {m.group(1) for t in code for m in re.finditer(r"(?<![=\w-])gradient-pipeline (\w[\w-]*(?: \w+)?)", t)}
    assert {"watchdog", "book backup"} <= {u if u.startswith("book") else u.split()[0] for u in used}, used
    parser = build_parser()
    for command in used:
        words = command.split()
        argv = words[:2] if words[0] == "book" else words[:1]
        with pytest.raises(SystemExit) as done:  # --help of an existing command exits 0; an unknown one exits 2
            parser.parse_args([*argv, "--help"])
        assert done.value.code == 0, command
