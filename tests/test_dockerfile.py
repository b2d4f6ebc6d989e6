"""The Dockerfile, checked without a Docker engine: its stages, what it installs, the
user it runs as, its HEALTHCHECK command run for real against a server started with
``serve --port``, and its web stage's commands run on the build context, the page they
build served from where the runtime stage copies it."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from tests.gateway.test_cli import clean_env, free_port, serving

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()


def _instruction(name: str) -> list[str]:
    """Every ``NAME ...`` instruction's arguments, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [m.group(1) for m in re.finditer(rf"^{name}\s+(.*)$", joined, re.M)]


def _runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _instruction("ENV"):
        for item in shlex.split(args):
            key, _, value = item.partition("=")
            env[key] = value
    return env


def _healthcheck_command() -> list[str]:
    (args,) = _instruction("HEALTHCHECK")
    command: list[str] = json.loads(args.split(" CMD ", 1)[1])
    return command


def test_no_syntax_directive_so_an_offline_build_needs_no_parser_image() -> None:
    assert "# syntax" not in DOCKERFILE


def test_the_image_installs_the_hash_pinned_lock_and_nothing_unpinned() -> None:
    runs = _instruction("RUN")
    assert any("--require-hashes -r requirements.lock" in run for run in runs)
    installs = [run for run in runs if "pip install" in run]
    assert all("--require-hashes" in run or "--no-deps" in run for run in installs), installs


@pytest.mark.anyio
async def test_the_health_check_follows_the_port_actually_served(tmp_path: Path) -> None:
    command = _healthcheck_command()
    assert command[0] == "chat-gateway"
    # The installed console script, as in the image.
    command[0] = str(Path(sys.executable).with_name("chat-gateway"))
    env = {k: v for k, v in _runtime_env().items() if k.startswith("GATEWAY_")}
    assert env["GATEWAY_PORT"] == "8000"  # the image's default, which --port overrides
    env["GATEWAY_ADDRESS_FILE"] = str(tmp_path / "address")
    env["GATEWAY_HOST"] = "127.0.0.1"  # tests listen on loopback only
    port = free_port()
    assert port != 8000

    async def check(**extra: str) -> subprocess.CompletedProcess[str]:
        return await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                command, env=clean_env(**env, **extra), capture_output=True, text=True, timeout=30
            )
        )

    before = await check()
    assert before.returncode == 1  # nothing listening yet
    assert "not listening" in before.stderr
    async with serving(port, **env) as (process, _):
        healthy = await check()
        assert healthy.returncode == 0, healthy.stderr
        # A proxy in the environment (for provider traffic) is not asked about loopback.
        nowhere = f"http://127.0.0.1:{free_port()}"
        proxied = await check(HTTP_PROXY=nowhere, http_proxy=nowhere)
        assert proxied.returncode == 0, proxied.stderr
        assert (tmp_path / "address").read_text().strip() == f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            assert await process.wait() == 0
    after = await check()
    assert after.returncode == 1
    assert not (tmp_path / "address").exists()


# --- the stages, read as Docker would ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), in order

    def args(self, name: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == name]


def _stages() -> list[Stage]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, args = line.strip().partition(" ")
        if instruction == "FROM":
            image, _, name = args.partition(" AS ")
            stages.append(Stage(image.strip(), name.strip(), []))
        else:
            stages[-1].instructions.append((instruction, args.strip()))
    return stages


def _stage(name: str) -> Stage:
    (stage,) = [s for s in _stages() if s.name == name]
    return stage


def _ignored(relative: str) -> bool:
    """Whether .dockerignore keeps ``relative`` (or a folder above it) out of the context."""
    patterns = [p.strip() for p in DOCKERIGNORE.splitlines() if p.strip() and p[0] != "#"]
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/")
                and fnmatch.fnmatchcase(prefix.split("/")[-1], pattern[3:])
            ):
                return True
    return False


def test_three_stages_and_the_runtime_is_the_last() -> None:
    assert [(s.name, s.image) for s in _stages()] == [
        ("web", "node:20-slim"),
        ("build", "python:3.11-slim"),
        ("runtime", "python:3.11-slim"),
    ]
    runtime = _stage("runtime")
    copied = [args for args in runtime.args("COPY")]
    assert all(args.startswith("--from=") for args in copied), "the runtime copies stages only"
    assert {args.split()[0] for args in copied} == {"--from=build", "--from=web"}


