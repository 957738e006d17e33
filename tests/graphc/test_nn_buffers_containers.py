"""gc.nn.Parameter, Module.register_buffer and gc.nn.ModuleDict: what PyTorch's
do to registration, parameters(), named_buffers(), state_dict() keys and
load_state_dict(), deep copies, compiled graphs (cpu against reference) and
the errors of bad arguments."""
import copy

import numpy as np
import pytest
from helpers import rng

import graphc as gc
from graphc import nn

F64 = "float64"


class Scaled(nn.Module):
    """x * scale + offset, masked: a parameter, a buffer, a non-persistent buffer."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.full(3, 2.0))
        self.register_buffer("mask", np.array([1.0, 0.0, 1.0]))
        self.register_buffer("offset", np.full(3, 0.5), persistent=False)

    def forward(self, x):
        return (x * self.scale + self.offset) * self.mask


# -- Parameter ----------------------------------------------------------------------------

def test_parameter_is_a_trainable_variable_holding_a_copy():
    data = np.arange(3.0)
    p = nn.Parameter(data)
    data[0] = 7.0
    assert p.op == "variable" and p.node.attrs["state"].trainable
    assert isinstance(p, nn.Parameter) and p.dtype == np.float64
    np.testing.assert_array_equal(p.value, [0.0, 1.0, 2.0])
    assert nn.Parameter([1.5, 2.5]).dtype == np.float32          # Python floats: float32
    assert nn.Parameter().shape == (0,)


def test_parameter_set_on_a_module_is_a_parameter_named_after_its_path():
    model = nn.Sequential(Scaled())
    assert [name for name, _ in model.named_parameters()] == ["0.scale"]
    assert model.parameters() == [model[0].scale]
    assert model[0].scale.name == "0.scale"
    assert not isinstance(model[0].mask, nn.Parameter)
    assert not isinstance(np.ones(3), nn.Parameter)


def test_parameter_without_grad_is_listed_with_the_buffers():
    model = nn.Module()
    model.frozen = nn.Parameter(np.ones(2), requires_grad=False)
    assert model.parameters() == [] and model.buffers() == [model.frozen]
    assert list(model.state_dict()) == ["frozen"]


@pytest.mark.parametrize("data,error,words", [
    ("abc", gc.DtypeError, r"Parameter: arrays of dtype <U3"),
    (gc.placeholder((2,)), gc.ArgumentError, r"Parameter: 'parameter' needs an array, .*symbolic"),
    ([1, 2], gc.DtypeError, r"Parameter: only floating-point data can require gradients .* "
                            r"got int64"),
    (gc.constant(np.array([True])), gc.DtypeError, "can require gradients .* got bool"),
])
def test_parameter_of_what_holds_no_numbers_is_refused(data, error, words):
    with pytest.raises(error, match=words) as info:
        nn.Parameter(data)
    assert info.value.loc.file == __file__


# -- buffers ------------------------------------------------------------------------------

def test_buffers_are_in_state_dict_but_not_parameters():
    model = Scaled()
    assert [name for name, _ in model.named_parameters()] == ["scale"]
    assert [name for name, _ in model.named_buffers()] == ["mask", "offset"]
    assert list(model.state_dict()) == ["scale", "mask"]          # offset: persistent=False
    assert not model.mask.node.attrs["state"].trainable
    bn = nn.BatchNorm1d(3)                  # BatchNorm's running stats: the same kind of state
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    assert not bn.running_mean.node.attrs["state"].trainable


def test_load_state_dict_ignores_non_persistent_buffers():
    model = Scaled()
    model.load_state_dict({"scale": np.ones(3), "mask": np.zeros(3)})
    np.testing.assert_array_equal(model.mask.value, 0)
    with pytest.raises(gc.ShapeError, match=r"unexpected keys \['offset'\]"):
        model.load_state_dict({"scale": np.ones(3), "mask": np.zeros(3),
                               "offset": np.ones(3)})


def test_buffer_is_read_by_compiled_steps_and_gets_no_gradient():
    model = Scaled()
    x = gc.placeholder((None, 3), F64, name="x")
    y = gc.sum(model(x))
    outputs = [y] + gc.grad(y, model.parameters())
    data = rng(1).standard_normal((4, 3))
    for device in ("reference", "cpu"):
        value, grad = gc.compile(outputs, inputs=[x], device=device)(data)
        np.testing.assert_allclose(value, np.sum((data * 2 + 0.5) * [1, 0, 1]), rtol=1e-12)
        np.testing.assert_allclose(grad, data.sum(0) * [1, 0, 1], rtol=1e-12)
    step = gc.compile(y, inputs=[x], device="cpu")
    model.load_state_dict({"scale": np.full(3, 2.0), "mask": np.ones(3)})
    np.testing.assert_allclose(step(data), np.sum(data * 2 + 0.5), rtol=1e-12)


def test_buffer_of_a_sub_module_is_named_after_its_path():
    outer = nn.Sequential()
    outer.inner = Scaled()
    assert outer.inner.mask.name == "inner.mask"
    assert list(outer.state_dict()) == ["inner.scale", "inner.mask"]


def test_a_non_trainable_variable_is_registered_itself():
    model = nn.Module()
    counter = gc.variable(np.zeros((), np.int64), name="count", trainable=False)
    model.register_buffer("count", counter)
    assert model.count is counter and model.buffers() == [counter]


def test_an_empty_buffer_slot_fills_and_keeps_its_persistence():
    model = nn.Module()
    model.register_buffer("cache", None, persistent=False)
    model.register_buffer("stats", None)
    assert model.cache is None and model.state_dict() == {} and model.buffers() == []
    model.cache = np.ones(2)
    model.stats = np.arange(3.0)
    assert [n for n, _ in model.named_buffers()] == ["cache", "stats"]
    assert list(model.state_dict()) == ["stats"]
    np.testing.assert_array_equal(model.state_dict()["stats"], [0.0, 1.0, 2.0])
    model.stats = None
    assert model.state_dict() == {} and "stats" in model._buffers


def test_register_buffer_before_init_is_an_error():
    class Early(nn.Module):
        def __init__(self):
            self.register_buffer("mask", np.ones(2))
    with pytest.raises(gc.GraphcError, match="register_buffer: .*super"):
        Early()


def test_deepcopy_keeps_buffers_persistence_and_empty_slots():
    model = Scaled()
    model.register_buffer("slot", None)
    twin = copy.deepcopy(model)
    assert [n for n, _ in twin.named_buffers()] == ["mask", "offset"]
    assert list(twin.state_dict()) == ["scale", "mask"]
    assert twin.mask is not model.mask
    twin.slot = np.zeros(1)
    assert list(twin.state_dict()) == ["scale", "mask", "slot"]


def test_deleting_a_buffer_unregisters_it():
    model = Scaled()
    del model.offset
    assert [n for n, _ in model.named_buffers()] == ["mask"]
    model.offset = gc.variable(np.zeros(3), trainable=False)      # a new, persistent buffer
    assert list(model.state_dict()) == ["scale", "mask", "offset"]


@pytest.mark.parametrize("name,value,words", [
    ("scale", np.ones(3), r"attribute 'scale' already exists and is not a buffer"),
    ("training", np.ones(3), r"attribute 'training' already exists"),
    ("a.b", np.ones(3), r"buffer name must be a non-empty string without '.', got 'a.b'"),
    ("", np.ones(3), r"buffer name must be a non-empty string"),
    (3, np.ones(3), r"buffer name must be a non-empty string .*got 3"),
    ("x", "placeholder", r"'x' needs an array, got .*placeholder.*which is symbolic"),
    ("w", "parameter", r"'w' needs an array, got .* which is a trainable variable"),
])
def test_register_buffer_refuses_bad_names_and_values(name, value, words):
    model = Scaled()
    value = {"placeholder": gc.placeholder((3,)),
             "parameter": gc.variable(np.ones(3))}.get(value, value) \
        if isinstance(value, str) else value
    with pytest.raises(gc.ArgumentError, match="register_buffer: " + words) as info:
        model.register_buffer(name, value)
    assert info.value.loc.file == __file__
    assert [n for n, _ in model.named_variables()] == ["scale", "mask", "offset"]


# -- ModuleDict ---------------------------------------------------------------------------

class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleDict({"cls": nn.Linear(4, 3, dtype=F64),
                                    "box": nn.Linear(4, 2, bias=False, dtype=F64)})

    def forward(self, x):
        return gc.concatenate([self.heads[k](x) for k in self.heads], axis=1)


def test_module_dict_keys_name_the_variables():
    model = Heads()
    assert list(model.state_dict()) == ["heads.cls.weight", "heads.cls.bias",
                                        "heads.box.weight"]
    assert model.heads["box"].weight.name == "heads.box.weight"
    assert [type(m).__name__ for m in model.modules()] == ["Heads", "ModuleDict", "Linear",
                                                           "Linear"]


def test_module_dict_behaves_as_an_ordered_dict():
    layers = nn.ModuleDict()
    relu, tanh, lin = nn.ReLU(), nn.Tanh(), nn.Linear(2, 2)
    layers["act"] = relu
    layers.update([("fc", lin), ("out", tanh)])
    assert len(layers) == 3 and list(layers) == ["act", "fc", "out"] and "fc" in layers
    assert layers.keys() == ["act", "fc", "out"] and layers.values() == [relu, lin, tanh]
    assert layers.items()[1] == ("fc", lin)
    layers["act"] = nn.Sigmoid()                       # replaced in place
    assert layers.keys() == ["act", "fc", "out"] and isinstance(layers["act"], nn.Sigmoid)
    assert layers.pop("fc") is lin and layers.parameters() == [] and not hasattr(layers, "fc")
    del layers["out"]
    assert layers.keys() == ["act"]
    layers.clear()
    assert len(layers) == 0
    with pytest.raises(KeyError):
        layers["missing"]
    with pytest.raises(KeyError):
        del layers["missing"]
    assert repr(nn.ModuleDict({"a": nn.ReLU()})) == "ModuleDict(\n  (a): ReLU()\n)"


def test_module_dict_model_on_cpu_matches_reference_with_gradients():
    model = Heads()
    x = gc.placeholder((None, 4), F64, name="x")
    out = model(x)
    outputs = [out] + gc.grad(gc.sum(out * out), model.parameters())
    data = rng(2).standard_normal((5, 4))
    expected = gc.compile(outputs, inputs=[x], device="reference")(data)
    got = gc.compile(outputs, inputs=[x], device="cpu")(data)
    cls, box = model.heads["cls"], model.heads["box"]
    np.testing.assert_allclose(expected[0], np.concatenate(
        [data @ cls.weight.value.T + cls.bias.value, data @ box.weight.value.T], 1), rtol=1e-12)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make,words", [
    (lambda: nn.ModuleDict({"a": 3}), r"ModuleDict: item a is of type int, not a Module"),
    (lambda: nn.ModuleDict({1: nn.ReLU()}), r"ModuleDict: keys must be strings, got 1"),
    (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), r"ModuleDict: key 'a.b' must be non-empty"),
    (lambda: nn.ModuleDict({"keys": nn.ReLU()}), r"ModuleDict: key 'keys' is the name of an "
                                                  r"attribute of ModuleDict"),
    (lambda: nn.ModuleDict([nn.ReLU()]), r"ModuleDict: update takes a mapping or \(key, "
                                         r"module\) pairs"),
])
def test_module_dict_refuses_bad_keys_and_items(make, words):
    with pytest.raises(gc.ArgumentError, match=words) as info:
        make()
    assert info.value.loc.file == __file__


def test_a_refused_update_adds_nothing():
    layers = nn.ModuleDict({"a": nn.ReLU()})
    with pytest.raises(gc.ArgumentError):
        layers.update({"b": nn.Tanh(), "c": "not a module"})
    assert layers.keys() == ["a"]

