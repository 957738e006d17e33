"""The containers `Sequential`, `ModuleList` and `ModuleDict`: modules that hold
other modules as attributes (registered, so their variables are the parent's
and named after the path: `blocks.conv.weight`)."""
from collections.abc import Mapping

from graphc.errors import ArgumentError, user_location
from graphc.nn.module import Module


class _ModuleSequence(Module):
    """Modules registered as "0", "1", ... (or by a dict's keys), in order."""

    def __init__(self, modules=()):
        super().__init__()
        items = modules.items() if isinstance(modules, dict) else (
            (str(i), module) for i, module in enumerate(modules))
        for name, module in items:
            self._register(name, module)

    def append(self, module):
        return self._register(str(len(self._modules)), module)

    def _register(self, name, module):
        if not isinstance(module, Module):
            raise ArgumentError(f"item {name} is of type {type(module).__name__}, not a Module",
                                op=type(self).__name__, loc=user_location())
        setattr(self, name, module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, index):
        items = list(self._modules.items())
        if isinstance(index, slice):
            return type(self)._from_items(items[index])
        if not -len(items) <= index < len(items):
            raise IndexError(f"index {index} is out of range for {type(self).__name__} "
                             f"of length {len(items)}")
        return items[index][1]


class ModuleList(_ModuleSequence):
    """A list of modules (registered, so their variables are the parent's); no forward."""

    @classmethod
    def _from_items(cls, items):
        return cls([module for _, module in items])


class Sequential(_ModuleSequence):
    """Modules applied in order. `Sequential(a, b)` names them "0", "1";
    `Sequential(OrderedDict(conv=..., relu=...))` by the dict's keys.
    A slice is a new Sequential of the same modules (same variables)."""

    def __init__(self, *args):
        super().__init__(args[0] if len(args) == 1 and isinstance(args[0], dict) else args)

    @classmethod
    def _from_items(cls, items):
        return cls(dict(items))

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleDict(Module):
    """Modules by string key, in insertion order (PyTorch's ModuleDict); no forward.
    `d[key] = module` replaces in place, keeping the key's position."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def _check_key(self, key, module):
        """An ArgumentError unless `key` can name an attribute and `module` is a Module."""
        name = type(self).__name__
        if not isinstance(key, str):
            raise ArgumentError(f"keys must be strings, got {key!r}", op=name,
                                loc=user_location())
        if not key or "." in key:
            raise ArgumentError(f"key {key!r} must be non-empty and hold no '.'", op=name,
                                loc=user_location())
        if key not in self._modules and hasattr(self, key):
            raise ArgumentError(f"key {key!r} is the name of an attribute of {name}", op=name,
                                loc=user_location())
        if not isinstance(module, Module):
            raise ArgumentError(f"item {key} is of type {type(module).__name__}, not a Module",
                                op=name, loc=user_location())

    def update(self, modules):
        """Add or replace from a mapping or an iterable of (key, module) pairs; every
        item is checked before any is added."""
        items = list(modules.items() if isinstance(modules, Mapping) else modules)
        for item in items:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ArgumentError(f"update takes a mapping or (key, module) pairs, got "
                                    f"item {item!r}", op=type(self).__name__,
                                    loc=user_location())
            self._check_key(*item)
        for key, module in items:
            setattr(self, key, module)

    def __setitem__(self, key, module):
        self._check_key(key, module)
        setattr(self, key, module)

    def __getitem__(self, key):
        return self._modules[key]

    def __delitem__(self, key):
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules))

    def __contains__(self, key):
        return key in self._modules

    def keys(self):
        return list(self._modules)

    def values(self):
        return list(self._modules.values())

    def items(self):
        return list(self._modules.items())

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def clear(self):
        for key in list(self._modules):
            delattr(self, key)
