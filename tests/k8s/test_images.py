"""Dockerfiles, .dockerignore and skaffold.yaml, checked offline (no Docker engine here)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from .helpers import CHART, IMAGES_DIR, MANIFESTS, REPO
from .kustomize_render import split_image

IMAGES = {
    "content-arena-api": "Dockerfile.api",
    "content-arena-defender": "Dockerfile.defender",
    "content-arena-trainer": "Dockerfile.trainer",
    "content-arena-components": "Dockerfile.components",
}


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """A line parser: joins continuations, drops comments, resolves ARG defaults in FROM."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, f"{path}: dangling line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            global_args[name] = default.strip('"')
        elif keyword == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--platform=")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args[m[1] or m[2]], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        else:
            assert stages, f"{path}: {keyword} before the first FROM"
            stages[-1].instructions.append((keyword, rest))
    return stages


@pytest.mark.parametrize("dockerfile", sorted(IMAGES.values()))
def test_dockerfile_bases_are_pinned_and_final_stage_is_non_root(dockerfile):
    stages = parse_dockerfile(IMAGES_DIR / dockerfile)
    assert len(stages) >= 2, "multi-stage build expected"
    names = {s.name for s in stages if s.name}
    for stage in stages:
        if stage.base in names:
            continue  # FROM an earlier stage
        _, tag, digest = split_image(stage.base)
        assert tag or digest, f"{dockerfile}: unpinned base {stage.base}"
        assert tag != "latest", f"{dockerfile}: {stage.base}"
        assert not re.fullmatch(r"\d+(\.\d+)?", tag or ""), (
            f"{dockerfile}: {stage.base} pins only a major version"
        )
    final = stages[-1]
    users = [rest for keyword, rest in final.instructions if keyword == "USER"]
    assert users, f"{dockerfile}: the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, dockerfile
    assert user == "10001"
    assert any(k == "COPY" and rest.startswith("--from=") for k, rest in final.instructions), (
        f"{dockerfile}: the final stage should copy the built environment from a build stage"
    )
    assert any(k in ("CMD", "ENTRYPOINT") for k, _ in final.instructions)
    healthchecks = [rest for k, rest in final.instructions if k == "HEALTHCHECK"]
    assert len(healthchecks) == 1, (
        f"{dockerfile}: declare a HEALTHCHECK (or HEALTHCHECK NONE for batch images)"
    )


@pytest.mark.parametrize(
    ("dockerfile", "port", "path"),
    [("Dockerfile.api", 8000, "/health"), ("Dockerfile.defender", 8080, "/v2/health/live")],
)
def test_services_have_a_real_healthcheck(dockerfile, port, path):
    final = parse_dockerfile(IMAGES_DIR / dockerfile)[-1]
    (check,) = [rest for k, rest in final.instructions if k == "HEALTHCHECK"]
    assert f"127.0.0.1:{port}{path}" in check
    assert ("EXPOSE", str(port)) in final.instructions


def test_cpu_images_install_cpu_torch_first():
    for dockerfile in ("Dockerfile.api", "Dockerfile.defender", "Dockerfile.components"):
        runs = [rest for k, rest in parse_dockerfile(IMAGES_DIR / dockerfile)[0].instructions if k == "RUN"]
        torch = next(i for i, r in enumerate(runs) if "torch==" in r)
        package = next(i for i, r in enumerate(runs) if 'pip install ".[' in r)
        assert torch < package, dockerfile
        assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    args = dict(
        rest.split("=", 1)
        for k, rest in parse_dockerfile(IMAGES_DIR / "Dockerfile.api")[0].instructions
        if k == "ARG" and "=" in rest
    )
    assert args["TORCH_VERSION"] == "2.13.0"


def test_trainer_is_cuda_with_bitsandbytes():
    stages = parse_dockerfile(IMAGES_DIR / "Dockerfile.trainer")
    bases = {s.base for s in stages}
    cuda = [b for b in bases if b.startswith("nvidia/cuda:")]
    assert cuda and all(re.fullmatch(r"nvidia/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu22\.04", b) for b in cuda)
    runs = " ".join(rest for s in stages for k, rest in s.instructions if k == "RUN")
    assert "download.pytorch.org/whl/${TORCH_CUDA}" in runs
    assert ".[gpu" in runs


