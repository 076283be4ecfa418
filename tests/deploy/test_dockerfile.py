"""deploy/Dockerfile's builder stage must be able to build the workspace.

No Docker daemon (nor buildah/podman) is needed: the test reads the builder stage of the
Dockerfile itself, copies exactly what its COPY lines copy (minus what .dockerignore keeps out
of the build context) into a scratch folder standing in for the image's WORKDIR, and runs its
`uv sync` RUN lines there in order, offline from the developers' warm uv cache. A workspace
member the Dockerfile forgets to copy (tools/creditctl was one) makes uv fail exactly as the
image build would ("Distribution not found at: file:///…").

What is replayed is the Dockerfile's own text: adding a COPY or changing a `uv sync` flag in the
Dockerfile changes what this test does, nothing is listed twice.
"""

import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
TIMEOUT_S = 600

# ENV the replay must change to run outside the image: the scratch venv instead of /app/.venv,
# this machine's Python 3.11 instead of the image's, the warm cache instead of none (we are
# offline), and no bytecode compilation (it costs CPU and proves nothing about the COPY set).
HOST_OVERRIDES = ("UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_NO_CACHE", "UV_COMPILE_BYTECODE",
                  "UV_LINK_MODE")


@dataclass
class BuilderStage:
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    # ("COPY", [sources..., dest]) or ("RUN", argv), in Dockerfile order, with the WORKDIR then.
    steps: list[tuple[str, list[str], str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per logical line: continuations joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        if logical:
            keyword, _, args = logical.partition(" ")
            result.append((keyword.upper(), args.strip()))
    return result


def builder_stage(text: str) -> BuilderStage:
    """The first stage (the builder), up to the next FROM."""
    stage = BuilderStage()
    froms = 0
    for keyword, args in instructions(text):
        if keyword == "FROM":
            froms += 1
            if froms > 1:
                break
        elif keyword == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                stage.env[key] = value
        elif keyword == "WORKDIR":
            stage.workdir = str(PurePosixPath(stage.workdir) / args)
        elif keyword == "COPY":
            parts = shlex.split(args)
            assert not any(p.startswith("--from") for p in parts), "builder copies from a stage"
            parts = [p for p in parts if not p.startswith("--")]
            stage.steps.append(("COPY", parts, stage.workdir))
        elif keyword == "RUN" and "uv sync" in args:
            argv = shlex.split(args)
            assert "&&" not in argv and ";" not in args, (
                f"the replay runs one uv command per RUN; split this one: RUN {args}")
            stage.steps.append(("RUN", argv, stage.workdir))
    return stage


def ignored_names() -> list[str]:
    """.dockerignore's `**/name` patterns: names kept out of the context at any depth."""
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line.startswith("**/"):
            patterns.append(line[3:])
    return patterns


def top_level_ignored() -> set[str]:
    lines = (ln.strip() for ln in DOCKERIGNORE.read_text().splitlines())
    return {ln for ln in lines if ln and not ln.startswith("#") and "/" not in ln}


def host_path(image_path: str, workdir: str, scratch: Path) -> Path:
    """Where an image path (absolute, or relative to WORKDIR) lands in the scratch folder."""
    path = PurePosixPath(workdir) / image_path
    return scratch.joinpath(*path.parts[1:])


def replay_copy(parts: list[str], workdir: str, scratch: Path) -> None:
    """Docker's COPY: a file into dest (a folder if dest ends in /), a folder's contents."""
    *sources, dest = parts
    dest_is_dir = dest.endswith("/") or len(sources) > 1
    target = host_path(dest, workdir, scratch)
    ignore = shutil.ignore_patterns(*ignored_names())
    for source in sources:
        matches = sorted(ROOT.glob(source.rstrip("/"))) if source not in (".", "./") else [ROOT]
        assert matches, f"COPY {source}: no such file in the build context"
        for match in matches:
            rel = match.relative_to(ROOT)
            assert not rel.parts or rel.parts[0] not in top_level_ignored(), (
                f"COPY {source}: {rel.parts[0]} is in .dockerignore")
            if match.is_dir():
                shutil.copytree(match, target, ignore=ignore, dirs_exist_ok=True)
            else:
                into = target / match.name if dest_is_dir else target
                into.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, into)


def replay_env(stage: BuilderStage, scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("UV_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(stage.env)
    for key in HOST_OVERRIDES:
        env.pop(key, None)
    project_env = stage.env.get("UV_PROJECT_ENVIRONMENT", "/app/.venv")
    env["UV_PROJECT_ENVIRONMENT"] = str(host_path(project_env, "/", scratch))
    # The interpreter behind this test's venv: a real 3.11, as the image's python3.11 is.
    env["UV_PYTHON"] = str(Path(sys.base_prefix) / "bin" / "python3.11")
    return env


def replay_run(argv: list[str], workdir: str, scratch: Path, env: dict[str, str]) -> None:
    assert argv[:2] == ["uv", "sync"], f"unexpected builder RUN: {argv}"
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (make run / make test install it)")
    cmd = [uv, *argv[1:], "--offline"]
    result = subprocess.run(cmd, cwd=host_path(".", workdir, scratch), env=env,
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if result.returncode != 0 and "network connectivity is disabled" in result.stderr.lower():
        # A cold cache, not a broken Dockerfile: `uv sync --frozen` in the repo warms it.
        pytest.skip(f"uv cache lacks a package for the offline replay:\n{result.stderr}")
    assert result.returncode == 0, (
        f"`{' '.join(argv)}` failed after the Dockerfile's COPY lines so far:\n{result.stderr}")


def workspace_distributions() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(root["project"]["dependencies"])


def test_builder_stage_is_understood() -> None:
    """Guards the parser: a silently empty replay would pass whatever the Dockerfile said."""
    stage = builder_stage(DOCKERFILE.read_text())
    runs = [argv for kind, argv, _ in stage.steps if kind == "RUN"]
    copies = [parts for kind, parts, _ in stage.steps if kind == "COPY"]
    assert len(runs) == 2, runs
    assert "--no-install-workspace" in runs[0] and "--no-install-workspace" not in runs[1]
    assert ["pyproject.toml", "uv.lock", "./"] in copies
    assert stage.workdir == "/app"


def test_parser_handles_continuations_and_comments() -> None:
    text = ("FROM x AS builder\nENV A=1 \\\n    B=two\nWORKDIR /app\n# note\n"
            "COPY a b ./\nRUN uv sync --frozen \\\n  --no-dev\nFROM y\nCOPY --from=builder c d\n")
    stage = builder_stage(text)
    assert stage.env == {"A": "1", "B": "two"}
    assert stage.steps == [("COPY", ["a", "b", "./"], "/app"),
                           ("RUN", ["uv", "sync", "--frozen", "--no-dev"], "/app")]


def test_dockerfile_builder_syncs_the_workspace(tmp_path: Path) -> None:
    stage = builder_stage(DOCKERFILE.read_text())
    env = replay_env(stage, tmp_path)
    for kind, args, workdir in stage.steps:
        if kind == "COPY":
            replay_copy(args, workdir, tmp_path)
        else:
            host_path(".", workdir, tmp_path).mkdir(parents=True, exist_ok=True)
            replay_run(args, workdir, tmp_path, env)

    # The runtime stage gets the venv alone: every workspace package must be installed in it
    # as a real wheel (not an editable pointing into the scratch source tree).
    python = Path(env["UV_PROJECT_ENVIRONMENT"]) / "bin" / "python"
    # Each distribution must be a real install (not editable) whose packages import.
    probe = ("import importlib, importlib.metadata as m, json, sys\n"
             "for name in sys.argv[1:]:\n"
             "    dist = m.distribution(name)\n"
             "    url = json.loads(dist.read_text('direct_url.json') or '{}')\n"
             "    assert not url.get('dir_info', {}).get('editable'), f'{name} is editable'\n"
             "    tops = {f.parts[0] for f in dist.files or [] if f.name == '__init__.py'\n"
             "            and len(f.parts) == 2}\n"
             "    assert tops, f'{name} installed no package'\n"
             "    for top in tops:\n"
             "        importlib.import_module(top)\n")
    result = subprocess.run([str(python), "-c", probe, *workspace_distributions()],
                            capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                            cwd=tmp_path.parent)
    assert result.returncode == 0, result.stderr
    assert (python.parent / "creditctl").exists(), "the creditctl console script is missing"


def test_copy_respects_dockerignore(tmp_path: Path) -> None:
    # A __pycache__ under a copied folder must not reach the scratch tree, as it would not
    # reach the image: otherwise the replay could pass on files the build never sees.
    names = ignored_names()
    assert "__pycache__" in names
    ignore = shutil.ignore_patterns(*names)
    assert ignore("x", ["__pycache__", "a.py", "b.pyc"]) == {"__pycache__", "b.pyc"}
