"""The share_sizes lowering pass: sizes rebuilt from the graph inputs' dims stay in
topological order, and a graph computing with them compiles whole."""
from __future__ import annotations

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from plugtrt.lowering.shared_sizes import share_sizes
from plugtrt.shapes import is_size_node


def _symbolic_trace(fn, *inputs):
    return make_fx(fn, tracing_mode="symbolic")(*inputs)


def test_a_product_of_three_sizes_is_rebuilt_in_order():
    """``s0*s1*s2`` folds through a partial product; every size node must come after the
    nodes it reads (a partial product once moved behind its reader)."""
    def fn(x):
        y = torch.relu(x)
        return y.view(y.shape[0] * y.shape[1] * y.shape[2]) * 2, y.view(y.shape[0], -1)

    gm = share_sizes(_symbolic_trace(fn, torch.randn(2, 3, 5)), None)
    gm.graph.lint()
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    sizes = [n for n in gm.graph.nodes if is_size_node(n)]
    assert sizes and all(order[a] < order[n] for n in sizes for a in n.all_input_nodes)
    first_op = min(order[n] for n in gm.graph.nodes if n.op == "call_function" and not is_size_node(n))
    assert all(order[n] < first_op for n in sizes)  # every size sits with the inputs
    x = torch.randn(4, 2, 7)
    for got, want in zip(gm(x), fn(x)):
        torch.testing.assert_close(got, want)
