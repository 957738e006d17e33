"""gc.optim: optimizers that build update dicts, and learning-rate schedules.

    opt = gc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = gc.compile([loss], inputs=[x, y], updates=opt.minimize(loss))
    sched = gc.optim.lr_scheduler.StepLR(opt, step_size=10)   # sched.step() each epoch
"""
from graphc.optim import lr_scheduler  # noqa: F401
from graphc.optim.adam import Adam, AdamW  # noqa: F401
from graphc.optim.optimizer import Optimizer, OptimizerError, ParamGroup  # noqa: F401
from graphc.optim.sgd import SGD  # noqa: F401

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "OptimizerError", "ParamGroup", "lr_scheduler"]
