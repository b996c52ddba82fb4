"""Delivery commands of the ``arena`` CLI: the Kubeflow pipeline, the KServe model server, the rollout.

``arena pipeline compile | run-local | submit``, ``arena serve-model`` and ``arena rollout`` are
added by :func:`register`, which ``content_arena.cli`` calls. Kubeflow, KServe and Kubernetes are
imported inside the commands that need them, so the rest of the CLI starts without them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

PIPELINE_FILE = Path("pipelines") / "adversarial_loop.py"
PIPELINE_PACKAGE = Path("pipelines") / "adversarial_loop.yaml"

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="arena.yaml (default: $ARENA_CONFIG or ./arena.yaml)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def register(app: typer.Typer, pipeline_app: typer.Typer) -> None:
    """Add the delivery commands to the ``arena`` app and its ``pipeline`` group."""
    from content_arena import cli

    pipeline_app.command("compile")(cli.cli_command(pipeline_compile))
    pipeline_app.command("run-local")(cli.cli_command(pipeline_run_local))
    pipeline_app.command("submit")(cli.cli_command(pipeline_submit))
    app.command("serve-model")(cli.cli_command(serve_model))
    app.command("rollout")(cli.cli_command(rollout))


# -- helpers --------------------------------------------------------------------------------------


def _repo_root() -> Path:
    """The checkout holding pipelines/ and components/: the current directory, else the source tree
    this package was installed from (editable installs)."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (candidate / PIPELINE_FILE).is_file() and (candidate / "components").is_dir():
            return candidate
    raise FileNotFoundError(
        f"{PIPELINE_FILE} not found: run this from a Content Arena checkout (pipelines/ and components/ are not "
        "part of the installed package)"
    )


def load_pipeline_module(root: Path | None = None) -> ModuleType:
    """``pipelines/adversarial_loop.py`` of the checkout, imported with the checkout on ``sys.path``."""
    root = root or _repo_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    name = "pipelines.adversarial_loop"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, root / PIPELINE_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _cli() -> Any:
    from content_arena import cli

    return cli


# -- arena pipeline ... ---------------------------------------------------------------------------


