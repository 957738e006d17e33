"""`Module`, the base of PyTorch-style layers, and `Parameter` (the containers
Sequential, ModuleList and ModuleDict are in containers.py).

A module holds graphc variables and sub-modules set as attributes (as in
torch, they are registered automatically) and builds graph nodes when it is
called on tensors. Calling it twice builds the computation twice over the
same variables: `model(x)` after `model.eval()` gives the evaluation graph,
sharing every variable with the training graph built before.

Names: a variable owned by a sub-module is renamed after its path in the
model (`fc1.weight`), so `named_parameters()`, graph dumps and an
executable's `state_dict()` read as PyTorch's. A module's forward builds its
nodes inside `name_scope(<attribute name>)` (the root: its class name), so
visualizations collapse by module.

Parameters are trainable variables, buffers non-trainable ones (BatchNorm's
running statistics, anything given to `register_buffer`): both are in
`state_dict()`, except buffers registered with persistent=False.
"""
import copy
import weakref
from collections.abc import Mapping

import numpy as np

from graphc.errors import ArgumentError, DtypeError, GraphcError, ShapeError, user_location
from graphc.graph import default_graph
from graphc.ops.source import VariableState, variable
from graphc.tensor import Tensor

# VariableState -> weakref to the module that registered it first (the one whose
# path names it). Keyed by state, not Tensor: Tensor's == builds a node.
_owners = weakref.WeakKeyDictionary()


# What Module.__init__ sets up and registration fills in: rebuilt, not copied, by deepcopy.
_REGISTRY_FIELDS = {"_parameters", "_buffers", "_modules", "_home", "_scope", "_path",
                    "_scope_path", "_non_persistent"}


def _is_variable(value):
    return isinstance(value, Tensor) and value.op == "variable"


