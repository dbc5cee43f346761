"""CRNN line recogniser: a small CNN that keeps the width, a BiLSTM, and a CTC head.

Input ``float32[batch, 1, height, width]`` (ink 1, paper 0); output log-probabilities
``float32[batch, width // 4, classes]`` (time-major per sample after the transpose in
``forward``). Sized for CPU inference: about 0.65 GMAC for a 450-pixel line. Two optional
stages add capacity to a trained model without changing what it computes until training
moves it: a refine stage (a residual BiLSTM, :func:`grow_refine`; the bundled model has one
since 0.14.0; more stages stack on it with :func:`grow_refine_stages`) and residual
convolution blocks at the top of the CNN (:func:`grow_cnn`; two since 0.15.0).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

WIDTH_STRIDE = 4
HEIGHT_STRIDE = 16  # the CNN's height reduction (four 2x poolings): one feature row per 16 pixels


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ResidualConvBlock(nn.Module):
    """``relu(x + bn(conv(relu(bn(conv(x))))))`` with the last BatchNorm's scale at zero.

    On the non-negative features it follows (a ReLU and a max-pool), it is the identity
    until training moves that scale (the zero-initialised residual of Goyal et al. 2017).

    >>> block = ResidualConvBlock(4).eval()
    >>> x = torch.rand(1, 4, 3, 10)
    >>> bool(torch.equal(block(x), x))
    True
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv(channels, channels), *_conv(channels, channels)[:2])
        nn.init.zeros_(self.body[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class RefineStage(nn.Module):
    """``x + out(bilstm(x))`` with ``out`` at zero: the identity until training moves it.

    >>> stage = RefineStage(6, 4)
    >>> x = torch.rand(1, 5, 6)
    >>> bool(torch.equal(stage(x), x))
    True
    """

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width, hidden, bidirectional=True, batch_first=True)
        self.out = nn.Linear(2 * hidden, width)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.lstm(x)[0])


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
        refine_hidden: int = 0,
        cnn_residual: int = 0,
        refine_stages: int = 1,
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
        feat_height = height // HEIGHT_STRIDE
        self.project = nn.Sequential(nn.Linear(c4 * feat_height, 256), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.rnn = nn.LSTM(256, hidden, num_layers=layers, bidirectional=True, batch_first=True, dropout=dropout)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * hidden, num_classes))
        self.refine_hidden = 0
        self.refine_extra = nn.ModuleList()
        if refine_hidden:
            self.add_refine(refine_hidden)
            for _ in range(refine_stages - 1):
                self.add_refine_stage()
        self.cnn_residual = 0
        for _ in range(cnn_residual):
            self.add_cnn_residual()

    def add_cnn_residual(self) -> None:
        """Append a :class:`ResidualConvBlock` to the CNN (after its last pooling: 1/16 of the height).

        It starts as the identity, so a trained model grown by it (:func:`grow_cnn`)
        computes what it computed before. Costs about 0.22 MMAC per input column at height 48.
        """
        channels = self.project[0].in_features // (self.height // HEIGHT_STRIDE)
        self.cnn.append(ResidualConvBlock(channels))
        self.cnn_residual += 1

    def add_refine(self, refine_hidden: int) -> None:
        """Add a residual BiLSTM of ``refine_hidden`` units over the BiLSTM's output.

        Its output layer starts at zero, so a trained model grown by it (:func:`grow_refine`)
        computes what it computed before.
        """
        if self.refine_hidden:
            raise ValueError("the model already has a refine stage")
        width = 2 * self.rnn.hidden_size
        self.refine = nn.LSTM(width, refine_hidden, bidirectional=True, batch_first=True)
        self.refine_out = nn.Linear(2 * refine_hidden, width)
        nn.init.zeros_(self.refine_out.weight)
        nn.init.zeros_(self.refine_out.bias)
        self.refine_hidden = refine_hidden

    def add_refine_stage(self) -> None:
        """Add one more residual BiLSTM stage, as wide as the first refine stage, after the last one.

        Its output layer starts at zero, as the first stage's does (:func:`grow_refine`).
        """
        if not self.refine_hidden:
            raise ValueError("the model has no refine stage to stack another on")
        self.refine_extra.append(RefineStage(2 * self.rnn.hidden_size, self.refine_hidden))

    @property
    def refine_stages(self) -> int:
        """Residual BiLSTM stages after the BiLSTM (0 without a refine stage)."""
        return (1 + len(self.refine_extra)) if self.refine_hidden else 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.cnn(images)  # B, C, H', W'
        b, c, h, w = features.shape
        features = features.permute(0, 3, 1, 2).reshape(b, w, c * h)
        hidden, _ = self.rnn(self.project(features))
        if self.refine_hidden:
            # the first stage is a RefineStage in all but its parameter names (refine,
            # refine_out), which every checkpoint and from_onnx since 0.14.0 use
            hidden = hidden + self.refine_out(self.refine(hidden)[0])
        for stage in self.refine_extra:
            hidden = stage(hidden)
        return self.head(hidden).log_softmax(-1)


