"""What the fraud model ships as, and how a payment becomes the model's input.

Training hands serving a *model bundle*: one folder with the weights and a JSON
config that says what the weights are (the model's sizes, the category vocabulary,
the order of the numeric features, a version) and their SHA-256 checksum. The service
reads nothing else: a bundle is all it needs, and a bundle that is incomplete,
corrupt or inconsistent is refused at start-up with a ``BundleError`` that says what
is wrong, instead of serving wrong scores later.

The request contract lives here too (``EXAMPLE_PAYMENT``, the feature ranges, the
batch and body limits), with ``Bundle.to_tensors``, the one place where a payment
becomes tensors: the service, the tests and the lessons share it, so they cannot
drift apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from casestudy.features import NUMERIC
from casestudy.model import FraudNet, FraudNetConfig
from casestudy.warehouse import CATEGORIES

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
# Bumped when the layout changes, so that an old service refuses a bundle it cannot read.
BUNDLE_FORMAT = 1
# The model's sizes as the config records them: the fields of FraudNetConfig.
MODEL_SIZES = tuple(field.name for field in fields(FraudNetConfig))

CATEGORY_NAMES: tuple[str, ...] = tuple(str(name) for name in CATEGORIES)
# The range each numeric feature may take in a request. Training data lie well inside;
# a value outside is a bug upstream (a ratio not logged, a count gone negative), not a payment.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "log_amount_vs_card_avg_30d": (-20.0, 20.0),
    "log_payments_prev_1h": (0.0, 20.0),
}
MAX_BATCH = 256  # payments per /score/batch request
MAX_BODY_BYTES = 128 * 1024  # room for a full batch (about 200 bytes per payment), and no more

# One valid request: what the payments platform sends for each payment it wants scored.
EXAMPLE_PAYMENT: dict = {
    "payment_id": "pay_0001",
    "category": "electronics",
    "merchant_id": 17,
    "log_amount_vs_card_avg_30d": 2.3,
    "log_payments_prev_1h": 1.1,
    "abroad": True,
    "night": False,
}


class BundleError(Exception):
    """A model bundle that cannot be served; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Bundle:
    """A loaded model bundle: the model in evaluation mode and what its config says about it."""

    model: FraudNet
    version: str
    categories: tuple[str, ...]
    numeric_features: tuple[str, ...]
    n_merchants: int
    sha256: str

    def to_tensors(
        self, payments: Sequence[Mapping]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(category, numeric, merchant)`` for ``model(*inputs)``, from payments.

        The payments are mappings as the request schema gives them.

        Raises ValueError for a category the model does not know: the schema should have
        refused it already, and a clear error beats an index out of range.
        """
        index = {name: i for i, name in enumerate(self.categories)}
        unknown = sorted({p["category"] for p in payments} - index.keys())
        if unknown:
            raise ValueError(
                f"unknown category {unknown[0]!r}: the model knows {', '.join(self.categories)}"
            )
        category = torch.tensor([index[p["category"]] for p in payments], dtype=torch.int64)
        numeric = torch.tensor(
            [[float(p[name]) for name in self.numeric_features] for p in payments],
            dtype=torch.float32,
        )
        # Merchants that joined after training have no embedding row. Row 0 is never
        # trained (merchant ids start at 1), so it is the "unknown merchant" row: a new
        # merchant gets a score from its category and numbers instead of an error.
        merchant = torch.tensor(
            [p["merchant_id"] if 0 < p["merchant_id"] < self.n_merchants else 0 for p in payments],
            dtype=torch.int64,
        )
        return category, numeric, merchant

    def predict(self, payments: Sequence[Mapping]) -> list[float]:
        """The probability of fraud of each payment, in order."""
        if not payments:
            return []
        with torch.inference_mode():
            logits = self.model(*self.to_tensors(payments))
        return torch.sigmoid(logits).tolist()


def save_bundle(model: FraudNet, folder: str | Path, version: str) -> Path:
    """Write ``model`` as a bundle in ``folder``: ``weights.pt``, then ``config.json``.

    The config records the model's ``FraudNetConfig`` and the weights' checksum.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / WEIGHTS_FILE
    torch.save(model.state_dict(), weights)
    config = {
        "format": BUNDLE_FORMAT,
        "version": version,
        "model": asdict(model.config),
        "categories": list(CATEGORY_NAMES),
        "numeric_features": list(NUMERIC),
        "weights": {"file": WEIGHTS_FILE, "sha256": _sha256(weights)},
    }
    # The config goes last and names the weights' checksum: a bundle whose writing was
    # cut short has no config, or a checksum that does not match, and is refused.
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return folder


def load_bundle(folder: str | Path) -> Bundle:
    """Read a bundle written by ``save_bundle``.

    Raises BundleError if the bundle is missing, corrupt or inconsistent.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BundleError(f"model bundle {folder} does not exist (or is not a folder)")
    config = _read_config(folder)
    weights = folder / config["weights"]["file"]
    if not weights.is_file():
        raise BundleError(f"model bundle {folder}: {weights.name} is missing")
    actual = _sha256(weights)
    if actual != config["weights"]["sha256"]:
        raise BundleError(
            f"model bundle {folder}: checksum mismatch for {weights.name} "
            f"(SHA-256 {actual[:12]}..., {CONFIG_FILE} expects "
            f"{config['weights']['sha256'][:12]}...): "
            "the file is corrupt or belongs to another bundle"
        )
    sizes = config["model"]
    n_categories, n_numeric = len(config["categories"]), len(config["numeric_features"])
    if sizes["n_categories"] != n_categories or sizes["n_numeric"] != n_numeric:
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} lists a vocabulary or features "
            "that its model sizes do not fit"
        )
    try:
        model = FraudNet(FraudNetConfig(**sizes))
        # weights_only: a bundle is data, and unpickling arbitrary objects would run their code.
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except (RuntimeError, TypeError, ValueError, EOFError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} does not match {weights.name} ({first_line})"
        ) from None
    return Bundle(
        model=model.eval(),
        version=str(config["version"]),
        categories=tuple(config["categories"]),
        numeric_features=tuple(config["numeric_features"]),
        n_merchants=sizes["n_merchants"],
        sha256=actual,
    )


def example_bundle(
    folder: str | Path, version: str = "example-1", n_merchants: int = 200, seed: int = 0
) -> Path:
    """An untrained FraudNet, seeded, saved as a bundle: what serving exercises and tests serve.

    The serving chapter is about the service, not the model's quality; a trained model
    comes from the GPU chapter and is saved the same way.
    """
    # A forked generator: the seed fixes these weights without touching the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FraudNet(FraudNetConfig(n_merchants=n_merchants))
    return save_bundle(model, folder, version)


def _read_config(folder: Path) -> dict:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise BundleError(f"model bundle {folder}: {CONFIG_FILE} is missing")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} is not valid JSON ({e})"
        ) from None
    if not isinstance(config, dict) or config.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} is not a bundle config "
            f"of format {BUNDLE_FORMAT}"
        )
    missing = [
        key
        for key in ("version", "model", "categories", "numeric_features", "weights")
        if key not in config
    ]
    if missing:
        raise BundleError(f"model bundle {folder}: {CONFIG_FILE} lacks {', '.join(missing)}")
    weights, sizes = config["weights"], config["model"]
    # The config names the weights file: only a plain name, inside the bundle's folder, will do.
    if (
        not isinstance(weights, dict)
        or not isinstance(weights.get("sha256"), str)
        or Path(str(weights.get("file"))).name != weights.get("file")
    ):
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} must name the weights file "
            "(in the bundle) and its sha256"
        )
    if (
        not isinstance(sizes, dict)
        or set(sizes) != set(MODEL_SIZES)
        or not all(isinstance(v, int) for v in sizes.values())
    ):
        raise BundleError(
            f"model bundle {folder}: {CONFIG_FILE} must give the model's sizes "
            f"{', '.join(MODEL_SIZES)} as integers"
        )
    return config


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
