"""Two small CNN baselines trained from scratch with a plain PyTorch loop (no validation, fixed epochs).

- `RawWaveformCNN`: a 1-D CNN on the raw waveform (the M5 design of Dai et al., 2017, "Very deep convolutional
  neural networks for raw waveforms": a wide strided first convolution, then 3-tap convolutions and pooling).
- `TutorialCNN2d`: the 4-block 2-D CNN of the UrbanSound8K tutorial (Smales, 2019): Conv(2x2) -> ReLU ->
  MaxPool(2) -> Dropout(0.2) with 16, 32, 64, 128 filters, global average pooling, a linear head; here on the
  package's log-mel spectrogram.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class RawWaveformCNN(nn.Module):
    """(B, samples) waveform -> (B, num_labels) logits."""

    def __init__(self, *, num_labels: int, channels: int = 32):
        super().__init__()

        def block(c_in, c_out, kernel, stride=1):
            return [nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.BatchNorm1d(c_out),
                    nn.ReLU(), nn.MaxPool1d(4)]

        self.features = nn.Sequential(
            *block(1, channels, 80, stride=4), *block(channels, channels, 3),
            *block(channels, 2 * channels, 3), *block(2 * channels, 2 * channels, 3),
        )
        self.head = nn.Linear(2 * channels, num_labels)

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        x = self.features(waveforms.unsqueeze(1))  # (B, 2C, T')
        return self.head(x.mean(dim=-1))  # global average over time


class TutorialCNN2d(nn.Module):
    """(B, mels, frames) spectrogram -> (B, num_labels) logits."""

    def __init__(self, *, num_labels: int, filters=(16, 32, 64, 128), dropout: float = 0.2):
        super().__init__()
        layers, c_in = [], 1
        for c_out in filters:
            layers += [nn.Conv2d(c_in, c_out, kernel_size=2), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_labels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.features(images.unsqueeze(1))  # (B, 128, H', W')
        return self.head(x.mean(dim=(2, 3)))  # global average pooling


CNN_MODELS = {"cnn1d": RawWaveformCNN, "cnn2d": TutorialCNN2d}
DESCRIPTIONS = {
    "cnn1d": "1-D CNN (M5-style) on the raw 16 kHz waveform, from scratch",
    "cnn2d": "4-block 2-D CNN of the UrbanSound8K tutorial on the log-mel spectrogram, from scratch",
}


class CNNClassifier:
    """fit / predict wrapper: standardises the input with the training fold's mean/std, trains with AdamW and
    cross-entropy for a fixed number of epochs."""

    def __init__(self, name: str, num_labels: int, *, epochs: int = 30, batch_size: int = 32,
                 learning_rate: float = 1e-3, seed: int = 42):
        if name not in CNN_MODELS:
            raise ValueError(f"unknown CNN model {name!r}; choose from {', '.join(CNN_MODELS)}")
        if epochs < 1:
            raise ValueError(f"epochs={epochs} must be at least 1")
        torch.manual_seed(seed)
        self.model = CNN_MODELS[name](num_labels=num_labels)
        self.epochs, self.batch_size, self.learning_rate, self.seed = epochs, batch_size, learning_rate, seed
        self.mean, self.std = 0.0, 1.0

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def fit(self, inputs: np.ndarray, labels: np.ndarray) -> "CNNClassifier":
        self.mean, self.std = float(inputs.mean()), float(inputs.std()) or 1.0
        x = torch.from_numpy((inputs - self.mean) / self.std).float()
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        self.model.train()
        for _ in range(self.epochs):
            for batch in torch.randperm(len(x), generator=generator).split(self.batch_size):
                loss = nn.functional.cross_entropy(self.model(x[batch]), y[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return self

    @torch.no_grad()
    def predict(self, inputs: np.ndarray, batch_size: int = 128) -> np.ndarray:
        self.model.eval()
        x = torch.from_numpy((inputs - self.mean) / self.std).float()
        return torch.cat([self.model(part).argmax(dim=-1) for part in x.split(batch_size)]).numpy()