def test_the_runtime_runs_as_an_unprivileged_user_it_creates() -> None:
    runtime = _stage("runtime")
    (user,) = runtime.args("USER")
    assert user not in ("root", "0")
    assert any(f"useradd --system --gid {user}" in run for run in runtime.args("RUN"))
    # Nothing runs as root after the switch.
    after = runtime.instructions[runtime.instructions.index(("USER", user)) :]
    assert not [args for instruction, args in after if instruction == "RUN"]


def test_every_file_the_stages_copy_is_in_the_build_context() -> None:
    for stage in _stages():
        for args in stage.args("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not _ignored(source), f"{source} is excluded by .dockerignore"
    # The web build's type check reads what web-demo/tsconfig.json includes.
    tsconfig = json.loads((ROOT / "web-demo" / "tsconfig.json").read_text())
    for included in tsconfig["include"]:
        assert (ROOT / "web-demo" / included).exists()
        assert not _ignored(f"web-demo/{included}"), included


def test_the_web_stage_builds_like_make_web_build() -> None:
    web = _stage("web")
    runs = web.args("RUN")
    assert [run.split()[:2] for run in runs] == [["npm", "ci"], ["npm", "run"]]
    assert runs[-1] == "npm run build"
    makefile = (ROOT / "Makefile").read_text()
    assert "npm ci" in makefile and "npm run --silent build" in makefile
    (workdir,) = web.args("WORKDIR")
    assert workdir.endswith("/web-demo")


def _context(tmp_path: Path) -> Path:
    """The build context's web-demo/ (all the web stage copies): the checkout's, less
    what .dockerignore names (node_modules, a local dist)."""
    context = tmp_path / "context"

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(ROOT).as_posix()
        return {name for name in names if _ignored(f"{relative}/{name}")}

    shutil.copytree(ROOT / "web-demo", context / "web-demo", ignore=ignore)
    return context


def _run_stage(stage: Stage, context: Path, root: Path) -> None:
    """Run ``stage``'s WORKDIR/COPY/RUN in order, the image's filesystem under ``root``."""
    workdir = root
    for instruction, args in stage.instructions:
        if instruction == "WORKDIR":
            workdir = root / args.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY":
            *sources, destination = args.split()
            target = (
                workdir / destination
                if not destination.startswith("/")
                else root / destination.lstrip("/")
            )
            for source in sources:
                copied = context / source
                if copied.is_dir():
                    shutil.copytree(copied, target, dirs_exist_ok=True)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(copied, target / copied.name)
        elif instruction == "RUN":
            result = subprocess.run(
                ["sh", "-c", args], cwd=workdir, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        else:
            raise AssertionError(f"the test does not know {instruction} in stage {stage.name}")


@pytest.mark.anyio
@pytest.mark.timeout(600)
async def test_the_web_stage_builds_the_page_the_runtime_serves(tmp_path: Path) -> None:
    """The web stage's own commands, run on the build context (not the checkout), and
    the runtime's copy of their output served by ``serve`` with the image's setting."""
    if shutil.which("npm") is None:
        if os.environ.get("WEB_DEMO_REQUIRED") or os.environ.get("CI"):
            pytest.fail("npm is needed to build the web demo")
        pytest.skip("npm not found: the web stage is not built")
    image = tmp_path / "image"
    _run_stage(_stage("web"), _context(tmp_path), image / "web")

    (copy,) = [args for args in _stage("runtime").args("COPY") if args.startswith("--from=web")]
    _, source, destination = copy.split()
    assert destination == _runtime_env()["GATEWAY_WEB_DEMO_DIR"]
    served = image / "runtime" / destination.lstrip("/")
    shutil.copytree(image / "web" / source.lstrip("/"), served)
    index = (served / "index.html").read_text()
    (asset,) = re.findall(r'src="\./(assets/[^"]+\.js)"', index)

    port = free_port()
    env = {"GATEWAY_WEB_DEMO_DIR": str(served), "GATEWAY_HOST": "127.0.0.1"}
    async with (
        serving(port, **env),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        page = await client.get("/")
        script = await client.get(f"/{asset}")
    assert page.status_code == 200
    assert page.text == index
    assert script.status_code == 200
    assert script.content == (served / asset).read_bytes()
