"""``plastix analyze RUN_OR_SWEEP_DIR``: figures (PNG and PDF) and a markdown summary from run
directories only (no agent is imported).

A run gets its learning curve and, when it measured them, its activity curves. A sweep gets learning
curves of every run, IQM / mean of the final evaluation returns with 95% stratified-bootstrap intervals
(seeds x envs), performance profiles, the score against each swept field, and THC bars when it sweeps
``env`` beside other fields (settings = envs, intervals = mean +- std over seeds). A sweep over Atari
games also gets human-normalised IQM / mean / median / optimality gap per setting, with intervals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from plastix.analysis import plots, stats
from plastix.analysis.thc import thc
from plastix.run import plots as run_plots
from plastix.run.logging import read_metrics
from plastix.run.sweep import Index


def _summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def analyze_run(run_dir: str | Path) -> Path:
    """Learning (and activity) curves and ``summary.md`` for one run."""
    run_dir = Path(run_dir)
    out = run_dir / "analysis"
    run_plots.learning_curve(run_dir, out / "learning_curve.png")
    rows = read_metrics(run_dir)
    if run_plots.activity_series(rows):
        run_plots.activity_curves(run_dir, out / "activity.png")
    summary = _summary(run_dir)
    lines = [f"# {run_dir.name}", ""]
    if summary:
        hns = summary.get("human_normalized")
        lines += ["| seed | eval success | eval return |" + (" human-normalised |" if hns else ""),
                  "|---|---|---|" + ("---|" if hns else "")]
        lines += [f"| {i} | {s:.3f} | {r:.3f} |" + (f" {hns[i]:.3f} |" if hns else "") for i, (s, r) in
                  enumerate(zip(summary["eval_success"], summary["eval_return"], strict=True))]
    else:
        lines.append("(no summary.json: the run has not finished)")
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _label(overrides: dict) -> str:
    def value(v: Any) -> str:  # a whole-config mapping (net.moe: {kind: soft, ...}) without braces and quotes
        return "(" + " ".join(f"{k}={x}" for k, x in v.items()) + ")" if isinstance(v, dict) else str(v)

    return ", ".join(f"{k.split('.')[-1]}={value(v)}" for k, v in overrides.items()) or "base"


def analyze_sweep(sweep_dir: str | Path, reps: int = 2000) -> Path:
    """Figures and ``summary.md`` for a sweep directory (``index.sqlite`` and ``runs/``)."""
    sweep_dir = Path(sweep_dir)
    out = sweep_dir / "analysis"
    rows = Index(sweep_dir / "index.sqlite").rows()
    done = [r for r in rows if _summary(Path(r["run_dir"])) is not None]
    if not done:
        raise ValueError(f"sweep: no finished run in {sweep_dir}")
    # final scores: seeds x 1 env per run (env, when swept, is handled by THC below)
    scores = {_label(r["overrides"]): np.array(_summary(Path(r["run_dir"]))["eval_return"], float)[:, None]
              for r in done}
    curves = {_label(r["overrides"]): run_plots.run_curve(r["run_dir"]) for r in done}
    plots.sweep_curves(curves, out / "curves.png")
    points, intervals = {}, {}
    for name in ("iqm", "mean"):
        points[name], intervals[name] = stats.interval_estimates(scores, stats.AGGREGATES[name], reps=reps)
    plots.aggregate_bars(points, intervals, out / "aggregates.png")
    everything = np.concatenate([s.ravel() for s in scores.values()])
    taus = np.linspace(everything.min(), everything.max(), 41)
    profiles = {k: stats.performance_profile_ci(s, taus, reps=reps) for k, s in scores.items()}
    plots.performance_profiles(profiles, taus, out / "profiles.png")
    fields = sorted({k for r in done for k in r["overrides"]})
    values = {f: sorted({json.dumps(r["overrides"].get(f)) for r in done}) for f in fields}
    per_field = {f: [float(np.mean([points["iqm"][_label(r["overrides"])] for r in done
                                    if json.dumps(r["overrides"].get(f)) == v])) for v in values[f]]
                 for f in fields}
    if fields:
        plots.rank_plot({f: [json.loads(v) for v in values[f]] for f in fields}, per_field, out / "ranks.png")
    hns_lines = (_human_normalized_table(done, out, reps) + _multitask_table(done, out)
                 + _taskmix_table(done, out, reps))
    thc_scores = _thc_over_envs(done, fields)
    if thc_scores:
        plots.thc_bars(thc_scores, out / "thc.png")
    lines = [f"# sweep {sweep_dir.name}", "", f"{len(done)} of {len(rows)} runs finished.", "",
             "| run | overrides | seeds | IQM [95% CI] | mean [95% CI] |", "|---|---|---|---|---|"]
    for r in done:
        label = _label(r["overrides"])
        lo, hi = intervals["iqm"][label]
        mlo, mhi = intervals["mean"][label]
        lines.append(f"| {r['hash']} | {label} | {len(scores[label])} | {points['iqm'][label]:.3f} "
                     f"[{lo:.3f}, {hi:.3f}] | {points['mean'][label]:.3f} [{mlo:.3f}, {mhi:.3f}] |")
    lines += hns_lines
    if thc_scores:
        lines += ["", "| hyper-parameter | THC across envs |", "|---|---|"]
        lines += [f"| {k} | {v[0]:.3f} +- {v[1]:.3f} |" for k, v in thc_scores.items()]
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _human_normalized_table(done: list[dict], out: Path, reps: int) -> list[str]:
    """Over Atari games (the swept ``env``): per setting of the other fields, human-normalised scores
    (seeds x games) aggregated as IQM, mean, median and optimality gap with stratified-bootstrap 95%
    intervals; drawn to ``hns.png``, tabulated per game and aggregated. Empty unless every run is an
    ALE / CALE game with reference scores."""
    summaries = [_summary(Path(r["run_dir"])) for r in done]
    if not all("human_normalized" in s for s in summaries):
        return []
    settings: dict[str, dict[str, np.ndarray]] = {}
    for r, summary in zip(done, summaries, strict=True):
        rest = _label({k: v for k, v in r["overrides"].items() if k != "env"})
        settings.setdefault(rest, {})[summary["env"]] = np.array(summary["human_normalized"], float)
    games = sorted({g for per in settings.values() for g in per})
    complete = {k: v for k, v in settings.items() if set(v) == set(games)}
    lines = ["", f"Human-normalised scores over {len(games)} game(s) (seeds x games, 95% "
             "stratified-bootstrap intervals):", "",
             "| setting | IQM | mean | median | optimality gap |", "|---|---|---|---|---|"]
    if not complete:
        return lines + ["| (no setting has finished every game) | | | | |"]
    seeds = min(len(x) for per in complete.values() for x in per.values())
    matrices = {k: np.stack([per[g][:seeds] for g in games], 1) for k, per in complete.items()}
    results = {name: stats.interval_estimates(matrices, stats.AGGREGATES[name], reps=reps)
               for name in ("iqm", "mean", "median", "optimality_gap")}
    for k in matrices:
        cells = [f"{results[n][0][k]:.3f} [{results[n][1][k][0]:.3f}, {results[n][1][k][1]:.3f}]"
                 for n in ("iqm", "mean", "median", "optimality_gap")]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    plots.aggregate_bars({n: results[n][0] for n in results}, {n: results[n][1] for n in results},
                         out / "hns.png")
    lines += ["", "| game | " + " | ".join(matrices) + " |", "|---|" + "---|" * len(matrices)]
    for j, g in enumerate(games):
        lines.append(f"| {g} | " + " | ".join(f"{m[:, j].mean():.3f}" for m in matrices.values()) + " |")
    return lines


def _multitask_table(done: list[dict], out: Path) -> list[str]:
    """Over actor-critic runs with separate networks (SAC; the Meta-World scaling study): final evaluation
    success against parameter count, split by actor and by critic size (``scaling.png``), and a table with
    each run's last measured dormant / GraMa-inactive ratios per network (task count vs plasticity). Empty
    unless every run counted actor and critic parameters."""
    summaries = [_summary(Path(r["run_dir"])) for r in done]
    if not all({"actor", "critic"} <= set(s.get("parameters", {})) for s in summaries):
        return []
    runs = []
    for r, summary in zip(done, summaries, strict=True):
        rows = read_metrics(Path(r["run_dir"]))
        last = {k: v for row in rows for k, v in row.items() if k.startswith("activity/")}
        runs.append({"env": summary["env"], "actor": summary["parameters"]["actor"],
                     "critic": summary["parameters"]["critic"],
                     "success": np.array(summary["eval_success"], float), "activity": last})
    plots.scaling_plot(runs, out / "scaling.png")
    ratios = sorted({k for run in runs for k in run["activity"] if k.endswith(("/dormant", "/grama"))})
    lines = ["", "| env | actor params | critic params | eval success (mean +- std over seeds) | "
             + " | ".join(k.removeprefix("activity/") for k in ratios) + " |",
             "|---|---|---|---|" + "---|" * len(ratios)]
    for run in sorted(runs, key=lambda x: (x["env"], x["actor"], x["critic"])):
        cells = [f"{run['activity'][k]:.4f}" if k in run["activity"] else "-" for k in ratios]
        success = f"{run['success'].mean():.3f} +- {run['success'].std():.3f}"
        lines.append(f"| {run['env']} | {run['actor']:,} | {run['critic']:,} | {success} | "
                     + " | ".join(cells) + " |")
    return lines


def _network_ratio(row: dict[str, Any], metric: str, network: str) -> float:
    """Mean over a network's layers (``actor*`` / ``critic*`` modules) of a logged per-layer ratio."""
    vals = [v for k, v in row.items() if k.startswith(f"activity/{metric}/{network}") and v is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _taskmix_table(done: list[dict], out: Path, reps: int) -> list[str]:
    """Over task-mix runs (``episode_return/<task>`` logged; the MoE-in-actor-critic study): per setting,
    each task's training return averaged over the run and over seeds, their mean over tasks with a 95%
    bootstrap interval over seeds, and the actor's and the critic's dormant and GraMa-inactive ratios
    (mean over each network's layers, over the last quarter of the run); one row of panels per regime
    (``taskmix.switch_every``), drawn to ``taskmix.png``. Empty unless every run logged task returns."""
    rows = {r["hash"]: read_metrics(Path(r["run_dir"])) for r in done}
    tasks = sorted({k.split("/", 1)[1] for rs in rows.values() for row in rs for k in row
                    if k.startswith("episode_return/")})
    if not tasks or not all(any(k.startswith("episode_return/") for k in rs[-1]) for rs in rows.values()):
        return []
    results: dict[str, dict[str, dict]] = {}
    for r in done:
        regime = r["overrides"].get("taskmix.switch_every", 0)
        regime = f"continual (task switch every {regime:,} steps)" if regime else "multi-task"
        setting = _label({k: v for k, v in r["overrides"].items() if k != "taskmix.switch_every"})
        run_rows = rows[r["hash"]]
        per_task = np.stack([np.nanmean(run_plots.rows_curve(run_rows, f"episode_return/{t}")[1], axis=1)
                             for t in tasks], 1)  # [seeds, tasks]: each task's return over the run
        mean, lo, hi = run_plots.mean_ci(np.nanmean(per_task, 1)[:, None], reps=reps)
        late = run_rows[-max(1, len(run_rows) // 4):]
        activity = {f"{m}/{n}": float(np.nanmean([_network_ratio(row, m, n) for row in late]))
                    for m in ("dormant", "grama") for n in ("actor", "critic")}
        results.setdefault(regime, {})[setting] = {"return": (mean[0], lo[0], hi[0]), "activity": activity,
                                                    "tasks": per_task.mean(0), "seeds": len(per_task)}
    plots.taskmix_bars(results, out / "taskmix.png")
    lines = ["", f"Task mix ({', '.join(tasks)}): training return per task averaged over the run and the "
             "seeds, its mean over tasks with a 95% bootstrap interval over seeds; dormant / GraMa-inactive "
             "ratios of each network (mean over its layers, last quarter of the run):", "",
             "| regime | setting | seeds | return, mean over tasks [95% CI] | "
             + " | ".join(t.removeprefix("MiniGrid-").removesuffix("-v0") for t in tasks)
             + " | dormant actor | dormant critic | GraMa actor | GraMa critic |",
             "|---|---|---|---|" + "---|" * (len(tasks) + 4)]
    for regime, settings in results.items():
        for setting, x in settings.items():
            m, lo, hi = x["return"]
            cells = [f"{v:.3f}" for v in x["tasks"]] + [f"{x['activity'][k]:.3f}" for k in
                                                        ("dormant/actor", "dormant/critic", "grama/actor",
                                                         "grama/critic")]
            lines.append(f"| {regime} | {setting} | {x['seeds']} | {m:.3f} [{lo:.3f}, {hi:.3f}] | "
                         + " | ".join(cells) + " |")
    return lines


def _thc_over_envs(done: list[dict], fields: list[str]) -> dict[str, tuple[float, float]]:
    """THC of each swept field (other than env) with envs as settings, other fields at their first value."""
    if "env" not in fields:
        return {}
    envs = sorted({r["overrides"]["env"] for r in done})
    out = {}
    for field in fields:
        if field == "env":
            continue
        rest = {f: done[0]["overrides"].get(f) for f in fields if f not in (field, "env")}
        vals = sorted({json.dumps(r["overrides"][field]) for r in done})
        if len(envs) < 2 or len(vals) < 2:
            continue
        lower, upper = np.full((len(envs), len(vals)), np.nan), np.full((len(envs), len(vals)), np.nan)
        for r in done:
            o = r["overrides"]
            if any(o.get(f) != v for f, v in rest.items()):
                continue
            s = np.array(_summary(Path(r["run_dir"]))["eval_return"], float)
            i, j = envs.index(o["env"]), vals.index(json.dumps(o[field]))
            lower[i, j], upper[i, j] = s.mean() - s.std(), s.mean() + s.std()
        if np.isfinite(lower).all():
            result = thc(lower, upper, vals, envs)
            out[field] = (result.score, result.std)
    return out


def analyze(path: str | Path) -> Path:
    """A run directory or a sweep directory -> its ``analysis/summary.md`` (figures beside it)."""
    path = Path(path)
    if (path / "index.sqlite").is_file():
        return analyze_sweep(path)
    if (path / "config.yaml").is_file():
        if not (path / "metrics.jsonl").is_file():
            raise ValueError(f"analyze: {path} has a config.yaml but no metrics.jsonl: the run has not "
                             f"logged a chunk yet")
        return analyze_run(path)
    raise ValueError(f"analyze: {path} is neither a run directory (config.yaml) nor a sweep (index.sqlite)")


def compare(run_dirs: list[str | Path], out: str | Path | None = None) -> Path:
    """Runs side by side (e.g. ReGraMa against its baseline): ``compare.png`` with returns and activity
    ratios against steps, and ``compare.md`` with each run's last evaluation and ratios, per seed mean."""
    dirs = [Path(d) for d in run_dirs]
    for d in dirs:
        if not (d / "metrics.jsonl").is_file():
            raise ValueError(f"run_dir: {d} has no metrics.jsonl, so it is not a plastix run")
    out = Path(out) if out is not None else dirs[0].parent / "compare"
    figure = run_plots.compare_runs(dirs, out / "compare.png")
    keys = sorted({k for d in dirs for k in run_plots.activity_series(read_metrics(d))})
    lines = ["| run | step | eval return (mean over seeds) | " + " | ".join(keys) + " |",
             "|---|---|---|" + "---|" * len(keys)]
    for d in dirs:
        rows = read_metrics(d)
        evals = [r for r in rows if "eval_return" in r]
        last = evals[-1] if evals else rows[-1]
        ret = float(np.mean(last.get("eval_return", last["episode_return"])))
        cells = [next((f"{r[k]:.4f}" for r in reversed(rows) if k in r), "-") for k in keys]
        lines.append(f"| {d.name} | {last['step']:,} | {ret:.1f} | " + " | ".join(cells) + " |")
    path = out / "compare.md"
    path.write_text("\n".join(lines) + f"\n\n![runs]({figure.name})\n")
    return path