class Module:
    """Base class: subclass it, set layers and variables in `__init__` (after
    `super().__init__()`), and write `forward`."""

    def __init__(self):
        fields = self.__dict__
        fields["_parameters"], fields["_buffers"], fields["_modules"] = {}, {}, {}
        fields["_non_persistent"] = set()           # buffer names left out of state_dict
        fields["training"] = True
        fields["_home"] = None                      # weakref to the first parent
        fields["_scope"] = type(self).__name__      # attribute name once it has a parent
        fields["_path"] = ""                        # "encoder.fc1." below the root
        fields["_scope_path"] = type(self).__name__

    # -- registration ---------------------------------------------------------------
    def __setattr__(self, name, value):
        registered = isinstance(value, Module) or _is_variable(value)
        if "_modules" not in self.__dict__:
            if registered:
                raise GraphcError(f"cannot set {name} before Module.__init__() was called "
                                  "(call super().__init__() first)", op=type(self).__name__,
                                  loc=user_location())
            return object.__setattr__(self, name, value)
        if name in self._buffers and not registered:
            return self._set_buffer(name, value)    # as torch: a buffer's new value
        target = self._modules if isinstance(value, Module) else None
        if _is_variable(value):
            trainable = value.node.attrs["state"].trainable
            target = self._parameters if trainable else self._buffers
        self._unregister(name, keep=target)         # a replaced entry keeps its position
        if isinstance(value, Module):
            self._modules[name] = value
            value._attach(self, name)
        elif registered:
            target[name] = value
            self._own_variable(name, value)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._unregister(name)
        self._non_persistent.discard(name)
        object.__delattr__(self, name)

    def _unregister(self, name, keep=None):
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)

    def _own_variable(self, name, var):
        """Name `var` after this module's path if no living module registered it before."""
        state = var.node.attrs["state"]
        owner = _owners.get(state)
        if owner is None or owner() is None:
            owner = _owners[state] = weakref.ref(self)
        if owner() is self:
            self._name_variable(name, var)

    # -- buffers --------------------------------------------------------------------------
    def register_buffer(self, name, tensor, persistent=True):
        """Register non-trainable state as PyTorch's register_buffer does: `tensor` is an
        array (copied into a new non-trainable variable), a non-trainable gc.variable
        (registered itself), or None (an empty slot, left out of state_dict until set).
        It is in named_buffers() and, unless persistent=False, in state_dict(). Setting
        the attribute later (an array or None) replaces the buffer and keeps it one."""
        loc = user_location()
        if "_buffers" not in self.__dict__:
            raise GraphcError("cannot register a buffer before Module.__init__() was called "
                              "(call super().__init__() first)", op="register_buffer", loc=loc)
        if not isinstance(name, str) or not name or "." in name:
            raise ArgumentError(f"buffer name must be a non-empty string without '.', got "
                                f"{name!r}", op="register_buffer", loc=loc)
        if hasattr(self, name) and name not in self._buffers:
            raise ArgumentError(f"attribute {name!r} already exists and is not a buffer",
                                op="register_buffer", loc=loc)
        self._set_buffer(name, tensor, "register_buffer")
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def _set_buffer(self, name, value, op=None):
        var = None if value is None else _as_variable(value, name, False,
                                                      op or type(self).__name__)
        self._unregister(name, keep=self._buffers)
        self._buffers[name] = var
        if var is not None:
            self._own_variable(name, var)
        object.__setattr__(self, name, var)

    def _attach(self, parent, name):
        """Called when set on `parent`: the first parent (and name) names this module."""
        if self._home is not None and self._home() is not None:
            return                                  # shared or re-listed: keeps its names
        self.__dict__["_home"] = weakref.ref(parent)
        self.__dict__["_scope"] = name
        self._set_path(parent._path + name + ".", parent._scope_path + "/" + name)

    def _set_path(self, path, scope_path):
        self.__dict__["_path"], self.__dict__["_scope_path"] = path, scope_path
        for name, var in {**self._parameters, **self._buffers}.items():
            if var is None:
                continue
            owner = _owners.get(var.node.attrs["state"])
            if owner is not None and owner() is self:
                self._name_variable(name, var)
        for name, child in self._modules.items():
            if child._home is not None and child._home() is self and child._scope == name:
                child._set_path(path + name + ".", scope_path + "/" + name)

    def _name_variable(self, name, var):
        node = var.node
        node.scope = self._scope_path
        if self._path and node.name != self._path + name:
            node.name = node.graph.unique_name(self._path + name)
            node.attrs["state"].name = node.name

    # -- calling ----------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        graph = next((a.graph for a in args if isinstance(a, Tensor)), None) or default_graph()
        with graph.name_scope(self._scope):
            return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):
        raise GraphcError(f"{type(self).__name__} does not define forward()",
                          op=type(self).__name__, loc=user_location())

    # -- traversal ----------------------------------------------------------------------
    def children(self):
        """Direct sub-modules, in registration order."""
        return (module for _, module in self.named_children())

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def modules(self):
        """This module and every sub-module, pre-order, each once."""
        return (module for _, module in self.named_modules())

    def named_modules(self, prefix=""):
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            stack.extend(reversed([((name + "." if name else "") + child_name, child)
                                   for child_name, child in module._modules.items()]))

    def _named(self, registries, prefix, recurse, persistent_only=False):
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for registry in registries:
                for name, var in getattr(module, registry).items():
                    left_out = persistent_only and registry == "_buffers" and \
                        name in module._non_persistent
                    if var is not None and id(var) not in seen and not left_out:
                        seen.add(id(var))
                        yield (module_name + "." if module_name else "") + name, var

    def named_parameters(self, prefix="", recurse=True):
        """("fc1.weight", variable) for every trainable variable, each once."""
        return self._named(("_parameters",), prefix, recurse)

    def parameters(self, recurse=True):
        """Trainable variables: own first, then sub-modules', in registration order."""
        return [var for _, var in self.named_parameters(recurse=recurse)]

    def named_buffers(self, prefix="", recurse=True):
        """Non-trainable variables (e.g. BatchNorm's running statistics)."""
        return self._named(("_buffers",), prefix, recurse)

    def buffers(self, recurse=True):
        return [var for _, var in self.named_buffers(recurse=recurse)]

    def named_variables(self, prefix="", recurse=True):
        """Parameters and buffers, module by module (PyTorch's state_dict order)."""
        return self._named(("_parameters", "_buffers"), prefix, recurse)

    def variables(self, recurse=True):
        return [var for _, var in self.named_variables(recurse=recurse)]

    # -- modes and state ------------------------------------------------------------------
    def train(self, mode=True):
        """Set `training` here and below; read when the graph is built."""
        for module in self.modules():
            module.__dict__["training"] = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def to(self, device=None):
        """No-op kept for ported code: graphc picks the device at gc.compile."""
        return self

    def apply(self, fn):
        """fn(module) for every sub-module, then for this one (as torch's apply)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _persistent_variables(self):
        """named_variables() less the buffers registered with persistent=False."""
        return self._named(("_parameters", "_buffers"), "", True, persistent_only=True)

    def state_dict(self):
        """{"fc1.weight": a copy of its current value} for parameters and persistent
        buffers."""
        return {name: var.value for name, var in self._persistent_variables()}

    def load_state_dict(self, state, strict=True):
        """Set variables from {name: array}; checks every entry before writing any."""
        loc = user_location()
        if not isinstance(state, Mapping):
            raise ArgumentError(f"state must be a dict of arrays, got a {type(state).__name__}",
                                op="load_state_dict", loc=loc)
        own = dict(self._persistent_variables())
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise ShapeError(f"missing keys {missing}, unexpected keys {unexpected}",
                             op="load_state_dict", loc=loc)
        for name in set(own) & set(state):
            holder = own[name].node.attrs["state"]
            trial = VariableState(holder.value, name, holder.trainable)   # errors name the key
            try:
                trial.assign(state[name])
            except GraphcError as error:
                raise type(error)(error.message, op="load_state_dict", loc=loc) from None
        for name in set(own) & set(state):
            own[name].node.attrs["state"].assign(state[name], loc)
        return missing, unexpected

    # -- copies -------------------------------------------------------------------------
    def __deepcopy__(self, memo):
        """copy.deepcopy(model): the same modules with new variables in the same graph,
        holding copies of the current values (weights shared within the model stay
        shared in the copy); named after their path once the copy has a parent."""
        new = object.__new__(type(self))
        Module.__init__(new)
        memo[id(self)] = new
        for name, value in self.__dict__.items():
            if name not in _REGISTRY_FIELDS:
                setattr(new, name, copy.deepcopy(value, memo))
        new._non_persistent.update(self._non_persistent)
        for name, var in self._buffers.items():
            if var is None:                         # an empty slot: set as a plain None
                new._set_buffer(name, None)
        return new

    # -- printing -----------------------------------------------------------------------
    def extra_repr(self):
        """The constructor arguments shown by repr (override in layers)."""
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + repr(module).replace("\n", "\n  ")
                    for name, module in self._modules.items()]
        if len(lines) == 1 and not children:
            return f"{type(self).__name__}({lines[0]})"
        body = "".join("\n  " + line for line in lines + children)
        return f"{type(self).__name__}({body}\n)" if body else f"{type(self).__name__}()"


def module_dtype(dtype):
    """A module's `dtype` argument as a NumPy dtype (None: float32)."""
    from graphc import dtypes
    try:
        dtype = dtypes.as_dtype("float32" if dtype is None else dtype)
    except GraphcError as error:
        raise error.located("Module", user_location()) from None
    if dtype.kind != "f":
        raise DtypeError(f"module dtype must be float32 or float64, got {dtype}",
                         op="Module", loc=user_location())
    return dtype