def test_project_files_copied_exist_and_are_not_ignored():
    ignored = _dockerignore()
    for dockerfile in IMAGES.values():
        for stage in parse_dockerfile(IMAGES_DIR / dockerfile):
            for keyword, rest in stage.instructions:
                if keyword != "COPY" or rest.startswith("--from="):
                    continue
                *sources, _ = rest.split()
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: missing"
                    assert not _is_ignored(source, ignored), f"{dockerfile}: COPY {source} is .dockerignored"


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _is_ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        pattern = pattern.removeprefix("**/")
        parts = Path(path).parts
        hit = any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts)))
        hit = hit or any(fnmatch.fnmatch(part, pattern) for part in parts)
        if hit:
            ignored = not negate
    return ignored


def test_dockerignore_excludes_local_state():
    patterns = _dockerignore()
    for path in (".venv", ".git", ".arena", "mlruns", "bench/results", ".pytest_cache", "src/x/__pycache__"):
        assert _is_ignored(path, patterns), path
    for path in ("pyproject.toml", "README.md", "src/content_arena/config.py"):
        assert not _is_ignored(path, patterns), path


# ----------------------------------------------------------------------------- skaffold


def _skaffold() -> dict:
    return yaml.safe_load((REPO / "skaffold.yaml").read_text())


def test_skaffold_builds_the_four_images():
    config = _skaffold()
    assert re.fullmatch(r"skaffold/v4beta\d+", config["apiVersion"]) and config["kind"] == "Config"
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == {f"ghcr.io/content-arena/{name}" for name in IMAGES}
    for image, artifact in artifacts.items():
        name = image.rsplit("/", 1)[1]
        assert artifact["context"] == "."
        dockerfile = artifact["docker"]["dockerfile"]
        assert dockerfile == f"images/{IMAGES[name]}"
        assert (REPO / dockerfile).is_file()


def _template_key(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", image)


def test_skaffold_deploys_the_chart_with_the_built_images():
    config = _skaffold()
    (release,) = config["deploy"]["helm"]["releases"]
    assert (REPO / release["chartPath"]).resolve() == CHART.resolve()
    assert release["namespace"] == "content-arena"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    built = {a["image"] for a in config["build"]["artifacts"]}
    for key, template in release["setValueTemplates"].items():
        node = values
        for part in key.split("."):
            assert part in node, f"setValueTemplates key {key} is not in values.yaml"
            node = node[part]
        (var,) = re.findall(r"\{\{\.(IMAGE_(?:REPO|TAG)_\w+)\}\}", template)
        assert any(var.endswith(_template_key(image)) for image in built), var
    for component in ("api", "defender", "trainer"):
        assert f"{component}.image.repository" in release["setValueTemplates"]
        assert f"{component}.image.tag" in release["setValueTemplates"]


def test_skaffold_profiles():
    profiles = {p["name"]: p for p in _skaffold()["profiles"]}
    assert {"dev", "gpu", "kustomize"} <= set(profiles)
    for name in ("dev", "gpu"):
        (patch,) = profiles[name]["patches"]
        assert patch["path"] == "/deploy/helm/releases/0/valuesFiles"
        for values_file in patch["value"]:
            assert (REPO / values_file).is_file()
    assert [p.rsplit("/", 1)[1] for p in profiles["gpu"]["patches"][0]["value"]] == [
        "values-prod.yaml",
        "values-gpu.yaml",
    ]
    for name in ("kustomize", "kustomize-gpu"):
        profile = profiles[name]
        for path in profile["manifests"]["kustomize"]["paths"]:
            assert (REPO / path / "kustomization.yaml").is_file()
            assert (REPO / path).resolve().is_relative_to(MANIFESTS.resolve())
        ops = {(p["op"], p["path"]) for p in profile["patches"]}
        assert ops == {("remove", "/deploy/helm"), ("add", "/deploy/kubectl")}
