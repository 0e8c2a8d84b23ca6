"""The case study's fraud model: embeddings for the merchant category (and merchant), then an MLP.

A payment is described by its merchant category (one of ``warehouse.CATEGORIES``) and
a few numeric features (``features.NUMERIC``: the amount against the card's usual
spending, payments in the last hour, ...); the GPU chapter adds the merchant itself.
Each is looked up in a learned embedding table, joined to the numeric features, and an
MLP turns the result into one logit: the log-odds that the payment is fraud. Small on
purpose: the chapters that use it are about how it is trained, tested and served, not
about its architecture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from casestudy.features import NUMERIC
from casestudy.warehouse import CATEGORIES


@dataclass(frozen=True)
class FraudNetConfig:
    """FraudNet's sizes, in one place: what a model bundle records and rebuilds the model from."""

    n_numeric: int = len(NUMERIC)
    n_categories: int = len(CATEGORIES)
    embedding_dim: int = 8
    hidden: int = 32
    n_merchants: int = 0  # 0: no merchant embeddings (the testing chapter's small model)


class Batch(NamedTuple):
    """Training examples for a model without merchants: ``*inputs, labels = batch``."""

    category: torch.Tensor  # [N] int64 indices into CATEGORIES
    numeric: torch.Tensor  # [N, n_numeric] float32
    labels: torch.Tensor  # [N] float32, 1.0 for fraud


class MerchantBatch(NamedTuple):
    """Training examples for a model with merchant embeddings: ``*inputs, labels = batch``."""

    category: torch.Tensor  # [N] int64 indices into CATEGORIES
    numeric: torch.Tensor  # [N, n_numeric] float32
    merchant: torch.Tensor  # [N] int64 merchant ids
    labels: torch.Tensor  # [N] float32, 1.0 for fraud


class FraudNet(nn.Module):
    """Logit of fraud from a merchant category and numeric features."""

    def __init__(self, config: FraudNetConfig = FraudNetConfig()):
        super().__init__()
        self.config = config
        self.category = nn.Embedding(config.n_categories, config.embedding_dim)
        # Without merchants the model is the testing chapter's small one, unchanged.
        self.merchant = (
            nn.Embedding(config.n_merchants, config.embedding_dim) if config.n_merchants else None
        )
        n_embedded = config.embedding_dim * (2 if config.n_merchants else 1)
        self.mlp = nn.Sequential(
            nn.Linear(n_embedded + config.n_numeric, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, 1),
        )

    def forward(
        self, category: torch.Tensor, numeric: torch.Tensor, merchant: torch.Tensor | None = None
    ) -> torch.Tensor:
        if (merchant is None) != (self.merchant is None):
            raise ValueError(
                "pass merchant indices exactly when the model has merchant embeddings "
                f"(this one {'has' if self.merchant is not None else 'has not'})"
            )
        embedded = [self.category(category)]
        if merchant is not None:
            embedded.append(self.merchant(merchant))
        return self.mlp(torch.cat([*embedded, numeric], dim=1)).squeeze(1)


def random_batch(
    n: int, n_numeric: int = 4, seed: int = 0, fraud_share: float = 0.5, n_merchants: int = 0
) -> Batch | MerchantBatch:
    """``n`` examples with random features and labels, for tests that need any batch at all.

    A ``MerchantBatch`` when ``n_merchants`` is given, a ``Batch`` otherwise. The labels
    carry no signal: a model that fits them has memorised the batch, which is exactly
    what an overfit-one-batch test asks of it.
    """
    generator = torch.Generator().manual_seed(seed)
    category = torch.randint(0, len(CATEGORIES), (n,), generator=generator)
    numeric = torch.randn(n, n_numeric, generator=generator)
    labels = (torch.rand(n, generator=generator) < fraud_share).float()
    if not n_merchants:
        return Batch(category, numeric, labels)
    merchant = torch.randint(0, n_merchants, (n,), generator=generator)
    return MerchantBatch(category, numeric, merchant, labels)
