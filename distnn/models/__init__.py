"""The model zoo: small reference models built from ``distnn.nn``, buildable by name.

``build_model(name, **kwargs)`` (used by the trainer's config) knows: ``mlp``,
``lenet`` (``cnn``), ``resnet``, ``lstm_classifier`` (``lstm``),
``transformer_classifier`` (``transformer``), ``charlm`` (``char_lm``).
Parameter names mirror the equivalent PyTorch models, so their state_dicts load.
"""
from .registry import available_models, build_model, register_model
from .charlm import CharLM
from .lenet import LeNet
from .mlp import MLP
from .resnet import ResNet
from .sequence import LSTMClassifier, TransformerClassifier

__all__ = ["build_model", "register_model", "available_models", "MLP", "LeNet", "ResNet", "LSTMClassifier",
           "TransformerClassifier", "CharLM"]
