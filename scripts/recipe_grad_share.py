"""How much of the first steps' gradient the PSP pair term takes, with fresh and with carried targets.

At the initialisation of ``ave/psp_fully.yaml`` (seed ``--seed``), for one training batch: the gradient
norm of the cross-entropy, of ``lambda_avps x AVPS`` with fresh targets and with the official carried
targets (the buffer first filled by ``--warm`` earlier batches' labels, as the official loader has it
by then), and the cosine between each pair-term gradient and the CE gradient. Dropout is on, with the
same random stream for every term.

    PYTHONPATH=src python scripts/recipe_grad_share.py --data DIR --batch 64 --warm 25
"""

from __future__ import annotations

import argparse

import torch

from avloc.config import load_config
from avloc.engine.build import build_model, load_data
from avloc.losses.ave_losses import CarriedTargets, avps_loss
from avloc.tools.paths import config_path


def flat_grad(model: torch.nn.Module, loss: torch.Tensor) -> torch.Tensor:
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warm", type=int, default=25, help="earlier batches written into the carried buffer")
    ap.add_argument("--seed", type=int, default=123)
    args = ap.parse_args()
    cfg = load_config(config_path("ave/psp_fully.yaml"), ["data.storage=float16", "train.threads=1"])
    torch.set_num_threads(1)
    data = load_data(cfg, args.data)
    torch.manual_seed(args.seed)
    model = build_model(cfg, data)
    model.train()
    lam = cfg.loss.lambda_avps
    train = data.splits["train"]
    gen = torch.Generator().manual_seed(args.seed)
    perm = train[torch.randperm(len(train), generator=gen)]
    carried = CarriedTargets()
    for b in range(args.warm):  # the official buffer after `warm` batches (labels only, no model)
        carried(data.batch(perm[b * args.batch:(b + 1) * args.batch])["event_mask"].float())
    batch = data.batch(perm[args.warm * args.batch:(args.warm + 1) * args.batch])
    out = model(batch)
    mask = batch["event_mask"].float()
    ce = torch.nn.functional.cross_entropy(out.class_logits.reshape(-1, out.class_logits.shape[-1]),
                                           batch["segment_labels"].reshape(-1))
    g_ce = flat_grad(model, ce)
    print(f"batch {args.batch}, {int(mask.sum())} event segments of {mask.numel()}; CE {ce.item():.3f} "
          f"|grad| {g_ce.norm().item():.4f}")
    for name, targets in (("fresh", None), ("carried", carried(mask))):
        term = lam * avps_loss(out.av_similarity, mask, targets)
        g = flat_grad(model, term)
        cos = torch.nn.functional.cosine_similarity(g, g_ce, dim=0).item()
        print(f"{name:>8}: {lam:g} x AVPS {term.item():.3f} |grad| {g.norm().item():.4f} "
              f"({g.norm().item() / g_ce.norm().item():.2f} x CE's), cosine with CE's gradient {cos:+.3f}")


if __name__ == "__main__":
    main()
