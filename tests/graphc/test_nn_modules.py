"""gc.nn modules: each layer against a float64 NumPy version of PyTorch's formula
(with the layer's own weights), registration and naming, train/eval graphs
over shared variables, initialization, errors, and one CPU-vs-reference model."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
from helpers import evaluate, rng

import graphc as gc
from graphc import nn

F64 = "float64"


def run(outputs, x):
    """Run outputs on the reference device with placeholder x fed with an array."""
    ph = gc.placeholder((None,) + x.shape[1:], x.dtype, name="x")
    return evaluate(outputs(ph), {ph: x})


# -- NumPy versions of PyTorch's formulas -------------------------------------------

def np_conv2d(x, w, b, stride, padding, dilation, groups):
    n, c, h, wd = x.shape
    out_ch, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, out_ch, ho, wo))
    per_group = out_ch // groups
    for o in range(out_ch):
        g = o // per_group
        for i in range(ho):
            for j in range(wo):
                rows = i * stride[0] + dilation[0] * np.arange(kh)
                cols = j * stride[1] + dilation[1] * np.arange(kw)
                patch = xp[:, g * cg:(g + 1) * cg][:, :, rows][:, :, :, cols]
                y[:, o, i, j] = np.sum(patch * w[o], axis=(1, 2, 3))
    return y + (0 if b is None else b.reshape(1, -1, 1, 1))


def np_pool(x, k, s, reduce):
    n, c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    y = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            y[:, :, i, j] = reduce(x[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
    return y


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# -- layers ---------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
def test_linear_is_x_times_weight_transposed_plus_bias(bias):
    layer = nn.Linear(5, 3, bias=bias, dtype=F64)
    x = rng(1).standard_normal((4, 2, 5))
    expected = x @ layer.weight.value.T + (layer.bias.value if bias else 0)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-12)
    assert (layer.bias is None) == (not bias)


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), ((1, 2), (2, 1), 2, 1), (1, 1, 1, 2)])
def test_conv2d_matches_numpy(stride, padding, dilation, groups):
    conv = nn.Conv2d(4, 6, (3, 2), stride, padding, dilation, groups, dtype=F64)
    x = rng(2).standard_normal((2, 4, 7, 6))
    pair = lambda v: (v, v) if isinstance(v, int) else v  # noqa: E731
    expected = np_conv2d(x, conv.weight.value, conv.bias.value, pair(stride), pair(padding),
                         pair(dilation), groups)
    np.testing.assert_allclose(run(conv, x), expected, rtol=1e-10, atol=1e-12)
    assert conv.weight.shape == (6, 4 // groups, 3, 2)


def test_conv2d_without_bias_and_same_padding_keeps_size():
    conv = nn.Conv2d(2, 3, 3, padding="same", bias=False, dtype=F64)
    x = rng(3).standard_normal((1, 2, 5, 5))
    expected = np_conv2d(x, conv.weight.value, None, (1, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(run(conv, x), expected, rtol=1e-10, atol=1e-12)
    assert [name for name, _ in conv.named_parameters()] == ["weight"]


def test_max_and_avg_pool_match_numpy():
    x = rng(4).standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(run(nn.MaxPool2d(2), x), np_pool(x, 2, 2, np.max))
    np.testing.assert_allclose(run(nn.AvgPool2d(3, stride=1), x), np_pool(x, 3, 1, np.mean),
                               rtol=1e-12)


@pytest.mark.parametrize("start,end,shape", [(1, -1, (2, 60)), (0, 1, (6, 4, 5)),
                                             (2, 3, (2, 3, 20))])
def test_flatten_merges_axes_start_to_end(start, end, shape):
    x = rng(5).standard_normal((2, 3, 4, 5))
    ph = gc.placeholder(x.shape, F64)
    np.testing.assert_array_equal(evaluate(nn.Flatten(start, end)(ph), {ph: x}),
                                  x.reshape(shape))


def test_flatten_keeps_an_unknown_batch():
    x = rng(5).standard_normal((3, 2, 2, 2))
    out = run(lambda ph: nn.Flatten()(ph), x)
    assert out.shape == (3, 8)
    np.testing.assert_array_equal(out, x.reshape(3, 8))


def test_embedding_picks_rows():
    emb = nn.Embedding(10, 4, dtype=F64)
    ids = np.array([[1, 9, 1], [0, 3, 2]])
    ph = gc.placeholder((None, 3), "int64")
    np.testing.assert_array_equal(evaluate(emb(ph), {ph: ids}), emb.weight.value[ids])


def test_embedding_padding_row_is_zero_and_gets_no_gradient():
    emb = nn.Embedding(5, 3, padding_idx=-1, dtype=F64)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.value[4], 0)
    ids = np.array([4, 1, 4, 1, 2])
    ph = gc.placeholder((5,), "int64")
    out = emb(ph)
    (grad,) = gc.grad(gc.sum(out), [emb.weight])
    values, grad_value = evaluate([out, grad], {ph: ids})
    np.testing.assert_array_equal(values, emb.weight.value[ids])
    np.testing.assert_array_equal(grad_value[:, 0], [0, 2, 1, 0, 0])


def test_layer_norm_matches_numpy():
    norm = nn.LayerNorm((3, 4), dtype=F64)
    norm.weight.assign(rng(6).standard_normal((3, 4)))
    norm.bias.assign(rng(7).standard_normal((3, 4)))
    x = rng(8).standard_normal((2, 3, 4))
    mu = x.mean((1, 2), keepdims=True)
    var = x.var((1, 2), keepdims=True)
    expected = (x - mu) / np.sqrt(var + 1e-5) * norm.weight.value + norm.bias.value
    np.testing.assert_allclose(run(norm, x), expected, rtol=1e-10)


@pytest.mark.parametrize("name,numpy_fn", [
    ("ReLU", lambda x: np.maximum(x, 0)),
    ("Sigmoid", lambda x: 1 / (1 + np.exp(-x))),
    ("Tanh", np.tanh),
    ("GELU", lambda x: 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))),
    ("LeakyReLU", lambda x: np.where(x > 0, x, 0.01 * x)),
    ("Softmax", lambda x: np_softmax(x, -1)),
    ("LogSoftmax", lambda x: np.log(np_softmax(x, -1))),
    ("Identity", lambda x: x),
])
@pytest.mark.filterwarnings("ignore:Implicit dimension choice")     # Softmax() on 2-D: axis 1
def test_activation_modules_match_numpy(name, numpy_fn):
    x = rng(9).standard_normal((3, 5)) * 3
    np.testing.assert_allclose(run(getattr(nn, name)(), x), numpy_fn(x), rtol=1e-7, atol=1e-12)


def test_softmax_dim_and_leaky_slope_arguments():
    x = rng(10).standard_normal((3, 4))
    np.testing.assert_allclose(run(nn.Softmax(dim=0), x), np_softmax(x, 0), rtol=1e-12)
    np.testing.assert_allclose(run(nn.LeakyReLU(0.2), x), np.where(x > 0, x, 0.2 * x))


# -- train / eval: two graphs over the same variables -----------------------------------

def test_batchnorm_train_updates_running_stats_that_eval_reads():
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype=F64)
    bn.weight.assign([1.0, 2.0, 3.0])
    bn.bias.assign([0.5, 0.0, -0.5])
    ph = gc.placeholder((None, 3, 2, 2), F64)
    train = gc.compile(bn(ph), inputs=[ph])
    evaluate_step = gc.compile(bn.eval()(ph), inputs=[ph])
    x = rng(11).standard_normal((4, 3, 2, 2)) * 2 + 1
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    shape = (1, 3, 1, 1)
    w, b = bn.weight.value.reshape(shape), bn.bias.value.reshape(shape)
    expected_train = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + 1e-5) * w + b
    np.testing.assert_allclose(train(x), expected_train, rtol=1e-10)
    running_mean = 0.2 * mean
    running_var = 0.8 + 0.2 * var * 16 / 15                  # unbiased variance, n = 16
    np.testing.assert_allclose(bn.running_mean.value, running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.value, running_var, rtol=1e-12)
    expected_eval = (x - running_mean.reshape(shape)) / np.sqrt(
        running_var.reshape(shape) + 1e-5) * w + b
    np.testing.assert_allclose(evaluate_step(x), expected_eval, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.value, running_mean, rtol=1e-12)
    assert bn.num_batches_tracked.value == 1                 # counted in training only


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_batchnorm_counts_its_training_batches_and_loads_pytorchs_state_dict(device):
    """num_batches_tracked, PyTorch's third buffer: +1 per training call (twice for a
    layer called twice in one step), none in eval; a PyTorch BatchNorm2d's
    state_dict (its keys and 0-d int64 count) loads strictly."""
    bn = nn.BatchNorm2d(2)
    assert sorted(bn.state_dict()) == ["bias", "num_batches_tracked", "running_mean",
                                       "running_var", "weight"]
    ph = gc.placeholder((None, 2, 3, 3))
    x = rng(13).standard_normal((4, 2, 3, 3)).astype("float32")
    once, twice = (gc.compile(out, inputs=[ph], device=device) for out in (bn(ph), bn(bn(ph))))
    evaluate_step = gc.compile(bn.eval()(ph), inputs=[ph], device=device)
    once(x), twice(x), evaluate_step(x)
    assert bn.num_batches_tracked.value == 3 and bn.num_batches_tracked.value.dtype == np.int64
    torch_state = {"weight": np.ones(2, "float32"), "bias": np.zeros(2, "float32"),
                   "running_mean": np.array([0.5, -0.5], "float32"),
                   "running_var": np.array([2.0, 3.0], "float32"),
                   "num_batches_tracked": np.array(7, np.int64)}
    bn.load_state_dict(torch_state)
    assert bn.num_batches_tracked.value == 7
    np.testing.assert_allclose(evaluate_step(x)[:, 0], (x[:, 0] - 0.5) / np.sqrt(2.0 + 1e-5),
                               rtol=1e-5, atol=1e-6)


def test_batchnorm1d_without_running_stats_always_uses_the_batch():
    bn = nn.BatchNorm1d(2, affine=False, track_running_stats=False, dtype=F64).eval()
    assert bn.variables() == [] and bn.num_batches_tracked is None      # as PyTorch's
    x = rng(12).standard_normal((5, 2))
    np.testing.assert_allclose(run(bn, x), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5),
                               rtol=1e-10)


def test_dropout_is_random_in_train_and_identity_in_eval():
    model = nn.Sequential(nn.Identity(), nn.Dropout(0.25))
    ph = gc.placeholder((200, 50), F64)
    train_out = model(ph)
    eval_out = model.eval()(ph)
    assert not model.training and not model[1].training
    x = rng(13).standard_normal((200, 50)) + 5
    a, b = evaluate([train_out, eval_out], {ph: x})
    kept = a != 0
    np.testing.assert_allclose(a[kept], x[kept] / 0.75, rtol=1e-12)
    assert abs(1 - kept.mean() - 0.25) < 0.02
    np.testing.assert_array_equal(b, x)
    assert model.train() is model and model[1].training


# -- registration, names, traversal --------------------------------------------------------

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.head = nn.Sequential(OrderedDict(flat=nn.Flatten(), fc=nn.Linear(8, 3)))
        self.scale = gc.variable(np.ones(3, "float32"), name="scale")

    def forward(self, x):
        return self.head(gc.nn.relu(self.bn(self.conv1(x)))) * self.scale


def test_named_parameters_buffers_and_variables_follow_registration():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "scale", "conv1.weight", "conv1.bias", "bn.weight", "bn.bias", "head.fc.weight",
        "head.fc.bias"]
    assert [n for n, _ in net.named_buffers()] == ["bn.running_mean", "bn.running_var",
                                                   "bn.num_batches_tracked"]
    assert len(net.variables()) == 10 and net.parameters()[1] is net.conv1.weight
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "BatchNorm2d", "Sequential"]
    assert [type(m).__name__ for m in net.modules()] == [
        "Net", "Conv2d", "BatchNorm2d", "Sequential", "Flatten", "Linear"]


def test_variables_are_named_after_their_path_and_forward_is_scoped():
    net = Net()
    x = gc.placeholder((None, 1, 4, 4), name="x")
    step = gc.compile(net(x), inputs=[x])
    assert set(step.state_dict()) == {name for name, _ in net.named_variables()}
    scopes = {node.scope for node in x.graph.nx.nodes if node.op.name == "conv2d"}
    assert scopes == {"Net/conv1"}
    assert net.head.fc.weight.node.scope == "Net/head/fc"


def test_shared_module_and_tied_weights_are_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    model.extra = nn.Linear(3, 3)
    model.extra.weight = shared.weight
    assert len(model.parameters()) == 3
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias", "extra.bias"]
    assert shared.weight.name == "0.weight"


def test_setting_none_or_deleting_unregisters():
    layer = nn.Linear(2, 2)
    layer.bias = None
    assert layer.parameters() == [layer.weight]
    del layer.weight
    assert layer.parameters() == []


def test_assigning_before_init_is_an_error():
    class Broken(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
    with pytest.raises(gc.GraphcError, match="super"):
        Broken()


def test_sequential_indexing_length_iteration_and_slices():
    layers = [nn.Linear(4, 4, dtype=F64), nn.Tanh(), nn.Linear(4, 2, dtype=F64)]
    model = nn.Sequential(*layers)
    assert len(model) == 3 and list(model) == layers and model[-1] is layers[2]
    with pytest.raises(IndexError):
        model[3]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and head.parameters() == layers[0].parameters()
    assert layers[0].weight.name == "0.weight"      # slicing does not rename
    x = rng(14).standard_normal((3, 4))
    w0, b0, w1, b1 = (p.value for p in model.parameters())
    np.testing.assert_allclose(run(model, x), np.tanh(x @ w0.T + b0) @ w1.T + b1, rtol=1e-12)
    np.testing.assert_allclose(run(head, x), np.tanh(x @ w0.T + b0), rtol=1e-12)


def test_repr_reads_like_torch():
    model = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                          nn.Linear(16, 10, bias=False), nn.Dropout(0.1))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=16, out_features=10, bias=False)\n"
        "  (5): Dropout(p=0.1, inplace=False)\n"
        ")")


def test_state_dict_round_trip_and_atomic_load():
    net = Net()
    state = net.state_dict()
    state["head.fc.bias"] = np.arange(3.0)
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.head.fc.bias.value, np.arange(3.0))
    bad = dict(state, **{"scale": np.zeros(4), "head.fc.bias": np.ones(3)})
    with pytest.raises(gc.ShapeError):
        net.load_state_dict(bad)
    np.testing.assert_array_equal(net.head.fc.bias.value, np.arange(3.0))



def test_deepcopy_gives_new_variables_in_the_same_graph_with_ties_kept():
    shared = nn.Linear(3, 3, dtype=F64)
    model = nn.Sequential(shared, nn.BatchNorm1d(3, dtype=F64), shared)
    model.train(False)
    twin = copy.deepcopy(model)
    assert twin.training is False and isinstance(twin[1], nn.BatchNorm1d)
    assert twin[0] is twin[2] and len(twin.parameters()) == 4       # the tie is kept
    assert [n for n, _ in twin.named_variables()] == [n for n, _ in model.named_variables()]
    for (name, old), (_, new) in zip(model.named_variables(), twin.named_variables()):
        assert new is not old and new.graph is old.graph, name
        np.testing.assert_array_equal(new.value, old.value)
    x = gc.placeholder((None, 3), F64, name="x")
    before = rng(3).standard_normal((5, 3))
    together = gc.compile([model(x), twin(x)], inputs=[x])      # one graph holds both
    first, second = together(before)
    np.testing.assert_array_equal(first, second)
    twin.load_state_dict({"0.weight": np.zeros((3, 3))}, strict=False)   # copies are separate
    assert not np.any(twin[2].weight.value)
    assert np.any(shared.weight.value != 0)
    outer = nn.Sequential(OrderedDict(body=twin))
    assert outer.body[0].weight.name.startswith("body.0.weight")


# -- initialization ---------------------------------------------------------------------

def test_default_inits_follow_pytorch_bounds():
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight.value, layer.bias.value):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.95 * bound
    conv = nn.Conv2d(4, 8, 3, groups=2)
    assert np.abs(conv.weight.value).max() <= 1 / math.sqrt(2 * 9)
    emb = nn.Embedding(300, 100).weight.value
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1) < 0.02
    bn = nn.BatchNorm1d(3)
    assert bn.weight.value.tolist() == [1, 1, 1] and bn.running_var.value.tolist() == [1, 1, 1]
    assert layer.weight.dtype == np.float32


def test_manual_seed_makes_inits_reproducible():
    gc.manual_seed(7)
    a = nn.Sequential(nn.Linear(3, 4), nn.Embedding(5, 2)).state_dict()
    gc.manual_seed(7)
    b = nn.Sequential(nn.Linear(3, 4), nn.Embedding(5, 2)).state_dict()
    gc.manual_seed(8)
    c = nn.Linear(3, 4).weight.value
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["0.weight"], c)


def test_init_functions_fill_arrays_and_variables():
    w = gc.variable(np.ones((20, 30)), name="w")
    nn.init.zeros_(w)
    assert not w.value.any()
    bound = math.sqrt(6 / 50)
    nn.init.xavier_uniform_(w)
    assert 0.9 * bound < np.abs(w.value).max() <= bound
    array = nn.init.kaiming_uniform_(np.empty((20, 30)), nonlinearity="relu")
    assert 0.9 * math.sqrt(6 / 30) < np.abs(array).max() <= math.sqrt(6 / 30)
    assert nn.init.ones_(np.zeros(3)).tolist() == [1, 1, 1]


# -- errors --------------------------------------------------------------------------------

def test_linear_with_wrong_feature_count_names_layer_and_line():
    x = gc.placeholder((None, 5))
    with pytest.raises(gc.ShapeError) as info:
        nn.Linear(4, 2)(x)
    text = str(info.value)
    assert "Linear" in text and "(None, 5)" in text and "test_nn_modules.py" in text


@pytest.mark.parametrize("make,shape,dtype,error", [
    (lambda: nn.Conv2d(3, 4, 3), (2, 3, 8), "float32", gc.ShapeError),
    (lambda: nn.Conv2d(3, 4, 3), (2, 2, 8, 8), "float32", gc.ShapeError),
    (lambda: nn.BatchNorm2d(3), (2, 3), "float32", gc.ShapeError),
    (lambda: nn.BatchNorm1d(3), (2, 4), "float32", gc.ShapeError),
    (lambda: nn.Embedding(3, 4), (2,), "float32", gc.DtypeError),
    (lambda: nn.LayerNorm(4), (2, 3), "float32", gc.ShapeError),
])
def test_inputs_that_do_not_fit_raise_graphc_errors(make, shape, dtype, error):
    layer = make()
    with pytest.raises(error, match=type(layer).__name__):
        layer(gc.placeholder(shape, dtype))


def test_bad_constructor_arguments_raise_graphc_errors():
    with pytest.raises(gc.GraphcError):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(gc.GraphcError):
        nn.Dropout(1.5)
    with pytest.raises(gc.GraphcError):
        nn.Linear(2, 2, dtype="int32")



@pytest.mark.parametrize("make,words", [
    (lambda: nn.Linear(-1, 3), r"Linear: in_features must be non-negative, got -1"),
    (lambda: nn.Linear("a", 3), r"Linear: in_features must be an int, got 'a'"),
    (lambda: nn.Linear(None, 3), r"Linear: in_features must be an int, got None"),
    (lambda: nn.Linear(3, 2.5), r"Linear: out_features must be an int, got 2.5"),
    (lambda: nn.Conv2d(1, -2, 3), r"Conv2d: out_channels must be non-negative, got -2"),
    (lambda: nn.Conv2d(1, 2, -1), r"Conv2d: kernel_size must be positive, got -1"),
    (lambda: nn.Conv2d(1, 2, 2.5), r"Conv2d: kernel_size must be an int or a pair"),
    (lambda: nn.Conv2d(4, 4, 3, groups=2.0), r"Conv2d: groups must be an int, got 2.0"),
    (lambda: nn.Conv2d(4, 4, 3, groups=3), r"Conv2d: .*divisible by groups 3"),
    (lambda: nn.Embedding(-1, 3), r"Embedding: num_embeddings must be non-negative"),
    (lambda: nn.Embedding(2.5, 3), r"Embedding: num_embeddings must be an int, got 2.5"),
    (lambda: nn.Embedding(5, 3, padding_idx=1.5), r"Embedding: padding_idx must be an int"),
    (lambda: nn.Embedding(5, 3, padding_idx=5), r"Embedding: padding_idx 5 is out of range"),
    (lambda: nn.BatchNorm1d(-3), r"BatchNorm1d: num_features must be non-negative, got -3"),
    (lambda: nn.BatchNorm2d(2.5), r"BatchNorm2d: num_features must be an int, got 2.5"),
    (lambda: nn.LayerNorm(-3), r"LayerNorm: normalized_shape must be non-negative"),
    (lambda: nn.LayerNorm((2, "a")), r"LayerNorm: normalized_shape must be an int or a seq"),
    (lambda: nn.Dropout("a"), r"Dropout: p must be a probability in \[0, 1\], got 'a'"),
    (lambda: nn.Dropout(float("nan")), r"Dropout: p must be a probability"),
])
def test_constructor_arguments_of_the_wrong_kind_or_value_raise_argument_error(make, words):
    with pytest.raises(gc.ArgumentError, match=words) as info:
        make()
    assert info.value.loc.file == __file__          # the user's line
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_numpy_integers_are_accepted_wherever_ints_are():
    linear = nn.Linear(np.int64(3), np.int32(2))
    assert (linear.in_features, linear.out_features) == (3, 2)
    assert type(linear.in_features) is int
    conv = nn.Conv2d(np.int64(1), 2, np.int64(3), stride=(np.int64(1), 1), groups=np.int8(1))
    assert conv.kernel_size == (3, 3) and conv.stride == (1, 1)
    assert nn.Embedding(np.int64(5), 2, padding_idx=np.int64(-1)).padding_idx == 4
    assert nn.LayerNorm(np.int64(4)).normalized_shape == (4,)
    assert nn.BatchNorm1d(np.int64(3)).weight.shape == (3,)


def test_a_weight_larger_than_memory_is_an_argument_error_with_its_bytes():
    with pytest.raises(gc.ArgumentError, match=r"Linear: a float32 array of shape "
                                               r"\(1000000, 1000000\) needs "
                                               r"4,000,000,000,000 bytes"):
        nn.Linear(10**6, 10**6)


@pytest.mark.parametrize("make,words", [
    (lambda: nn.Sequential(nn.ReLU(), 3), r"Sequential: item 1 is of type int, not a Module"),
    (lambda: nn.Sequential(OrderedDict(act=nn.ReLU(), fc=None)),
     r"Sequential: item fc is of type NoneType, not a Module"),
    (lambda: nn.ModuleList([nn.ReLU(), "relu"]), r"ModuleList: item 1 is of type str"),
    (lambda: nn.ModuleList([nn.ReLU()]).append(3), r"ModuleList: item 1 is of type int"),
])
def test_containers_refuse_what_is_not_a_module(make, words):
    with pytest.raises(gc.ArgumentError, match=words):
        make()


def test_a_refused_append_leaves_the_list_as_it_was():
    layers = nn.ModuleList([nn.ReLU()])
    with pytest.raises(gc.ArgumentError):
        layers.append(3)
    assert len(layers) == 1 and not hasattr(layers, "1")


def test_load_state_dict_errors_name_the_state_dict_key():
    layer = nn.Linear(3, 2)                         # root level: graph name 'weight_<n>'
    state = {"weight": np.ones((3, 2)), "bias": np.zeros(2)}
    with pytest.raises(gc.ShapeError, match=r"load_state_dict: .* variable 'weight' of "
                                            r"shape \(2, 3\)") as info:
        layer.load_state_dict(state)
    assert info.value.loc.file == __file__


def test_load_state_dict_of_a_list_is_an_argument_error():
    with pytest.raises(gc.ArgumentError, match="load_state_dict: state must be a dict"):
        nn.Linear(3, 2).load_state_dict([1, 2])


# -- a compiled model on the CPU backend -------------------------------------------------

def test_small_cnn_on_cpu_matches_reference_with_gradients():
    gc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3 * 3 * 3, 4))
    x = gc.placeholder((None, 1, 6, 6), name="x")
    y = gc.placeholder((None,), "int64", name="y")
    loss = gc.nn.cross_entropy(model(x), y)
    outputs = [loss] + gc.grad(loss, model.parameters())
    feeds = (rng(15).standard_normal((5, 1, 6, 6)).astype("float32"), np.arange(5) % 4)
    expected = gc.compile(outputs, inputs=[x, y], device="reference")(*feeds)
    got = gc.compile(outputs, inputs=[x, y], device="cpu")(*feeds)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=1e-5)
