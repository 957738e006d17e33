"""Bad input found by the API audit: each is a GraphcError of the right class whose
message names the op, the offending value or shapes, and the user's line; values
that a dtype cannot hold are refused instead of wrapping around; and where the
cpu device and the reference interpreter disagreed, they now agree."""
import contextlib
import re

import numpy as np
import pytest

import graphc as gc


@contextlib.contextmanager
def refused(error, pattern):
    """pytest.raises(error, match=pattern), and the message points at this file."""
    with pytest.raises(error, match=pattern) as info:
        yield info
    assert re.search(re.escape(__file__) + r":\d+", str(info.value)), str(info.value)


def run(outputs, *feeds, device="reference"):
    return gc.compile(outputs, device=device)(*feeds)


# -- integers that do not fit (A5) ------------------------------------------------------

@pytest.mark.parametrize("scalar", [2**40, np.int64(2**40)], ids=["python", "numpy"])
def test_a_scalar_too_big_for_an_int32_operand_is_a_dtype_error_not_a_wrap(scalar):
    i = gc.placeholder((2,), "int32", name="i")
    with refused(gc.DtypeError, r"add: int32 cannot hold value 1099511627776"):
        i + scalar


def test_a_scalar_too_big_for_int64_is_a_dtype_error_not_an_overflow_error():
    i = gc.placeholder((2,), "int64", name="i")
    with refused(gc.DtypeError, r"multiply: int64 cannot hold value 2361183241434822606848"):
        i * 2**71


def test_a_scalar_that_fits_keeps_the_operands_int32():
    i = gc.placeholder((2,), "int32", name="i")
    assert (i + (2**31 - 1)).dtype == np.int32


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_an_int64_feed_too_big_for_an_int32_placeholder_is_a_feed_error(device):
    i = gc.placeholder((2,), "int32", name="i")
    step = gc.compile(i + 0, device=device)
    with refused(gc.FeedError, r"'i'.*int32 cannot hold an array of int64 values "
                               r"from 2 to 1099511627781"):
        step(np.array([2**40 + 5, 2], np.int64))
    np.testing.assert_array_equal(step(np.array([5, 2], np.int64)), [5, 2])   # fits: converted


def test_a_uint64_feed_above_int64_is_a_feed_error_not_minus_one():
    i = gc.placeholder((2,), "int64", name="i")
    step = gc.compile(i + 0, device="reference")
    with refused(gc.FeedError, r"'i'.*int64 cannot hold an array of uint64 values"):
        step(np.array([2**64 - 1, 2], np.uint64))
    np.testing.assert_array_equal(step(np.array([7, 2], np.uint64)), [7, 2])


def test_a_uint64_constant_above_int64_is_a_dtype_error():
    with refused(gc.DtypeError, r"constant: int64 cannot hold an array of uint64 values "
                                r"from 9223372036854775813"):
        gc.constant(np.array([2**63 + 5], np.uint64))


def test_a_nan_variable_of_an_integer_dtype_is_a_dtype_error():
    with refused(gc.DtypeError, r"variable: int64 cannot hold .*nan.*NaN or infinity"):
        gc.variable(np.array([np.nan]), dtype="int64")


def test_assigning_values_too_big_for_an_int32_variable_is_a_dtype_error():
    v = gc.variable(np.zeros(2, np.int32), name="v")
    with refused(gc.DtypeError, r"assign: int32 cannot hold an array of int64"):
        v.assign(np.array([1, 2**40]))
    np.testing.assert_array_equal(v.value, [0, 0])


# -- compile and call (A6, B5) ----------------------------------------------------------

# -- floats past float32's range ---------------------------------------------------------

@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_float64_feed_past_float32s_range_is_a_feed_error_not_inf(device):
    """NumPy's default dtype is float64: a value above 3.4e38 would become inf as
    float32 and poison every parameter after one update. NaN and inf feeds pass."""
    x = gc.placeholder((3,), name="x")
    step = gc.compile(x * 1, device=device)
    with refused(gc.FeedError, r"'x'.*float32 cannot hold an array of float64 values "
                               r"from -1e\+39 to 2\.0 \(its largest finite value is "
                               r"3\.402823e\+38\)"):
        step(np.array([2.0, -1e39, 1.0]))
    got = step(np.array([np.inf, np.nan, -3e38]))
    np.testing.assert_array_equal(got, np.array([np.inf, np.nan, -3e38], np.float32))


