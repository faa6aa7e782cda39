"""Where time goes: torch.profiler's API on distnn's ops, backward nodes, labelled regions and collectives.

    from distnn.profiler import profile, record_function, ProfilerActivity

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("train_step"):
            loss = loss_fn(model(x), y)
            loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")   # open in chrome://tracing or https://ui.perfetto.dev

Over many steps, ``schedule(wait=1, warmup=1, active=3)`` with ``prof.step()`` after each step records a
few of them, and ``on_trace_ready=tensorboard_trace_handler("logdir")`` writes each recording's trace.
Nothing is recorded, and nothing costs, outside a profiled block.
"""
from .events import EventList, FunctionEvent, FunctionEventAvg, Interval
from .profile import ProfilerAction, ProfilerActivity, profile, schedule
from .record_function import record_function
from .trace_handler import tensorboard_trace_handler

__all__ = ["profile", "record_function", "schedule", "tensorboard_trace_handler", "ProfilerActivity",
           "ProfilerAction", "EventList", "FunctionEvent", "FunctionEventAvg", "Interval"]
