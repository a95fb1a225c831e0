#!/usr/bin/python3
"""Compare two synthbench runs pair by pair.

Reads the per-pair scores of two runs (`avatar benchmark synthbench --per-pair FILE`) and prints,
per task and metric, both means, the mean of the per-pair differences (B - A) with its standard
error, and whether B is better, worse or not told apart (|difference| < 2 standard errors).

Paired differences separate two checkpoints far better than their means do: the pairs of a set
differ from one another much more than two models differ on one pair, so two means over 100 pairs
can move by more than the models' difference, while the per-pair differences barely vary.

With --by-motion BASE.csv the pairs of each task are first cut into --groups groups (default 5)
by how far the head moves, read as the AKD of the unchanged source (method `source` of BASE.csv,
e.g. the base run's `--per-pair` file), and every group is compared on its own. That shows where a
method wins: the landmark warp, for example, gains most where the motion is small.

Usage:
  tools/compare_synthbench.py A.csv B.csv [--method dpe] [--method-b dpe] [--json]
                              [--by-motion BASE.csv [--groups 5]]

Only the Python standard library is used.
"""
import argparse
import csv
import json
import math
import sys

# Metrics where lower is better; every other metric is better higher.
LOWER_IS_BETTER = {"akd", "akd_iod", "aed", "apd", "lpips", "fid"}
# How many standard errors a difference must reach to count.
Z_THRESHOLD = 2.0


class InputError(Exception):
    pass


def read_scores(path, method):
    """{task: {pair: {metric: value or None}}} of one method, and the metric names."""
    try:
        handle = open(path, newline="")
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})")
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if header[:3] != ["pair", "task", "method"] or len(header) < 4:
            raise InputError(
                f"{path}: not a per-pair synthbench file (expected the header "
                "'pair,task,method,<metrics...>' of `avatar benchmark synthbench --per-pair`)")
        metrics = header[3:]
        scores = {}
        methods = set()
        for line, row in enumerate(reader, start=2):
            methods.add(row["method"])
            if row["method"] != method:
                continue
            values = {}
            for metric in metrics:
                cell = row[metric]
                if cell in ("", None):
                    values[metric] = None
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    raise InputError(f"{path}:{line}: {metric} is not a number: '{cell}'")
                values[metric] = value if math.isfinite(value) else None
            scores.setdefault(row["task"], {})[row["pair"]] = values
    if not scores:
        raise InputError(f"{path}: holds no scores of method '{method}' "
                         f"(it has: {', '.join(sorted(methods)) or 'none'})")
    return scores, metrics


