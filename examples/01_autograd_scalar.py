"""01 - Autograd on scalars: micrograd's expression, computed and differentiated here.

Every arithmetic step below creates a Tensor that remembers which Function made it and
from which inputs. `g.backward()` then walks those links from g back to a and b, applying
the chain rule at each step. Compare the numbers with micrograd's README:
g = 24.7041, dg/da = 138.8338, dg/db = 645.5773.

Run:  python examples/01_autograd_scalar.py
"""

import numpy as np

from tinygrad_cnn import Tensor, gradcheck

a = Tensor(np.float64(-4.0), requires_grad=True)
b = Tensor(np.float64(2.0), requires_grad=True)


def expression(a, b):
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    return g + 10.0 / f


g = expression(a, b)
g.backward()  # fills a.grad and b.grad with dg/da and dg/db
print(f"g      = {g.item():.4f}")
print(f"dg/da  = {a.grad.item():.4f}")
print(f"dg/db  = {b.grad.item():.4f}")

# The same derivatives by finite differences: nudge a, see how much g moves.
eps = 1e-6
numeric = (
    expression(Tensor(np.float64(-4.0 + eps)), b).item()
    - expression(Tensor(np.float64(-4.0 - eps)), b).item()
)
print(f"dg/da by finite differences = {numeric / (2 * eps):.4f}")
print("gradcheck(expression, [a, b]) ->", gradcheck(expression, [a, b]))
