"""The benchmark's FLOP model: the matmul/conv work of one training step of each model, counted
analytically from the layer shapes (:class:`StepCount`), and the same read off TensorFlow's own per-op
statistics of the step's graph (:func:`profiler_flops`), the cross-check that the passes are counted right.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class Layer:
    """A layer with weights, by its multiply-accumulates per example (``macs``) and weight count.

    * dense ``n_in -> n_out``: ``n_in * n_out`` MACs;
    * conv (k x k, ``c_in -> c_out``) with an ``h_out x w_out`` output: ``h_out * w_out * k * k * c_in * c_out``;
    * transposed conv (deconv) with an ``h_in x w_in`` input: ``h_in * w_in * k * k * c_in * c_out`` (each
      input pixel scatters one k x k x c_out patch). Padding is ignored, as TensorFlow's own count does.
    Biases, BatchNorm, activations and the optimizer are elementwise and left out of the analytic count
    (the profiler's total includes them).

    ``tf_backprop_macs``: what TensorFlow's statistics count for this layer's two backprop ops
    (Conv2DBackpropInput/Filter of a conv): ``h_in * w_in / stride^2`` output positions instead of
    ``h_out * w_out``. The same for SAME padding with sizes divisible by the stride, more for VALID
    (ClusterGAN's 28 -> 13 -> 5 convs). ``tf_forward_macs``: what TensorFlow counts for the forward op
    when it is computed another way (the CoGAN heads as a sub-pixel convolution, which multiplies
    zeros too: 3 x 3 x 4 = 36 taps per input pixel for the 25 of the deconv). Used only to compare
    with TensorFlow's count; the table's count is the layer's own (``macs``).
    """

    name: str
    macs: int
    params: int
    tf_backprop_macs: Optional[float] = None
    tf_forward_macs: Optional[float] = None
    tf_dx_macs: Optional[float] = None  # the input gradient alone, where it differs from the filter gradient

    @property
    def tf_backprop(self) -> float:
        return self.macs if self.tf_backprop_macs is None else self.tf_backprop_macs

    @property
    def tf_dx(self) -> float:
        return self.tf_backprop if self.tf_dx_macs is None else self.tf_dx_macs

    @property
    def tf_forward(self) -> float:
        return self.macs if self.tf_forward_macs is None else self.tf_forward_macs


def dense(name: str, n_in: int, n_out: int) -> Layer:
    return Layer(name, n_in * n_out, n_in * n_out + n_out)


def conv(name: str, h_in: int, w_in: int, c_in: int, c_out: int, k: int, stride: int = 2,
         padding: str = "same") -> Layer:
    if padding == "same":
        h_out, w_out = -(-h_in // stride), -(-w_in // stride)
    else:
        h_out, w_out = (h_in - k) // stride + 1, (w_in - k) // stride + 1
    per_position = k * k * c_in * c_out
    return Layer(name, h_out * w_out * per_position, per_position + c_out,
                 tf_backprop_macs=h_in * w_in * per_position / (stride * stride))


def deconv(name: str, h_in: int, w_in: int, c_in: int, c_out: int, k: int) -> Layer:
    """Stride 2, SAME: the output is 2 h_in x 2 w_in."""
    return Layer(name, h_in * w_in * k * k * c_in * c_out, k * k * c_in * c_out + c_out)


class StepCount:
    """The matmul/conv work of one training step, built pass by pass as the step really runs.

    Formula: a forward pass through a layer costs ``2 * macs`` FLOPs per example (a multiply and an add
    per MAC). Its backward pass costs up to twice that: ``2 * macs`` for the gradient with respect to
    its input (needed unless nothing upstream is differentiated, e.g. the first layer of D in D's own
    update, or G's first layer, whose input is z) plus ``2 * macs`` for the gradient with respect to its
    weights (needed only when the update trains that layer: not D's layers in a G update). Everything is
    times the batch size. A layer run twice (say the shared trunk once per domain) counts twice.
    """

    def __init__(self):
        self.fwd: Dict[str, int] = {}
        self.dx: Dict[str, int] = {}
        self.dw: Dict[str, int] = {}
        self.layers: Dict[str, Layer] = {}
        # Passes a graph runs on gradients that are exactly zero (:meth:`zero_backward`): in TensorFlow's
        # count, not in the work.
        self.zero_dx: Dict[str, int] = {}
        self.zero_dw: Dict[str, int] = {}

    def _add(self, table, layer: Layer, times: int):
        self.layers[layer.name] = layer
        table[layer.name] = table.get(layer.name, 0) + times

    def forward(self, layers: Sequence[Layer], times: int = 1) -> "StepCount":
        for layer in layers:
            self._add(self.fwd, layer, times)
        return self

    def backward(self, layers: Sequence[Layer], weights: bool, input_of_first: bool, times: int = 1) -> "StepCount":
        """Backprop through ``layers`` (in forward order): weight gradients if ``weights``; input
        gradients for every layer but the first, and for the first too if ``input_of_first``."""
        for i, layer in enumerate(layers):
            if weights:
                self._add(self.dw, layer, times)
            if i > 0 or input_of_first:
                self._add(self.dx, layer, times)
        return self

    def double_backward(self, layers: Sequence[Layer], times: int = 1) -> "StepCount":
        """The gradient, with respect to the weights of ``layers`` (in forward order), of a function of
        their input gradient (the gradient penalty of a WGAN-GP critic: the input gradient is
        ``backward(layers, weights=False, input_of_first=True)``, the penalty a function of it). That
        input gradient is a chain of one op per layer, ``g_in = op(W, g_out * act')``: a transposed
        matmul, or a conv's input-gradient op. Differentiating the chain costs, per layer, the op's
        gradient with respect to W, a weight gradient (``macs``), and, for every layer but the last
        (whose incoming gradient is a constant, the ones of the summed scores), its gradient with
        respect to g_out, which runs in the forward direction (a matmul or conv of the layer's shape,
        ``macs``): counted as a weight-gradient and a forward pass. The activations' derivatives are
        piecewise constant (LeakyReLU), so nothing flows into the forward pass that fed them."""
        for i, layer in enumerate(layers):
            self._add(self.dw, layer, times)
            if i < len(layers) - 1:
                self._add(self.fwd, layer, times)
        return self

    def zero_backward(self, layers: Sequence[Layer], weights: bool, input_of_first: bool,
                      times: int = 1) -> "StepCount":
        """Backprop through ``layers`` of a gradient that is exactly zero, which a graph may run all the
        same (TensorFlow's second derivative of LeakyReLU is ``zeros_like`` of its input, and autodiff
        carries those zeros back through the forward pass that computed it). Not work: counted only
        in TensorFlow's convention, so that its count can be compared."""
        for i, layer in enumerate(layers):
            self.layers[layer.name] = layer
            if weights:
                self.zero_dw[layer.name] = self.zero_dw.get(layer.name, 0) + times
            if i > 0 or input_of_first:
                self.zero_dx[layer.name] = self.zero_dx.get(layer.name, 0) + times
        return self

    def macs_per_example(self, tf_convention: bool = False) -> float:
        """MACs per example; ``tf_convention``: backprop ops as TensorFlow's statistics count them, and
        the passes on zero gradients (:meth:`zero_backward`) included."""
        back = (lambda layer: layer.tf_backprop) if tf_convention else (lambda layer: layer.macs)
        back_dx = (lambda layer: layer.tf_dx) if tf_convention else (lambda layer: layer.macs)
        fwd = (lambda layer: layer.tf_forward) if tf_convention else (lambda layer: layer.macs)
        backward = ((self.dx, back_dx), (self.dw, back)) + (((self.zero_dx, back_dx), (self.zero_dw, back))
                                                             if tf_convention else ())
        return (sum(fwd(self.layers[n]) * c for n, c in self.fwd.items())
                + sum(rule(self.layers[n]) * c for t, rule in backward for n, c in t.items()))

    def flops(self, batch: int, tf_convention: bool = False) -> float:
        return 2 * self.macs_per_example(tf_convention) * batch

    def passes(self) -> Dict[str, Dict[str, int]]:
        return {n: {"fwd": self.fwd.get(n, 0), "dx": self.dx.get(n, 0), "dw": self.dw.get(n, 0)} for n in self.layers}


def cogan_layers(m, subpixel_heads: bool = False, subpixel_stem_grad: bool = False) -> Dict[str, Layer]:
    """CoGAN's weight layers (docs/ORIGINAL.md §1) for a CoganConfig ``m``; ``subpixel_heads``: the heads'
    forward pass computed as a 3x3 convolution to 4x the channels (``cogan_fast.subpixel_deconv``);
    ``subpixel_stem_grad``: D's stem convolutions' input gradients computed so (``layers.Conv``), 36 taps
    per output position where TensorFlow counts the transposed convolution's 25."""
    s = m.output_size
    s2, s4 = s // 2, s // 4
    dh0 = m.d_h0_channels
    out = {
        "g_h0": dense("g_h0_lin", m.z_dim, 1024),
        "g_h1": dense("g_h1_lin", 1024 if m.h0_feeds_h1 else m.z_dim, s4 * s4 * 128),
        "g_h2": deconv("g_h2", s4, s4, 128, 128, 5),
        "g1_h3": deconv("g1_h3", s2, s2, 128, m.c_dim, 5),
        "g2_h3": deconv("g2_h3", s2, s2, 128, m.c_dim, 5),
        "d_h2": dense("d_h2_lin", s4 * s4 * 64, 1024),
        "d_h3": dense("d_h3_lin", 1024, 1),
    }
    if subpixel_heads:
        for k in ("g1_h3", "g2_h3"):
            out[k] = dataclasses.replace(out[k], tf_forward_macs=s2 * s2 * 3 * 3 * 128 * 4 * m.c_dim)
    for d in (1, 2):
        out[f"d{d}_h0"] = conv(f"d{d}_h0_conv", s, s, m.c_dim, dh0, 5)
        out[f"d{d}_h1"] = conv(f"d{d}_h1_conv", s2, s2, dh0, 64, 5)
        if subpixel_stem_grad:
            for k, (side, c_in, c_out) in ((f"d{d}_h0", (s2, m.c_dim, dh0)), (f"d{d}_h1", (s4, dh0, 64))):
                out[k] = dataclasses.replace(out[k], tf_dx_macs=side * side * 3 * 3 * 4 * c_in * c_out)
    return out


def cogan_step_count(m, trunk_per_domain: bool = False, reuse_g_forward: bool = False,
                     subpixel_heads: bool = False, subpixel_stem_grad: bool = False) -> StepCount:
    """The CoGAN step: one D update, then ``g_updates_per_step`` G updates with the same z.

    ``trunk_per_domain``: G1 and G2 each run the shared trunk (the straightforward baseline); else the
    trunk runs once for both. ``reuse_g_forward``: the first G update reuses the D update's G forward
    pass (G's weights have not changed in between), so G runs forward once less per step.
    ``subpixel_heads``, ``subpixel_stem_grad``: the heads' forward pass and D's stem input gradients as
    sub-pixel convolutions (counted apart for the comparison with TensorFlow only: the useful work is the same).
    """
    L = cogan_layers(m, subpixel_heads, subpixel_stem_grad)
    trunk = ([L["g_h0"]] if m.h0_feeds_h1 else []) + [L["g_h1"], L["g_h2"]]
    heads = {1: L["g1_h3"], 2: L["g2_h3"]}
    d_path = {d: [L[f"d{d}_h0"], L[f"d{d}_h1"], L["d_h2"], L["d_h3"]] for d in (1, 2)}
    c = StepCount()

    def g_forward():
        if trunk_per_domain:
            for d in (1, 2):
                c.forward(trunk + [heads[d]])
        else:
            c.forward(trunk + [heads[1], heads[2]])

    def g_backward():
        if trunk_per_domain:
            for d in (1, 2):
                c.backward(trunk + [heads[d]], weights=True, input_of_first=False)
        else:
            c.backward([heads[1], heads[2]], weights=True, input_of_first=True)
            c.backward(trunk, weights=True, input_of_first=False)

    # D update: G forward (no G gradient), D on real and fake of each domain, D's weight gradients.
    g_forward()
    for d in (1, 2):
        c.forward(d_path[d], times=2)
        c.backward(d_path[d], weights=True, input_of_first=False, times=2)
    # G updates: G forward, D forward on the fakes, gradients through D (not of D) into G's weights.
    for i in range(m.g_updates_per_step):
        if not (reuse_g_forward and i == 0):
            g_forward()
        for d in (1, 2):
            c.forward(d_path[d])
            c.backward(d_path[d], weights=False, input_of_first=True)
        g_backward()
    return c


def caffe_deconv(name: str, h_in: int, c_in: int, c_out: int, k: int, stride: int, pad: int, bias: bool,
                 matmul_forward: bool = False) -> Layer:
    """A Caffe deconvolution of the paper's network (cogan_tf/paper_layers.py): ``h_in * h_in * k * k * c_in
    * c_out`` MACs, every input pixel's patch, the cropped border's included (as :func:`deconv`). TensorFlow
    counts its forward op (Conv2DBackpropInput) and the filter gradient by the output side o over the stride,
    (o / s)^2 positions, and the input gradient (a Conv2D) by h_in^2; the forward as a matmul
    (``matmul_forward``) it counts by h_in^2."""
    o = (h_in - 1) * stride + k - 2 * pad
    per_position = k * k * c_in * c_out
    by_output = o * o / (stride * stride) * per_position
    return Layer(name, h_in * h_in * per_position, per_position + (c_out if bias else 0),
                 tf_backprop_macs=by_output, tf_forward_macs=None if matmul_forward else by_output,
                 tf_dx_macs=h_in * h_in * per_position)


def cogan_paper_layers(m, fast: bool = True) -> Dict[str, Layer]:
    """The paper network's weight layers (cogan_tf/paper_networks.py) for a CoganConfig ``m`` of recipe
    "paper" or "conditional" (the domain bit: one more input of G's dense layer and of D's first
    convolution). ``fast``: G's l1 forward as a matmul, as the port's step computes it."""
    bit = 1 if m.recipe == "conditional" else 0
    g = {"g_l0": Layer("g_l0", (m.z_dim + bit) * 16384, (m.z_dim + bit) * 16384),
         "g_l1": caffe_deconv("g_l1", 4, 1024, 512, 3, 2, 1, False, matmul_forward=fast),
         "g_l2": caffe_deconv("g_l2", 7, 512, 256, 3, 2, 1, False),
         "g_l3": caffe_deconv("g_l3", 13, 256, 128, 3, 2, 1, False),
         "g_l4": caffe_deconv("g_l4", 25, 128, m.c_dim, 6, 1, 1, True)}
    d = {"d_l0": conv("d_l0", 28, 28, m.c_dim + bit, 20, 5, stride=1, padding="valid"),
         "d_l1": conv("d_l1", 12, 12, 20, 50, 5, stride=1, padding="valid"),
         "d_l2": dense("d_l2", 800, 500), "d_l3": dense("d_l3", 500, 2)}
    return {**g, **d}


def cogan_paper_step_count(m, fast: bool = True) -> StepCount:
    """The paper's step (cogan_tf/cogan_paper.py) per z of the batch: the D update (G forward, no gradient;
    D forward on the 4 batches, real and fake of each domain, with D's weight gradients and the input
    gradients of all but its first layer), then the G update on a fresh z (G forward, D on the 2 fake batches
    and its input gradients down to the fakes, G's weight gradients and the input gradients of all but its
    first layer, whose input is z). A layer the domains do not share runs once per domain; D's per-domain
    layers see half the rows each, so D's work does not depend on its sharing. The conditional GAN's G runs
    on 2 rows per z (both bits) and has one output layer."""
    L = cogan_paper_layers(m, fast)
    g_names = ["g_l0", "g_l1", "g_l2", "g_l3", "g_l4"]
    if m.recipe == "conditional":
        g_runs = [(L[n], 2) for n in g_names]
    else:
        g_runs = [(L[n], 1 if i < m.g_shared_layers else 2) for i, n in enumerate(g_names)]
    d = [L[n] for n in ("d_l0", "d_l1", "d_l2", "d_l3")]
    c = StepCount()
    for layer, times in g_runs:
        c.forward([layer], times)
    c.forward(d, times=4).backward(d, weights=True, input_of_first=False, times=4)
    for layer, times in g_runs:
        c.forward([layer], times)
    c.forward(d, times=2).backward(d, weights=False, input_of_first=True, times=2)
    for i, (layer, times) in enumerate(g_runs):
        c.backward([layer], weights=True, input_of_first=i > 0, times=times)
    return c


def vanilla_layers(m) -> Dict[str, List[Layer]]:
    """The vanilla GAN's MLPs (docs/ORIGINAL.md §2) for a VanillaConfig ``m``."""
    h = m.hidden
    return {"g": [dense("g_h0", m.z_dim, h), dense("g_h1", h, h), dense("g_h2", h, h), dense("g_h3", h, 784)],
            "d": [dense("d_h0", 784, h), dense("d_h1", h, h), dense("d_h2", h, h), dense("d_h3", h, 1)]}


def vanilla_step_count(m) -> StepCount:
    """One D update (G forward without gradient for the fake batch; D on real and on fake), then one
    G update on a fresh z (G forward, D forward, gradients through D into G)."""
    L = vanilla_layers(m)
    g, d = L["g"], L["d"]
    c = StepCount()
    c.forward(g)
    c.forward(d, times=2)
    c.backward(d, weights=True, input_of_first=False, times=2)
    c.forward(g).forward(d)
    c.backward(d, weights=False, input_of_first=True)
    c.backward(g, weights=True, input_of_first=False)
    return c


def clustergan_layers(m) -> Dict[str, List[Layer]]:
    """ClusterGAN's G, D and E (docs/ORIGINAL.md §3, §4) for a ClusterGanConfig ``m``; D and E share the
    shape of their conv trunk (not its weights). The original's networks: "valid" convs 28 -> 13 -> 5
    (3,200 features); the paper's (``m.networks == "paper"``): "same" convs 28 -> 14 -> 7 (6,272)."""
    if m.networks == "paper":
        padding, sides = "same", (28, 14, 7)
    else:
        padding, sides = "valid", (28, 13, 5)

    def trunk(p):
        return [conv(f"{p}_c0", sides[0], sides[0], 1, 64, 4, padding=padding),
                conv(f"{p}_c1", sides[1], sides[1], 64, 128, 4, padding=padding),
                dense(f"{p}_h2", sides[2] * sides[2] * 128, 1024)]

    zc = m.z_dim + m.n_classes
    return {"g": [dense("g_h0", zc, 1024), dense("g_h1", 1024, 7 * 7 * 128), deconv("g_h2", 7, 7, 128, 64, 4),
                  deconv("g_h3", 14, 14, 64, 1, 4)],
            "d": trunk("d") + [dense("d_h3", 1024, 1)],
            "e": trunk("e") + [dense("e_h3", 1024, zc)]}


def clustergan_step_counts(m, zero_path: bool = False) -> Dict[str, StepCount]:
    """``d``: D's update, every step; ``ge``: the G+E update, every ``g_every``-th step (G forward, E and
    D on the fake, E's weight gradients, gradients through E and D into G).

    D's update with the original's BCE discriminator: G forward without gradient, D on real and fake,
    D's weight gradients. With the WGAN-GP critic (``m.critic == "wgan_gp"``, the paper recipe) it
    adds the gradient penalty at the interpolate x_hat: D forward on x_hat (but its last layer, whose
    output the penalty does not need), the input gradient dD/dx_hat through all of D (its first layer
    too), and the penalty's gradient with respect to D's weights through that input gradient
    (:meth:`StepCount.double_backward`). ``zero_path``: the critic's graph as TensorFlow's autodiff
    builds it, which also backpropagates the exact zeros of LeakyReLU's second derivative through D's
    forward pass on x_hat, from the last activation down (weight gradients of D's layers but the last,
    input gradients but the first layer's, x_hat being no variable): in TensorFlow's count only."""
    L = clustergan_layers(m)
    g, d, e = L["g"], L["d"], L["e"]
    dc = StepCount().forward(g).forward(d, times=2).backward(d, weights=True, input_of_first=False, times=2)
    if m.critic == "wgan_gp":
        # D's last layer is not run on x_hat: the input gradient of the summed scores does not depend on
        # the scores (TensorFlow prunes that matmul from the graph).
        dc.forward(d[:-1]).backward(d, weights=False, input_of_first=True).double_backward(d)
        if zero_path:
            dc.zero_backward(d[:-1], weights=True, input_of_first=False)
    ge = StepCount().forward(g).forward(e).forward(d)
    ge.backward(e, weights=True, input_of_first=True)
    ge.backward(d, weights=False, input_of_first=True)
    ge.backward(g, weights=True, input_of_first=False)
    return {"d": dc, "ge": ge}


# --- TensorFlow's count -----------------------------------------------------------------------------

MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3", "Conv2D", "Conv2DBackpropInput",
              "Conv2DBackpropFilter")
_NOT_SINKS = ("ReadVariableOp", "VarHandleOp", "VarIsInitializedOp", "Placeholder", "Const")
_CALL_OPS = ("PartitionedCall", "StatefulPartitionedCall")
_COND_OPS = ("If", "StatelessIf")


def _graph_flops(graph, prefix: str = "") -> Dict[str, object]:
    """Per-op FLOPs of ``graph`` over its live ops; function calls added in, each branch of a
    conditional reported apart (only one of them runs)."""
    from tensorflow.python.framework import ops as ops_lib

    all_ops = graph.get_operations()
    sinks = [t.op for t in graph.outputs] + [op for op in all_ops if op._is_stateful and op.type not in _NOT_SINKS]
    live, stack = set(), list(sinks)
    while stack:
        op = stack.pop()
        if op.name in live:
            continue
        live.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    # graph_own: this graph's ops alone, not the functions they call (what tf.compat.v1.profiler counts).
    out = {"graph_total": 0, "graph_own": 0, "total": 0, "matmul_conv": 0, "by_type": {}, "branches": {},
           "uncounted": []}

    def sub(name):
        f = getattr(graph, "_functions", {}).get(name)
        return getattr(f, "graph", None)

    for op in all_ops:
        try:
            v = int(ops_lib.get_stats_for_node_def(graph, op.node_def, "flops").value or 0)
        except ValueError:  # no statistics registered for this op, or a shape unknown
            v = 0
        out["graph_total"] += v
        out["graph_own"] += v
        if op.name not in live:
            continue
        out["total"] += v
        if op.type in MATMUL_OPS:
            out["matmul_conv"] += v
            out["by_type"][op.type] = out["by_type"].get(op.type, 0) + v
        if op.type in _CALL_OPS or op.type in _COND_OPS:
            attrs = ("f",) if op.type in _CALL_OPS else ("then_branch", "else_branch")
            for attr in attrs:
                fg = sub(op.get_attr(attr).name)
                if fg is None:
                    out["uncounted"].append(f"{prefix}{op.name}/{attr}")
                    continue
                inner = _graph_flops(fg, f"{prefix}{op.name}/{attr}/")
                out["uncounted"] += inner["uncounted"]
                if op.type in _CALL_OPS:
                    for k in ("graph_total", "total", "matmul_conv"):
                        out[k] += inner[k]
                    out["branches"].update(inner["branches"])
                else:
                    out["branches"][f"{prefix}{op.name}/{attr}"] = {k: inner[k] for k in ("total", "matmul_conv")}
                    out["branches"].update(inner["branches"])
    return out


def profiler_flops(concrete_fn) -> Dict[str, object]:
    """FLOPs of a concrete function's graph by TensorFlow's own per-op statistics (the ones
    ``tf.compat.v1.profiler``'s ``float_operation()`` view sums), over the ops that actually run.

    The traced graph also holds ops whose results nothing uses (e.g. gradients of D's weights in a
    G update: the tape's MatMul gradient emits both halves), which Grappler prunes before running.
    So besides the total over the whole graph (``graph_total``), the ops are restricted to those the
    outputs and the stateful ops (variable updates) depend on (``total``; ``matmul_conv`` the
    matmuls and convolutions among them, what the analytic count counts). A conditional's branches
    (ClusterGAN's G+E update) are counted apart under ``branches``; anything that could not be read
    is listed under ``uncounted``.
    """
    import tensorflow as tf

    graph = concrete_fn.graph
    out = _graph_flops(graph)
    out["note"] = ""
    # The profiler proper, as a check that the per-op sum above is what it reports for the whole graph.
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    try:
        prof = tf.compat.v1.profiler.profile(graph=graph, options=opts)
        out["profiler_graph_total"] = int(prof.total_float_ops)
    except Exception as e:  # noqa: BLE001 - the cross-check is optional; say why it is missing
        out["profiler_graph_total"] = None
        out["note"] = f"tf.compat.v1.profiler failed: {type(e).__name__}: {e}"
    return out
