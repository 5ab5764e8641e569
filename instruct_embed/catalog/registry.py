"""The model registry: a dict filled by `register`, read by `get_spec`."""

from __future__ import annotations

from instruct_embed.catalog.spec import ModelSpec

_REGISTRY: dict[str, ModelSpec] = {}

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
    # Imported lazily so that models.py can import `register` from here without a cycle.
    import instruct_embed.catalog.models  # noqa: F401