def test_a_float64_variable_past_float32s_range_is_a_dtype_error():
    with refused(gc.DtypeError, r"variable: float32 cannot hold an array of float64 "
                                r"values from 0\.0 to 1e\+300"):
        gc.variable(np.array([0.0, 1e300]), dtype="float32")
    v = gc.variable(np.zeros(2, np.float32), name="v")
    with refused(gc.DtypeError, r"assign: float32 cannot hold"):
        v.assign(np.array([1.0, -1e39]))
    np.testing.assert_array_equal(v.value, [0, 0])
    assert gc.variable(np.array([np.inf, 1.0]), dtype="float32").value[0] == np.inf


def test_a_placeholder_listed_twice_in_inputs_is_a_compile_error():
    x = gc.placeholder((3,), name="x")
    with refused(gc.CompileError, r"compile: placeholder 'x' is listed twice in inputs"):
        gc.compile(gc.sum(x), inputs=[x, x])


def test_a_dict_of_feeds_mixed_with_keyword_feeds_is_a_feed_error():
    x = gc.placeholder((2,), name="x")
    y = gc.placeholder((2,), name="y")
    step = gc.compile(x + y, inputs=[x, y], device="reference")
    ones = np.ones(2, np.float32)
    with refused(gc.FeedError, r"call: feed either one dict or arrays.*put every feed in "
                               r"the dict"):
        step({x: ones}, y=ones)


@pytest.mark.parametrize("state", [None, [1, 2]], ids=["None", "list"])
def test_load_state_dict_of_a_non_dict_is_an_argument_error(state):
    w = gc.variable(np.ones(2, np.float32), name="w")
    step = gc.compile(w * 2, device="reference")
    with refused(gc.ArgumentError, r"load_state_dict: state must be a dict .* got "
                                   + type(state).__name__):
        step.load_state_dict(state)


@pytest.mark.parametrize("build, pattern", [
    (lambda y, w: gc.compile(None), r"compile: outputs must be a Tensor or a list of "
                                    r"Tensors, got NoneType"),
    (lambda y, w: gc.compile(y, updates=[(w, w)]), r"compile: updates must be a dict "
                                                   r"\{variable: new value\}, got list"),
    (lambda y, w: gc.compile(y, updates={w: None}), r"compile: the new value of variable "
                                                    r"'w': cannot use a NoneType"),
], ids=["outputs-None", "updates-list", "update-None"])
def test_compile_arguments_of_the_wrong_kind_are_compile_errors(build, pattern):
    w = gc.variable(np.ones(2, np.float32), name="w")
    with refused(gc.GraphcError, pattern) as info:
        build(gc.sum(w), w)
    assert isinstance(info.value, (gc.CompileError, gc.ArgumentError))


def test_summary_of_a_tensor_is_an_argument_error_saying_to_compile():
    x = gc.placeholder((2,), name="x")
    with refused(gc.ArgumentError, r"summary: expects a compiled executable .* got "
                                   r"<Tensor multiply"):
        gc.viz.summary(x * 2)


# -- integer powers (A7) ------------------------------------------------------------------

@pytest.mark.parametrize("exponent", [-1, np.array([-1, 2])], ids=["scalar", "array"])
def test_an_integer_to_a_negative_constant_power_is_a_dtype_error(exponent):
    i = gc.placeholder((2,), "int64", name="i")
    with refused(gc.DtypeError, r"power: integer base \(int64, shape \(2,\)\) to the "
                                r"negative exponent -1.*cast the base to a float"):
        i ** gc.constant(exponent) if isinstance(exponent, np.ndarray) else i ** exponent


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_integers_to_negative_tensor_powers_truncate_on_both_devices(device):
    base = gc.placeholder((5,), "int64", name="base")
    exponent = gc.placeholder((5,), "int64", name="exponent")
    out = run(base ** exponent, np.array([2, 1, -1, -1, 3]), np.array([-1, -3, -3, -2, 2]),
              device=device)
    np.testing.assert_array_equal(out, [0, 1, -1, 1, 9])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_zero_to_a_negative_tensor_power_is_zero_on_both_devices(device):
    """(Numba's own integer power gives INT_MIN for 0 ** -n.)"""
    base = gc.placeholder((2,), "int64", name="base")
    exponent = gc.placeholder((2,), "int64", name="exponent")
    out = run(base ** exponent, np.array([0, 0]), np.array([-1, 0]), device=device)
    np.testing.assert_array_equal(out, [0, 1])


# -- one_hot, full, complex values (A8, A14) -------------------------------------------------

@pytest.mark.parametrize("num_classes", [-1, 0, 2.5, None, True])
def test_one_hot_with_a_num_classes_that_is_not_a_positive_int_is_an_argument_error(
        num_classes):
    labels = gc.placeholder((3,), "int64", name="labels")
    with refused(gc.ArgumentError, r"one_hot: num_classes must be a positive int, got "
                                   + re.escape(repr(num_classes))):
        gc.one_hot(labels, num_classes)


