"""A small CNN model space on scikit-learn's 8x8 digits, and the function that trains one model.

Kept in its own module (not in the script that starts the experiment) so that the trials, which run
in this folder (``trial_code_directory``), import the model space and ``fit`` by name.
"""
import torch
import torch.nn.functional as F

import nni
import nni.retiarii.nn.pytorch as nn
from nni.retiarii import model_wrapper


@model_wrapper
class DigitsNet(nn.Module):
    """conv(1 -> c1) -> choice of block -> 1x1 conv(c1 -> 16) -> pool -> fc -> fc; 2 x 3 x 2 x 2 = 24 architectures."""

    def __init__(self):
        super().__init__()
        c1 = nn.ValueChoice([8, 16], label='channels')
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.block = nn.LayerChoice({
            'conv3': nn.Conv2d(c1, c1, 3, padding=1),
            'conv5': nn.Conv2d(c1, c1, 5, padding=2),
            'identity': nn.Identity(),
        }, label='block')
        self.act = nn.LayerChoice({'relu': nn.ReLU(), 'tanh': nn.Tanh()}, label='activation')
        self.conv2 = nn.Conv2d(c1, 16, 1)  # back to 16 channels (v2.5 has no ValueChoice arithmetic)
        hidden = nn.ValueChoice([32, 64], label='hidden')
        self.fc1 = nn.Linear(16 * 16, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = self.act(self.conv1(x))
        x = self.act(self.block(x))
        x = F.max_pool2d(self.conv2(x), 2)  # 8x8 -> 4x4
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def _digits():
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=generator)
    train, valid = order[:1400], order[1400:]
    return x[train], y[train], x[valid], y[valid]


def fit(model_cls, epochs=3, batch_size=64, lr=0.01):
    """Train one sampled model; report the validation accuracy after each epoch and at the end."""
    torch.manual_seed(0)
    model = model_cls()
    x_train, y_train, x_valid, y_valid = _digits()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        for start in range(0, len(y_train), batch_size):
            xb, yb = x_train[start:start + batch_size], y_train[start:start + batch_size]
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = (model(x_valid).argmax(1) == y_valid).float().mean().item()
        nni.report_intermediate_result(accuracy)
    nni.report_final_result(accuracy)
