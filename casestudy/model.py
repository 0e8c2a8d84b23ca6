"""The case study's fraud model: embeddings for the merchant category (and merchant) and an MLP.

A payment is described by its merchant category (one of ``datasets.CATEGORIES``) and
a few numeric features (amount relative to the card's usual spend, payments in the
last hour, ...); the GPU chapter adds the merchant itself. Each is looked up in a
learned embedding table, joined to the numeric features, and an MLP turns the result
into one logit: the log-odds that the payment is fraud. Small on purpose: the chapters that use it are about how it is
trained, tested and served, not about its architecture.
"""

from __future__ import annotations

import torch
from torch import nn

from casestudy.warehouse import CATEGORIES

# One batch of training examples: the model's inputs, then the labels [N] (float32, 1.0
# for fraud). The inputs are category indices [N] (int64), numeric features
# [N, n_numeric] (float32) and, for a model with merchant embeddings, merchant indices
# [N] (int64): ``*inputs, labels = batch; model(*inputs)``.
Batch = tuple[torch.Tensor, ...]


class FraudNet(nn.Module):
    """Logit of fraud from a merchant category and numeric features."""

    def __init__(
        self,
        n_numeric: int = 4,
        n_categories: int = len(CATEGORIES),
        embedding_dim: int = 8,
        hidden: int = 32,
        n_merchants: int = 0,
    ):
        super().__init__()
        self.category = nn.Embedding(n_categories, embedding_dim)
        # Without merchants the model is the testing chapter's small one, unchanged.
        self.merchant = nn.Embedding(n_merchants, embedding_dim) if n_merchants else None
        n_embedded = embedding_dim * (2 if n_merchants else 1)
        self.mlp = nn.Sequential(
            nn.Linear(n_embedded + n_numeric, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, category: torch.Tensor, numeric: torch.Tensor, merchant: torch.Tensor | None = None) -> torch.Tensor:
        if (merchant is None) != (self.merchant is None):
            raise ValueError(
                "pass merchant indices exactly when the model has merchant embeddings "
                f"(this one {'has' if self.merchant is not None else 'has not'})"
            )
        embedded = [self.category(category)] if merchant is None else [self.category(category), self.merchant(merchant)]
        return self.mlp(torch.cat([*embedded, numeric], dim=1)).squeeze(1)


def random_batch(n: int, n_numeric: int = 4, seed: int = 0, fraud_share: float = 0.5, n_merchants: int = 0) -> Batch:
    """``n`` examples with random features and labels, for tests that need any batch at all.

    The labels carry no signal: a model that fits them has memorised the batch, which
    is exactly what an overfit-one-batch test asks of it.
    """
    generator = torch.Generator().manual_seed(seed)
    category = torch.randint(0, len(CATEGORIES), (n,), generator=generator)
    numeric = torch.randn(n, n_numeric, generator=generator)
    labels = (torch.rand(n, generator=generator) < fraud_share).float()
    if not n_merchants:
        return category, numeric, labels
    return category, numeric, torch.randint(0, n_merchants, (n,), generator=generator), labels
