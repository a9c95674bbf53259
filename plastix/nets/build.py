"""One network config -> a Flax module, for every agent.

A pathway is ``encoder -> bottleneck -> dense stack -> head``. The bottleneck always hands tokens
``[..., m, k]`` on (``flatten`` and ``gap`` give one token); a dense stack without experts aggregates
them (``aggregate``), one with experts routes them. Where the experts sit (``moe.position``):

- ``middle``: the last hidden layer becomes a MoE whose experts are ``Dense(h) -> act -> Dense(k)``
  (the SoftMoE papers' penultimate layer; earlier hidden layers act on each token), outputs flattened;
- ``final``: the output layer is a MoE of linear experts (outputs averaged over tokens);
- ``all``: every hidden layer and the output layer are MoEs of one-layer experts;
- ``big``: each expert is the whole dense stack with its output layer.

Actor-critic agents put experts in the actor, the critic or both (``moe.placement``) and share the
encoder, everything below the heads, or nothing (``shared``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp

from plastix.nets.bottleneck import AGGREGATIONS, BOTTLENECKS, Bottleneck, aggregate
from plastix.nets.heads import POLICY_SCALE, C51Head, CategoricalHead, QHead, TanhGaussianHead, ValueHead
from plastix.nets.moe import AUX_LOSSES, MOE_KINDS
from plastix.nets.per_seed import Dense
from plastix.nets.torsos import ACTIVATIONS, MLP, PADDINGS, ImpalaCNN, MinAtarCNN, NatureCNN, ResidualMLP

ENCODERS = ("none", "nature", "impala", "minatar")
TORSOS = ("mlp", "residual")
POSITIONS = ("middle", "final", "all", "big")
PLACEMENTS = ("actor", "critic", "both")
SHARING = ("none", "encoder", "all")


@dataclass(frozen=True)
class EncoderConfig:
    """The pixel encoder in front of the bottleneck."""

    kind: str = "none"
    """none (observations go straight to the bottleneck), nature (DQN's CNN), impala, or minatar (one
    Conv 16 3x3 stride 1: Young & Tian's and Dopamine's MinAtar encoder)."""
    scale: int = 1
    """Channel multiplier: Impala (16, 32, 32) x scale, minatar 16 x scale."""
    padding: str = "SAME"
    """Nature / minatar padding: SAME (Dopamine-JAX: 11x11 on 84x84, 10x10 on MinAtar) or VALID (original
    DQN's 7x7; Young & Tian's 8x8)."""


@dataclass(frozen=True)
class MoEConfig:
    """Mixture of experts in the dense stack; kind none leaves it a plain stack."""

    kind: str = "none"
    """none, soft (SoftMoE), topk, expert_choice, or task (hard routing by task id)."""
    experts: int = 4
    """Number of experts (1 with soft = a single scaled expert). 4 is the published Rainbow / DER
    setting; the DQN experiments used 8."""
    slots: int = 0
    """SoftMoE slots per expert; 0 = ceil(tokens * capacity_factor / experts)."""
    capacity_factor: float = 1.0
    """SoftMoE slots, or hard-routing capacity, per expert relative to tokens / experts."""
    k: int = 1
    """Experts per token for topk."""
    expert_scale: float = 1.0
    """Expert hidden width = expert_scale x the width of the layer the MoE replaces."""
    normalize: bool = False
    """SoftMoE: L2-normalise tokens and Phi (learned scale)."""
    random_phi: bool = False
    """SoftMoE: keep Phi at its random init (routing ablation)."""
    aux: tuple[str, ...] = ()
    """topk auxiliary losses: any of entropy, importance, load."""
    aux_coef: float = 0.01
    """Weight of the auxiliary losses."""
    position: str = "middle"
    """middle (penultimate layer), final (output layer), all (every layer) or big (whole-stack experts)."""
    placement: str = "both"
    """Actor-critic: experts in the actor, the critic or both."""


@dataclass(frozen=True)
class NetConfig:
    """A network: encoder -> bottleneck -> dense stack (maybe with experts) -> head."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    bottleneck: str = "flatten"
    """flatten, gap, or tokens: perconv, perfeat, persamp, perpatch, perpatch_avg, shuffled."""
    aggregate: str = "flatten"
    """How tokens become a vector without experts: flatten, sum or mean."""
    patch: int = 3
    """perpatch / perpatch_avg: patch size (kernel = stride)."""
    patch_embed: int = 64
    """perpatch: embedding width of the learned patch conv."""
    torso: str = "mlp"
    """mlp, or residual (pre-LN blocks of width hidden[-1], one block per hidden entry)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden widths of the dense stack; () with an mlp torso: the head reads the bottleneck's features
    (Dopamine's MinAtar network)."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, gelu, leaky_relu, silu, elu."""
    layer_norm: bool = False
    """LayerNorm before each MLP activation."""
    shared: str = "none"
    """Actor-critic sharing: none (decoupled), encoder, or all (everything below the heads)."""
    moe: MoEConfig = field(default_factory=MoEConfig)


