"""Widgets that stay interactive on the static site: precomputed pictures in ``widgets.Stack`` s whose
``selected_index`` is ``jslink`` ed to sliders or dropdowns in the browser (no kernel needed). Every widget has a
default view, the picture a static reader needs."""
from __future__ import annotations

from typing import Sequence


from .images import image_format


def slider_stack(pngs: Sequence[bytes], description: str = "step", labels: Sequence[str] | None = None,
                 start: int | None = None):
    """A slider that switches between precomputed PNG images, also on the static site.

    Returns an ``ipywidgets.VBox`` holding an ``IntSlider`` and a ``Stack`` of ``Image`` widgets linked with
    ``jslink`` (the link lives in the browser, so it works without a kernel). ``start`` (default: the last
    image) is the view a static reader sees first.
    """
    import ipywidgets as widgets

    if not pngs:
        raise ValueError("slider_stack needs at least one image")
    images = [widgets.Image(value=p, format="png") for p in pngs]
    start = len(pngs) - 1 if start is None else start
    stack = widgets.Stack(images, selected_index=start)
    slider = widgets.IntSlider(value=start, min=0, max=len(pngs) - 1, description=description,
                               continuous_update=True)
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    children = [slider]
    if labels is not None:
        label_stack = widgets.Stack([widgets.HTML(f"<b>{l}</b>") for l in labels], selected_index=start)
        widgets.jslink((slider, "value"), (label_stack, "selected_index"))
        children.append(label_stack)
    return widgets.VBox(children + [stack])


def nested_stack(pngs: list, controls: Sequence[tuple], start: Sequence[int] | None = None):
    """Controls over a grid of precomputed PNGs that switch the picture in the browser, also on the static site.

    ``pngs`` is a nested list of depth ``D`` (``pngs[i][j]...`` is the PNG or JPEG bytes for index ``i`` of the first
    control, ``j`` of the second, ...). Each level becomes a ``widgets.Stack``; control ``d`` is ``jslink`` ed
    to the ``selected_index`` of every Stack at level ``d``, so no Python callback is involved.

    Args:
        pngs: nested list of PNG bytes, rectangular.
        controls: one ``(description, labels)`` or ``(description, labels, kind)`` per level, ``kind``
            ``"slider"`` (a ``SelectionSlider``, default) or ``"dropdown"``; ``len(labels)`` must equal the
            size of that level.
        start: the initial index per level (default 0s): the view a static reader sees.

    Returns:
        An ``ipywidgets.VBox`` of the controls and the outer Stack; its ``links`` attribute lists the
        ``jslink`` objects (one per Stack).

    Raises:
        ValueError: depth or sizes not matching the controls, or an unknown kind.
    """
    import ipywidgets as widgets

    depth = len(controls)
    start = [0] * depth if start is None else list(start)
    if len(start) != depth:
        raise ValueError(f"start has {len(start)} indices for {depth} controls")
    stacks_by_level: list[list] = [[] for _ in range(depth)]

    def build(node, level: int):
        if level == depth:
            if not isinstance(node, (bytes, bytearray)):
                raise ValueError(f"expected PNG bytes at depth {depth}, got {type(node).__name__}")
            return widgets.Image(value=bytes(node), format=image_format(bytes(node)))
        labels = controls[level][1]
        if not isinstance(node, (list, tuple)) or len(node) != len(labels):
            size = len(node) if isinstance(node, (list, tuple)) else type(node).__name__
            raise ValueError(f"level {level} ({controls[level][0]}) has {size} entries for {len(labels)} labels")
        stack = widgets.Stack([build(child, level + 1) for child in node], selected_index=start[level])
        stacks_by_level[level].append(stack)
        return stack

    outer = build(pngs, 0)
    ctrl_widgets, links = [], []
    for level, spec in enumerate(controls):
        description, labels = spec[0], [str(l) for l in spec[1]]
        kind = spec[2] if len(spec) > 2 else "slider"
        if kind == "slider":
            w = widgets.SelectionSlider(options=labels, index=start[level], description=description,
                                        continuous_update=True)
        elif kind == "dropdown":
            w = widgets.Dropdown(options=labels, index=start[level], description=description)
        else:
            raise ValueError(f"unknown control kind {kind!r}: 'slider' or 'dropdown'")
        links += [widgets.jslink((w, "index"), (stack, "selected_index")) for stack in stacks_by_level[level]]
        ctrl_widgets.append(w)
    box = widgets.VBox([widgets.HBox(ctrl_widgets, layout=widgets.Layout(flex_flow="row wrap")), outer])
    box.links = links
    return box


