"""Optimizer.add_param_group: PyTorch's rules (the constructor's hyperparameters by
default, a parameter in one group only), new variables for the group, and what a
step compiled before it does (it leaves the new group alone, with a warning;
minimize again for a step that updates it)."""
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc.optim import SGD, Adam, OptimizerError
from graphc.optim.lr_scheduler import ExponentialLR


def variable(name, value=1.0):
    return gc.variable(np.full(3, value, "float32"), name=name)


def test_new_group_takes_its_own_lr_and_the_constructors_other_hyperparameters():
    w, b = variable("w"), variable("b")
    optimizer = SGD([w], lr=0.1, momentum=0.9, weight_decay=0.01)
    optimizer.lr = 0.05                                  # scheduled: not the default
    optimizer.add_param_group({"params": b, "nesterov": True})
    group = optimizer.param_groups[1]
    assert group["lr"] == 0.1 and group["momentum"] == 0.9 and group["nesterov"] is True
    assert group["weight_decay"] == 0.01 and group["params"] == [b]
    assert group.lr_variable.name == "SGD/group1/lr"
    assert [v.name for v in optimizer.state_variables()] == ["w/momentum_buffer",
                                                             "b/momentum_buffer"]
    optimizer.add_param_group({"params": [variable("c")], "lr": 0.5})
    assert [g["lr"] for g in optimizer.param_groups] == [0.05, 0.1, 0.5]


def test_minimize_after_add_param_group_updates_the_new_group_at_its_rate():
    w, b = variable("w"), variable("b")
    optimizer = SGD([w], lr=0.1)
    optimizer.add_param_group({"params": [b], "lr": 0.5})
    step = gc.compile([], updates=optimizer.minimize(gc.sum(w) + gc.sum(b)))
    step()
    np.testing.assert_array_equal(w.value, np.float32(1 - np.float32(0.1)))
    np.testing.assert_array_equal(b.value, np.float32(1 - np.float32(0.5)))


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_step_compiled_before_leaves_the_new_group_alone_and_a_warning_says_so(device):
    w, b = variable("w"), variable("b")
    optimizer = Adam([w], lr=0.1)
    loss = gc.sum(w * w) + gc.sum(b * b)
    old_step = gc.compile([], updates=optimizer.minimize(loss), device=device)
    with pytest.warns(UserWarning, match=r"Adam.add_param_group: updates built before .* "
                                         r"update only the first 1 parameter groups; call "
                                         r"minimize\(\) again"):
        optimizer.add_param_group({"params": [b], "lr": 0.2})
    old_step()
    np.testing.assert_array_equal(b.value, np.ones(3, "float32"))
    assert optimizer._state[b]["step"].value == 0
    new_step = gc.compile([], updates=optimizer.minimize(loss), device=device)
    new_step()
    assert optimizer._state[b]["step"].value == 1 and b.value[0] < 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")              # nothing built yet: nothing to say
        SGD([variable("c")]).add_param_group({"params": [variable("d")]})


def test_a_scheduler_made_after_schedules_the_new_group_one_made_before_leaves_it():
    w, b = variable("w"), variable("b")
    optimizer = SGD([w], lr=1.0)
    before = ExponentialLR(optimizer, gamma=0.5)
    optimizer.add_param_group({"params": [b], "lr": 0.4})
    before.step()
    assert [g["lr"] for g in optimizer.param_groups] == [0.5, 0.4]
    after = ExponentialLR(optimizer, gamma=0.1)
    after.step()                            # both factors on group 0, its own on group 1
    assert after.get_last_lr() == pytest.approx([0.5 * 0.1, 0.4 * 0.1], rel=1e-12)
    before.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.25 * 0.1, 0.04],
                                                                      rel=1e-12)


def test_state_dict_holds_the_added_group_and_loads_into_one_built_the_same_way():
    w, b = variable("w"), variable("b")
    optimizer = SGD([w], lr=0.1, momentum=0.9)
    optimizer.add_param_group({"params": [b], "lr": 0.3})
    gc.compile([], updates=optimizer.minimize(gc.sum(w * b)))()
    state = optimizer.state_dict()
    assert [g["lr"] for g in state["param_groups"]] == [0.1, 0.3]
    fresh = SGD([w], lr=0.1, momentum=0.9)
    with pytest.raises(OptimizerError, match="the state dict has 2 parameter groups, this "
                                             "optimizer 1"):
        fresh.load_state_dict(state)
    fresh.add_param_group({"params": [b], "lr": 0.3})
    fresh.load_state_dict(state)
    assert fresh.state_dict()["param_groups"] == state["param_groups"]


BAD_GROUPS = {
    "already in a group": (lambda w: {"params": [w]},
                           "SGD: variable w is already in parameter group 0: a parameter may "
                           "be in one group only"),
    "not a dict": (lambda w: [variable("x")], "SGD: add_param_group needs a dict with 'params'"),
    "no params": (lambda w: {"lr": 0.1}, "SGD: add_param_group needs a dict with 'params'"),
    "empty": (lambda w: {"params": []}, "SGD: add_param_group: the group's 'params' is empty"),
    "unknown option": (lambda w: {"params": [variable("x")], "betas": (0.9, 0.99)},
                       r"SGD: unknown hyperparameters \['betas'\]"),
    "bad lr": (lambda w: {"params": [variable("x")], "lr": -1},
               "SGD: invalid learning rate -1: it must be >= 0"),
    "bad momentum": (lambda w: {"params": [variable("x")], "momentum": -0.5},
                     "SGD: invalid momentum -0.5"),
    "not a variable": (lambda w: {"params": [w + 1]}, "SGD: .* is a add node, not a variable"),
    "twice in the group": (lambda w: {"params": [variable("x")] * 2},
                           "SGD: variable x is given twice"),
}


@pytest.mark.parametrize("name", list(BAD_GROUPS))
def test_a_bad_group_is_refused_naming_it_and_changes_nothing(name, fresh_graph):
    w = variable("w")
    optimizer = SGD([w], lr=0.1, momentum=0.9)
    group = BAD_GROUPS[name][0](w)
    nodes = len(fresh_graph)
    with pytest.raises(OptimizerError, match=BAD_GROUPS[name][1]) as error:
        optimizer.add_param_group(group)
    assert error.value.loc.file == __file__
    assert len(optimizer.param_groups) == 1 and len(fresh_graph) == nodes
    assert len(optimizer.state_variables()) == 1


def test_a_parameter_of_another_graph_is_refused():
    optimizer = SGD([variable("w")], lr=0.1)
    with gc.Graph("other"):
        elsewhere = variable("v")
    with pytest.raises(OptimizerError, match="SGD: v is in another graph than the parameters"):
        optimizer.add_param_group({"params": [elsewhere]})
    assert len(optimizer.param_groups) == 1
