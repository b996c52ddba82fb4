"""A small offline renderer for the subset of kustomize that ``manifests/`` uses.

There is no kustomize binary on the development machines' package registries, so the tests render
the overlays with this module. It implements exactly these kustomization fields, in kustomize's
own order (resources and generators first, then patches, namespace, labels, replicas, images):

* ``resources``: YAML files (multi-document) and directories holding a kustomization;
* ``configMapGenerator``: ``files`` (``key=path`` or ``path``) and ``literals``, only with
  ``options.disableNameSuffixHash: true`` (no hash suffix, so no name-reference rewriting);
  ``options.labels`` and ``options.annotations``;
* ``patches``: a strategic-merge patch (a mapping, targeting the object of its own kind and
  name, built-in kinds only) or a JSON 6902 patch (a list of ``add``/``replace``/``remove``
  operations) with a ``target`` (group, version, kind, name, namespace);
* ``namespace``: sets ``metadata.namespace`` on namespaced objects; ``ServiceAccount`` subjects
  of (Cluster)RoleBindings that carry no namespace and name a ServiceAccount of this build get
  it too (as kustomize v5 does); other subjects are left alone;
* ``labels`` with ``includeSelectors: false`` (and no ``includeTemplates``): ``metadata.labels``;
* ``replicas``: ``spec.replicas`` of the Deployment/StatefulSet/ReplicaSet of that name;
* ``images``: ``newName`` / ``newTag`` / ``digest`` on every ``containers[]`` and
  ``initContainers[]`` image found anywhere in an object (kustomize's legacy image filter does
  the same, which is why the InferenceService's predictor container is rewritten too).

Anything else in a kustomization (``commonLabels``, ``namePrefix``, ``patchesStrategicMerge``,
``components``, ``$patch`` directives, strategic merges of lists whose merge strategy is not in
the table below, ...) raises :class:`UnsupportedFeature` instead of being half-implemented.
Where kubectl (which embeds kustomize) is installed, tests/k8s/test_kustomize.py renders every
overlay with both and requires identical objects.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "configMapGenerator",
    "patches",
    "namespace",
    "labels",
    "replicas",
    "images",
}

# Kinds without a namespace (the ones this project could plausibly meet).
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "ClusterServingRuntime",
    "ClusterStorageContainer",
}

# Strategic merge is applied only to built-in kinds, whose list merge strategies are known.
BUILTIN_API_GROUPS = {
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
}

# Lists merged element-wise by a key (the patchMergeKey of the Kubernetes API); a patch's new
# elements come first, then the original elements the patch does not mention (kustomize v5).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "topologySpreadConstraints": "topologyKey",
}
# Lists a strategic merge replaces wholesale (no patchMergeKey in the Kubernetes API).
REPLACED_LISTS = {"tolerations", "args", "command", "accessModes", "finalizers"}

REPLICA_KINDS = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}


class UnsupportedFeature(NotImplementedError):
    """The kustomization uses something this renderer does not implement."""


def build(path: str | Path) -> list[dict[str, Any]]:
    """Render the kustomization in directory ``path``; returns the objects."""
    root = Path(path)
    kfile = _kustomization_file(root)
    kust = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(kust) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedFeature(f"{kfile}: unsupported kustomization fields {sorted(unknown)}")

    objects: list[dict[str, Any]] = []
    for entry in kust.get("resources") or []:
        target = (root / entry).resolve()
        if target.is_dir():
            objects.extend(build(target))
        elif target.is_file():
            objects.extend(load_yaml_objects(target))
        else:
            raise FileNotFoundError(f"{kfile}: resource {entry!r} does not exist")
    for generator in kust.get("configMapGenerator") or []:
        objects.append(_generate_config_map(root, generator))
    _check_unique(objects, kfile)

    for patch in kust.get("patches") or []:
        _apply_patch(root, patch, objects)
    if kust.get("namespace"):
        _set_namespace(objects, kust["namespace"])
    for label_set in kust.get("labels") or []:
        _add_labels(objects, label_set)
    for replica in kust.get("replicas") or []:
        _set_replicas(objects, replica)
    for image in kust.get("images") or []:
        _set_image(objects, image)
    return objects


def load_yaml_objects(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise ValueError(f"{path}: every document must be a Kubernetes object")
    return docs


def identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"])


# --------------------------------------------------------------------------------------------


def _kustomization_file(root: Path) -> Path:
    for name in KUSTOMIZATION_FILES:
        candidate = root / name
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no kustomization file in {root}")


def _check_unique(objects: list[dict[str, Any]], where: Path) -> None:
    seen: set[tuple[str, str, str, str]] = set()
    for obj in objects:
        key = identity(obj)
        if key in seen:
            raise ValueError(f"{where}: duplicate object {key}")
        seen.add(key)


def _group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _generate_config_map(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    extra = set(spec) - {"name", "files", "literals", "options"}
    if extra:
        raise UnsupportedFeature(f"configMapGenerator fields {sorted(extra)}")
    options = spec.get("options") or {}
    if set(options) - {"disableNameSuffixHash", "labels", "annotations"}:
        raise UnsupportedFeature(f"configMapGenerator options {sorted(options)}")
    if options.get("disableNameSuffixHash") is not True:
        raise UnsupportedFeature("configMapGenerator without disableNameSuffixHash: true (hash suffixes)")
    data: dict[str, str] = {}
    for item in spec.get("files") or []:
        key, _, rel = item.partition("=") if "=" in item else (Path(item).name, "", item)
        data[key] = (root / rel).read_text(encoding="utf-8")
    for item in spec.get("literals") or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"configMapGenerator literal {item!r} is not key=value")
        data[key] = value
    meta: dict[str, Any] = {"name": spec["name"]}
    if options.get("labels"):
        meta["labels"] = dict(options["labels"])
    if options.get("annotations"):
        meta["annotations"] = dict(options["annotations"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


# ----------------------------------------------------------------------------- patches


def _apply_patch(root: Path, spec: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    if set(spec) - {"path", "target"}:
        raise UnsupportedFeature(f"patch fields {sorted(spec)} (only path and target)")
    docs = [d for d in yaml.safe_load_all((root / spec["path"]).read_text(encoding="utf-8")) if d is not None]
    if len(docs) != 1:
        raise UnsupportedFeature(f"{spec['path']}: exactly one patch document per file")
    patch = docs[0]
    if isinstance(patch, list):
        if "target" not in spec:
            raise ValueError(f"{spec['path']}: a JSON 6902 patch needs a target")
        targets = _select(objects, spec["target"])
        for obj in targets:
            _json6902(obj, patch, spec["path"])
        return
    if not isinstance(patch, dict):
        raise ValueError(f"{spec['path']}: a patch is a mapping or a list of operations")
    if "target" in spec:
        targets = _select(objects, spec["target"])
    else:
        meta = patch.get("metadata") or {}
        selector = {"kind": patch.get("kind"), "name": meta.get("name")}
        if meta.get("namespace"):
            selector["namespace"] = meta["namespace"]
        if patch.get("apiVersion"):
            selector["group"] = _group_of(patch["apiVersion"])
        targets = _select(objects, selector)
    for obj in targets:
        if _group_of(obj["apiVersion"]) not in BUILTIN_API_GROUPS:
            raise UnsupportedFeature(
                f"{spec['path']}: strategic merge on custom resource {obj['kind']} (use a JSON 6902 patch)"
            )
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
        merged = _strategic_merge(obj, body, path=obj["kind"])
        obj.clear()
        obj.update(merged)


def _select(objects: list[dict[str, Any]], target: dict[str, Any]) -> list[dict[str, Any]]:
    allowed = {"group", "version", "kind", "name", "namespace"}
    if set(target) - allowed:
        raise UnsupportedFeature(f"patch target fields {sorted(set(target) - allowed)}")
    found = []
    for obj in objects:
        group, _, version = obj["apiVersion"].rpartition("/")
        meta = obj.get("metadata") or {}
        checks = {
            "group": group,
            "version": version,
            "kind": obj["kind"],
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
        }
        if all(target[k] is None or checks[k] == target[k] for k in target):
            found.append(obj)
    if not found:
        raise ValueError(f"patch target {target} matches no object")
    return found


def _strategic_merge(original: Any, patch: Any, path: str) -> Any:
    if isinstance(patch, dict):
        if any(k.startswith("$") for k in patch):
            raise UnsupportedFeature(f"{path}: strategic-merge directives {sorted(patch)}")
        result = copy.deepcopy(original) if isinstance(original, dict) else {}
        for key, value in patch.items():
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = _merge_field(key, result[key], value, f"{path}.{key}")
            else:
                result[key] = copy.deepcopy(value)
        return result
    return copy.deepcopy(patch)


def _merge_field(key: str, original: Any, patch: Any, path: str) -> Any:
    if isinstance(patch, dict) and isinstance(original, dict):
        return _strategic_merge(original, patch, path)
    if isinstance(patch, list) and isinstance(original, list):
        if key in REPLACED_LISTS:
            return copy.deepcopy(patch)
        merge_key = MERGE_KEYS.get(key)
        if merge_key is None:
            raise UnsupportedFeature(f"{path}: strategic merge of list {key!r} (merge strategy unknown here)")
        for item in patch:
            if not isinstance(item, dict) or any(str(k).startswith("$") for k in item):
                raise UnsupportedFeature(f"{path}: strategic-merge directive or non-mapping element {item!r}")
            if merge_key not in item:
                raise ValueError(f"{path}: element without its merge key {merge_key!r}: {item!r}")
        by_key = {item[merge_key]: item for item in original}
        patched_keys = [item[merge_key] for item in patch]
        merged = [
            _strategic_merge(by_key[item[merge_key]], item, f"{path}[{item[merge_key]}]")
            if item[merge_key] in by_key
            else copy.deepcopy(item)
            for item in patch
        ]
        merged.extend(copy.deepcopy(item) for item in original if item[merge_key] not in patched_keys)
        return merged
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _json6902(obj: dict[str, Any], operations: Iterable[dict[str, Any]], where: str) -> None:
    for op in operations:
        kind = op.get("op")
        if kind not in ("add", "replace", "remove"):
            raise UnsupportedFeature(f"{where}: JSON 6902 op {kind!r}")
        *parents, last = _pointer(op["path"])
        node: Any = obj
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            if kind == "add":
                index = len(node) if last == "-" else int(last)
                node.insert(index, copy.deepcopy(op["value"]))
            elif kind == "replace":
                node[int(last)] = copy.deepcopy(op["value"])
            else:
                del node[int(last)]
        else:
            if kind in ("replace", "remove") and last not in node:
                raise ValueError(f"{where}: {kind} of missing path {op['path']}")
            if kind == "remove":
                del node[last]
            else:
                node[last] = copy.deepcopy(op["value"])


# ----------------------------------------------------------------------------- transformers


def _set_namespace(objects: list[dict[str, Any]], namespace: str) -> None:
    service_accounts = {o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"}
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED_KINDS:
            continue
        obj.setdefault("metadata", {})["namespace"] = namespace
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects") or []:
                if (
                    subject.get("kind") == "ServiceAccount"
                    and not subject.get("namespace")
                    and subject.get("name") in service_accounts
                ):
                    subject["namespace"] = namespace


def _add_labels(objects: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    if set(spec) - {"pairs", "includeSelectors"} or spec.get("includeSelectors"):
        raise UnsupportedFeature(f"labels entry {sorted(spec)}: only pairs with includeSelectors: false")
    for obj in objects:
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({k: str(v) for k, v in spec["pairs"].items()})


def _set_replicas(objects: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    hits = [o for o in objects if o["kind"] in REPLICA_KINDS and o["metadata"]["name"] == spec["name"]]
    if not hits:
        raise ValueError(f"replicas: no Deployment/StatefulSet named {spec['name']!r}")
    for obj in hits:
        obj.setdefault("spec", {})["replicas"] = int(spec["count"])


_IMAGE = re.compile(r"^(?P<name>[^@]+?)(?::(?P<tag>[^:/@]+))?(?:@(?P<digest>.+))?$")


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` -> (repo, tag, digest); a port in the registry is not a tag."""
    match = _IMAGE.match(image)
    if not match:
        raise ValueError(f"cannot parse image {image!r}")
    return match["name"], match["tag"], match["digest"]


def _set_image(objects: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    if set(spec) - {"name", "newName", "newTag", "digest"}:
        raise UnsupportedFeature(f"images entry fields {sorted(spec)}")

    def rewrite(image: str) -> str:
        name, tag, digest = split_image(image)
        if name != spec["name"]:
            return image
        name = spec.get("newName") or name
        if spec.get("digest"):
            return f"{name}@{spec['digest']}"
        if spec.get("newTag") is not None:
            return f"{name}:{spec['newTag']}"
        return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("containers", "initContainers") and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            container["image"] = rewrite(container["image"])
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for obj in objects:
        walk(obj)


def main(argv: list[str] | None = None) -> int:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python tests/k8s/kustomize_render.py DIR", file=sys.stderr)
        return 2
    print(yaml.safe_dump_all(build(args[0]), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
