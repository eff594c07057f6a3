"""Ready-made networks: the course's MNIST CNN and the U-Net.

from tinygrad_cnn.models import mnist_cnn, UNet
"""

from tinygrad_cnn.models.cnn import lenet, mnist_cnn
from tinygrad_cnn.models.unet import UNet

__all__ = ["mnist_cnn", "lenet", "UNet"]
