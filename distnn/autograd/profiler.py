"""torch's legacy ``torch.autograd.profiler``: ``profile`` (the older arguments), ``record_function`` and
``emit_nvtx``, on :mod:`distnn.profiler`."""
from __future__ import annotations

from distnn.profiler import EventList, FunctionEvent, FunctionEventAvg, record_function  # noqa: F401
from distnn.profiler import ProfilerActivity
from distnn.profiler import profile as _profile


class profile(_profile):
    """``with distnn.autograd.profiler.profile() as prof:`` records what runs inside (see
    :class:`distnn.profiler.profile`). ``enabled=False`` records nothing; ``use_cuda=True`` (or
    ``use_device="cuda"``) times the GPU as well; ``use_cpu`` must stay True (host times are what is
    recorded). ``with_stack``, ``with_flops`` and ``with_modules`` are refused when set."""

    def __init__(self, enabled: bool = True, *, use_cuda: bool = False, use_device=None, record_shapes=False,
                 with_flops=False, profile_memory=False, with_stack=False, with_modules=False, use_kineto=False,
                 use_cpu=True):
        if not use_cpu:
            raise NotImplementedError("autograd.profiler.profile(use_cpu=False): distnn records host times "
                                      "always; drop use_cpu=False")
        if use_device not in (None, "cuda", "cpu"):
            raise ValueError(f"autograd.profiler.profile(use_device={use_device!r}): expected None, 'cpu' or "
                             "'cuda'")
        activities = [ProfilerActivity.CPU]
        if use_cuda or use_device == "cuda":
            activities.append(ProfilerActivity.CUDA)
        self.enabled = bool(enabled)
        super().__init__(activities=activities, record_shapes=record_shapes, profile_memory=profile_memory,
                         with_stack=with_stack, with_flops=with_flops, with_modules=with_modules)

    def start(self) -> None:
        if self.enabled:
            super().start()

    @property
    def function_events(self) -> EventList:
        """The recorded events (torch's legacy attribute): :meth:`events`."""
        return self.events()

    def table(self, sort_by=None, row_limit=100, **kwargs) -> str:
        """The table of the recorded events, one row per event (``key_averages().table`` groups them)."""
        return self.events().table(sort_by=sort_by, row_limit=row_limit, **kwargs)

    def total_average(self) -> FunctionEventAvg:
        return self.events().total_average()

    @property
    def self_cpu_time_total(self) -> float:
        """The sum of every event's self CPU time (microseconds)."""
        return sum(e.self_cpu_time_total for e in self.events())


class emit_nvtx:
    """torch's ``emit_nvtx`` (NVTX ranges for nvprof/Nsight): a no-op in distnn, which emits no NVTX ranges;
    use :class:`profile` with ``use_cuda=True`` for device times. Accepts torch's arguments."""

    def __init__(self, enabled: bool = True, record_shapes: bool = False):
        self.enabled, self.record_shapes = enabled, record_shapes

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