def test_one_hot_takes_a_numpy_int_num_classes():
    labels = gc.placeholder((3,), "int64", name="labels")
    assert gc.one_hot(labels, np.int64(4)).shape == (3, 4)


@pytest.mark.parametrize("fill, error, pattern", [
    (None, gc.ArgumentError, r"full: fill value must be a real number, got None"),
    ("a", gc.ArgumentError, r"full: fill value must be a real number, got 'a'"),
    (1j, gc.DtypeError, r"full: complex value 1j is not supported"),
], ids=["None", "str", "complex"])
def test_full_with_a_fill_that_is_not_a_real_number_is_refused_when_built(fill, error, pattern):
    with refused(error, pattern):
        gc.full((2,), fill)


@pytest.mark.parametrize("fill, pattern", [
    (2**70, r"full: int64 cannot hold value 1180591620717411303424"),
    (float("nan"), r"full: int64 cannot hold value nan \(NaN or infinity\)"),
], ids=["too-big", "nan"])
def test_full_with_a_fill_an_integer_dtype_cannot_hold_is_a_dtype_error(fill, pattern):
    with refused(gc.DtypeError, pattern):
        gc.full((2,), fill, "int64")


@pytest.mark.parametrize("scalar", [1j, np.complex64(1)], ids=["python", "numpy"])
def test_adding_a_complex_scalar_is_a_dtype_error(scalar):
    x = gc.placeholder((2,), name="x")
    with refused(gc.DtypeError, r"add: complex value .* is not supported"):
        x + scalar


# -- plain Python errors that are now GraphcErrors (B1) -------------------------------------

def _case(call, error, pattern, name):
    return pytest.param(call, error, pattern, id=name)


@pytest.mark.parametrize("call, error, pattern", [
    _case(lambda a, f: gc.sum(a, axis=1.0), gc.ArgumentError,
          r"sum: axis must be an int, got 1\.0", "sum-axis-float"),
    _case(lambda a, f: a.sum(axis=0.0), gc.ArgumentError,
          r"sum: axis must be an int, got 0\.0", "method-axis-float"),
    _case(lambda a, f: gc.swapaxes(a, 0, 5), gc.ShapeError,
          r"swapaxes: axis 5 is out of range for shape \(3, 5\)", "swapaxes-5"),
    _case(lambda a, f: gc.swapaxes(a, 0, -5), gc.ShapeError,
          r"swapaxes: axis -5 is out of range", "swapaxes-minus-5"),
    _case(lambda a, f: gc.expand_dims(a, 0.5), gc.ArgumentError,
          r"expand_dims: axis must be an int, got 0\.5", "expand_dims-float"),
    _case(lambda a, f: a[..., ...], gc.ShapeError,
          r"getitem: an index can have only one Ellipsis", "two-ellipses"),
    _case(lambda a, f: a[0.5:2], gc.ShapeError,
          r"getitem: slice bounds must be ints or None, got 0\.5", "slice-float"),
    _case(lambda a, f: gc.pad(a, "x"), gc.ArgumentError,
          r"pad: pad_width must be ints.*got 'x'", "pad-str"),
    _case(lambda a, f: gc.pad(a, ((1, 1),) * 3), gc.ShapeError,
          r"pad: pad_width .* does not fit shape \(3, 5\)", "pad-too-many"),
    _case(lambda a, f: gc.pad(a, ((-1, 0), (0, 0))), gc.ArgumentError,
          r"pad: pad widths must be non-negative", "pad-negative"),
    _case(lambda a, f: gc.reshape(f, "ab"), gc.ArgumentError,
          r"reshape: a shape holds ints.*got 'ab'", "reshape-str"),
    _case(lambda a, f: gc.reshape(f, None), gc.ArgumentError,
          r"reshape: newshape must be an int", "reshape-None"),
    _case(lambda a, f: gc.reshape(f, gc.constant(np.array([2, 1]))), gc.ArgumentError,
          r"reshape: a shape holds ints.*got <Tensor", "reshape-tensor"),
    _case(lambda a, f: gc.arange(0, 1, 0), gc.ArgumentError,
          r"arange: step must not be zero", "arange-step-0"),
    _case(lambda a, f: gc.arange("a"), gc.ArgumentError,
          r"arange: start must be a real number", "arange-str"),
    _case(lambda a, f: f + [[1.0], [2.0, 3.0]], gc.ArgumentError,
          r"add: cannot make a tensor of .*nested lists differ in length", "ragged-operand"),
    _case(lambda a, f: gc.constant([[1], [1, 2]]), gc.ArgumentError,
          r"constant: cannot make a tensor of .*nested lists differ in length",
          "ragged-constant"),
    _case(lambda a, f: gc.placeholder((2,), name=5), gc.ArgumentError,
          r"placeholder: name must be a str, got 5", "placeholder-name"),
    _case(lambda a, f: gc.variable(np.ones(2), name=3), gc.ArgumentError,
          r"variable: name must be a str, got 3", "variable-name"),
    _case(lambda a, f: gc.leaky_relu(f, "a"), gc.ArgumentError,
          r"leaky_relu: negative_slope must be a real number, got 'a'", "leaky_relu-str"),
    _case(lambda a, f: gc.grad(gc.sum(f), None), gc.GradError,
          r"grad: xs must be a Tensor or a list of Tensors, got NoneType", "grad-xs-None"),
    _case(lambda a, f: np.asarray(f), gc.ArgumentError,
          r"is symbolic.*gc\.compile", "np-asarray"),
    _case(lambda a, f: np.sum(f), gc.ArgumentError,
          r"np\.sum: NumPy cannot compute symbolic tensor f: use gc\.sum", "np-sum"),
])
def test_a_bad_argument_is_a_graphc_error_naming_the_op_and_the_line(call, error, pattern):
    a = gc.placeholder((3, 5), name="a")
    f = gc.placeholder((2,), name="f")
    with refused(error, pattern):
        call(a, f)


