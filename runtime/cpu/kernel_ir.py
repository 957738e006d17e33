"""Lower a generated loop kernel's Python straight to LLVM IR, skipping Numba's front end.

The kernels codegen.py renders use a small part of Python: `for` over
`range`, assignments and `+=` to local names and to array elements, `if`,
`return`, arithmetic, comparisons, and calls of NumPy scalar constructors and
of runtime/cpu/scalar.py's functions. This module walks that syntax tree and
emits IR directly. Each operation is still typed by Numba's typing context
and lowered by Numba's own implementation of it (the same `operator.add`,
`np.float32(...)`, `exp` overload the front end would pick), so a kernel
computes what Numba would; what is skipped is the front end's per-function
work (bytecode analysis, SSA, its IR passes, type inference by constraint
propagation, its variable bookkeeping) that made it three quarters of a
kernel's compile.

A variable has one type: the unification of every value assigned to it (as
Numba gives a loop's accumulator its phi's type: `acc += float64` makes a
float32 accumulator float64). A lowering that finds a variable assigned a wider
type goes on to the end, collecting every such widening, and the kernel is
lowered again with them. Anything outside the subset raises
`Unsupported`, and the kernel then compiles through Numba as before
(runtime/cpu/loop_kernel.py). Array subscripts are never negative in
generated code, so they are not wrapped around.
"""
import ast
import builtins
import operator

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, compiler, targetconfig
from numba.core.registry import cpu_target
from numba.np.arrayobj import _empty_nd_impl

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow, ast.BitAnd: operator.and_, ast.BitOr: operator.or_,
           ast.BitXor: operator.xor, ast.LShift: operator.lshift, ast.RShift: operator.rshift}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_,
          ast.Invert: operator.invert}
_MAX_WIDENINGS = 8


class Unsupported(Exception):
    """The kernel uses something outside the subset: compile it with Numba."""


_contexts = {}          # Numba's compile flags -> the target context for them
_signatures = {}        # (function, argument types) -> Numba's signature for the call
_implementations = {}   # (context, function type, signature) -> Numba's lowering of it


def compile_flags(targetoptions):
    """Numba's flags for a function with these jit options, as its dispatcher derives them."""
    flags = compiler.Flags()
    cpu_target.options.parse_as_flags(flags, targetoptions)
    return flags


def target_context(flags):
    """Numba's CPU target context for a function compiled with `flags`, as Numba's
    compiler derives it (fastmath, error model, the runtime); one per process for each."""
    if flags not in _contexts:
        base = cpu_target.target_context
        base.refresh()
        _contexts[flags] = compiler._make_subtarget(base, flags)
    return _contexts[flags]


def lower_kernel(flags, function_source, namespace, argtypes, symbol):
    """The LLVM module defining `symbol`: the kernel `def` in `function_source` for
    `argtypes`, in Numba's calling convention (returning None), for Numba's compile
    `flags`. Names it does not bind are looked up in `namespace` (the generated
    module's globals). Call it with target_context(flags)'s code library pushed: the
    scalar functions' compiled code is linked into it. The flags are the current
    compile's while it runs, as in Numba's own compile: the overloads it compiles
    (rsqrt's division, exp's approximation) inherit its error model and fastmath."""
    tree = ast.parse(function_source).body[0]
    if not isinstance(tree, ast.FunctionDef):
        raise Unsupported("not a function definition")
    context = target_context(flags)
    widened = {}
    with targetconfig.ConfigStack().enter(flags.copy()):
        for _ in range(_MAX_WIDENINGS):
            lowering = _KernelLowering(context, tree, namespace, argtypes, symbol, widened)
            module = lowering.lower()
            if not lowering.widened:
                # (Numba's fastmath flags on every float instruction, its runtime linked)
                context.post_lowering(module, context.active_code_library)
                return module
            widened = {**widened, **lowering.widened}
    raise Unsupported("variable types did not settle")


