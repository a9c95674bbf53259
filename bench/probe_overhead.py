"""What measuring dormant + GraMa ratios every update costs, as a fraction of the update step.

Two networks: an MLP the size of a SAC critic (256-256 ReLU, 23 inputs, batch 256) and a DQN-shaped
Impala CNN (x1, flatten, 512, 18 actions, batch 32 of 84x84x4). Each update is a TD-style regression
step with Adam. Three variants, jitted, timed in interleaved rounds (best of ``--repeats``):

- ``plain``: the update alone;
- ``fused``: the update takes its gradient from the probe (`plastix.plasticity.probe` differentiates the
  loss with respect to the parameters and the neuron perturbations in one backward pass), then computes
  dormant and GraMa ratios: the overhead of measuring *every* update when an agent fuses it;
- ``separate``: the update, then an independent probe pass (what the training loop's hook does every
  ``plasticity.every`` updates; amortised, its cost divides by that interval).

    python bench/probe_overhead.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from plastix.nets import neurons
from plastix.nets.build import EncoderConfig, NetConfig, QNetwork
from plastix.nets.torsos import MLP
from plastix.plasticity.metrics import activity
from plastix.plasticity.probe import probe

RESULTS = Path(__file__).parent / "results"


class Critic(nn.Module):
    """SAC-sized critic: MLP 256-256 ReLU, scalar output."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(1, name="head")(MLP((256, 256), "relu", name="torso")(x))[..., 0]


def _setups():
    key = jax.random.PRNGKey(0)
    mlp_x = jax.random.normal(key, (256, 23))
    frames = jax.random.randint(key, (32, 84, 84, 4), 0, 255).astype(jnp.uint8)
    impala = QNetwork(NetConfig(encoder=EncoderConfig("impala"), hidden=(512,), activation="relu"), 18)
    return {"mlp-256x2 (SAC critic, batch 256)": (Critic(), mlp_x),
            "impala-x1 (DQN, batch 32)": (impala, frames)}


def _variants(net, x):
    params = net.init(jax.random.PRNGKey(1), x)["params"]
    tx = optax.adam(3e-4)
    target = jnp.zeros(())

    def loss(p):
        return jnp.square(neurons.apply(net, p, x) - target).mean()

    def plain(p, s):
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, {}

    def fused(p, s):
        layers, g = probe(loss, p, net, (x[:1],))
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, activity(layers, metrics=("dormant", "grama"))

    def separate(p, s):
        p, s, _ = plain(p, s)
        layers, _ = probe(loss, p, net, (x[:1],))
        return p, s, activity(layers, metrics=("dormant", "grama"))

    state = tx.init(params)
    out = {}
    for name, fn in (("plain", plain), ("fused", fused), ("separate", separate)):
        compiled = jax.jit(fn).lower(params, state).compile()
        jax.block_until_ready(compiled(params, state))
        out[name] = (compiled, params, state)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rows = []
    print(f"{'network':>36} {'plain ms':>9} {'fused ms':>9} {'separate ms':>12} {'fused +%':>9} "
          f"{'separate +%':>12}")
    for net_name, (net, x) in _setups().items():
        variants = _variants(net, x)
        best = {k: float("inf") for k in variants}
        for _ in range(args.repeats):
            for k, (fn, p, s) in variants.items():
                t = time.perf_counter()
                jax.block_until_ready(fn(p, s))
                best[k] = min(best[k], time.perf_counter() - t)
        row = {"network": net_name, **{f"{k}_ms": 1e3 * v for k, v in best.items()},
               "fused_overhead": best["fused"] / best["plain"] - 1,
               "separate_overhead": best["separate"] / best["plain"] - 1}
        rows.append(row)
        print(f"{net_name:>36} {row['plain_ms']:>9.2f} {row['fused_ms']:>9.2f} {row['separate_ms']:>12.2f} "
              f"{100 * row['fused_overhead']:>8.1f}% {100 * row['separate_overhead']:>11.1f}%")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": platform.platform(), "backend": jax.default_backend(), "rows": rows}
    (RESULTS / "probe_overhead.json").write_text(json.dumps(out, indent=2))
    print(f"wrote {RESULTS / 'probe_overhead.json'}")


if __name__ == "__main__":
    main()
