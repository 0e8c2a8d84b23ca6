"""Drivers of the structured-code chapter: components to register, decorated and called beside the learner's registry."""

from __future__ import annotations


def fraudnet() -> str:
    return "a FraudNet"


def trees() -> str:
    return "boosted trees"


def register(registry, name: str, component) -> bool:
    """Decorate ``component`` with ``registry.register(name)``; whether the decorator gave it back unchanged."""
    return registry.register(name)(component) is component


def found(registry, name: str) -> str:
    """Call the component that ``registry.get(name)`` returns: what it answers says which one it was."""
    return registry.get(name)()
