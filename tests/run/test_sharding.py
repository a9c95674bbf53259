"""Seeds shard across devices; checked on CPU with two forced host devices."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from plastix.run.config import from_dict
from plastix.run.train import train


@pytest.mark.slow  # 50 s: two processes, each compiling and training; CI has one device
def test_seeds_shard_across_two_host_devices(tmp_path):
    script = textwrap.dedent(f"""
        import jax, json, numpy as np
        assert jax.device_count() == 2, jax.devices()
        from plastix.run import loop
        from plastix.run.config import from_dict
        from plastix.run.train import train
        from plastix.run.load import final_params
        seen = []
        real = loop.shard_seeds
        def spy(tree, n):
            out = real(tree, n)
            seen.append(len(jax.tree.leaves(out)[0].sharding.device_set))
            return out
        loop.shard_seeds = spy
        import plastix.run.train as t; t.shard_seeds = spy
        cfg = from_dict(dict(env="MiniGrid-Empty-5x5-v0", total_steps=4096, seeds=4,
                             log_every=2048, eval_episodes=4, out_dir=r"{tmp_path}",
                             progress=False, name="sharded"))
        res = train(cfg)
        assert seen and all(n == 2 for n in seen), seen
        p = final_params(res.run_dir)
        assert all(np.isfinite(x).all() for x in jax.tree.leaves(p))
        print("OK", json.dumps(res.eval_return))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]
    sharded = json.loads(out.stdout.split("OK", 1)[1])
    # the same seeds on one device give the same policy: seeds are independent programs
    cfg = from_dict(dict(env="MiniGrid-Empty-5x5-v0", total_steps=4096, seeds=4, log_every=2048,
                         eval_episodes=4, out_dir=str(tmp_path), progress=False, name="single"))
    np.testing.assert_allclose(train(cfg).eval_return, sharded, atol=1e-6)
