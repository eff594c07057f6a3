"""Neural-network building blocks: `from tinygrad_cnn import nn`.

module.py      Module, Parameter, Sequential, ModuleList   (how a model owns its weights)
init.py        PyTorch's and Keras' initialisations, manual_seed
layers.py      Linear, Conv2d, ConvTranspose2d, BatchNorm2d  (layers with weights)
activation.py  ReLU, Sigmoid, Tanh, Identity, Flatten, MaxPool2d, AvgPool2d, Upsample, Dropout
checks.py      the argument checks layers and optimizers share
hooks.py       the module scope (graph drawings box tensors by module), watch_modules
state.py       load_state_dict's checks: all or nothing
summary.py     summary(model, input_shape): the layer table with parameter formulas
"""

from tinygrad_cnn.nn import init
from tinygrad_cnn.nn.activation import (
    AvgPool2d,
    Dropout,
    Flatten,
    Identity,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
    Upsample,
)
from tinygrad_cnn.nn.init import manual_seed
from tinygrad_cnn.nn.layers import BatchNorm2d, Conv2d, ConvTranspose2d, Linear
from tinygrad_cnn.nn.module import Module, ModuleList, Parameter, Sequential
from tinygrad_cnn.nn.summary import Summary, summary

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList",
    "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm2d",
    "ReLU", "Sigmoid", "Tanh", "Identity", "Flatten", "MaxPool2d", "AvgPool2d", "Upsample",
    "Dropout",
    "init", "manual_seed", "summary", "Summary",
]  # fmt: skip
