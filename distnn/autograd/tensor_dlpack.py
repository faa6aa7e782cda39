"""The DLPack producer protocol on :class:`distnn.Tensor` (``__dlpack__``, ``__dlpack_device__``): any DLPack
consumer (``torch.from_dlpack``, ``numpy.from_dlpack``, ``cupy.from_dlpack``, :func:`distnn.from_dlpack`) views
a distnn tensor's memory without a copy. The array's own protocol does the work: numpy's on the CPU, cupy's on a
GPU."""
from __future__ import annotations


class TensorDLPack:
    __slots__ = ()

    def __dlpack__(self, *args, **kwargs):
        """A DLPack capsule of this tensor's memory. As PyTorch's, a tensor requiring grad is refused (a consumer
        would write behind autograd's back): export ``detach()``. The arguments are the array's own
        (``stream``, ``max_version``, ``dl_device``, ``copy``, as the consumer passes them)."""
        if self.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        """``(device_type, device_id)`` as DLPack's: ``(1, 0)`` on the CPU, ``(2, ordinal)`` on a CUDA GPU."""
        return self.data.__dlpack_device__()