def _choice(name: str, value: str, accepted) -> None:
    if value not in accepted:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(accepted)}")


def check(cfg: NetConfig, prefix: str = "net.") -> None:
    """Raise ``ValueError`` naming the field for any setting the builder cannot honour."""
    _choice(f"{prefix}encoder.kind", cfg.encoder.kind, ENCODERS)
    _choice(f"{prefix}encoder.padding", cfg.encoder.padding, PADDINGS)
    _choice(f"{prefix}bottleneck", cfg.bottleneck, BOTTLENECKS)
    _choice(f"{prefix}aggregate", cfg.aggregate, AGGREGATIONS)
    _choice(f"{prefix}torso", cfg.torso, TORSOS)
    _choice(f"{prefix}activation", cfg.activation, ACTIVATIONS)
    _choice(f"{prefix}shared", cfg.shared, SHARING)
    _choice(f"{prefix}moe.kind", cfg.moe.kind, ("none",) + tuple(MOE_KINDS))
    _choice(f"{prefix}moe.position", cfg.moe.position, POSITIONS)
    _choice(f"{prefix}moe.placement", cfg.moe.placement, PLACEMENTS)
    for a in cfg.moe.aux:
        _choice(f"{prefix}moe.aux", a, AUX_LOSSES)
    positive = {"encoder.scale": cfg.encoder.scale, "patch": cfg.patch, "patch_embed": cfg.patch_embed,
                "moe.experts": cfg.moe.experts, "moe.k": cfg.moe.k,
                "moe.capacity_factor": cfg.moe.capacity_factor, "moe.expert_scale": cfg.moe.expert_scale}
    for name, value in positive.items():
        if value <= 0:
            raise ValueError(f"{prefix}{name}: must be positive, got {value}")
    if cfg.hidden and min(cfg.hidden) <= 0:
        raise ValueError(f"{prefix}hidden: widths must be positive, got {cfg.hidden}")
    if not cfg.hidden and (cfg.torso == "residual" or cfg.moe.kind != "none"):
        raise ValueError(f"{prefix}hidden: a residual torso or experts need at least one positive width; "
                         f"() (the head reading the bottleneck's features) is for a plain mlp torso")
    if cfg.moe.k > cfg.moe.experts:
        raise ValueError(f"{prefix}moe.k: {cfg.moe.k} exceeds moe.experts ({cfg.moe.experts})")
    if cfg.moe.kind != "none":
        if cfg.moe.position != "middle" and cfg.shared == "all":
            raise ValueError(f"{prefix}moe.position: {cfg.moe.position} puts experts in the output layers, "
                             f"which shared='all' cannot split between actor and critic; use middle, or "
                             f"shared none / encoder")
        if cfg.shared == "all" and cfg.moe.placement != "both":
            raise ValueError(f"{prefix}moe.placement: with shared='all' the experts serve both heads; "
                             f"use both, or shared none / encoder")
        if cfg.torso == "residual" and cfg.moe.position in ("all", "big"):
            raise ValueError(f"{prefix}moe.position: {cfg.moe.position} needs torso mlp")


def _width(w: float) -> int:
    return max(1, int(round(w)))


class Encoder(nn.Module):
    """Encoder then bottleneck: observations -> tokens ``[..., m, k]``."""

    cfg: NetConfig

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        e = self.cfg.encoder
        if e.kind == "nature":
            x = NatureCNN(e.padding, name="cnn")(obs)
        elif e.kind == "impala":
            x = ImpalaCNN(e.scale, name="cnn")(obs)
        elif e.kind == "minatar":
            x = MinAtarCNN(e.scale, e.padding, name="cnn")(obs)
        else:
            x = obs.astype(jnp.float32)
        if e.kind != "none" and 0 in x.shape[-3:]:
            raise ValueError(f"encoder.kind: the {e.kind} encoder (padding {e.padding}) maps observations of "
                             f"shape {tuple(obs.shape[-3:])} to {tuple(x.shape[-3:])}, no features; use "
                             f"encoder.padding SAME, another encoder or a larger observation")
        return Bottleneck(self.cfg.bottleneck, keep_tokens=True, patch=self.cfg.patch,
                          embed=self.cfg.patch_embed, name="bottleneck")(x)


