"""The container image, built and run: tests/image/build_and_run.py, and the state volume.

The image test needs root, podman and debootstrap (`.ci/run` installs the last two);
elsewhere it skips and says why. The first run builds a python:3.11-slim stand-in
with debootstrap (about 2 minutes) and caches it in /var/tmp/hedgekeeper-image-cache;
later runs reuse it and podman's layer cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ops.helpers import HEDGEKEEPER, clean_env, sim_config, write_config

SCRIPT = REPO / "tests" / "image" / "build_and_run.py"


def image_test_unavailable() -> str | None:
    """Why the image cannot be built and run here, or None when it can."""
    if sys.platform != "linux":
        return "the image test builds with podman on Linux"
    if os.geteuid() != 0:
        return "the image test needs root (podman storage, chroot, namespaces)"
    missing = [
        tool
        for tool in ("podman", "debootstrap", "unshare", "nsenter", "ip")
        if not shutil.which(tool)
    ]
    if missing:
        installs = ".ci/run installs podman, debootstrap and iproute2"
        return f"{', '.join(missing)} not installed ({installs})"
    return None


@pytest.mark.timeout(900)
def test_image_builds_runs_and_stops_cleanly() -> None:
    reason = image_test_unavailable()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=880
    )
    print(result.stdout)  # the figures: build time, image size, first decision, stop
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    checks = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert len(checks) >= 13 and all(line.startswith("ok") for line in checks), checks
    assert "image size: " in result.stdout and "build: " in result.stdout


@pytest.mark.parametrize("blocker", ["file", "directory"])
def test_unusable_state_dir_is_one_line_and_exit_2(tmp_path: Path, blocker: str) -> None:
    # Root can write anywhere, so the state directory is made unusable another way:
    # a file where the directory should be (mkdir fails), or a directory where the
    # journal file should be (sqlite cannot open it).
    state = tmp_path / "state"
    if blocker == "file":
        state.write_text("")
        state_dir = state / "sub"
    else:
        (state / "journal.db").mkdir(parents=True)
        state_dir = state
    config = write_config(tmp_path, sim_config())
    result = subprocess.run(
        [*HEDGEKEEPER, "run", "--config", str(config), "--state-dir", str(state_dir)],
        env=clean_env(HEDGEKEEPER_LOG__FORMAT="json"), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [json.loads(line) for line in result.stderr.splitlines() if '"error"' in line]
    assert len(errors) == 1 and errors[0]["event"] == "daemon.failed", result.stderr
    message = errors[0]["error"]
    assert "cannot open journal" in message or "not writable" in message
    assert str(state_dir) in message
