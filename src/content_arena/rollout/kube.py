"""The Kubernetes client for the rollout: in-cluster credentials in a pod, else the kubeconfig."""

from __future__ import annotations

from typing import Any


def custom_objects_api(api_client: Any = None) -> Any:
    """A ``kubernetes.client.CustomObjectsApi``; ``api_client`` (e.g. built from a
    ``Configuration(host=...)``) wins over the discovered credentials."""
    from kubernetes import client, config

    if api_client is None:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            try:
                config.load_kube_config()
            except config.ConfigException as exc:
                raise RuntimeError(f"no Kubernetes credentials: not in a pod and no usable kubeconfig ({exc})") from None
        api_client = client.ApiClient()
    return client.CustomObjectsApi(api_client)
