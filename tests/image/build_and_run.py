#!/usr/bin/env python3
"""Build hedgekeeper's container image, run it the way Docker would, and check it.

    python3 tests/image/build_and_run.py                   # podman, no container runtime needed
    python3 tests/image/build_and_run.py --engine docker   # where a real Docker engine exists

With ``--engine podman`` (the default, run as root) nothing needs a registry or a
container runtime, so it works in CI sandboxes:

1. The base ``python:3.11-slim`` is used if podman already has it; otherwise a
   stand-in is made once with debootstrap (Debian bookworm: Python 3.11, the
   machine's CA bundle) and cached as a tarball in ``--cache`` (default
   /var/tmp/hedgekeeper-image-cache), then imported under that name.
2. The image is built with ``podman build --format docker --isolation chroot
   --pull=never`` (docker format keeps the HEALTHCHECK; podman keeps its layer cache).
3. A container is created (not started) and its root mounted; the image's own
   ``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir`` and ``User`` (read from ``podman
   image inspect``) run chrooted into it, in private mount and network namespaces,
   with ``/proc``, a minimal ``/dev`` and a host directory as the state volume.

With ``--engine docker`` the same checks run through ``docker build`` / ``docker run``
/ ``docker exec`` / ``docker stop`` / ``docker diff``.

Checks: the HEALTHCHECK is in the image and exits 0 on the running daemon; the first
decision is logged as JSON within 30 s; every log line is JSON; SIGTERM stops it with
exit 0 within 5 s; the journal is in the state volume and a restart finds the paper
hedge in it; nothing is written outside the state volume; an unwritable state
volume gives a one-line error and exit 2, not a traceback; the image holds no test
code, no file of the work tree that the image should not have, no private keys and
no secret-looking environment. Figures (build time, image size, time to the first
decision, stop time) are printed. Exit status 0 when every check passed, 1 otherwise.

Standard library only: it runs with any Python >= 3.11, inside or outside the venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/python:3.11-slim"
#: One tag per work tree, so that builds from several checkouts do not replace each other's.
DEFAULT_TAG = "localhost/hedgekeeper:test-" + hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
DEFAULT_CACHE = Path(os.environ.get("HEDGEKEEPER_IMAGE_CACHE", "/var/tmp/hedgekeeper-image-cache"))
FIRST_DECISION_WITHIN = 30.0
STOP_WITHIN = 5.0
#: Work-tree folders whose files must never be in the image (compared by content).
NOT_IN_IMAGE = ("tests", "bench", "deploy", "config", ".ci")
#: The one file of those folders the image does carry.
SHIPPED = {"config/offline-demo.toml"}
#: Environment names that must not carry a value in the image.
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|API_?KEY|PRIVATE", re.IGNORECASE)
#: A PEM private key block (a key body, not a library mentioning the header).
PRIVATE_KEY = re.compile(rb"^-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40,}", re.M)
#: Where private keys are looked for: ours, not the distribution's.
OWN_PATHS = ("opt/hedgekeeper/", "etc/hedgekeeper/", "var/lib/hedgekeeper/", "src/", "root/")


def say(message: str) -> None:
    """Progress on stderr, so that stdout carries only the results."""
    print(f"image: {message}", file=sys.stderr, flush=True)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command, failing with its output when it fails."""
    result = subprocess.run(command, text=True, capture_output=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(
            f"image: {' '.join(command)} exited {result.returncode}\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result


@dataclass
class Report:
    """Each check's outcome and the figures, printed at the end."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, passed: bool, detail: str = "") -> bool:
        self.checks.append((name, passed, detail))
        say(f"{'ok  ' if passed else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return passed

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    def print(self) -> None:
        for name, passed, detail in self.checks:
            print(f"{'ok  ' if passed else 'FAIL'} {name}{': ' + detail if detail else ''}")
        for name, value in self.figures.items():
            print(f"{name}: {value}")


# -- the stand-in base image --------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror apt already uses here (debootstrap needs one it can reach)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    texts = [sources.read_text()] if sources.exists() else []
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        texts.append(legacy.read_text())
    for text in texts:
        for match in re.finditer(
            r"^(?:URIs:|deb)\s+(\S+/debian)/?\s*$|^deb\s+(\S+/debian)\s", text, re.M
        ):
            return match.group(1) or match.group(2)
    return "http://deb.debian.org/debian"


def standin_tarball(cache: Path) -> Path:
    """A root file system standing in for python:3.11-slim, built once and cached."""
    tarball = cache / "python-3.11-slim-standin.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise SystemExit("image: the base image is missing and debootstrap is not installed")
    cache.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    say(f"building the python:3.11-slim stand-in with debootstrap from {mirror} (once)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=cache, prefix="rootfs.") as work:
        root = Path(work) / "root"
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3,python3-venv",
                "bookworm",
                str(root),
                mirror,
            ]
        )
        # python:3.11-slim has python and python3 in /usr/local/bin.
        for name in ("python", "python3"):
            (root / "usr/local/bin" / name).symlink_to("/usr/bin/python3")
        # pip in the build stage talks to PyPI through whatever TLS this machine sees.
        certs = root / "etc/ssl/certs"
        certs.mkdir(parents=True, exist_ok=True)
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", certs / "ca-certificates.crt")
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = tarball.with_suffix(".tar.partial")
        run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."])
        partial.rename(tarball)
    say(f"stand-in built in {time.monotonic() - started:.0f} s: {tarball}")
    return tarball


# -- engines ----------------------------------------------------------------------------


@dataclass
class Running:
    """A started container (or its podman stand-in) and what it wrote on stderr."""

    handle: Any
    stderr_path: Path
    started: float

    def lines(self) -> list[str]:
        return self.stderr_path.read_text(errors="replace").splitlines()


class Engine(Protocol):
    """What the checks need from docker or podman."""

    name: str

    def prepare_base(self, cache: Path, report: Report) -> None: ...
    def build(self, tag: str, iidfile: Path) -> str: ...
    def inspect(self, tag: str) -> dict[str, Any]: ...
    def history(self, tag: str) -> list[str]: ...
    def create(self, image: str) -> None: ...
    def export(self) -> Iterator[tarfile.TarFile]: ...
    def start(
        self, config: dict[str, Any], state: Path, stderr_path: Path, writable: bool = True
    ) -> Running: ...
    def exec(self, running: Running, config: dict[str, Any], argv: list[str]) -> int: ...
    def stop(self, running: Running, within: float) -> int | None: ...
    def diff(self) -> list[str]: ...
    def cleanup(self) -> None: ...


class Podman:
    """podman builds; the image runs chrooted into a created container's root file system.

    `podman run` needs a runtime (crun) that sandboxes and CI runners often cannot start,
    so the container is only created and mounted, and this class does what the runtime
    would: private mount and network namespaces, /proc, a minimal /dev, the volume, then
    the image's command as the image's user in the image's working directory.
    """

    name = "podman"

    def __init__(self) -> None:
        self.container: str | None = None
        self.root: Path | None = None

    def prepare_base(self, cache: Path, report: Report) -> None:
        if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode == 0:
            report.figures["base image"] = f"{BASE_IMAGE} (already in podman's storage)"
            return
        started = time.monotonic()
        tarball = standin_tarball(cache)
        run(["podman", "import", "--quiet", str(tarball), BASE_IMAGE])
        report.figures["base image"] = (
            f"stand-in from {tarball}, ready in {time.monotonic() - started:.0f} s"
        )

    def build(self, tag: str, iidfile: Path) -> str:
        previous = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Id}}", tag],
            capture_output=True,
            text=True,
        ).stdout.strip()
        run(
            [
                "podman",
                "build",
                "--format",
                "docker",
                "--isolation",
                "chroot",
                "--pull=never",
                "--layers",
                "--iidfile",
                str(iidfile),
                "-t",
                tag,
                str(REPO),
            ]
        )
        # The layer cache stays (the dependencies' layer makes rebuilds take seconds), but
        # the image this build replaced goes, or every CI run would keep ~200 MB more.
        image = iidfile.read_text().strip().removeprefix("sha256:")
        if previous and previous != image:  # (not --force: an image in use stays)
            subprocess.run(["podman", "rmi", previous], capture_output=True)
        return image

    def inspect(self, tag: str) -> dict[str, Any]:
        inspected: dict[str, Any] = json.loads(run(["podman", "image", "inspect", tag]).stdout)[0]
        return inspected

    def history(self, tag: str) -> list[str]:
        out = run(["podman", "image", "history", "--no-trunc", "--format", "json", tag]).stdout
        return [
            str(layer.get("CreatedBy") or layer.get("created_by") or "")
            for layer in json.loads(out)
        ]

    def create(self, image: str) -> None:
        name = f"hedgekeeper-image-test-{os.getpid()}"
        self.container = run(["podman", "create", "--name", name, image]).stdout.strip()
        self.root = Path(run(["podman", "mount", self.container]).stdout.strip())

    def export(self) -> Iterator[tarfile.TarFile]:
        assert self.container is not None
        return _export(["podman", "export", self.container])

    def _as_image_user(self, config: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
        assert self.root is not None
        uid, gid, home = image_user(self.root, config.get("User") or "0")
        env = dict(item.split("=", 1) for item in config.get("Env") or [])
        env.setdefault("HOME", home)  # as Docker sets it
        env.setdefault("HOSTNAME", "hedgekeeper-image-test")
        return uid, gid, env

    def start(
        self, config: dict[str, Any], state: Path, stderr_path: Path, writable: bool = True
    ) -> Running:
        assert self.root is not None
        uid, gid, env = self._as_image_user(config)
        volumes = list((config.get("Volumes") or {}).keys())
        command = list(config.get("Entrypoint") or []) + list(config.get("Cmd") or [])
        # Runs in the new namespaces as root, then becomes the image's command in place
        # (exec all the way down), so the process we signal is the daemon itself.
        setup = """
set -e
root=$1 state=$2 volume=$3 workdir=$4 uid=$5 gid=$6; shift 6
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m tmpfs "$root/dev"
for node in null zero full random urandom tty; do
  : > "$root/dev/$node"; mount --bind "/dev/$node" "$root/dev/$node"
done
mount --bind "$state" "$root$volume"
ip link set lo up
exec unshare --root="$root" --wd="$workdir" --setgid="$gid" --setuid="$uid" -- "$@"
"""
        argv = [
            "unshare",
            "--mount",
            "--net",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-c",
            setup,
            "setup",
            str(self.root),
            str(state),
            volumes[0] if volumes else "/var/lib/hedgekeeper",
            config.get("WorkingDir") or "/",
            uid,
            gid,
            *command,
        ]
        stderr = stderr_path.open("wb")
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
        stderr.close()
        return Running(process, stderr_path, time.monotonic())

    def exec(self, running: Running, config: dict[str, Any], argv: list[str]) -> int:
        uid, gid, env = self._as_image_user(config)
        pid = str(running.handle.pid)
        result = subprocess.run(
            ["nsenter", "-t", pid, "-m", "-n", "-r", "-w", f"-G{gid}", f"-S{uid}", "--", *argv],
            env=env,
            capture_output=True,
            timeout=60,
        )
        return result.returncode

    def stop(self, running: Running, within: float) -> int | None:
        process: subprocess.Popen[bytes] = running.handle
        if process.poll() is not None:
            return process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None

    def diff(self) -> list[str]:
        assert self.container is not None
        out = run(["podman", "diff", "--format", "json", self.container]).stdout
        changes = json.loads(out) if out.strip() else {}
        return sorted(f"{kind} {path}" for kind, paths in changes.items() for path in (paths or []))

    def cleanup(self) -> None:
        if self.container is not None:
            subprocess.run(["podman", "umount", self.container], capture_output=True)
            subprocess.run(
                ["podman", "rm", "--force", "--volumes", self.container], capture_output=True
            )


class Docker:
    """A real Docker engine: the image runs as Docker runs it."""

    name = "docker"

    def __init__(self) -> None:
        self.container: str | None = None  # created, never started: for export
        self.started: list[str] = []  # run, in order: the last one is diffed
        self.volumes: dict[Path, str] = {}  # state directory -> named volume

    def prepare_base(self, cache: Path, report: Report) -> None:
        report.figures["base image"] = "python:3.11-slim, pulled by docker build"

    def build(self, tag: str, iidfile: Path) -> str:
        run(["docker", "build", "--iidfile", str(iidfile), "-t", tag, str(REPO)])
        return iidfile.read_text().strip()

    def inspect(self, tag: str) -> dict[str, Any]:
        inspected: dict[str, Any] = json.loads(run(["docker", "image", "inspect", tag]).stdout)[0]
        return inspected

    def history(self, tag: str) -> list[str]:
        out = run(["docker", "image", "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag])
        return out.stdout.splitlines()

    def create(self, image: str) -> None:
        self.image = image
        self.container = run(["docker", "create", image]).stdout.strip()

    def export(self) -> Iterator[tarfile.TarFile]:
        assert self.container is not None
        return _export(["docker", "export", self.container])

    def start(
        self, config: dict[str, Any], state: Path, stderr_path: Path, writable: bool = True
    ) -> Running:
        # A named volume starts as the image's (empty, 10001-owned) directory, like the
        # compose file's; an unwritable state directory is bind-mounted as it is.
        volume = next(iter((config.get("Volumes") or {"/var/lib/hedgekeeper": {}}).keys()))
        if writable:
            if state not in self.volumes:
                self.volumes[state] = run(["docker", "volume", "create"]).stdout.strip()
            source = self.volumes[state]
        else:
            source = str(state)
        # Named before it runs, so that cleanup finds it even when `docker run` fails.
        container = f"hedgekeeper-image-test-{os.getpid()}-{len(self.started)}"
        self.started.append(container)
        run(["docker", "run", "-d", "--name", container, "-v", f"{source}:{volume}", self.image])
        stderr = stderr_path.open("wb")
        logs = subprocess.Popen(
            ["docker", "logs", "-f", container], stdout=subprocess.DEVNULL, stderr=stderr
        )
        stderr.close()
        return Running((container, logs), stderr_path, time.monotonic())

    def exec(self, running: Running, config: dict[str, Any], argv: list[str]) -> int:
        container, _ = running.handle
        return subprocess.run(
            ["docker", "exec", container, *argv], capture_output=True, timeout=60
        ).returncode

    def stop(self, running: Running, within: float) -> int | None:
        container, logs = running.handle
        status = json.loads(run(["docker", "inspect", container]).stdout)[0]["State"]
        if status["Running"]:
            run(["docker", "stop", "-t", str(int(within)), container])
        status = json.loads(run(["docker", "inspect", container]).stdout)[0]["State"]
        logs.wait(10)
        code = int(status["ExitCode"])
        return None if code == 137 else code  # 137: killed after the grace period

    def diff(self) -> list[str]:
        out = run(["docker", "diff", self.started[-1]]).stdout
        return sorted(out.splitlines())

    def cleanup(self) -> None:
        for container in filter(None, [self.container, *self.started]):
            subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True)
        for volume in self.volumes.values():
            subprocess.run(["docker", "volume", "rm", volume], capture_output=True)


def _export(command: list[str]) -> Iterator[tarfile.TarFile]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
        yield archive
    process.stdout.close()
    if process.wait() != 0:
        raise SystemExit(f"image: {' '.join(command)} exited {process.returncode}")


def image_user(root: Path, user: str) -> tuple[str, str, str]:
    """uid, gid and home of the image's ``User`` (``name``, ``uid`` or ``uid:gid``)."""
    name, _, group = user.partition(":")
    passwd = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    entry = next((fields for fields in passwd if name in (fields[0], fields[2])), None)
    uid = entry[2] if entry else name
    gid = group or (entry[3] if entry else uid)
    if not gid.isdigit():
        groups = [line.split(":") for line in (root / "etc/group").read_text().splitlines()]
        gid = next(fields[2] for fields in groups if fields[0] == gid)
    return uid, gid, entry[5] if entry else "/"


# -- the checks -------------------------------------------------------------------------


def worktree_fingerprints() -> dict[tuple[int, str], str]:
    """(size, sha256) of work-tree files that must not be in the image -> their path."""
    fingerprints = {}
    for folder in NOT_IN_IMAGE:
        for path in (REPO / folder).rglob("*"):
            relative = path.relative_to(REPO).as_posix()
            if not path.is_file() or relative in SHIPPED or "__pycache__" in path.parts:
                continue
            content = path.read_bytes()
            if len(content) < 64:  # empty __init__.py and the like match anything
                continue
            fingerprints[(len(content), hashlib.sha256(content).hexdigest())] = relative
    return fingerprints


def check_contents(
    engine: Engine, config: dict[str, Any], history: list[str], report: Report
) -> None:
    """No test code, no work-tree leftovers, no keys, no secret-looking environment."""
    fingerprints = worktree_fingerprints()
    sizes = {size for size, _ in fingerprints}
    leaked, keys, tests = [], [], []
    files = 0
    for archive in engine.export():
        for member in archive:
            name = member.name.lstrip("./")
            if not member.isfile():
                if member.isdir() and re.search(r"site-packages/tests/?$|^src/?$", name):
                    tests.append(name)
                continue
            files += 1
            own = name.startswith(OWN_PATHS)
            if member.size not in sizes and not own:
                continue
            reader = archive.extractfile(member)
            content = reader.read() if reader is not None else b""
            found = fingerprints.get((len(content), hashlib.sha256(content).hexdigest()))
            if found:
                leaked.append(f"{name} (= {found})")
            if own and PRIVATE_KEY.search(content):
                keys.append(name)
            if own and name.startswith("var/lib/hedgekeeper/"):
                leaked.append(f"{name} (the state volume ships empty)")
    report.figures["files in image"] = str(files)
    report.check(
        "no test code in the image",
        not tests and not any("tests/" in x for x in leaked),
        ", ".join(tests + leaked)[:500],
    )
    report.check(
        "no work-tree file beyond the package and the demo config",
        not leaked,
        ", ".join(leaked)[:500],
    )
    report.check("no private key in the image's own paths", not keys, ", ".join(keys))
    env = [item for item in config.get("Env") or [] if SECRET_NAME.search(item.split("=")[0])]
    env = [item for item in env if item.split("=", 1)[1]]
    built_with = [line for line in history if SECRET_NAME.search(line)]
    report.check(
        "no secret-looking environment or build step",
        not env and not built_with,
        "; ".join(env + built_with)[:500],
    )


def wait_for(condition: Any, within: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def healthcheck_command(config: dict[str, Any]) -> list[str] | None:
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", test[1]]
    return list(test[1:])


def events(running: Running, event: str) -> list[dict[str, Any]]:
    """The JSON log records of ``event`` so far."""
    records = [json.loads(line) for line in running.lines() if is_json(line)]
    return [record for record in records if record.get("event") == event]


def first_decision(running: Running) -> dict[str, Any] | None:
    decisions = events(running, "plan.decided")
    return decisions[0] if decisions else None


def check_run(engine: Engine, config: dict[str, Any], work: Path, report: Report) -> None:
    """Run the entrypoint: a decision, healthy, clean stop, nothing written elsewhere."""
    state = work / "state"
    state.mkdir()
    uid, gid = (config.get("User") or "0:0").partition(":")[::2]
    if engine.name == "podman":
        os.chown(state, int(uid), int(gid or uid))
        state.chmod(0o700)
    healthcheck = healthcheck_command(config)
    report.check(
        "HEALTHCHECK is in the image",
        healthcheck is not None,
        json.dumps((config.get("Healthcheck") or {}).get("Test")),
    )
    before = engine.diff() if engine.name == "podman" else []
    running = engine.start(config, state, work / "stderr.log")
    try:
        decided = (
            wait_for(
                lambda: first_decision(running) is not None or not alive(engine, running),
                FIRST_DECISION_WITHIN,
            )
            and first_decision(running) is not None
        )
        elapsed = time.monotonic() - running.started
        report.check(
            f"first decision logged as JSON within {FIRST_DECISION_WITHIN:.0f} s",
            decided,
            f"{elapsed:.1f} s" if decided else tail(running),
        )
        if decided:
            report.figures["first decision after"] = f"{elapsed:.1f} s"
        if healthcheck is not None:
            healthy = wait_for(lambda: engine.exec(running, config, healthcheck) == 0, 20, 1.0)
            report.check(
                "HEALTHCHECK exits 0 on the running daemon", healthy, " ".join(healthcheck)
            )
        if engine.name == "podman":
            journal = state / "journal.db"
            owner = journal.stat().st_uid if journal.exists() else None
            report.check(
                "the journal is in the state volume, owned by the image's user",
                owner == int(uid),
                f"{journal} owned by {owner}",
            )
        # A paper fill, so that a restart has a position to find in the journal.
        wait_for(lambda: events(running, "order.filled"), 15)
    finally:
        stop_started = time.monotonic()
        code = engine.stop(running, STOP_WITHIN)
        stopped_in = time.monotonic() - stop_started
    report.figures["stopped after SIGTERM in"] = f"{stopped_in:.1f} s"
    report.check(
        f"SIGTERM: exit 0 within {STOP_WITHIN:.0f} s",
        code == 0,
        f"exit {code} after {stopped_in:.1f} s" + ("" if code == 0 else tail(running)),
    )
    lines = running.lines()
    not_json = [line for line in lines if not is_json(line)]
    report.check("every log line is JSON", bool(lines) and not not_json, "; ".join(not_json)[:500])
    check_restart(engine, config, state, work, running, report)
    written = [change for change in engine.diff() if change not in before]
    report.check("nothing written outside the state volume", not written, ", ".join(written)[:500])


def check_restart(
    engine: Engine,
    config: dict[str, Any],
    state: Path,
    work: Path,
    previous: Running,
    report: Report,
) -> None:
    """Start again on the same state volume: the paper hedge comes back from the journal."""
    filled = {record.get("group") for record in events(previous, "order.filled")}
    running = engine.start(config, state, work / "restart.log")
    try:
        wait_for(
            lambda: (
                filled <= {r.get("group") for r in events(running, "plan.decided")}
                or not alive(engine, running)
            ),
            FIRST_DECISION_WITHIN,
        )
    finally:
        code = engine.stop(running, STOP_WITHIN)
    hedges: dict[Any, Any] = {}
    for record in events(running, "plan.decided"):  # each group's first decision only:
        hedges.setdefault(record.get("group"), record.get("hedge_contracts"))  # later ones
        # would see the new run's own fills even if the journal had been lost
    kept = {group: hedges.get(group) for group in filled}
    report.check(
        "a restart on the state volume finds the paper hedge in the journal, stops with 0",
        bool(filled) and all(value not in (None, "0") for value in kept.values()) and code == 0,
        f"filled before: {sorted(map(str, filled))}, hedge after restart: {kept}, exit {code}",
    )


def check_unwritable_state(
    engine: Engine, config: dict[str, Any], work: Path, report: Report
) -> None:
    """A state volume the image's user cannot write: one line, exit 2, no traceback."""
    state = work / "unwritable"
    state.mkdir()
    state.chmod(0o755)  # owned by us (root), so uid 10001 cannot create the journal
    running = engine.start(config, state, work / "unwritable.log", writable=False)
    exited = wait_for(lambda: not alive(engine, running), 30)
    code = engine.stop(running, STOP_WITHIN)
    lines = running.lines()
    records = [
        json.loads(line) if is_json(line) else {"level": "?", "line": line} for line in lines
    ]
    errors = [record for record in records if record.get("level") != "info"]
    clean = len(errors) == 1 and "journal" in str(errors[0].get("error"))
    report.check(
        "unwritable state volume: one-line error and exit 2",
        exited and code == 2 and clean,
        f"exit {code}: " + " | ".join(map(json.dumps, errors))[:600],
    )


def alive(engine: Engine, running: Running) -> bool:
    if engine.name == "podman":
        return bool(running.handle.poll() is None)
    container, _ = running.handle
    state = json.loads(run(["docker", "inspect", container]).stdout)[0]["State"]
    return bool(state["Running"])


def is_json(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def tail(running: Running) -> str:
    return " | ".join(running.lines()[-5:])[-1500:]


def size_mb(inspected: dict[str, Any]) -> str:
    size = inspected.get("Size") or inspected.get("VirtualSize") or 0
    return f"{size / 1e6:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=("podman", "docker"), default="podman")
    parser.add_argument("--tag", default=DEFAULT_TAG)
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="where the stand-in base is kept between runs (podman)",
    )
    args = parser.parse_args(argv)
    engine: Engine = Podman() if args.engine == "podman" else Docker()
    if args.engine == "podman" and os.geteuid() != 0:
        raise SystemExit("image: --engine podman needs root (chroot, namespaces, mounts)")
    report = Report()
    started = time.monotonic()
    engine.prepare_base(args.cache, report)
    say(f"building {args.tag} with {engine.name} from {REPO}")
    build_started = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        image = engine.build(args.tag, Path(scratch) / "iid")
    report.figures["build"] = f"{time.monotonic() - build_started:.0f} s"
    # By id from here on: another build may move the tag meanwhile.
    inspected = engine.inspect(image)
    config = dict(inspected.get("Config") or {})
    # podman reports the HEALTHCHECK beside Config, docker inside it.
    config["Healthcheck"] = config.get("Healthcheck") or inspected.get("Healthcheck")
    report.figures["image size"] = size_mb(inspected)
    base = subprocess.run([engine.name, "image", "inspect", BASE_IMAGE], capture_output=True)
    if base.returncode == 0:
        report.figures["image size"] += f" (the base: {size_mb(json.loads(base.stdout)[0])})"
    try:
        engine.create(image)
        check_contents(engine, config, engine.history(image), report)
        with tempfile.TemporaryDirectory(prefix="hedgekeeper-image-") as work:
            Path(work).chmod(0o755)
            check_run(engine, config, Path(work), report)
            check_unwritable_state(engine, config, Path(work), report)
    finally:
        engine.cleanup()
    report.figures["total"] = f"{time.monotonic() - started:.0f} s"
    report.print()
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
