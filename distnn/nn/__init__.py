"""Neural-network modules (``distnn.nn``), following PyTorch's names and shapes."""
from .containers import ModuleDict, ModuleList, Sequential
from .module import Buffer, Module, Parameter
from .parameter_containers import ParameterDict, ParameterList
from . import init
from .activation import (
    ELU, GELU, LeakyReLU, LogSigmoid, LogSoftmax, Maxout, PReLU, ReLU, RReLU, Sigmoid, Softmax, Softmax2d, Softplus,
    Tanh,
)
from .activation import (
    CELU, GLU, SELU, Hardshrink, Hardsigmoid, Hardswish, Hardtanh, Mish, ReLU6, SiLU, Softmin, Softshrink, Softsign,
    Tanhshrink, Threshold,
)
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .flatten import Flatten, Unflatten
from .fold import Fold, Unfold
from .linear import Bilinear, Identity, Linear
from .lazy import (
    LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d, LazyConvTranspose3d, LazyLinear,
    LazyModuleMixin, UninitializedBuffer, UninitializedParameter,
)
from .padding import (
    CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d, ReflectionPad1d,
    ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d,
    ZeroPad3d,
)
from .pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from .loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, GaussianNLLLoss, HingeEmbeddingLoss, HuberLoss, L1Loss, MSELoss,
    MultiMarginLoss, NLLLoss, NLLLoss2d, SoftMarginLoss,
)
from .loss import (
    CosineEmbeddingLoss, CTCLoss, KLDivLoss, MarginRankingLoss, MultiLabelMarginLoss, MultiLabelSoftMarginLoss, PoissonNLLLoss,
    SmoothL1Loss, TripletMarginLoss,
)
from .distance import CosineSimilarity, PairwiseDistance
from .triplet_distance_loss import TripletMarginWithDistanceLoss
from .linear_cross_entropy import LinearCrossEntropyLoss, LinearCrossEntropyOptions
from .local_response_norm import CrossMapLRN2d, LocalResponseNorm
from .normalization import (
    BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm, InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm, RMSNorm,
    _BatchNorm,
)
from .lazy_norm import (
    LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d, LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d,
)
from .pooling import (
    AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
    AvgPool1d, AvgPool2d, AvgPool3d, LPPool1d, LPPool2d, LPPool3d, MaxPool1d, MaxPool2d, MaxPool3d, MaxUnpool1d,
    MaxUnpool2d, MaxUnpool3d,
)
from .fractional_pooling import FractionalMaxPool2d, FractionalMaxPool3d
from .adaptive_softmax import AdaptiveLogSoftmaxWithLoss
# Sequence and attention layers (issue 3, part B)
from .attention import MultiheadAttention
from .embedding import Embedding
from .embedding_bag import EmbeddingBag
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from .transformer import TransformerEncoder, TransformerEncoderLayer
from .transformer_decoder import Transformer, TransformerDecoder, TransformerDecoderLayer
from .upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from .residual import BasicBlock
from . import utils
import sys as _sys

import distnn.functional as functional  # (PyTorch's place for it: `import distnn.nn.functional as F` works too)

_sys.modules[__name__ + ".functional"] = functional


def __getattr__(name):
    # nn.SyncBatchNorm is distnn.distributed's (PyTorch's place for it); loaded on first use, as
    # distnn.distributed's pieces are, so that importing distnn.nn stays cheap
    if name == "SyncBatchNorm":
        from distnn.distributed.sync_batchnorm import SyncBatchNorm

        return SyncBatchNorm
    raise AttributeError(f"module 'distnn.nn' has no attribute {name!r}")
