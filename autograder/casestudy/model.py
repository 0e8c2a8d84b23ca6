"""The case study's fraud model: an embedding for the merchant category and an MLP.

A payment is described by its merchant category (one of ``datasets.CATEGORIES``) and
a few numeric features (amount relative to the card's usual spend, payments in the
last hour, ...). The category is looked up in a learned embedding table, joined to
the numeric features, and an MLP turns the result into one logit: the log-odds that
the payment is fraud. Small on purpose: the chapters that use it are about how it is
trained, tested and served, not about its architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from autograder.datasets import CATEGORIES

# One batch of training examples: category indices [N] (int64), numeric features
# [N, n_numeric] (float32) and labels [N] (float32, 1.0 for fraud).
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class FraudNet(nn.Module):
    """Logit of fraud from a merchant category and numeric features."""

    def __init__(self, n_numeric: int = 4, n_categories: int = len(CATEGORIES), embedding_dim: int = 8, hidden: int = 32):
        super().__init__()
        self.category = nn.Embedding(n_categories, embedding_dim)
        self.mlp = nn.Sequential(
            nn.Linear(embedding_dim + n_numeric, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, category: torch.Tensor, numeric: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.category(category), numeric], dim=1)).squeeze(1)


def random_batch(n: int, n_numeric: int = 4, seed: int = 0, fraud_share: float = 0.5) -> Batch:
    """``n`` examples with random features and labels, for tests that need any batch at all.

    The labels carry no signal: a model that fits them has memorised the batch, which
    is exactly what an overfit-one-batch test asks of it.
    """
    generator = torch.Generator().manual_seed(seed)
    category = torch.randint(0, len(CATEGORIES), (n,), generator=generator)
    numeric = torch.randn(n, n_numeric, generator=generator)
    labels = (torch.rand(n, generator=generator) < fraud_share).float()
    return category, numeric, labels
