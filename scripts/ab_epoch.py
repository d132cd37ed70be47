"""Before/after training speed in ONE process: an older avloc source tree against this one.

The older tree is copied and imported as ``avloc_old``; both versions train the same videos of the same data
folder (each with its own dataset, model, loss and Adam), in rounds of ``--steps`` batches that alternate
old/new/plain, reversing the order every round, so that a drifting shared host slows both sides alike. The
figure to quote is the median over rounds of the per-round ratio. ``plain`` is today's code with the fused
attention kernel switched off.

    python scripts/ab_epoch.py --old-src OLD_CHECKOUT/src --data SYN_AVE --model vscg_fully --steps 6 --rounds 10

The old tree must have ``engine.loop.load_data / build_model / build_loss / build_optimizer /
train_one_epoch`` with today's signatures (true from the redesign's base commit on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def import_old(src: Path, into: Path):  # noqa: ANN201
    """Copy ``src/avloc`` to ``into/avloc_old`` with every ``avloc`` import renamed, then import it."""
    dst = into / "avloc_old"
    shutil.copytree(src / "avloc", dst)
    for f in dst.rglob("*.py"):
        text = re.sub(r"\bavloc\.", "avloc_old.", f.read_text())
        text = re.sub(r"^(\s*)(from avloc import|import avloc$)", lambda m: m.group(0).replace("avloc", "avloc_old"),
                      text, flags=re.M)
        f.write_text(text)
    sys.path.insert(0, str(into))
    import avloc_old.config
    import avloc_old.engine.distributed
    import avloc_old.engine.loop
    with contextlib.suppress(ImportError):
        import avloc_old.engine.build  # noqa: F401

    return avloc_old


def trainer(pkg, cfg, data, fused: bool | None = None):  # noqa: ANN001, ANN201
    """One ``train_one_epoch`` over the data's (restricted) training split, as a closure."""
    if fused is not None:
        pkg.kernels.set_fused_attn(fused)
    torch.manual_seed(0)
    loop, cpu = pkg.engine.loop, torch.device("cpu")
    build = getattr(pkg.engine, "build", loop)  # trees before the split of engine/loop.py built runs in loop
    model = build.build_model(cfg, data)
    loss, opt = build.build_loss(cfg), build.build_optimizer(cfg, model, cpu)
    info = pkg.engine.distributed.DistInfo()
    return lambda: loop.train_one_epoch(model, loss, opt, data, cfg, 0, cpu, info)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old-src", required=True, type=Path, help="the older checkout's src folder")
    p.add_argument("--old-configs", type=Path, default=None, help="its configs folder (default: beside src)")
    p.add_argument("--data", required=True, help="AVE-format data folder")
    p.add_argument("--model", default="vscg_fully", help="shipped config name under configs/ave/")
    p.add_argument("--steps", type=int, default=6, help="batches per round")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    import avloc.config
    import avloc.engine.distributed
    import avloc.engine.build
    import avloc.engine.loop
    import avloc.kernels
    from avloc.tools.paths import config_path

    with tempfile.TemporaryDirectory() as tmp:
        old = import_old(args.old_src, Path(tmp))
        old_cfg_dir = args.old_configs or args.old_src.parent / "configs"
        cfgs = {"old": old.config.load_config(old_cfg_dir / "ave" / f"{args.model}.yaml"),
                "new": avloc.config.load_config(config_path(f"ave/{args.model}.yaml"))}
        datas = {k: getattr(pkg.engine, "build", pkg.engine.loop).load_data(cfgs[k], args.data) for k, pkg in (("old", old), ("new", avloc))}
        bs = cfgs["new"].train.batch_size
        n = len(datas["new"].splits["train"])
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[: args.steps * bs].sort().values
        for d in datas.values():
            d.splits["train"] = d.splits["train"][pick]
        run = {"old": trainer(old, cfgs["old"], datas["old"]),
               "new": trainer(avloc, cfgs["new"], datas["new"], fused=True),
               "plain": trainer(avloc, cfgs["new"], datas["new"], fused=False)}
        for f in run.values():
            f()  # warm-up: first-touch allocations, oneDNN primitive caches
        times: dict[str, list[float]] = {k: [] for k in run}
        for r in range(args.rounds):
            for k in list(run) if r % 2 == 0 else list(run)[::-1]:
                t = time.perf_counter()
                run[k]()
                times[k].append(time.perf_counter() - t)
            print(r, {k: round(v[-1], 3) for k, v in times.items()}, flush=True)
    scale = avloc.engine.loop.batches_per_epoch(n, cfgs["new"].train) / args.steps
    res = {"model": args.model, "steps": args.steps, "rounds": args.rounds, "train_videos": n,
           "median_s_per_epoch": {k: statistics.median(v) * scale for k, v in times.items()},
           "new_over_old": statistics.median(a / b for a, b in zip(times["new"], times["old"])),
           "plain_over_old": statistics.median(a / b for a, b in zip(times["plain"], times["old"])), "times": times}
    print(json.dumps({k: v for k, v in res.items() if k != "times"}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
