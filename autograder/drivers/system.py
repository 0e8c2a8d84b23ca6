"""Drivers of the capstone: run beside the learner's code, they hand the judge plain values (tensors, floats)."""

from __future__ import annotations


def trained_weights(train_model, shards, checkpoint, epochs: int, n_merchants: int, seed: int = 0) -> dict:
    """``train_model(...)``'s weights as plain tensors, and whether it handed back a model in evaluation mode."""
    model = train_model(shards, checkpoint, epochs, n_merchants, seed=seed)
    return {"eval_mode": not model.training, "weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def checkpoint_state(new_job, resume, checkpoint, n_merchants: int) -> tuple[int, float]:
    """(the epoch a fresh job starts from after ``resume(checkpoint)``, its learning rate then)."""
    model, optimizer, scheduler = new_job(n_merchants, seed=0)
    return resume(checkpoint, model, optimizer, scheduler), optimizer.param_groups[0]["lr"]


def crashed_in_epoch(train_model, new_job, resume, shards, checkpoint: str, n_merchants: int) -> int | None:
    """Where a job resumes after ``train_model`` crashed at the first step of its second epoch; None if it never crashed.

    The crash is a ``train_step`` that raises, put in the name's place in the learner's
    module (the prompt has ``train_model`` call ``train_step``) for the length of the call.
    """
    module = train_model.__globals__
    real, steps = module["train_step"], []

    def counted(*args, **kwargs):
        steps.append(None)
        return real(*args, **kwargs)

    def crashing(*args, **kwargs):
        if len(steps) == per_epoch:
            raise RuntimeError("the machine was pre-empted")
        return counted(*args, **kwargs)

    try:
        module["train_step"] = counted
        train_model(shards, checkpoint + ".one-epoch", 1, n_merchants)
        per_epoch = len(steps)
        steps.clear()
        module["train_step"] = crashing
        try:
            train_model(shards, checkpoint, 3, n_merchants)
            return None
        except RuntimeError:
            pass
    finally:
        module["train_step"] = real
    return checkpoint_state(new_job, resume, checkpoint, n_merchants)[0]


def shuffle_seeds(train_model, shards, checkpoint: str, epochs: int, n_merchants: int) -> list:
    """The seeds that ``train_model`` hands ``shuffled``, one call per epoch, recorded in the learner's module."""
    module = train_model.__globals__
    real, seeds = module["shuffled"], []

    def recorded(items, buffer_size, seed=0):
        seeds.append(seed)
        return real(items, buffer_size, seed)

    module["shuffled"] = recorded
    try:
        train_model(shards, checkpoint, epochs, n_merchants)
    finally:
        module["shuffled"] = real
    return seeds


def training_auc(train_model, auc, shards, checkpoint, epochs: int, n_merchants: int) -> float:
    """The AUC, on the shards it was trained on, of the model that ``train_model`` returns."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from casestudy.features import NUMERIC

    model = train_model(shards, checkpoint, epochs, n_merchants)
    rows = pa.concat_tables(pq.read_table(path) for path in shards).to_pandas()
    with torch.inference_mode():
        logits = model(
            torch.tensor(rows["category"].to_numpy()),
            torch.tensor(rows[NUMERIC].to_numpy()),
            torch.tensor(rows["merchant"].to_numpy()),
        )
    return auc(rows["label"].to_numpy(), logits.numpy())


def served_and_direct(score_with_service, bundle, rows):
    """(what ``score_with_service`` returned, the bundle's own ``predict`` of the same rows in this process)."""
    from casestudy.serving import CATEGORY_NAMES, load_bundle

    payments = [
        {
            "category": CATEGORY_NAMES[int(row.category)],
            "merchant_id": int(row.merchant),
            "log_amount_vs_card_avg_30d": float(row.log_amount_vs_card_avg_30d),
            "log_payments_prev_1h": float(row.log_payments_prev_1h),
            "abroad": float(row.abroad),
            "night": float(row.night),
        }
        for row in rows.itertuples()
    ]
    return score_with_service(bundle, rows), load_bundle(bundle).predict(payments)
