"""Cost of the encoder-to-dense bottleneck options: parameters, FLOPs and forward+backward time.

A DQN-shaped Q-network (Impala encoder at width scale 1, 2, 4 -> bottleneck -> 512 -> 18 actions) on a
batch of 32 84x84x4 frames, for: flatten, GAP, SoftMoE with 1 and 4 experts, Top-1 with 4 experts and
expert choice with 4 experts (the MoEs on PerConv tokens, experts Dense 512 -> ReLU -> Dense d, replacing
the penultimate layer as in "Mixtures of Experts unlock parameter scaling"). FLOPs come from XLA's cost
analysis of the compiled forward+backward; time is the best of ``--repeats`` interleaved rounds after
compilation. Ratios are against flatten at the same scale.

    python bench/nets_cost.py [--scales 1 2 4] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from plastix.nets.build import EncoderConfig, MoEConfig, NetConfig, QNetwork

RESULTS = Path(__file__).parent / "results"
VARIANTS = {
    "flatten": dict(bottleneck="flatten"),
    "gap": dict(bottleneck="gap"),
    "softmoe-1": dict(bottleneck="perconv", moe=MoEConfig("soft", experts=1)),
    "softmoe-4": dict(bottleneck="perconv", moe=MoEConfig("soft", experts=4)),
    "top1-4": dict(bottleneck="perconv", moe=MoEConfig("topk", experts=4, k=1)),
    "expertchoice-4": dict(bottleneck="perconv", moe=MoEConfig("expert_choice", experts=4)),
}


def compile_variant(variant: str, scale: int, frames: jax.Array):
    """The jitted forward+backward of one variant, compiled, with its parameters and cost."""
    cfg = NetConfig(encoder=EncoderConfig("impala", scale=scale), hidden=(512,), activation="relu",
                    **VARIANTS[variant])
    net = QNetwork(cfg, 18)
    params = net.init(jax.random.PRNGKey(1), frames)["params"]

    def loss(p, x):
        return jnp.square(net.apply({"params": p}, x)).mean()

    compiled = jax.jit(jax.value_and_grad(loss)).lower(params, frames).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    jax.block_until_ready(compiled(params, frames))  # warm up
    return compiled, params, {"variant": variant, "scale": scale,
                              "params": int(sum(np.prod(p.shape) for p in jax.tree.leaves(params))),
                              "gflops": float(cost.get("flops", float("nan"))) / 1e9}


def measure_scale(scale: int, repeats: int) -> list[dict]:
    """All variants at one scale, timed in interleaved rounds so machine noise hits them alike."""
    frames = jax.random.randint(jax.random.PRNGKey(0), (32, 84, 84, 4), 0, 255).astype(jnp.uint8)
    compiled = {v: compile_variant(v, scale, frames) for v in VARIANTS}
    best = {v: float("inf") for v in VARIANTS}
    for _ in range(repeats):
        for v, (fn, params, _) in compiled.items():
            t = time.perf_counter()
            jax.block_until_ready(fn(params, frames))
            best[v] = min(best[v], time.perf_counter() - t)
    return [dict(row, ms=1e3 * best[v], time_vs_flatten=best[v] / best["flatten"])
            for v, (_, _, row) in compiled.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    print(f"{'variant':>15} {'scale':>5} {'params':>12} {'GFLOPs':>8} {'fwd+bwd ms':>11} {'x flatten':>9}")
    for scale in args.scales:
        for row in measure_scale(scale, args.repeats):
            rows.append(row)
            variant = row["variant"]
            print(f"{variant:>15} {scale:>5} {row['params']:>12,} {row['gflops']:>8.2f} {row['ms']:>11.1f} "
                  f"{row['time_vs_flatten']:>9.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": platform.platform(), "backend": jax.default_backend(), "batch": 32,
           "frames": [84, 84, 4], "rows": rows}
    (RESULTS / "nets_cost.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'nets_cost.json'}")


if __name__ == "__main__":
    main()
