"""The results of an ensemble run (:mod:`.ensemble_run`): its summary.json, the lines ``distnn train``
prints, metrics.jsonl, metrics.csv and the members' curves."""
from __future__ import annotations

import os

from .ensemble_model import ensemble_table
from .ensemble_scoring import ensemble_gain
from .run_dir import MEMBERS_DIR


def ensemble_summary(path, config_name, plan, settings, members, ev, wall) -> dict:
    """The top-level ``summary.json`` of an ensemble run (members' and ensemble's metrics, gains)."""
    K = plan.members
    rows = []
    for m in range(K):
        s, h = members[m]["summary"] or {}, members[m]["history"]
        row = {"member": m, "run_dir": os.path.join(MEMBERS_DIR, f"member-{m}"),
               "seed": members[m].get("seed"), "epochs": s.get("epochs"), "epochs_run": s.get("epochs_run", len(h)),
               "best_epoch": s.get("best_epoch"), "stopped_early": s.get("stopped_early"),
               "skipped_steps": s.get("skipped_steps"), "wall_time": s.get("wall_time")}
        for split in ("val", "test"):
            if split in ev:
                row[f"{split}_accuracy"] = ev[split]["member_accuracy"][m]
                row[f"{split}_loss"] = ev[split]["member_loss"][m]
        rows.append(row)
    out = {"config": config_name, "run_dir": os.path.abspath(path), "ensemble_members": K,
           "test_accuracy": None, "test_loss": None, "test_samples": None}
    for split in ("val", "test"):
        if split not in ev:
            continue
        r, g = ev[split], ensemble_gain(ev[split])
        out.update({f"{split}_accuracy": r["accuracy"], f"{split}_loss": r["loss"], f"{split}_samples": r["count"],
                    f"member_{split}_accuracy": list(r["member_accuracy"]),
                    f"member_{split}_loss": list(r["member_loss"]),
                    f"mean_member_{split}_accuracy": g["mean_member_accuracy"],
                    f"median_member_{split}_accuracy": g["median_member_accuracy"],
                    f"mean_member_{split}_loss": g["mean_member_loss"]})
        if split == "test":
            out.update({"ensemble_gain_accuracy": g["accuracy_gain"], "ensemble_nll_reduction": g["nll_reduction"]})
    s0 = members[0]["summary"] or {}
    out.update({
        "ensemble": {"members": K, "vary": list(settings.vary), "overrides": settings.overrides,
                     "groups": plan.groups, "ranks_per_group": plan.group_size, "members_per_group": plan.rounds,
                     "schedule": plan.describe(), "averaging": "mean of the members' class probabilities"},
        "members": rows,
        # Per member, as epochs_run: members may be given other train.epochs (overrides) and stop early at
        # different epochs, so no one number (member 0's, as before) is the ensemble's.
        "epochs_run": [r["epochs_run"] for r in rows], "epochs": [r["epochs"] for r in rows],
        "world_size": plan.world_size, "global_batch_size": s0.get("global_batch_size"),
        "device": s0.get("device"), "dtype": s0.get("dtype"),
        "wall_time": wall,
    })
    return out


def summary_lines(s: dict) -> list:
    """What ``distnn train`` prints at the end of an ensemble run (from its summary)."""
    e = s["ensemble"]
    head = f"ensemble of {e['members']} members ({e['schedule']}; {s.get('wall_time') or 0:.1f}s)"
    if s.get("test_accuracy") is None:
        return [head + ": no test split"]
    lines = [head]
    for r in s["members"]:
        epochs = f"{r.get('epochs_run')}" + (f" of {r['epochs']}" if r.get("epochs") is not None else "")
        lines.append(f"  member-{r['member']}  test accuracy {r['test_accuracy']:.4f}  test NLL {r['test_loss']:.4f}  "
                     f"(seed {r.get('seed')}, {epochs} epochs{', stopped early' if r.get('stopped_early') else ''})")
    lines.append(f"  ensemble  test accuracy {s['test_accuracy']:.4f}  test NLL {s['test_loss']:.4f}  "
                 f"(gain over the members' mean: accuracy {s['ensemble_gain_accuracy']:+.4f}, "
                 f"NLL {-s['ensemble_nll_reduction']:+.4f})")
    return lines


#: columns of an ensemble run's top-level metrics.csv: one row per member, then one for the ensemble
ENSEMBLE_CSV_COLUMNS = ["model", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "epochs_run"]


def write_ensemble_files(path, meta, plan, summary, members, ev, plots: bool = True) -> None:
    """Rank 0: the top level of an ensemble run (model.json, summary.json, metrics.jsonl/csv, and curves.png
    unless ``plots`` is False: run.plots = false)."""
    import csv
    import json

    from . import run_checksums
    from . import run_dir as rd

    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["ensemble"] = ensemble_table(plan.members)
    rd.write_run_files(path, {rd.MODEL_META: rd.json_text(run_checksums.marked(meta))})
    rd.write_json(os.path.join(path, rd.SUMMARY), summary, sync_dir=False)  # (one fsync: metrics.csv's)
    rows = [{"model": f"member-{r['member']}", **{c: r.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:]}}
            for r in summary["members"]]
    rows.append({"model": "ensemble", **{c: summary.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:-1]},
                 "epochs_run": None})
    rd.write_text(os.path.join(path, "metrics.jsonl"),
                  "".join(json.dumps(rd._clean(r)) + "\n" for r in rows), sync_dir=False)
    def write_csv(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=ENSEMBLE_CSV_COLUMNS)
            w.writeheader()
            w.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])

    rd.replace_file(os.path.join(path, "metrics.csv"), write_csv)
    if plots:
        plot_members(members, summary, os.path.join(path, "curves.png"))


def plot_members(members, summary, path) -> str | None:
    """Each member's validation loss/accuracy vs epoch, with the ensemble's as a dashed line."""
    from . import run_dir as rd
    from .callbacks.plots import whole_epoch_ticks

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure  # no pyplot: no global state shared with other threads
    except ImportError:
        return None
    # A Figure with its own Agg canvas, as a single run's curves (callbacks/plots.py): the process's backend
    # (a notebook's) is left alone, where matplotlib.use("Agg", force=True) switched it
    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for m in sorted(members):
            pts = [(r["epoch"], r.get(f"val_{metric}")) for r in members[m]["history"]
                   if r.get(f"val_{metric}") is not None]
            if pts:
                # (markers: a member validated once, e.g. a 1-epoch run, is one point, which a bare line hides)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", markersize=3, alpha=0.7,
                        label=f"member {m}")
        if summary.get(f"val_{metric}") is not None:
            ax.axhline(summary[f"val_{metric}"], color="k", linestyle="--", label="ensemble (final)")
        ax.set_xlabel("epoch")
        whole_epoch_ticks(ax)  # epochs are whole: no 1.25, 1.5 ticks
        ax.set_ylabel(f"validation {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    # (the rank count as a single run's title gives it: "digits_mlp (2 ranks)"; here the job's, all groups)
    ranks = summary.get("world_size")
    fig.suptitle(f"{summary.get('config')}: ensemble of {len(members)}"
                 + (f" ({ranks} rank{'' if ranks == 1 else 's'})" if ranks else ""))
    fig.tight_layout()
    rd.replace_file(path, lambda tmp: fig.savefig(tmp, dpi=100), ".tmp.png")
    return path
