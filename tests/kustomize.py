"""A small Kustomize in Python: the features deploy/kubernetes uses, so the tests render it offline.

Supported: `resources` (files, and directories with a kustomization.yaml), `namespace`, `images`
(newName, newTag) and `patches` with a `path` to a strategic-merge patch matched by kind and name
(maps merged key by key; lists of maps with a `name` merged by name; other lists replaced). Anything
else in a kustomization.yaml is refused, so a feature added to the manifests is not silently skipped.
tests/test_deploy.py compares this rendering with `kubectl kustomize` where kubectl is installed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KNOWN = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace"}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch, as far as these manifests need it."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        out = list(base)
        for item in patch:
            at = next(
                (i for i, old in enumerate(out) if isinstance(old, dict) and old.get("name") == item["name"]), None
            )
            if at is None:
                out.append(copy.deepcopy(item))
            else:
                out[at] = merge(out[at], item)
        return out
    return copy.deepcopy(patch)


def _set_images(doc: dict[str, Any], images: list[dict[str, str]]) -> None:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                name = image.get("newName", name)
                tag = str(image.get("newTag", tag))
        container["image"] = f"{name}:{tag}" if tag else name


def build(directory: Path) -> list[dict[str, Any]]:
    """The resources a kustomization directory renders to, in order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - KNOWN
    if unknown:
        raise ValueError(f"{directory}: kustomization fields this renderer does not know: {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        docs += build(path) if path.is_dir() else load_all(path)
    for patch_entry in kustomization.get("patches", []):
        for patch in load_all(directory / patch_entry["path"]):
            targets = [
                i
                for i, doc in enumerate(docs)
                if doc["kind"] == patch["kind"] and doc["metadata"]["name"] == patch["metadata"]["name"]
            ]
            if len(targets) != 1:
                raise ValueError(f"patch {patch_entry['path']} matches {len(targets)} resources")
            docs[targets[0]] = merge(docs[targets[0]], patch)
    for doc in docs:
        if "namespace" in kustomization and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"] = {**doc["metadata"], "namespace": kustomization["namespace"]}
        _set_images(doc, kustomization.get("images", []))
    return docs