class _KernelLowering:
    def __init__(self, context, tree, namespace, argtypes, symbol, widened):
        self.context, self.typing = context, context.typing_context
        self.tree, self.namespace = tree, namespace
        params = tree.args
        if params.vararg or params.kwarg or params.kwonlyargs or params.defaults or \
                len(params.args) != len(argtypes):
            raise Unsupported("parameters")
        self.types = dict(widened)      # variable -> its type (the widened ones preset)
        self.widened = {}               # variable -> a wider type found during this lowering
        self.slots = {}                 # variable -> its stack slot
        self.arrays = {}                # array -> (type, Numba's array struct)
        self.owned = []                 # (type, slot) of each local array, released at return
        self.module = context.create_module(symbol)
        function_type = context.call_conv.get_function_type(types.none, argtypes)
        self.function = cgutils.get_or_insert_function(self.module, function_type, symbol)
        entry = self.function.append_basic_block("entry")
        body = self.function.append_basic_block("body")
        ir.IRBuilder(entry).branch(body)    # (stack slots go into entry, before this)
        self.builder = ir.IRBuilder(body)
        values = context.call_conv.decode_arguments(self.builder, argtypes, self.function)
        for param, numba_type, value in zip(params.args, argtypes, values):
            if isinstance(numba_type, types.Array):
                array = context.make_array(numba_type)(context, self.builder, value)
                self.arrays[param.arg] = (numba_type, array)
            else:
                self.assign_name(param.arg, value, numba_type)

    def lower(self):
        self.statements(self.tree.body)
        if not self.builder.block.is_terminated:
            self.return_none()
        return self.module

    # -- statements ----------------------------------------------------------------------
    def statements(self, body):
        for statement in body:
            if self.builder.block.is_terminated:     # (code after a return)
                return
            self.statement(statement)

    def statement(self, s):
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and \
                isinstance(s.targets[0], ast.Tuple) and isinstance(s.value, ast.Tuple):
            self.tuple_assignment(s)
        elif isinstance(s, ast.Assign) and len(s.targets) == 1:
            self.assign(s.targets[0], *self.expression(s.value))
        elif isinstance(s, ast.AugAssign) and type(s.op) in _BINARY:
            current = self.expression(_as_load(s.target))
            self.assign(s.target, *self.call(_BINARY[type(s.op)],
                                              [current, self.expression(s.value)]))
        elif isinstance(s, ast.For):
            self.range_loop(s)
        elif isinstance(s, ast.If):
            self.if_statement(s)
        elif isinstance(s, ast.Return) and (s.value is None or _is_none(s.value)):
            self.return_none()
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            pass                                        # a docstring
        elif isinstance(s, ast.Expr):
            self.expression(s.value)
        elif not isinstance(s, ast.Pass):
            raise Unsupported(f"statement {type(s).__name__} (line {s.lineno})")

    def return_none(self):
        for array_type, slot in self.owned:     # (a null one, not made yet, is skipped)
            self.context.nrt.decref(self.builder, array_type, self.builder.load(slot))
        self.context.call_conv.return_value(self.builder, self.context.get_dummy_value())

    def assign(self, target, value, numba_type):
        if isinstance(target, ast.Name) and isinstance(numba_type, types.Array):
            self.local_array(target.id, value, numba_type)
        elif isinstance(target, ast.Name):
            self.assign_name(target.id, value, numba_type)
        elif isinstance(target, ast.Subscript):
            array_type, pointer = self.element(target)
            value = self.context.cast(self.builder, value, numba_type, array_type.dtype)
            self.context.pack_value(self.builder, array_type.dtype, value, pointer)
        else:
            raise Unsupported(f"assignment to {type(target).__name__}")

    def tuple_assignment(self, s):
        """`a, b = x, y`: every value, then every name."""
        targets, values = s.targets[0].elts, s.value.elts
        if len(targets) != len(values) or \
                not all(isinstance(t, ast.Name) for t in targets):
            raise Unsupported(f"tuple assignment (line {s.lineno})")
        for target, (value, numba_type) in zip(targets, [self.expression(v) for v in values]):
            self.assign_name(target.id, value, numba_type)

    def local_array(self, name, value, array_type):
        """`name = np.full(...)` (a row reduction's accumulators): made once, through
        Numba's runtime, and released at every return."""
        if name in self.arrays or name in self.types:
            raise Unsupported(f"array {name} assigned twice")
        slot = cgutils.alloca_once(self.builder, value.type, name=name)
        self.builder.store(value, slot)
        self.owned.append((array_type, slot))
        self.arrays[name] = (array_type, self.context.make_array(array_type)(
            self.context, self.builder, value))

    def assign_name(self, name, value, numba_type):
        if name in self.arrays:
            raise Unsupported(f"{name} rebound")
        known = self.types.setdefault(name, numba_type)
        if known != numba_type:
            unified = self.typing.unify_types(known, numba_type)
            if unified is None:
                raise Unsupported(f"{name} is assigned {known} and {numba_type}")
            if unified != known:        # (this lowering goes on, to find every widening)
                self.widened[name] = unified
            value = self.context.cast(self.builder, value, numba_type, known)
        if name not in self.slots:
            self.slots[name] = cgutils.alloca_once(
                self.builder, self.context.get_value_type(known), name=name)
        self.builder.store(value, self.slots[name])

    def range_loop(self, s):
        """`for name in range([start,] stop[, step])`, a step a positive literal: the
        target is a copy of a hidden counter, as in Python (the body may read it, not
        advance the loop)."""
        loop = s.iter
        if s.orelse or not isinstance(s.target, ast.Name) or not (
                isinstance(loop, ast.Call) and isinstance(loop.func, ast.Name)
                and loop.func.id == "range" and 1 <= len(loop.args) <= 3 and not loop.keywords):
            raise Unsupported(f"loop (line {s.lineno})")
        step = 1
        if len(loop.args) == 3:
            step = loop.args[2].value if isinstance(loop.args[2], ast.Constant) else None
            if not isinstance(step, int) or step < 1:
                raise Unsupported(f"a range step other than a positive literal (line {s.lineno})")
        bounds = [self.expression(a) for a in loop.args[:2]]
        if len(bounds) == 1:
            bounds.insert(0, (self.context.get_constant(types.intp, 0), types.intp))
        unified = self.typing.unify_types(*[t for _, t in bounds])
        if not isinstance(unified, types.Integer):
            raise Unsupported(f"range over {unified}")
        index_type = types.intp if unified.signed else types.uintp
        start, stop = [self.context.cast(self.builder, v, t, index_type) for v, t in bounds]
        b = self.builder
        counter = cgutils.alloca_once(b, start.type, name=f"{s.target.id}.next")
        b.store(start, counter)
        head, body, end = (b.append_basic_block(f"{s.target.id}.{part}")
                           for part in ("head", "body", "end"))
        b.branch(head)
        b.position_at_end(head)
        index = b.load(counter)
        more = b.icmp_signed("<", index, stop) if index_type.signed else \
            b.icmp_unsigned("<", index, stop)
        b.cbranch(more, body, end)
        b.position_at_end(body)
        b.store(b.add(index, index.type(step)), counter)
        self.assign_name(s.target.id, index, index_type)
        self.statements(s.body)
        if not b.block.is_terminated:
            b.branch(head)
        b.position_at_end(end)

    def if_statement(self, s):
        condition = self.truth(*self.expression(s.test))
        if not s.orelse:
            with self.builder.if_then(condition):
                self.statements(s.body)
            return
        with self.builder.if_else(condition) as (then, otherwise):
            with then:
                self.statements(s.body)
            with otherwise:
                self.statements(s.orelse)

    # -- expressions: (LLVM value, Numba type) ---------------------------------------------
    def expression(self, e):
        if isinstance(e, ast.Name):
            if e.id in self.slots:
                return self.builder.load(self.slots[e.id]), self.types[e.id]
            return self.constant(self.global_value(e.id))
        if isinstance(e, ast.Constant):
            return self.constant(e.value)
        if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and \
                e.value.id in self.arrays and e.attr == "size":
            return self.arrays[e.value.id][1].nitems, types.intp
        if isinstance(e, ast.Attribute):
            return self.constant(self.attribute(e))
        if isinstance(e, ast.BinOp) and type(e.op) in _BINARY:
            return self.call(_BINARY[type(e.op)], [self.expression(e.left),
                                                    self.expression(e.right)])
        if isinstance(e, ast.UnaryOp):
            return self.call(_UNARY[type(e.op)], [self.expression(e.operand)])
        if isinstance(e, ast.Compare) and len(e.ops) == 1 and type(e.ops[0]) in _COMPARE:
            return self.call(_COMPARE[type(e.ops[0])], [self.expression(e.left),
                                                         self.expression(e.comparators[0])])
        if isinstance(e, ast.BoolOp):
            return self.boolean_operation(e)
        if isinstance(e, ast.Subscript):
            array_type, pointer = self.element(e)
            return self.context.unpack_value(self.builder, array_type.dtype, pointer), \
                array_type.dtype
        if isinstance(e, ast.Call) and not e.keywords:
            function = self.callee(e.func)
            arguments = [self.expression(a) for a in e.args]
            return self.full(*arguments) if function is np.full and len(arguments) == 2 \
                else self.call(function, arguments)
        if isinstance(e, ast.IfExp):
            return self.if_expression(e)
        raise Unsupported(f"expression {type(e).__name__} (line {e.lineno})")

    def boolean_operation(self, e):
        """`and` / `or` of booleans, every operand evaluated: so none after the first may
        read an array (Python would skip it: `i < n and a[i] > 0`); calls are of scalar
        functions, which read nothing."""
        if any(isinstance(node, ast.Subscript)
               for value in e.values[1:] for node in ast.walk(value)):
            raise Unsupported("and/or with an array read after its first operand")
        operands = [self.expression(v) for v in e.values]
        if any(t != types.boolean for _, t in operands):
            raise Unsupported("and/or of non-booleans")
        combine = self.builder.and_ if isinstance(e.op, ast.And) else self.builder.or_
        value = operands[0][0]
        for other, _ in operands[1:]:
            value = combine(value, other)
        return value, types.boolean

    def if_expression(self, e):
        b = self.builder
        condition = self.truth(*self.expression(e.test))
        with b.if_else(condition) as (then, otherwise):
            with then:
                value, then_type = self.expression(e.body)
                then_block = b.block
            with otherwise:
                other, other_type = self.expression(e.orelse)
                other_block = b.block
        if then_type != other_type:
            raise Unsupported("an if-expression of two types")
        phi = b.phi(value.type)
        phi.add_incoming(value, then_block)
        phi.add_incoming(other, other_block)
        return phi, then_type

    def truth(self, value, numba_type):
        return self.context.is_true(self.builder, numba_type, value)

    def element(self, subscript):
        """(array type, pointer to the element) of `array[i]` or `array[i, j]`."""
        name = subscript.value
        if not (isinstance(name, ast.Name) and name.id in self.arrays):
            raise Unsupported("a subscript of something other than an array argument")
        array_type, array = self.arrays[name.id]
        index = subscript.slice
        indices = index.elts if isinstance(index, ast.Tuple) else [index]
        if len(indices) != array_type.ndim:
            raise Unsupported(f"{len(indices)} indices into a {array_type.ndim}-d array")
        values = []
        for value, numba_type in map(self.expression, indices):
            if not isinstance(numba_type, types.Integer):
                raise Unsupported(f"an index of type {numba_type}")
            values.append(self.context.cast(self.builder, value, numba_type, types.intp))
        shape = cgutils.unpack_tuple(self.builder, array.shape, array_type.ndim)
        strides = cgutils.unpack_tuple(self.builder, array.strides, array_type.ndim)
        pointer = cgutils.get_item_pointer2(self.context, self.builder, array.data, shape,
                                            strides, array_type.layout, values)
        return array_type, pointer

    def constant(self, value):
        if isinstance(value, (bool, np.bool_)):
            numba_type = types.boolean
        elif isinstance(value, int):
            numba_type = types.int64
        elif isinstance(value, float):
            numba_type = types.float64
        elif isinstance(value, np.number):
            numba_type = types.from_dtype(value.dtype)
        else:
            raise Unsupported(f"the value {value!r}")
        return self.context.get_constant(numba_type, value), numba_type

    def global_value(self, name):
        if name in self.namespace:
            return self.namespace[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise Unsupported(f"the name {name}")

    def attribute(self, e):
        if not isinstance(e.value, ast.Name) or e.value.id in self.slots:
            raise Unsupported("an attribute of a value")
        return getattr(self.global_value(e.value.id), e.attr)

    def callee(self, function):
        if isinstance(function, ast.Name) and function.id not in self.slots:
            return self.global_value(function.id)
        if isinstance(function, ast.Attribute):
            return self.attribute(function)
        raise Unsupported("a call of a value")

    def call(self, function, arguments):
        """function(*arguments) as Numba types and lowers it; scalar results only. Each
        (function, argument types) is typed once per process, and each signature's
        implementation looked up once: a call's typing is the same in every kernel."""
        argtypes = tuple(t for _, t in arguments)
        key = (function, argtypes)
        if key not in _signatures:
            function_type = self.typing.resolve_value_type(function)
            signature = self.typing.resolve_function_type(function_type, argtypes, {})
            _signatures[key] = function_type, signature
        function_type, signature = _signatures[key]
        if signature is None:
            raise Unsupported(f"{function} of {argtypes}")
        returned = signature.return_type
        if not isinstance(returned, (types.Number, types.Boolean)):
            raise Unsupported(f"{function} returns {returned}")
        values = self.arguments(signature, arguments)
        lookup = (self.context, function_type, signature)
        if lookup not in _implementations:
            _implementations[lookup] = self.context.get_function(function_type, signature)
        return _implementations[lookup](self.builder, values), signature.return_type


    def full(self, size, value):
        """np.full(size, value) (columns.py's accumulators): a C-contiguous array of
        value's type, allocated through Numba's runtime and filled here, as Numba's
        np.full does; its overload would be compiled by Numba's whole pipeline in
        each process (0.16-0.25 s)."""
        (size, size_type), (value, value_type) = size, value
        if not isinstance(size_type, types.Integer) or \
                not isinstance(value_type, (types.Number, types.Boolean)):
            raise Unsupported(f"np.full of {size_type}, {value_type}")
        array_type = types.Array(value_type, 1, "C")
        count = self.context.cast(self.builder, size, size_type, types.intp)
        array = _empty_nd_impl(self.context, self.builder, array_type, [count])
        with cgutils.for_range(self.builder, count) as loop:
            item = cgutils.gep(self.builder, array.data, loop.index)
            self.context.pack_value(self.builder, value_type, value, item)
        return array._getvalue(), array_type

    def arguments(self, signature, arguments):
        """The arguments cast to the signature's types; packed into one tuple for a
        function of *args (min, max)."""
        wanted = signature.args
        if len(wanted) == 1 and isinstance(wanted[0], types.BaseTuple) and \
                len(arguments) != 1:
            values = [self.context.cast(self.builder, v, t, element)
                      for (v, t), element in zip(arguments, wanted[0])]
            return [self.context.make_tuple(self.builder, wanted[0], values)]
        omitted = wanted[len(arguments):]       # defaults (np.full's dtype), as Numba passes them
        if len(wanted) < len(arguments) or not all(isinstance(t, types.Omitted) for t in omitted):
            raise Unsupported(f"{len(arguments)} arguments for {signature}")
        return [self.context.cast(self.builder, v, t, w) for (v, t), w in zip(arguments, wanted)] \
            + [self.context.get_constant_generic(self.builder, t, t.value) for t in omitted]


def _as_load(target):
    """The target of `x += ...` read as an expression."""
    node = type(target)(**{f: getattr(target, f) for f in target._fields})
    node.ctx = ast.Load()
    return ast.copy_location(node, target)


def _is_none(node):
    return isinstance(node, ast.Constant) and node.value is None
