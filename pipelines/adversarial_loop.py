"""The adversarial loop as a Kubeflow pipeline.

champion → attack → evaluate(champion) → quality gate; when the gate FAILs: collect failures →
augment → train the challenger (GPU) → evaluate(challenger) → compare → promote; when promoted:
canary rollout to KServe. Every step is a component from ``components/`` running one function of
:mod:`content_arena.stages`; the library is the same one ``arena pipeline run`` calls in-process.

In a cluster the steps run in the namespace of the Content Arena deployment (``content-arena``; a
Kubeflow profile namespace): they read ``content-arena-config`` (mounted at /etc/arena), the
database password from the ``content-arena-db`` Secret, and reach PostgreSQL, Redis, MLflow and
Ollama by their Service names, as the API does. Compile with ``arena pipeline compile``; the
package ``pipelines/adversarial_loop.yaml`` is committed and must match a fresh compile.
"""

import json
import os
from pathlib import Path

from components import (
    attack,
    augment,
    champion,
    collect_failures,
    compare,
    evaluate,
    promote,
    quality_gate,
    rollout,
    train_challenger,
)
from kfp import compiler, dsl, kubernetes

PIPELINE_NAME = "content-arena-adversarial-loop"

CONFIG_MAP = "content-arena-config"
CONFIG_DIR = "/etc/arena"
CONFIG_FILE = f"{CONFIG_DIR}/arena.yaml"
DB_SECRET = "content-arena-db"
MODEL_CACHE_PVC = "model-cache"
MODEL_CACHE_DIR = "/var/cache/arena"
MODELS_PVC = "models"  # holds pvc://models/... model locations KServe serves from
PVC_ROOT = "/mnt/pvc"
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TAINT = "nvidia.com/gpu"

# Where the in-cluster services are, merged over the config file; $(DB_PASSWORD) comes from the
# Secret (filled in by the step, see content_arena.stages.load_stage_config). One line of YAML: the
# compiler copies parameter defaults into the package's header comment, where a line break would
# end the comment and break the YAML.
IN_CLUSTER_OVERRIDES = (
    "{storage: {url: 'postgresql+psycopg://arena:$(DB_PASSWORD)@postgres:5432/arena'}, "
    "queue: {url: 'redis://redis:6379/0'}, mlflow: {tracking_uri: 'http://mlflow:5000'}, "
    "llm: {host: 'http://ollama:11434'}}"
)

# (cpu request, cpu limit, memory request, memory limit) per step.
RESOURCES = {
    "light": ("250m", "1", "1Gi", "2Gi"),  # registry / store bookkeeping
    "model": ("1", "2", "2Gi", "4Gi"),  # loads a model, attacks / evaluates on CPU
    "train": ("2", "8", "12Gi", "24Gi"),
}


def _in_cluster(task: dsl.PipelineTask, size: str) -> dsl.PipelineTask:
    """Resources, config, secret and labels every step gets (the Kubernetes parts are ignored by kfp.local)."""
    cpu, cpu_limit, memory, memory_limit = RESOURCES[size]
    task.set_cpu_request(cpu).set_cpu_limit(cpu_limit).set_memory_request(memory).set_memory_limit(memory_limit)
    # Steps read and write shared state (registry, store): never reuse a cached result.
    task.set_caching_options(False)
    kubernetes.use_config_map_as_volume(task, config_map_name=CONFIG_MAP, mount_path=CONFIG_DIR)
    kubernetes.use_secret_as_env(task, secret_name=DB_SECRET, secret_key_to_env={"password": "DB_PASSWORD"})
    # The namespace's NetworkPolicies admit pods with this label to PostgreSQL, Redis, MLflow, Ollama.
    kubernetes.add_pod_label(task, label_key="app.kubernetes.io/component", label_value="pipeline")
    kubernetes.add_pod_label(task, label_key="app.kubernetes.io/part-of", label_value="content-arena")
    return task


