#!/usr/bin/env python3
"""Fill the tables of docs/*.md from committed results, so that no number in docs/ is typed.

A doc marks where a generated piece goes:

    <!-- include results/<experiment>/summary.md -->
    ...(replaced)...
    <!-- end include -->

The piece is the summary's table and its compute line (scripts/sweep.py writes them; its heading
and preamble are left out). Plots are referenced by path, not included.

    scripts/docs_tables.py            # rewrite every doc whose pieces changed
    scripts/docs_tables.py --check    # exit 1, naming the doc, when a doc is out of date (CTest)

Only the Python standard library is used.
"""
import argparse
import glob
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MARK = re.compile(r"(<!-- include (\S+) -->\n)(.*?)(<!-- end include -->)", re.S)


def piece(path):
    full = os.path.join(ROOT, path)
    if not os.path.exists(full):
        sys.exit(f"docs_tables: error: {path} does not exist: run its grid (scripts/sweep.py) "
                 "or correct the include marker")
    lines = open(full).read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("| run |")), None)
    if start is None:
        sys.exit(f"docs_tables: error: {path} has no table")
    return "\n".join(lines[start:]).strip() + "\n"


def render(text):
    return MARK.sub(lambda m: m.group(1) + piece(m.group(2)) + m.group(4), text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    stale = []
    for doc in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md"))):
        text = open(doc).read()
        new = render(text)
        if new != text:
            stale.append(os.path.relpath(doc, ROOT))
            if not args.check:
                with open(doc, "w") as f:
                    f.write(new)
    if args.check and stale:
        print("docs out of date with results/: " + ", ".join(stale) +
              " (run scripts/docs_tables.py)", file=sys.stderr)
        sys.exit(1)
    for d in stale:
        print(f"updated {d}")


if __name__ == "__main__":
    main()
