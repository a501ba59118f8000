"""The baseline of `bench_first_run.py`: plain PyTorch training the default `lapp train` model.

Same data (scikit-learn's digits, a stratified 70/15/15 split, standardized with the training
split's statistics), the same MLP (64-128-64-10, ReLU), Adam at 1e-3 with a per-step cosine
decay, batch size 32, 20 epochs, and a validation pass after each epoch. It only trains: no
checkpoints, no logs, no export. Prints the test accuracy.
"""

from __future__ import annotations

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

EPOCHS, BATCH, SEED = 20, 32, 42


def main() -> None:
    torch.manual_seed(SEED)
    x, y = load_digits(return_X_y=True)
    x_tr, x_rest, y_tr, y_rest = train_test_split(
        x, y, test_size=0.3, stratify=y, random_state=SEED
    )
    x_va, x_te, y_va, y_te = train_test_split(
        x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=SEED
    )
    mean, std = x_tr.mean(0), x_tr.std(0) + 1e-6

    def tensors(a, b):
        return torch.tensor((a - mean) / std, dtype=torch.float32), torch.tensor(b)

    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (
        tensors(x_tr, y_tr),
        tensors(x_va, y_va),
        tensors(x_te, y_te),
    )
    net = nn.Sequential(
        nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    steps = EPOCHS * -(-len(x_tr) // BATCH)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for epoch in range(EPOCHS):
        net.train()
        for idx in torch.randperm(len(x_tr)).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x_tr[idx]), y_tr[idx]).backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            val_acc = (net(x_va).argmax(-1) == y_va).float().mean().item()
        print(f"epoch {epoch + 1}/{EPOCHS} val/acc {val_acc:.4f}")
    with torch.no_grad():
        print(f"test/acc {(net(x_te).argmax(-1) == y_te).float().mean().item():.4f}")


if __name__ == "__main__":
    main()
