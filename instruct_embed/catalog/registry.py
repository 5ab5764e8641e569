"""The model registry: a dict filled by `register`, read by `get_spec`."""

from __future__ import annotations

from instruct_embed.catalog.spec import ModelSpec

_REGISTRY: dict[str, ModelSpec] = {}
_SEEDED: list[bool] = []  # the seed catalog is registered once

DEFAULT_MODEL = "multilingual-e5-small"


def register(spec: ModelSpec) -> ModelSpec:
    """Add `spec` to the catalog; a second spec under the same name is a programming error."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The spec registered as `name`; KeyError lists the valid names."""
    _load_seed_catalog()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}") from None


def model_names() -> list[str]:
    _load_seed_catalog()
    return sorted(_REGISTRY)


def _load_seed_catalog() -> None:
    # Lazily, on the first lookup: the catalog's 12 entries build their specs (and check them) only when needed.
    if _SEEDED:
        return
    from instruct_embed.catalog.models import SEED_MODELS

    _SEEDED.append(True)
    for spec in SEED_MODELS:
        register(spec)
