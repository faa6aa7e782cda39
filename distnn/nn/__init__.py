"""Neural-network modules (``distnn.nn``), following PyTorch's names and shapes."""
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
