"""`import graphc` loads the core and nothing it can do without: every process
pays for what it imports (scipy.special, for three reference functions, was
0.2 s of each start), and the optional extras must stay optional."""
import math
import subprocess
import sys

LOADED_LATER = ("scipy.special",)                  # imported where first used
OPTIONAL = ("numba.cuda", "torch", "jax", "graphviz")


def test_import_graphc_leaves_lazy_and_optional_modules_unloaded():
    code = ("import sys, graphc; "
            f"print([m for m in {LOADED_LATER + OPTIONAL!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_the_reference_functions_that_need_scipy_special_still_run():
    import numpy as np

    import graphc as gc
    x = gc.placeholder((3,), name="x")
    outputs = [gc.sigmoid(x), gc.erf(x), gc.nn.functional.gelu(x),
               gc.logsumexp(x, axis=0)]
    value = np.array([-1.0, 0.0, 2.0], np.float32)
    got = gc.compile(outputs, inputs=[x], device="reference")(value)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(got[0], 1 / (1 + np.exp(-value)), rtol=1e-6)
    np.testing.assert_allclose(got[1], erf(value), rtol=1e-6)
    np.testing.assert_allclose(got[2], 0.5 * value * (1 + erf(value / math.sqrt(2))), rtol=1e-6)
    np.testing.assert_allclose(got[3], np.log(np.exp(value).sum()), rtol=1e-6)
