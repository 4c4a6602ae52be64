"""model.summary(): Keras 3's box-drawn table."""
from __future__ import annotations

import textwrap

__all__ = ["format_summary"]


def _size(nbytes):
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.2f} {unit}"
    return f"{nbytes:.2f} B"


def format_summary(model, show_trainable=False) -> str:
    cols = [33, 24, 15] + ([9] if show_trainable else [])
    heads = ["Layer (type)", "Output Shape", "Param #"] + (["Trainable"] if show_trainable else [])

    def row(cells, left, mid, right):
        # a cell longer than its column wraps onto more lines, as Keras' rich table does
        wrapped = [textwrap.wrap(str(c), w - 2, break_on_hyphens=False) or [""] for c, w in zip(cells, cols)]
        lines = []
        for k in range(max(len(parts) for parts in wrapped)):
            out = []
            for i, (parts, w) in enumerate(zip(wrapped, cols)):
                c = parts[k] if k < len(parts) else ""
                out.append(f" {c:>{w - 2}} " if i == 2 else f" {c:<{w - 2}} ")
            lines.append(left + mid.join(out) + right)
        return "\n".join(lines)

    def rule(left, fill, mid, right):
        return left + mid.join(fill * w for w in cols) + right

    lines = [f'Model: "{model.name}"', rule("┏", "━", "┳", "┓"), row(heads, "┃", "┃", "┃"),
             rule("┡", "━", "╇", "┩")]
    layers = model.layers
    for i, layer in enumerate(layers):
        shape = str(layer.output_shape) if layer.built and layer.output_shape is not None else "?"
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        cells = [f"{layer.name} ({type(layer).__name__})", shape, params]
        if show_trainable:
            cells.append("Y" if layer.trainable else "N")
        lines.append(row(cells, "│", "│", "│"))
        if i != len(layers) - 1:
            lines.append(rule("├", "─", "┼", "┤"))
    lines.append(rule("└", "─", "┴", "┘"))
    total = model.count_params()
    trainable = sum(int(w.value.size) for w in model.trainable_weights)
    lines += [f" Total params: {total:,} ({_size(4 * total)})",
              f" Trainable params: {trainable:,} ({_size(4 * trainable)})",
              f" Non-trainable params: {total - trainable:,} ({_size(4 * (total - trainable))})"]
    opt = model.optimizer
    if opt is not None and opt.built:
        n = sum(int(s.size) for s in opt.slots.values())
        lines.append(f" Optimizer params: {n:,} ({_size(4 * n)})")
    return "\n".join(lines)
