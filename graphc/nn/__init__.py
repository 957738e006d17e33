"""gc.nn: the functional ops (torch.nn.functional's names and signatures)."""
from graphc.nn.functional import *  # noqa: F401,F403
from graphc.nn.functional import __all__  # noqa: F401