# -- messages that named an internal op, or no op (B6) ---------------------------------------

def test_stacking_tensors_of_different_shapes_names_stack_and_the_shapes():
    a = gc.placeholder((3, 5), name="a")
    x = gc.placeholder((None, 4), name="x")
    with refused(gc.ShapeError, r"stack: shapes \(3, 5\), \(None, 4\) differ"):
        gc.stack([a, x])
    with refused(gc.ShapeError, r"stack: axis 3 is out of range"):
        gc.stack([a, a], axis=3)


@pytest.mark.parametrize("build, op", [
    (lambda a: gc.full((2,), 1, dtype="complex64"), "full"),
    (lambda a: gc.cast(a, "complex64"), "cast"),
    (lambda a: a.astype("complex64"), "cast"),
], ids=["full", "cast", "astype"])
def test_an_unsupported_dtype_names_the_op_and_the_line(build, op):
    a = gc.placeholder((2,), name="a")
    with refused(gc.DtypeError, op + r": dtype complex64 is not supported"):
        build(a)


def test_a_complex_constant_names_constant_and_the_line():
    with refused(gc.DtypeError, r"constant: arrays of dtype complex128 are not supported"):
        gc.constant(1j)


def test_clip_with_no_lower_bound_clips_only_from_above():
    a = gc.placeholder((3,), name="a")
    values = np.array([-5.0, 0.5, 3.0], np.float32)
    np.testing.assert_array_equal(run(gc.clip(a, None, 1.0), values), [-5.0, 0.5, 1.0])
    np.testing.assert_array_equal(run(gc.clip(a, 0.0, None), values), [0.0, 0.5, 3.0])


def test_a_tensor_slice_bound_names_getitem_and_suggests_take():
    a = gc.placeholder((3, 5), name="a")
    with refused(gc.ShapeError, r"getitem: slice bounds must be ints or None, got "
                                r"<Tensor.*use gc\.take"):
        a[gc.constant(1):2]


def test_a_fractional_dimension_in_reshape_is_named_not_truncated():
    a = gc.placeholder((3, 5), name="a")
    with refused(gc.ArgumentError, r"reshape: a shape holds ints .*got 1\.5 in \(1\.5, 10\)"):
        gc.reshape(a, (1.5, 10))


def test_arange_with_a_stop_and_a_step_only_uses_the_step():
    np.testing.assert_array_equal(gc.arange(10, step=3).value, [0, 3, 6, 9])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_an_update_whose_batch_size_is_not_the_variables_is_refused_at_the_call(device):
    # compile let (None, 3) stand for (1, 3); five rows used to make u a (5, 3) array
    x = gc.placeholder((None, 4), name="x")
    w = gc.variable(np.ones((4, 3), np.float32), name="w")
    u = gc.variable(np.zeros((1, 3), np.float32), name="u")
    step = gc.compile([], inputs=[x], updates={u: x @ w, w: w * 2}, device=device)
    with refused(gc.ShapeError, r"compile: update of variable 'u' of shape \(1, 3\) with a "
                                r"value of shape \(5, 3\) \(with fed shapes x=\(5, 4\)\)"):
        step(np.ones((5, 4), np.float32))
    assert u.value.shape == (1, 3) and (w.value == 1).all()     # nothing was updated
    step(np.ones((1, 4), np.float32))
    np.testing.assert_array_equal(u.value, [[4, 4, 4]])
