"""A digest of the code of a plugin that has no source file to hash.

A plugin defined in ``python -c``, a notebook cell or a module built at run time has no file
for the cache keys (:mod:`plugtrt.engine_key`) to digest; editing it must still make its
engines miss. :func:`code_fingerprint` hashes what Python runs instead: the bytecode, constants,
names and defaults of every function reachable from the plugin (its methods, the functions
and classes their code names, closures, nested functions), recursively, and the values of the
plain globals that code reads. Line numbers and file names are left out (moving a cell does
not change a result), and the walk is deterministic across processes: no ``id``, no hash
order, no ``marshal`` (whose output depends on reference counts).

Code that lives in a file-backed module (torch, plugtrt, an installed package) is named, not
walked: its distribution's version or source digest covers it. A reachable value the digest
cannot describe faithfully (an open file, a tensor, an arbitrary object without a plain
state) raises :class:`NotFingerprintable`, and the plugin's blocks are then not cached.
"""
from __future__ import annotations

import enum
import functools
import hashlib
import sys
import types
from typing import Any

import torch

_PLAIN = (type(None), bool, int, float, complex, str, bytes, type(Ellipsis))
_NAMED = (types.BuiltinFunctionType, types.ModuleType, torch._ops.OpOverload, torch._ops.OpOverloadPacket,
          torch._ops.HigherOrderOperator, torch.dtype, torch.device, torch.layout, torch.memory_format)
_CLASS_SKIP = {"__dict__", "__weakref__", "__doc__"}


class NotFingerprintable(Exception):
    """Reachable code holds a value the digest cannot describe; the message names it."""


def code_fingerprint(plugin: Any) -> str:
    """SHA-256 (16 hex digits) over the code reachable from ``plugin``, a module or an object."""
    walker = _Walker()
    if isinstance(plugin, types.ModuleType):
        walker.feed("module", plugin.__name__)
        for name, value in sorted(vars(plugin).items()):
            if _defined_in(value, plugin.__name__):
                walker.feed("global", name)
                walker.value(value)
    else:
        walker.value(plugin)
    return walker.digest.hexdigest()[:16]


def _defined_in(value: Any, module: str) -> bool:
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == module


def _has_source(module_name: str | None) -> bool:
    return bool(getattr(sys.modules.get(module_name or ""), "__file__", None))


class _Walker:
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.seen: dict[int, int] = {}  # id -> order of first visit: a revisit (a cycle) feeds the order
        self.alive: list[Any] = []  # keeps visited objects alive, so their ids stay unique

    def feed(self, *parts: str) -> None:
        for part in parts:
            data = part.encode("utf-8", "surrogatepass")
            self.digest.update(len(data).to_bytes(8, "little") + data)

    def value(self, obj: Any) -> None:
        if isinstance(obj, _PLAIN):
            self.feed(type(obj).__name__, repr(obj))
        elif isinstance(obj, _NAMED) or isinstance(obj, (types.FunctionType, type)) and _has_source(obj.__module__):
            self.feed("named", type(obj).__name__, _name(obj))
        elif isinstance(obj, enum.Enum):
            self.feed("enum", _qualified(type(obj)), obj.name)
        elif isinstance(obj, (tuple, list)):
            self.feed(type(obj).__name__, str(len(obj)))
            for item in obj:
                self.value(item)
        elif isinstance(obj, (set, frozenset, dict)):
            self._unordered(obj)
        elif self._revisit(obj):
            return
        elif isinstance(obj, types.CodeType):
            self.code(obj, {})
        elif isinstance(obj, types.FunctionType):
            self.function(obj)
        elif isinstance(obj, type):
            self.cls(obj)
        elif isinstance(obj, (types.MethodType, staticmethod, classmethod)):
            self.feed(type(obj).__name__)
            self.value(obj.__func__)
        elif isinstance(obj, property):
            self.feed("property")
            for accessor in (obj.fget, obj.fset, obj.fdel):
                self.value(accessor)
        elif isinstance(obj, functools.partial):
            self.feed("partial")
            self.value([obj.func, obj.args, obj.keywords])
        else:
            self.instance(obj)

    def _revisit(self, obj: Any) -> bool:
        """Feed the order of an object seen before and say so; else remember it."""
        order = self.seen.get(id(obj))
        if order is not None:
            self.feed("seen", str(order))
            return True
        self.seen[id(obj)] = len(self.seen)
        self.alive.append(obj)
        return False

    def _unordered(self, obj: set | frozenset | dict) -> None:
        """A set or dict in an order that does not depend on hashing: each item's own digest."""
        items = []
        for item in (obj.items() if isinstance(obj, dict) else obj):
            walker = _Walker()
            walker.value(item)
            items.append(walker.digest.hexdigest())
        self.feed(type(obj).__name__, *sorted(items))

    def code(self, code: types.CodeType, globals_: dict) -> None:
        self.feed("code", code.co_name, code.co_code.hex(), repr(code.co_names), repr(code.co_varnames),
                  repr(code.co_freevars), repr((code.co_argcount, code.co_posonlyargcount,
                                                code.co_kwonlyargcount, code.co_flags)))
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self.code(const, globals_)  # a nested function or lambda reads the same globals
            else:
                self.value(const)
        for name in code.co_names:  # globals the code reads (attribute names that are no global skip)
            if name in globals_:
                self.feed("reads", name)
                self.value(globals_[name])

    def function(self, fn: types.FunctionType) -> None:
        self.feed("function", fn.__qualname__)
        self.code(fn.__code__, fn.__globals__)
        self.value([fn.__defaults__, fn.__kwdefaults__])
        for cell in fn.__closure__ or ():
            try:
                self.value(cell.cell_contents)
            except ValueError:  # an empty cell: a name assigned later
                self.feed("empty cell")

    def cls(self, klass: type) -> None:
        self.feed("class", klass.__qualname__, *(_qualified(base) for base in klass.__bases__))
        for name, member in sorted(vars(klass).items()):
            if name not in _CLASS_SKIP:
                self.feed("member", name)
                self.value(member)

    def instance(self, obj: Any) -> None:
        """An object by its class and its pickle state, when that state is plain enough to
        describe (a record's fields, an enum's value); else not fingerprintable."""
        getstate = getattr(obj, "__getstate__", None)
        if getstate is None or isinstance(obj, torch.Tensor):
            raise NotFingerprintable(f"a {_qualified(type(obj))} value")
        try:
            state = getstate()
        except Exception as exc:
            raise NotFingerprintable(f"a {_qualified(type(obj))} value ({exc!r})") from exc
        if state is None and not hasattr(obj, "__dict__") and type(obj) is not object:  # C state, unseen
            raise NotFingerprintable(f"a {_qualified(type(obj))} value")
        self.feed("instance")
        self.value(type(obj))
        self.value(state)


def _name(obj: Any) -> str:
    """What names code from elsewhere: a module's name, a function's or class's qualified name,
    an operator's or dtype's string."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
        return _qualified(obj)
    return str(obj)


def _qualified(obj: Any) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', None) or repr(obj)}"