def crnn_from_config(config: dict, dropout: float = 0.0) -> CRNN:
    """The CRNN a training checkpoint's ``config`` describes (height, classes, refine stage, conv blocks).

    >>> crnn_from_config({"num_classes": 10, "height": 48, "refine_hidden": 8, "cnn_residual": 1}).cnn_residual
    1
    """
    return CRNN(config["num_classes"], config["height"], dropout=dropout,
                refine_hidden=int(config.get("refine_hidden", 0)), cnn_residual=int(config.get("cnn_residual", 0)),
                refine_stages=int(config.get("refine_stages", 1)))


def grow_refine(model: CRNN, refine_hidden: int) -> CRNN:
    """A copy of ``model`` with a residual BiLSTM of ``refine_hidden`` units added after its BiLSTM.

    The new stage's output layer is zero, so the grown model's output equals ``model``'s
    until training moves it: more capacity without starting again from scratch.

    >>> small = CRNN(num_classes=10, height=48, channels=(4, 4, 4, 4), hidden=8).eval()
    >>> grown = grow_refine(small, 16).eval()
    >>> x = torch.rand(1, 1, 48, 40)
    >>> bool(torch.equal(small(x), grown(x)))
    True
    """
    grown = copy.deepcopy(model)
    grown.add_refine(refine_hidden)
    return grown


def grow_cnn(model: CRNN, blocks: int = 1) -> CRNN:
    """A copy of ``model`` with ``blocks`` residual convolution blocks added at the top of its CNN.

    Each block starts as the identity, so the grown model's output equals ``model``'s until
    training moves it: deeper features (a wider receptive field) without starting again.

    >>> small = CRNN(num_classes=10, height=48, channels=(4, 4, 4, 4), hidden=8).eval()
    >>> grown = grow_cnn(small).eval()
    >>> x = torch.rand(1, 1, 48, 40)
    >>> bool(torch.equal(small(x), grown(x))), grown.cnn_residual
    (True, 1)
    """
    grown = copy.deepcopy(model)
    for _ in range(blocks):
        grown.add_cnn_residual()
    return grown


def grow_refine_stages(model: CRNN, stages: int) -> CRNN:
    """A copy of ``model`` with residual BiLSTM stages added until it has ``stages`` of them.

    Each added stage (:class:`RefineStage`, as wide as the first) starts as the identity,
    so the grown model's output equals ``model``'s until training moves it.

    >>> small = grow_refine(CRNN(num_classes=10, height=48, channels=(4, 4, 4, 4), hidden=8), 6).eval()
    >>> grown = grow_refine_stages(small, 2).eval()
    >>> x = torch.rand(1, 1, 48, 40)
    >>> bool(torch.equal(small(x), grown(x))), grown.refine_stages
    (True, 2)
    """
    grown = copy.deepcopy(model)
    while grown.refine_stages < stages:
        grown.add_refine_stage()
    return grown