def _as_variable(data, name, trainable, op):
    """`data` as a variable: an array-like (copied into a new variable; Python floats
    become float32, arrays keep their dtype), a constant's value, or a variable of the
    same trainability (itself)."""
    loc = user_location()
    if isinstance(data, Tensor):
        if _is_variable(data) and data.node.attrs["state"].trainable == trainable:
            return data
        if data.op != "constant":
            kind = "symbolic" if not _is_variable(data) else \
                "a trainable variable" if not trainable else "a non-trainable variable"
            raise ArgumentError(f"{name!r} needs an array, got {data!r}, which is {kind}",
                                op=op, loc=loc)
        data = data.node.attrs["value"]
    try:
        dtype = None if isinstance(data, np.ndarray) or \
            np.asarray(data).dtype != np.float64 else "float32"
        return variable(data, name=name, trainable=trainable, dtype=dtype)
    except GraphcError as error:
        raise type(error)(error.message, op=op, loc=loc) from None


class _ParameterType(type):
    def __instancecheck__(cls, value):
        return _is_variable(value) and value.node.attrs["state"].trainable


class Parameter(metaclass=_ParameterType):
    """PyTorch's nn.Parameter: `Parameter(array)` makes a new trainable gc.variable
    holding a copy of the array (not a subclass: graphc's variables are tensors),
    registered as a parameter when set as a module attribute;
    `isinstance(t, Parameter)` is True for every trainable variable.
    requires_grad=False makes a non-trainable variable, which a module lists with its
    buffers (PyTorch lists it with the parameters; both put it in state_dict)."""

    def __new__(cls, data=None, requires_grad=True):
        data = np.empty(0, np.float32) if data is None else data
        kind = data.dtype if isinstance(data, Tensor) else np.asarray(data).dtype
        if requires_grad and kind.kind in "biu":
            raise DtypeError(f"only floating-point data can require gradients (as in "
                             f"PyTorch), got {kind}; pass float data or requires_grad=False",
                             op="Parameter", loc=user_location())
        return _as_variable(data, "parameter", bool(requires_grad), "Parameter")

