"""`avloc bench ave` runs end to end and reports every figure the README quotes (no timing assertions)."""

from __future__ import annotations

import json

import torch


def test_bench_ave_smoke(tmp_path):
    from avloc.tools.bench import bench_ave
    from avloc.data.synth_ave import write_synthetic_ave

    from avloc.engine.precision import KERNEL_FLAGS

    write_synthetic_ave(tmp_path / "d", videos=40, seed=0, dtype="float32")
    logged = []
    res = bench_ave(tmp_path / "d", models=["psp"], epochs=1, json_out=str(tmp_path / "b.json"),
                    log=logged.append, overrides=["train.batch_size=8", "train.threads=1"])
    assert res["cpu"] and set(res["cpu_flags"]) <= set(KERNEL_FLAGS)
    assert logged[-1].startswith(f"CPU {res['cpu']}")  # every table says which CPU made it
    m = res["models"]["psp"]
    for key in ("seconds_per_epoch", "videos_per_second", "bound_seconds", "ratio_to_bound", "eval_test_seconds",
                "ratio_to_onednn_bound"):
        assert m[key] > 0, key
    assert m["epoch_gflop"] > 0 and res["peak_rss_mb"] > 0 and res["matmul_gflops"] > 0
    assert json.loads((tmp_path / "b.json").read_text())["models"]["psp"]["params"] == m["params"]


def test_flop_count_of_the_onednn_lstm_equals_the_op_by_op_lstm():
    """The bound counts nn.LSTM's matmuls on CPU (oneDNN's fused kernel) exactly as torch counts the generic path."""
    import warnings

    from torch.utils.flop_counter import FlopCounterMode

    import avloc.tools.bench  # noqa: F401  (registers the formulas)

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(24, 16, 1, batch_first=True, bidirectional=True)
    x = torch.randn(3, 7, 24, requires_grad=True)

    def count() -> int:
        counter = FlopCounterMode(display=False)
        with counter:
            lstm(x)[0].square().sum().backward()
        return counter.get_total_flops()

    fused = count()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.backends.mkldnn.flags(enabled=False):
            generic = count()
    assert fused == generic > 0
