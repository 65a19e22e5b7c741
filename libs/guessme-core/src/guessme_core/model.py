"""The Guessme CNN: small enough for fast CPU inference, accurate enough for canvas drawings."""

import torch
from torch import nn

from guessme_core.model_io import IMAGE_SIZE, NUM_CLASSES

__all__ = ["IMAGE_SIZE", "MNIST_MEAN", "MNIST_STD", "NUM_CLASSES", "GuessmeCNN"]

# MNIST's pixel statistics; normalising inside the model keeps callers on plain [0, 1] images.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class GuessmeCNN(nn.Module):
    """(N, 1, 28, 28) images in [0, 1] -> (N, 10) logits."""

    def __init__(self, width: int = 32, dropout: float = 0.3) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_block(1, width),  # 28 -> 14
            _conv_block(width, 2 * width),  # 14 -> 7
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * 7 * 7, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(64, NUM_CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - MNIST_MEAN) / MNIST_STD
        return self.classifier(self.features(x))
