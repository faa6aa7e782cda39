"""torch.profiler's text table (``EventList.table``): the same columns, units and layout."""
from __future__ import annotations

SORT_KEYS = ("cpu_time", "cpu_time_total", "self_cpu_time_total", "count", "cpu_memory_usage",
             "self_cpu_memory_usage", "cuda_time_total", "self_cuda_time_total", "device_time_total",
             "self_device_time_total")


def format_time(us: float) -> str:
    """torch's time format: microseconds, milliseconds or seconds, three decimals."""
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


def format_memory(nbytes: int) -> str:
    """torch's memory format: B, KB, MB, GB."""
    for unit, size in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("KB", 1024)):
        if abs(nbytes) >= size:
            return f"{nbytes / size:.2f} {unit}"
    return f"{int(nbytes)} B"


def _percent(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.2f}%" if whole > 0 else "--"


def format_table(events, sort_by, row_limit, name_width_max, shapes_width_max, header, top_level_only,
                 with_shapes) -> str:
    if sort_by is not None and sort_by not in SORT_KEYS:
        raise ValueError(f"table(sort_by={sort_by!r}): unknown column; expected one of {', '.join(SORT_KEYS)} "
                         "or None")
    if row_limit is not None and (not isinstance(row_limit, int) or isinstance(row_limit, bool)):
        raise TypeError(f"table(row_limit=...): expected an int (a negative one: no limit), got {row_limit!r}")
    rows = [e for e in events if not (top_level_only and getattr(e, "cpu_parent", None) is not None)]
    self_total = sum(e.self_cpu_time_total for e in events)  # (the whole list, as torch's percentages)
    device_total = sum(e.self_device_time_total for e in events)
    if sort_by is not None:
        rows.sort(key=lambda e: getattr(e, sort_by), reverse=True)
    if row_limit is not None and row_limit >= 0:
        rows = rows[:row_limit]
    memory = any(e.cpu_memory_usage or e.self_cpu_memory_usage for e in events)
    device = device_total > 0

    name_width = min(max([len(e.key) for e in rows] + [4]) + 4, name_width_max)
    columns = ["Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg"]
    if device:
        columns += ["Self CUDA", "Self CUDA %", "CUDA total", "CUDA time avg"]
    if memory:
        columns += ["CPU Mem", "Self CPU Mem"]
    columns.append("# of Calls")
    widths = [name_width] + [12] * len(columns)
    headers = ["Name"] + columns
    if with_shapes:
        shapes_width = min(max([len(str(e.input_shapes)) for e in rows] + [12]) + 4, shapes_width_max)
        widths.append(shapes_width)
        headers.append("Input Shapes")

    def line(cells):
        return "".join(f"{c:>{w}}  " for c, w in zip(cells, widths))

    rule = "".join("-" * w + "  " for w in widths)
    out = [] if header is None else [header]
    out += [rule, line(headers), rule]
    for e in rows:
        name = e.key if len(e.key) <= name_width else e.key[:name_width - 3] + "..."
        cells = [name, _percent(e.self_cpu_time_total, self_total), format_time(e.self_cpu_time_total),
                 _percent(e.cpu_time_total, self_total), format_time(e.cpu_time_total),
                 format_time(e.cpu_time_total / e.count if e.count else 0.0)]
        if device:
            cells += [format_time(e.self_device_time_total), _percent(e.self_device_time_total, device_total),
                      format_time(e.device_time_total), format_time(e.device_time_total / max(e.count, 1))]
        if memory:
            cells += [format_memory(e.cpu_memory_usage), format_memory(e.self_cpu_memory_usage)]
        cells.append(str(e.count))
        if with_shapes:
            shapes = str(e.input_shapes)
            cells.append(shapes if len(shapes) <= widths[-1] else shapes[:widths[-1] - 3] + "...")
        out.append(line(cells))
    out.append(rule)
    out.append(f"Self CPU time total: {format_time(self_total)}")
    if device:
        out.append(f"Self CUDA time total: {format_time(device_total)}")
    return "\n".join(out) + "\n"