class DenseStack(nn.Module):
    """Tokens -> features ``[..., F]`` (``outputs == 0``) or -> outputs ``[..., outputs]`` when the
    experts are in the output layer (positions final / all / big)."""

    cfg: NetConfig
    outputs: int = 0
    experts: bool = False
    out_scale: float = 1.0
    """Initial scale of experts that are the output layer (the head's: 0.01 for a policy's logits)."""

    def _moe(self, hidden, out, name, head: bool = False):
        """Experts of the given widths; ``head``: their output layer is the network's (``out_scale``)."""
        m = self.cfg.moe
        common = dict(experts=m.experts, hidden=tuple(hidden), out=out, activation=self.cfg.activation,
                      out_scale=self.out_scale if head else 1.0, name=name)
        if m.kind == "soft":
            return MOE_KINDS["soft"](slots=m.slots, capacity_factor=m.capacity_factor, normalize=m.normalize,
                                     random_phi=m.random_phi, **common)
        if m.kind == "topk":
            return MOE_KINDS["topk"](k=m.k, capacity_factor=m.capacity_factor, aux=tuple(m.aux),
                                     aux_coef=m.aux_coef, **common)
        if m.kind == "expert_choice":
            return MOE_KINDS["expert_choice"](capacity_factor=m.capacity_factor, **common)
        return MOE_KINDS["task"](**common)

    @nn.compact
    def __call__(self, tokens: jax.Array, task: jax.Array | None = None) -> jax.Array:
        cfg, m = self.cfg, self.cfg.moe
        if not self.experts:
            return self._plain(aggregate(tokens, cfg.aggregate))
        scale = m.expert_scale
        if m.position == "big":
            hidden = [_width(w * scale) for w in cfg.hidden]
            return self._moe(hidden, self.outputs, "moe", head=True)(tokens, task).mean(-2)
        if m.position == "all":
            for i, w in enumerate(cfg.hidden):
                tokens = self._moe([_width(w * scale)], 0, f"moe_{i}")(tokens, task)
            return self._moe([], self.outputs, f"moe_{len(cfg.hidden)}", head=True)(tokens, task).mean(-2)
        if m.position == "final":
            z = self._plain(tokens)
            return self._moe([], self.outputs, "moe", head=True)(z, task).mean(-2)
        # middle: the last hidden layer is the MoE (after the whole residual stack for torso
        # residual); earlier layers act on each token
        x = self._plain(tokens, cfg.hidden[:-1])
        y = self._moe([_width(cfg.hidden[-1] * scale)], x.shape[-1], "moe")(x, task)
        return aggregate(y, "flatten")

    def _plain(self, x: jax.Array, hidden=None) -> jax.Array:
        cfg = self.cfg
        if cfg.torso == "residual":
            return ResidualMLP(cfg.hidden[-1], len(cfg.hidden), activation=cfg.activation, name="torso")(x)
        hidden = cfg.hidden if hidden is None else hidden
        return MLP(tuple(hidden), cfg.activation, cfg.layer_norm, name="torso")(x) if hidden else x


