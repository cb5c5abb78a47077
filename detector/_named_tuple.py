"""``NamedTuple`` as ``typing`` writes it, without importing ``typing``: importing it cost a single page's cold
start 3 ms, a twentieth of it, for nothing but this base class. Type checkers see ``typing.NamedTuple``
(``if TYPE_CHECKING`` in the modules that use it); at run time a class written on this base is what
``typing.NamedTuple`` makes of it: a ``collections.namedtuple`` with the annotated fields, their defaults, and
the class's docstring and methods."""

from __future__ import annotations

from collections import namedtuple

_NOT_COPIED = frozenset(("__annotations__", "__dict__", "__module__", "__qualname__", "__slots__", "__weakref__"))


class _Maker(type):
    def __new__(cls, name: str, bases: tuple[type, ...], namespace: dict) -> type:
        if not bases:  # the base class itself
            return super().__new__(cls, name, bases, namespace)
        fields = list(namespace.get("__annotations__", {}))
        defaults = [namespace[field] for field in fields if field in namespace]
        made = namedtuple(name, fields, defaults=defaults, module=namespace["__module__"])  # type: ignore[misc]
        made.__annotations__ = dict(namespace.get("__annotations__", {}))
        made.__qualname__ = namespace.get("__qualname__", name)
        for key, value in namespace.items():
            if key not in _NOT_COPIED and key not in fields:
                setattr(made, key, value)
        return made


class NamedTuple(metaclass=_Maker):
    """Write ``class Point(NamedTuple): x: int; y: int = 0`` as with ``typing.NamedTuple``."""