@dsl.pipeline(name=PIPELINE_NAME, description="Attack the champion, gate it, retrain, compare, promote, roll out.")
def adversarial_loop(
    config: str = CONFIG_FILE,
    overrides: str = IN_CLUSTER_OVERRIDES,
    rollout_dry_run: bool = False,
    pvc_root: str = PVC_ROOT,
) -> str:
    """One run of the loop.

    Args:
        config: Path of the arena.yaml in each step's container (the mounted ConfigMap), or its YAML text.
        overrides: YAML merged over the config (default: the in-cluster service addresses).
        rollout_dry_run: Compute the rollout patch without touching the InferenceService.
        pvc_root: Where the rollout step mounts the model storage claim.

    Returns:
        The quality gate's decision.
    """
    champion_task = _in_cluster(champion(config=config, overrides=overrides), "model").set_display_name("champion")
    attack_task = _in_cluster(
        attack(config=config, overrides=overrides, champion_version=champion_task.outputs["version"]), "model"
    ).set_display_name("attack")
    evaluate_champion = _in_cluster(
        evaluate(config=config, overrides=overrides, model=champion_task.outputs["model"], role="champion"), "model"
    ).set_display_name("evaluate champion")
    gate_task = _in_cluster(
        quality_gate(config=config, overrides=overrides, report=evaluate_champion.outputs["report"]), "light"
    ).set_display_name("quality gate")

    # Conditions use each step's single return value ("Output"), which kfp.local can resolve too.
    with dsl.If(gate_task.outputs["Output"] == "FAIL", name="retrain"):
        collect_task = _in_cluster(
            collect_failures(config=config, overrides=overrides, battle=attack_task.outputs["battle"]), "light"
        ).set_display_name("collect failures")
        augment_task = _in_cluster(
            augment(config=config, overrides=overrides, failures=collect_task.outputs["failures"],
                    battle=attack_task.outputs["battle"]),
            "model",
        ).set_display_name("augment")
        train_task = _in_cluster(
            train_challenger(config=config, overrides=overrides, champion_version=champion_task.outputs["version"],
                             battle_id=attack_task.outputs["battle_id"], examples=augment_task.outputs["examples"]),
            "train",
        ).set_display_name("train challenger")
        train_task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        kubernetes.add_node_selector(train_task, label_key=GPU_NODE_LABEL[0], label_value=GPU_NODE_LABEL[1])
        kubernetes.add_toleration(train_task, key=GPU_TAINT, operator="Exists", effect="NoSchedule")
        kubernetes.mount_pvc(train_task, pvc_name=MODEL_CACHE_PVC, mount_path=MODEL_CACHE_DIR)
        train_task.set_env_variable("HF_HOME", f"{MODEL_CACHE_DIR}/huggingface")
        evaluate_challenger = _in_cluster(
            evaluate(config=config, overrides=overrides, model=train_task.outputs["challenger"], role="challenger"),
            "model",
        ).set_display_name("evaluate challenger")
        compare_task = _in_cluster(
            compare(config=config, overrides=overrides, champion_report=evaluate_champion.outputs["report"],
                    challenger_report=evaluate_challenger.outputs["report"]),
            "light",
        ).set_display_name("compare")
        promote_task = _in_cluster(
            promote(config=config, overrides=overrides, comparison=compare_task.outputs["comparison"]), "light"
        ).set_display_name("promote")

        with dsl.If(promote_task.outputs["Output"] == True, name="roll-out"):  # noqa: E712 (a KFP condition)
            rollout_task = _in_cluster(
                rollout(config=config, overrides=overrides, version=train_task.outputs["Output"],
                        previous_version=champion_task.outputs["version"], dry_run=rollout_dry_run, pvc_root=pvc_root),
                "light",
            ).set_display_name("canary rollout")
            kubernetes.mount_pvc(rollout_task, pvc_name=MODELS_PVC, mount_path=f"{PVC_ROOT}/{MODELS_PVC}")

    return gate_task.outputs["Output"]


def local_overrides(home: str | os.PathLike[str]) -> str:
    """Overrides for ``kfp.local`` runs: every step uses this machine's workspace at ``home``."""
    return json.dumps({"home": str(Path(home).resolve())})


def compile_pipeline(package_path: str | os.PathLike[str]) -> Path:
    """Compile to ``package_path``; the same source always gives the same bytes."""
    target = Path(package_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(adversarial_loop, package_path=str(target))
    return target


if __name__ == "__main__":
    compile_pipeline(Path(__file__).with_suffix(".yaml"))