def pipeline_compile(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the pipeline package.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Compile the Kubeflow pipeline (pipelines/adversarial_loop.py) to its YAML package."""
    root = _repo_root()
    target = out or root / PIPELINE_PACKAGE
    module = load_pipeline_module(root)
    module.compile_pipeline(target)
    _cli().stderr.print(f"compiled {module.PIPELINE_NAME} → {target}", highlight=False)
    if json_out:
        _cli()._emit_json({"package": str(target), "pipeline": module.PIPELINE_NAME})


def pipeline_run_local(
    config: ConfigOpt = None,
    rollout_dry_run: Annotated[bool, typer.Option("--rollout-dry-run/--rollout", help="Only print the rollout patch (default), or roll out to the cluster of your kubeconfig.")] = True,
    pipeline_root: Annotated[Path | None, typer.Option(help="Where step outputs go (default: <home>/kfp-local).")] = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the Kubeflow pipeline on this machine, each step a subprocess (kfp.local, no cluster)."""
    import kfp.local

    from content_arena.model_registry import CHAMPION, ModelRegistry

    cli = _cli()
    cfg = cli._setup(config, verbose)
    home = cfg.home_path.resolve()
    root = pipeline_root or home / "kfp-local"
    module = load_pipeline_module()
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    config_arg = str(Path(config).resolve()) if config else ""
    # Steps run in other processes (and other working directories): pin every relative path here.
    overrides = module.local_overrides(home)
    task = module.adversarial_loop(config=config_arg, overrides=overrides, rollout_dry_run=rollout_dry_run)
    decision = task.output if hasattr(task, "output") else None
    champion = ModelRegistry.from_config(cfg).version_for(CHAMPION)
    cli.stderr.print(f"quality gate: {decision}; champion is version {champion}; step outputs under {root}", highlight=False)
    if json_out:
        cli._emit_json({"gate": decision, "champion_version": champion, "pipeline_root": str(root)})


def pipeline_submit(
    host: Annotated[str, typer.Option(help="Kubeflow Pipelines API endpoint, e.g. http://localhost:8080.")],
    experiment: Annotated[str, typer.Option(help="Experiment to file the run under.")] = "content-arena",
    package: Annotated[Path | None, typer.Option(help="Compiled pipeline (default: pipelines/adversarial_loop.yaml).")] = None,
    run_name: Annotated[str | None, typer.Option(help="Name of the run.")] = None,
    namespace: Annotated[str | None, typer.Option(help="Kubeflow profile namespace (multi-user installs).")] = None,
    service_account: Annotated[str | None, typer.Option(help="ServiceAccount the steps run as (it patches the InferenceService).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Pipeline parameter NAME=VALUE (repeatable).")] = None,
    json_out: JsonOpt = False,
    cycles: Annotated[int, typer.Option(min=1, max=100, help="Cycles: one run each, the registry as the state "
                                                            "(see docs/coevolution.md).")] = 1,
    every: Annotated[int | None, typer.Option(min=60, help="With --cycles: a recurring run every N seconds "
                                                          "instead of sequential runs.")] = None,
) -> None:
    """Submit the compiled pipeline to a Kubeflow Pipelines server."""
    import kfp

    target = package or _repo_root() / PIPELINE_PACKAGE
    if not target.is_file():
        raise FileNotFoundError(f"no compiled pipeline at {target}: run `arena pipeline compile` first")
    arguments: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param takes NAME=VALUE, got {item!r}")
        arguments[key] = value
    client = kfp.Client(host=host, **({"namespace": namespace} if namespace else {}))
    if cycles > 1 or every is not None:
        from content_arena.delivery.cycles import submit_cycles

        chained = submit_cycles(client, target, cycles=cycles, every_s=every, experiment=experiment, run_name=run_name,
                                namespace=namespace, service_account=service_account, arguments=arguments)
        _cli().stderr.print(f"cycles: {chained}", highlight=False)
        if json_out:
            _cli()._emit_json(chained)
        return
    run = client.create_run_from_pipeline_package(
        str(target), arguments=arguments, run_name=run_name, experiment_name=experiment,
        namespace=namespace, service_account=service_account,
    )
    url = f"{host.rstrip('/')}/#/runs/details/{run.run_id}"
    _cli().stderr.print(f"submitted run {run.run_id}: {url}", highlight=False)
    if json_out:
        _cli()._emit_json({"run_id": run.run_id, "url": url, "experiment": experiment})


# -- arena serve-model ----------------------------------------------------------------------------


def serve_model(
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 inside a pod.")] = "127.0.0.1",
    http_port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port (v1 and v2 REST).")] = 8080,
    model_name: Annotated[str, typer.Option(help="Name in /v1/models/<name> and /v2/models/<name>.")] = "content-filter",
    model_dir: Annotated[Path | None, typer.Option(help="Defender directory (KServe puts STORAGE_URI in /mnt/models).")] = None,
    model_uri: Annotated[str | None, typer.Option(help="Or an MLflow model URI, e.g. models:/content-filter@champion.")] = None,
    config: ConfigOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Serve the defender with KServe's model server (Open Inference Protocol v1 and v2)."""
    if (model_dir is None) == (model_uri is None):
        raise ValueError("give exactly one of --model-dir and --model-uri")
    cfg = _cli()._setup(config, verbose)
    from content_arena.serving import DefenderModel, serve

    model = DefenderModel(
        model_name, model_dir=model_dir, model_uri=model_uri, config=cfg,
        max_batch_size=cfg.api.max_batch_size, max_text_length=cfg.api.max_text_length,
    )
    model.load()
    _cli().stderr.print(f"serving {model_name} from {model.defender.model_dir} on http://{host}:{http_port}", highlight=False)
    serve(model, host=host, http_port=http_port)


# -- arena rollout --------------------------------------------------------------------------------


def rollout(
    version: Annotated[int, typer.Option(min=1, help="Registered model version to roll out.")],
    canary_percent: Annotated[int | None, typer.Option(min=1, max=99, help="Canary share (default: serving.canary_traffic_percent).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the patch; contact nothing.")] = False,
    previous_version: Annotated[int | None, typer.Option(help="Version to restore as champion on rollback (default: read from the served STORAGE_URI).")] = None,
    pvc_root: Annotated[Path | None, typer.Option(help="Where PVCs are mounted, for pvc:// storage (<root>/<claim>).")] = None,
    publish: Annotated[bool, typer.Option(help="Copy the version to its storage URI first.")] = True,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Canary-roll out a version to the defender InferenceService; promote or roll back on live metrics."""
    from content_arena import stages
    from content_arena.rollout import InferenceServiceShapeError, RolloutError

    cli = _cli()
    cfg = cli._setup(config, verbose)
    try:
        result = stages.rollout(
            str(config) if config else None, None, version, previous_version=previous_version,
            canary_percent=canary_percent, dry_run=dry_run, publish=publish, pvc_root=pvc_root,
        )
    except (RolloutError, InferenceServiceShapeError, RuntimeError) as exc:
        cli.stderr.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if dry_run:
        cli.stderr.print(
            f"would patch {cfg.serving.namespace}/{cfg.serving.inference_service} to {result['storage_uri']} "
            f"at {result['canary_traffic_percent']}%:", highlight=False,
        )
        cli.stdout.print_json(data=result["patch"])
    else:
        cli.stderr.print(f"[bold]{result['outcome']}[/] v{version} ({result['storage_uri']})", highlight=False)
        for reason in result["reasons"]:
            cli.stderr.print(f"  • {reason}", highlight=False)
    if json_out:
        cli._emit_json(result)
    if result["outcome"] == "rolled_back":
        raise typer.Exit(1)