def slider_stack_2d(pngs: Sequence[Sequence[bytes]], descriptions: tuple[str, str] = ("row", "column"),
                    row_labels: Sequence[str] | None = None, column_labels: Sequence[str] | None = None,
                    start: tuple[int, int] | None = None):
    """Two sliders over a grid of precomputed PNG images, interactive on the static site too.

    ``pngs[i][j]`` is shown when the first slider is at ``i`` and the second at ``j``. The widget is an outer
    ``widgets.Stack`` (one child per row ``i``) of inner ``Stack`` s (one ``Image`` per column ``j``); the first
    slider is ``jslink``-ed to the outer stack's ``selected_index`` and the second to every inner stack's, so the
    browser switches images without a kernel (as :func:`dfkd_lib.viz.slider_stack`).

    Args:
        pngs: a rectangular grid (every row the same length, at least 1 x 1) of PNG bytes.
        descriptions: the two sliders' labels.
        row_labels, column_labels: optional text shown beside each slider for each position (e.g. "lambda = 0.05").
        start: ``(i, j)`` shown first (default: the last image of the first row's grid, ``(0, columns - 1)``):
            the view a static reader sees.

    Returns:
        An ``ipywidgets.VBox``.

    Raises:
        ValueError: an empty or ragged grid, labels of the wrong length, ``start`` out of range.
    """
    import ipywidgets as widgets

    n_rows = len(pngs)
    n_cols = len(pngs[0]) if n_rows else 0
    if n_rows == 0 or n_cols == 0:
        raise ValueError("slider_stack_2d needs at least one image")
    if any(len(row) != n_cols for row in pngs):
        raise ValueError("slider_stack_2d needs a rectangular grid (every row the same length)")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"{len(row_labels)} row labels for {n_rows} rows")
    if column_labels is not None and len(column_labels) != n_cols:
        raise ValueError(f"{len(column_labels)} column labels for {n_cols} columns")
    i0, j0 = (0, n_cols - 1) if start is None else start
    if not (0 <= i0 < n_rows and 0 <= j0 < n_cols):
        raise ValueError(f"start {start} outside the {n_rows} x {n_cols} grid")
    inner = [widgets.Stack([widgets.Image(value=p, format="png") for p in row], selected_index=j0) for row in pngs]
    outer = widgets.Stack(inner, selected_index=i0)
    s_row = widgets.IntSlider(value=i0, min=0, max=n_rows - 1, description=descriptions[0])
    s_col = widgets.IntSlider(value=j0, min=0, max=n_cols - 1, description=descriptions[1])
    widgets.jslink((s_row, "value"), (outer, "selected_index"))
    for stack in inner:
        widgets.jslink((s_col, "value"), (stack, "selected_index"))
    controls = []
    for slider, labels, start_index in ((s_row, row_labels, i0), (s_col, column_labels, j0)):
        if labels is None:
            controls.append(slider)
            continue
        label_stack = widgets.Stack([widgets.HTML(f"<b>{l}</b>") for l in labels], selected_index=start_index)
        widgets.jslink((slider, "value"), (label_stack, "selected_index"))
        controls.append(widgets.HBox([slider, label_stack]))
    return widgets.VBox(controls + [outer])