def mean_and_error(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


def compare(a, b, metrics):
    """Rows of {task, metric, pairs, mean_a, mean_b, difference, sem, unpaired_sem, verdict}."""
    rows = []
    for task in a:
        if task not in b:
            continue
        for metric in metrics:
            pairs = [p for p in a[task]
                     if p in b[task] and a[task][p].get(metric) is not None
                     and b[task][p].get(metric) is not None]
            if not pairs:
                continue
            xs = [a[task][p][metric] for p in pairs]
            ys = [b[task][p][metric] for p in pairs]
            difference, sem = mean_and_error([y - x for x, y in zip(xs, ys)])
            mean_a, sem_a = mean_and_error(xs)
            mean_b, sem_b = mean_and_error(ys)
            # What the difference's error would be if the two means were compared as unrelated
            # samples (the spread of the pairs themselves).
            unpaired = math.sqrt(sem_a ** 2 + sem_b ** 2)
            if not sem > 0 or abs(difference) < Z_THRESHOLD * sem:
                verdict = "same" if sem > 0 or difference == 0 else "?"
            else:
                better = difference < 0 if metric in LOWER_IS_BETTER else difference > 0
                verdict = "B better" if better else "B worse"
            rows.append({"task": task, "metric": metric, "pairs": len(pairs),
                         "mean_a": mean_a, "mean_b": mean_b, "difference": difference,
                         "sem": sem, "unpaired_sem": unpaired, "verdict": verdict})
    return rows


def motion_groups(base, groups, metric="akd_iod"):
    """{task: [(pairs of group k, mean source AKD of group k)]}: pairs sorted by the unchanged
    source's AKD (how far the head moves), cut into `groups` groups of (nearly) equal size."""
    result = {}
    for task, pairs in base.items():
        moving = sorted((values[metric], pair) for pair, values in pairs.items()
                        if values.get(metric) is not None)
        if len(moving) < groups:
            continue
        cuts = [round(k * len(moving) / groups) for k in range(groups + 1)]
        result[task] = []
        for k in range(groups):
            members = moving[cuts[k]:cuts[k + 1]]
            result[task].append(({pair for _, pair in members},
                                 sum(v for v, _ in members) / len(members)))
    return result


def compare_by_motion(a, b, metrics, groups_by_task):
    """compare() within each motion group; each row also has group, groups and source_akd."""
    rows = []
    for task, groups in groups_by_task.items():
        if task not in a or task not in b:
            continue
        for k, (members, source_akd) in enumerate(groups):
            sub_a = {task: {p: v for p, v in a[task].items() if p in members}}
            sub_b = {task: {p: v for p, v in b[task].items() if p in members}}
            for row in compare(sub_a, sub_b, metrics):
                row.update({"group": k + 1, "groups": len(groups), "source_akd": source_akd})
                rows.append(row)
    return rows


def to_markdown_by_motion(rows, name_a, name_b, base):
    lines = [f"A = {name_a}", f"B = {name_b}",
             f"groups: the pairs of each task by the unchanged source's AKD in {base} "
             "(1 = the smallest motion)", "",
             "| task | group | source AKD | metric | pairs | A | B | B - A | ± (paired) | verdict |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['group']}/{r['groups']} | {r['source_akd']:.3f} | "
                     f"{r['metric']} | {r['pairs']} | {r['mean_a']:.4g} | {r['mean_b']:.4g} | "
                     f"{r['difference']:+.4g} | {r['sem']:.2g} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def to_markdown(rows, name_a, name_b):
    lines = [f"A = {name_a}", f"B = {name_b}", "",
             "| task | metric | pairs | A | B | B - A | ± (paired) | ± (unpaired) | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['metric']} | {r['pairs']} | {r['mean_a']:.4g} | "
                     f"{r['mean_b']:.4g} | {r['difference']:+.4g} | {r['sem']:.2g} | "
                     f"{r['unpaired_sem']:.2g} | {r['verdict']} |")
    counts = {v: sum(1 for r in rows if r["verdict"] == v) for v in ("B better", "B worse")}
    lines += ["", f"B better in {counts['B better']}, worse in {counts['B worse']} of "
              f"{len(rows)} (task, metric) cells, at {Z_THRESHOLD:g} paired standard errors"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare two `avatar benchmark synthbench --per-pair` files pair by pair: "
        "per task and metric, B - A with its paired standard error.")
    parser.add_argument("a", help="per-pair CSV of run A (the reference)")
    parser.add_argument("b", help="per-pair CSV of run B (the candidate)")
    parser.add_argument("--method", default="dpe", help="method of A to compare (default dpe)")
    parser.add_argument("--method-b", help="method of B (default: the same as --method)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    parser.add_argument("--by-motion", metavar="BASE.csv",
                        help="compare within groups of pairs cut by the unchanged source's AKD "
                        "(method 'source' of this per-pair file)")
    parser.add_argument("--groups", type=int, default=5,
                        help="number of motion groups with --by-motion (default 5)")
    args = parser.parse_args(argv)
    if args.groups < 1:
        print(f"error: --groups must be at least 1, got {args.groups}", file=sys.stderr)
        return 1
    try:
        a, metrics_a = read_scores(args.a, args.method)
        b, metrics_b = read_scores(args.b, args.method_b or args.method)
        base = read_scores(args.by_motion, "source")[0] if args.by_motion else None
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    metrics = [m for m in metrics_a if m in metrics_b]
    if base is not None:
        rows = compare_by_motion(a, b, metrics, motion_groups(base, args.groups))
        if not rows:
            print(f"error: {args.by_motion} has no source AKD for the pairs of {args.a} and "
                  f"{args.b} (or fewer pairs than --groups)", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps({"a": args.a, "b": args.b, "base": args.by_motion, "rows": rows},
                             indent=2))
        else:
            sys.stdout.write(to_markdown_by_motion(rows, args.a, args.b, args.by_motion))
        return 0
    rows = compare(a, b, metrics)
    if not rows:
        print(f"error: {args.a} and {args.b} share no scored (pair, task, metric)",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"a": args.a, "b": args.b, "rows": rows}, indent=2))
    else:
        sys.stdout.write(to_markdown(rows, args.a, args.b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
