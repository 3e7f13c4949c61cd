"""`make bench`: render a generated fleet through the command line and compare with a baseline.

The baseline, measured in the same run on the same machine, is parsing and dumping the very
output of the render with PyYAML's C loader and dumper: the least any YAML-to-YAML tool pays.
Figures are reported as ratios because machines here are noisy. Best of --repeat runs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet import write_fleet

# The Argo CD plugin's start-up budget, as a multiple of a bare interpreter start (issue 12).
COLD_START_BUDGET = 12.0


def best_of(repeat: int, action) -> float:  # type: ignore[no-untyped-def]
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def render(repo: Path, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "everest_render", "render", "--quiet", "--repo", str(repo), "--out", str(out)], check=True)


def baseline(texts: list[str]) -> None:
    for text in texts:
        documents = list(yaml.load_all(text, Loader=yaml.CSafeLoader))
        yaml.dump_all(documents, Dumper=yaml.CSafeDumper, sort_keys=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=2.0, help="fail when render / baseline exceeds this")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        fleet = write_fleet(Path(scratch) / "fleet", args.clusters)
        single = write_fleet(Path(scratch) / "single", 1)
        out = Path(scratch) / "out"
        render_time = best_of(args.repeat, lambda: render(fleet, out))
        texts = [p.read_text() for p in sorted(out.rglob("*.yaml"))]
        size = sum(len(t) for t in texts)
        baseline_time = best_of(args.repeat, lambda: baseline(texts))
        stdout_cmd = [sys.executable, "-m", "everest_render", "render", "--stdout", "--repo", str(single)]
        single_time = best_of(args.repeat, lambda: subprocess.run(stdout_cmd, check=True, capture_output=True))
        # The Argo CD plugin as the CMP server runs it: a fresh process in the application's directory.
        generate_cmd = [sys.executable, "-m", "everest_render", "argocd", "generate"]
        generate_time = best_of(args.repeat, lambda: subprocess.run(generate_cmd, cwd=single, check=True, capture_output=True))
        python_time = best_of(args.repeat, lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))
    ratio = render_time / baseline_time
    print(f"fleet: {args.clusters} clusters, {len(texts)} files, {size / 1e6:.2f} MB of YAML")
    print(f"render (command line, incl. start-up): {render_time:.3f} s")
    print(f"baseline (PyYAML C parse + dump of the same output): {baseline_time:.3f} s")
    print(f"ratio render / baseline: {ratio:.2f} (budget {args.budget:.1f})")
    print(f"one-cluster `render --stdout`: {single_time:.3f} s ({single_time / python_time:.1f}x a bare `python -c pass`)")
    cold = generate_time / python_time
    verdict = "within" if cold <= COLD_START_BUDGET else "OVER"
    budget = f"{verdict} the {COLD_START_BUDGET:.0f}x budget"
    print(f"one-cluster `argocd generate`, cold: {generate_time:.3f} s ({cold:.1f}x `python -c pass`; {budget})")
    return 0 if ratio <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
