"""gc.nn: the functional ops (torch.nn.functional's names and signatures) and
PyTorch-style modules that create variables (Module, Linear, Conv2d, LSTM, GRU, ...)."""
from graphc.nn.functional import *  # noqa: F401,F403
from graphc.nn.functional import __all__ as _functional_all
from graphc.nn import functional, init, utils  # noqa: F401
from graphc.nn.layers import *  # noqa: F401,F403
from graphc.nn.layers import __all__ as _layers_all
from graphc.nn.activations import *  # noqa: F401,F403
from graphc.nn.activations import __all__ as _activations_all
from graphc.nn.losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss,  # noqa: F401
                              HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss)
from graphc.nn.module import Module, Parameter  # noqa: F401
from graphc.nn.containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from graphc.nn.rnn import GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell  # noqa: F401
from graphc.nn.attention import MultiheadAttention  # noqa: F401
from graphc.nn.transformer import TransformerEncoder, TransformerEncoderLayer  # noqa: F401

_loss_modules = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss",
                 "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss"]
__all__ = list(_functional_all) + list(_layers_all) + list(_activations_all) + _loss_modules + [
    "functional", "init", "utils", "Module", "Parameter", "ModuleList", "ModuleDict", "Sequential",
    "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"]