class ActorCritic(nn.Module):
    """``obs -> (policy, value)`` for actor-critic agents (PPO). ``policy`` is the logits of a categorical
    policy, or with ``gaussian`` the Gaussian's ``[mean, log_std]`` concatenated on the last axis (a
    learned log-std per action dimension, independent of the state, starting at 0, as CleanRL)."""

    cfg: NetConfig
    num_actions: int
    gaussian: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, task: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        cfg = self.cfg
        use_moe = cfg.moe.kind != "none"
        in_actor = use_moe and cfg.moe.placement in ("actor", "both")
        in_critic = use_moe and cfg.moe.placement in ("critic", "both")
        if cfg.shared == "none":
            actor_tokens = Encoder(cfg, name="actor_encoder")(obs)
            critic_tokens = Encoder(cfg, name="critic_encoder")(obs)
        else:
            actor_tokens = critic_tokens = Encoder(cfg, name="encoder")(obs)
        if cfg.shared == "all":
            z = DenseStack(cfg, 0, use_moe, name="torso")(actor_tokens, task)
            policy = self._policy(CategoricalHead(self.num_actions, name="actor_head")(z))
            return policy, ValueHead(name="critic_head")(z)
        outputs_in_moe = use_moe and cfg.moe.position != "middle"
        actor = DenseStack(cfg, self.num_actions if in_actor and outputs_in_moe else 0, in_actor,
                           POLICY_SCALE, name="actor_torso")(actor_tokens, task)
        critic = DenseStack(cfg, 1 if in_critic and outputs_in_moe else 0, in_critic,
                            name="critic_torso")(critic_tokens, task)
        logits = actor if in_actor and outputs_in_moe else CategoricalHead(self.num_actions,
                                                                           name="actor_head")(actor)
        value = critic[..., 0] if in_critic and outputs_in_moe else ValueHead(name="critic_head")(critic)
        return self._policy(logits), value

    def _policy(self, out: jax.Array) -> jax.Array:
        if not self.gaussian:
            return out
        log_std = self.param("log_std", nn.initializers.zeros, (self.num_actions,))
        return jnp.concatenate([out, jnp.broadcast_to(log_std, out.shape)], -1)


class QNetwork(nn.Module):
    """``obs -> Q [..., A]`` (C51: ``(Q, logits [..., A, atoms])``) for value-based agents: encoder,
    bottleneck, dense stack (experts in the middle position), then a plain or dueling head, scalar or
    distributional, optionally with NoisyNet layers (``deterministic=True`` uses their means)."""

    cfg: NetConfig
    num_actions: int
    dueling: bool = False
    distributional: bool = False
    atoms: int = 51
    v_max: float = 10.0
    noisy: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, task: jax.Array | None = None, deterministic: bool = False):
        if self.cfg.moe.kind != "none" and self.cfg.moe.position != "middle":
            raise ValueError("net.moe.position: value-based agents take experts in the middle position")
        z = DenseStack(self.cfg, 0, self.cfg.moe.kind != "none", name="torso")(
            Encoder(self.cfg, name="encoder")(obs), task)
        if self.distributional:
            return C51Head(self.num_actions, self.atoms, -self.v_max, self.v_max, dueling=self.dueling,
                           noisy=self.noisy, name="head")(z, deterministic)
        return QHead(self.num_actions, dueling=self.dueling, noisy=self.noisy, name="head")(z, deterministic)


class SACActor(nn.Module):
    """``obs -> (mean, log_std)`` of SAC's tanh-squashed Gaussian policy: encoder, bottleneck, dense stack
    (experts optional), `TanhGaussianHead`. Given encoder features instead of observations (the
    shared-encoder option) its own encoder is ``none`` and it reads them as a vector."""

    cfg: NetConfig
    action_dim: int

    @nn.compact
    def __call__(self, obs: jax.Array, task: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        z = DenseStack(self.cfg, 0, self.cfg.moe.kind != "none", name="torso")(
            Encoder(self.cfg, name="encoder")(obs), task)
        return TanhGaussianHead(self.action_dim, name="head")(z)


class SACCritic(nn.Module):
    """``(obs, action) -> Q [num_qs, ...]``: one encoder shared by the ``num_qs`` critics (the DrQ /
    Dopamine-CALE layout for pixels; for vectors it only flattens), the action joined to every token,
    then each critic's own dense stack and a scalar output."""

    cfg: NetConfig
    num_qs: int = 2

    def setup(self):
        self.encoder = Encoder(self.cfg)
        self.stacks = [DenseStack(self.cfg, 0, self.cfg.moe.kind != "none", name=f"q{i}")
                       for i in range(self.num_qs)]
        self.outs = [Dense(1, name=f"q{i}_out") for i in range(self.num_qs)]

    def encode(self, obs: jax.Array) -> jax.Array:
        """Encoder features as a vector (what the actor reads, stop-gradient, with a shared encoder)."""
        return aggregate(self.encoder(obs), "flatten")

    def __call__(self, obs: jax.Array, action: jax.Array, task: jax.Array | None = None) -> jax.Array:
        tokens = self.encoder(obs)
        action = jnp.broadcast_to(action[..., None, :], tokens.shape[:-1] + action.shape[-1:])
        tokens = jnp.concatenate([tokens, action.astype(tokens.dtype)], -1)
        return jnp.stack([out(stack(tokens, task))[..., 0]
                          for stack, out in zip(self.stacks, self.outs, strict=True)])
