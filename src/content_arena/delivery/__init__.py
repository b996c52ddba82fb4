"""Delivery: the Kubeflow pipeline, the KServe model server and the rollout, as arena commands."""
