"""CRNN line recogniser: a small CNN that keeps the width, a BiLSTM, and a CTC head.

Input ``float32[batch, 1, height, width]`` (ink 1, paper 0); output log-probabilities
``float32[batch, width // 4, classes]`` (time-major per sample after the transpose in
``forward``). Sized for CPU inference: about 0.65 GMAC for a 450-pixel line.
"""

from __future__ import annotations

import torch
from torch import nn

WIDTH_STRIDE = 4


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class CRNN(nn.Module):
    """CNN + BiLSTM + linear CTC head.

    >>> m = CRNN(num_classes=10, height=48)
    >>> m(torch.zeros(2, 1, 48, 100)).shape
    torch.Size([2, 25, 10])
    """

    def __init__(
        self,
        num_classes: int,
        height: int = 48,
        channels: tuple[int, int, int, int] = (32, 64, 96, 128),
        hidden: int = 192,
        layers: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.height = height
        self.cnn = nn.Sequential(
            *_conv(1, c1),
            nn.MaxPool2d(2),
            *_conv(c1, c2),
            nn.MaxPool2d(2),
            *_conv(c2, c3),
            *_conv(c3, c3),
            nn.MaxPool2d((2, 1)),
            *_conv(c3, c4),
            *_conv(c4, c4),
            nn.MaxPool2d((2, 1)),
        )
        feat_height = height // 16
        self.project = nn.Sequential(nn.Linear(c4 * feat_height, 256), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.rnn = nn.LSTM(256, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.cnn(images)  # B, C, H', W'
        b, c, h, w = features.shape
        features = features.permute(0, 3, 1, 2).reshape(b, w, c * h)
        hidden, _ = self.rnn(self.project(features))
        return self.head(hidden).log_softmax(-1)
