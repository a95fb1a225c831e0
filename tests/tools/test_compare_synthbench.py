#!/usr/bin/python3
"""tools/compare_synthbench.py: paired differences of two per-pair synthbench files, the verdict
per (task, metric), and one-line errors naming the bad file."""
import io
import json
import os
import sys
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import compare_synthbench  # noqa: E402


def write_csv(path, rows, header="pair,task,method,psnr,akd_iod"):
    with open(path, "w") as f:
        f.write(header + "\n")
        for row in rows:
            f.write(",".join(str(c) for c in row) + "\n")


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = compare_synthbench.main(list(argv))
    return status, out.getvalue(), err.getvalue()


class CompareSynthbench(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="compare_synthbench_")
        self.a = os.path.join(self.dir, "a.csv")
        self.b = os.path.join(self.dir, "b.csv")
        # Pairs that differ from each other by several dB; B is 0.2 dB better on every pair
        # (with a little noise) and its AKD 0.01 worse on every pair. The source rows of both
        # files are the same and must be ignored with --method dpe.
        spread = [20.0 + 3.0 * ((7 * k) % 10) for k in range(40)]
        rows_a, rows_b = [], []
        for k, base in enumerate(spread):
            pair = f"pair_{k:04d}"
            noise = 0.01 * ((k % 3) - 1)
            rows_a.append((pair, "reenact", "dpe", base, 0.10))
            rows_b.append((pair, "reenact", "dpe", base + 0.2 + noise, 0.11))
            rows_a.append((pair, "reenact", "source", base - 1, 0.2))
            rows_b.append((pair, "reenact", "source", base - 1, 0.2))
            # A task where the two agree exactly.
            rows_a.append((pair, "expression_only", "dpe", base, 0.05))
            rows_b.append((pair, "expression_only", "dpe", base, 0.05))
        write_csv(self.a, rows_a)
        write_csv(self.b, rows_b)

    def test_paired_difference_separates_what_the_means_cannot(self):
        status, out, err = run(self.a, self.b, "--json")
        self.assertEqual(status, 0, err)
        rows = {(r["task"], r["metric"]): r for r in json.loads(out)["rows"]}
        psnr = rows[("reenact", "psnr")]
        self.assertEqual(psnr["pairs"], 40)
        self.assertAlmostEqual(psnr["difference"], 0.2, places=2)
        self.assertLess(psnr["sem"], 0.01)
        # Unpaired, the means' errors are far larger than the difference itself.
        self.assertGreater(psnr["unpaired_sem"], 0.2)
        self.assertEqual(psnr["verdict"], "B better")
        # Lower AKD is better: B's higher AKD is worse.
        self.assertEqual(rows[("reenact", "akd_iod")]["verdict"], "B worse")
        self.assertEqual(rows[("expression_only", "psnr")]["verdict"], "same")
        self.assertEqual(rows[("expression_only", "psnr")]["difference"], 0.0)

    def test_markdown_counts_the_verdicts(self):
        status, out, _ = run(self.a, self.b)
        self.assertEqual(status, 0)
        self.assertIn("| reenact | psnr | 40 |", out)
        self.assertIn("B better in 1, worse in 1 of 4", out)

    def test_other_methods_compare_too(self):
        status, out, _ = run(self.a, self.b, "--method", "source", "--json")
        self.assertEqual(status, 0)
        for row in json.loads(out)["rows"]:
            self.assertEqual(row["verdict"], "same")
        # A's source against B's dpe: the 1 dB the source loses, B's 0.2 dB on top.
        status, out, _ = run(self.a, self.b, "--method", "source", "--method-b", "dpe", "--json")
        self.assertEqual(status, 0)
        rows = {(r["task"], r["metric"]): r for r in json.loads(out)["rows"]}
        self.assertAlmostEqual(rows[("reenact", "psnr")]["difference"], 1.2, places=2)

    def test_bad_inputs_are_named(self):
        status, _, err = run(self.a, os.path.join(self.dir, "missing.csv"))
        self.assertEqual(status, 1)
        self.assertIn("missing.csv", err)
        table = os.path.join(self.dir, "table.md")
        with open(table, "w") as f:
            f.write("| task | method | pairs | psnr |\n")
        status, _, err = run(self.a, table)
        self.assertEqual(status, 1)
        self.assertIn("table.md: not a per-pair synthbench file", err)
        status, _, err = run(self.a, self.b, "--method", "warp")
        self.assertEqual(status, 1)
        self.assertIn("no scores of method 'warp' (it has: dpe, source)", err)
        bad = os.path.join(self.dir, "bad.csv")
        write_csv(bad, [("pair_0000", "reenact", "dpe", "high", 0.1)])
        status, _, err = run(self.a, bad)
        self.assertEqual(status, 1)
        self.assertIn("bad.csv:2: psnr is not a number: 'high'", err)

    def test_by_motion_compares_within_groups_of_motion_size(self):
        # Ten pairs whose source AKD is k/100: B gains 1 dB on the five smallest motions and
        # loses 1 dB on the five largest, so over all pairs the two are level.
        base = os.path.join(self.dir, "base.csv")
        a = os.path.join(self.dir, "motion_a.csv")
        b = os.path.join(self.dir, "motion_b.csv")
        order = [3, 9, 0, 5, 7, 1, 8, 2, 6, 4]  # file order must not matter
        write_csv(base, [(f"pair_{k}", "reenact", "source", 20.0, k / 100) for k in order])
        write_csv(a, [(f"pair_{k}", "reenact", "warp", 25.0 + k, 0.02) for k in order])
        write_csv(b, [(f"pair_{k}", "reenact", "dpe", 25.0 + k + (1.0 if k < 5 else -1.0)
                       + 0.01 * (k % 2), 0.02) for k in order])
        status, out, err = run(a, b, "--method", "warp", "--method-b", "dpe", "--by-motion", base,
                               "--groups", "2", "--json")
        self.assertEqual(status, 0, err)
        rows = {(r["group"], r["metric"]): r for r in json.loads(out)["rows"]}
        self.assertEqual(rows[(1, "psnr")]["pairs"], 5)
        self.assertAlmostEqual(rows[(1, "psnr")]["source_akd"], 0.02)
        self.assertAlmostEqual(rows[(2, "psnr")]["source_akd"], 0.07)
        self.assertAlmostEqual(rows[(1, "psnr")]["mean_a"], 27.0)
        self.assertEqual(rows[(1, "psnr")]["verdict"], "B better")
        self.assertEqual(rows[(2, "psnr")]["verdict"], "B worse")
        status, out, _ = run(a, b, "--method", "warp", "--method-b", "dpe", "--by-motion", base,
                             "--groups", "2")
        self.assertEqual(status, 0)
        self.assertIn("| reenact | 1/2 | 0.020 | psnr | 5 |", out)
        # A base file without the source, or more groups than pairs, is refused by name.
        status, _, err = run(a, b, "--method", "warp", "--method-b", "dpe", "--by-motion", a)
        self.assertEqual(status, 1)
        self.assertIn("no scores of method 'source'", err)
        status, _, err = run(a, b, "--method", "warp", "--method-b", "dpe", "--by-motion", base,
                             "--groups", "11")
        self.assertEqual(status, 1)
        self.assertIn("base.csv has no source AKD", err)
        status, _, err = run(a, b, "--by-motion", base, "--groups", "0")
        self.assertEqual(status, 1)
        self.assertIn("--groups must be at least 1", err)


if __name__ == "__main__":
    unittest.main()
