"""Functional graphs: the DAG of layer calls between ``keras.Input`` tensors and outputs.

Calling a layer on KerasTensors records a Node (layers/_calling.py). ``Graph(inputs, outputs)``
walks back from the outputs, orders the nodes so every node comes after the nodes it reads, and
``run`` replays them on arrays (or tape Tensors) in that order. Several inputs and outputs, shared
layers (one layer, several nodes) and models used as layers all follow from that.
"""

from __future__ import annotations

from .autodiff import tape as _tape
from .layers._calling import call_kwargs, flatten, map_structure
from .layers.base import KerasTensor

__all__ = ["Graph"]


class Graph:
    def __init__(self, inputs, outputs):
        self.input_struct = inputs
        self.output_struct = outputs
        self.inputs = flatten(inputs)
        self.outputs = flatten(outputs)
        for t in self.inputs + self.outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(
                    f"Model(inputs, outputs): expected keras.Input tensors and tensors computed from "
                    f"them, got {type(t).__name__}"
                )
        self.nodes = self._order()
        self.layers = self._keras_layer_order()

    def _order(self):
        known = {id(t) for t in self.inputs}
        order, state = [], {}
        for out in self.outputs:
            stack = [(out, False)]
            while stack:
                t, done = stack.pop()
                if id(t) in known and not done:
                    continue
                node = t._node
                if node is None:
                    raise ValueError(
                        f"Model(inputs, outputs): output depends on input {t.name!r}, which is not "
                        f"among the model's inputs {[i.name for i in self.inputs]}"
                    )
                if done:
                    if state.get(id(node)) != "done":
                        state[id(node)] = "done"
                        order.append(node)
                    for o in node.outputs:
                        known.add(id(o))
                    continue
                stack.append((t, True))
                for i in node.inputs:
                    if id(i) not in known:
                        stack.append((i, False))
        return order

    def _keras_layer_order(self):
        """Layers in Keras 3's order (so weight lists match keras.Model's): deepest first, depth being
        the longest path to an output; ties by first visit of a depth-first walk from the outputs
        that takes each node's inputs in order."""
        first_seen, stack, visited = {}, list(reversed(self.outputs)), set()
        inputs = {id(t) for t in self.inputs}
        while stack:
            t = stack.pop()
            node = t._node
            if node is None or id(t) in inputs or id(node) in visited:
                continue
            visited.add(id(node))
            first_seen.setdefault(id(node.layer), len(first_seen))
            stack.extend(reversed(flatten(node.inputs)))
        producers = {id(o): n for n in self.nodes for o in n.outputs}
        node_depth, layer_depth = {}, {}
        for node in reversed(self.nodes):  # consumers before producers
            d = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
            node_depth[id(node)] = layer_depth[id(node.layer)] = d
            for t in flatten(node.inputs):
                parent = producers.get(id(t))
                if parent is not None:
                    node_depth[id(parent)] = max(node_depth.get(id(parent), 0), d + 1)
        layers = []
        for node in self.nodes:
            if all(node.layer is not l for l in layers):
                layers.append(node.layer)
        return sorted(layers, key=lambda l: (-layer_depth[id(l)], first_seen.get(id(l), 0)))

    @property
    def output_names(self):
        names = []
        for t in self.outputs:
            n = t._node.layer.name if t._node is not None else t.name
            names.append(n if n not in names else f"{n}_{len(names)}")
        return names

    @property
    def input_names(self):
        return [t.name for t in self.inputs]

    def run(self, inputs, training=False):
        if isinstance(inputs, dict):
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"Missing inputs {missing}; the model's inputs are {self.input_names}")
            flat = [inputs[n] for n in self.input_names]
        else:
            flat = flatten(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(flat) != len(self.inputs):
            raise ValueError(
                f"The model expects {len(self.inputs)} input(s) {self.input_names}, but it received "
                f"{len(flat)} input tensors"
            )
        env = {}
        for t, v in zip(self.inputs, flat):
            got = tuple(_tape.value_of(v).shape[1:]) if hasattr(_tape.value_of(v), "shape") else None
            want = t.shape[1:]
            if got is not None and (len(got) != len(want) or any(w is not None and w != g for w, g in zip(want, got))):
                raise ValueError(
                    f"Input {t.name!r} is incompatible with the model: expected shape "
                    f"{(None, *want)}, got {(None, *got)}"
                )
            env[id(t)] = v

        def value(t):
            return env[id(t)] if isinstance(t, KerasTensor) else t

        for node in self.nodes:
            args = map_structure(value, list(node.args))
            kw = {k: map_structure(value, v) for k, v in node.kwargs.items()}
            kw["training"] = training if kw.get("training") is None else kw["training"]
            layer = node.layer
            if hasattr(layer, "call") and not hasattr(layer, "_model_call") and type(layer).__name__ != "Model":
                from .layers._calling import is_builtin

                if not is_builtin(layer):
                    kw = call_kwargs(layer.call, kw)
            out = layer(*args, **kw)
            for t, v in zip(node.outputs, flatten(out)):
                env[id(t)] = v
        return map_structure(lambda t: env[id(t)], self.output_struct)
