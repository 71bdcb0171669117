#!/usr/bin/env python3
"""Keeps every code block of docs/embedding.md a copy of a file CI builds or runs
(and every table row's line count of an examples/ file right).

Each fenced block on the page is preceded by a marker naming where it comes from:

    <!-- from examples/beast_server.cc: beast-adapter -->
    ```cpp
    …
    ```

and that file holds the region between `[embed:beast-adapter]` and
`[end:beast-adapter]` (in a `//` or `#` comment line). The check fails when a block has
no marker, a region is missing, or a block differs from its region (common indentation
removed). `--write` rewrites the blocks from their regions instead.

    scripts/check-embedding.py           # the test command runs this
    scripts/check-embedding.py --write   # after changing an example
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "embedding.md"
MARKER = re.compile(r"^<!-- from (\S+): (\S+) -->$")
# A table row naming a file and its length: | `examples/x.cc` | 87 | …
LENGTH = re.compile(r"\| `(examples/[^`]+)` \| (\d+) \|")


def lengths(line, problems, number, write):
    """The row with its file's line count put right (a problem when wrong, unless
    writing)."""
    def fix(m):
        actual = len((ROOT / m.group(1)).read_text().splitlines())
        if actual != int(m.group(2)) and not write:
            problems.append(f"line {number}: {m.group(1)} has {actual} lines, not {m.group(2)}")
        return f"| `{m.group(1)}` | {actual} |"
    return LENGTH.sub(fix, line)


def region(path, name):
    """The lines between the region's markers, common indentation removed."""
    lines = (ROOT / path).read_text().splitlines()
    begin = [i for i, l in enumerate(lines) if re.search(rf"[/#] \[embed:{re.escape(name)}\]$", l)]
    end = [i for i, l in enumerate(lines) if re.search(rf"[/#] \[end:{re.escape(name)}\]$", l)]
    if len(begin) != 1 or len(end) != 1 or end[0] <= begin[0]:
        raise ValueError(f"{path}: no single region [embed:{name}] … [end:{name}]")
    body = lines[begin[0] + 1:end[0]]
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return [l[indent:] for l in body]


def main():
    write = "--write" in sys.argv[1:]
    lines = PAGE.read_text().splitlines()
    out, problems, i, blocks = [], [], 0, 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("```"):
            out.append(lengths(line, problems, i + 1, write))
            i += 1
            continue
        close = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if close is None:
            problems.append(f"line {i + 1}: a code block that never closes")
            break
        blocks += 1
        marker = MARKER.match(out[-1]) if out else None
        block = lines[i + 1:close]
        if marker is None:
            problems.append(f"line {i + 1}: a code block without a '<!-- from FILE: REGION -->' line")
        else:
            try:
                want = region(*marker.groups())
            except (OSError, ValueError) as e:
                problems.append(f"line {i + 1}: {e}")
                want = block
            if want != block and not write:
                problems.append(f"line {i + 1}: differs from {marker.group(1)} [{marker.group(2)}]; "
                                "run scripts/check-embedding.py --write")
            block = want
        out += [line] + block + [lines[close]]
        i = close + 1
    if write:
        PAGE.write_text("\n".join(out) + "\n")
    for p in problems:
        print(f"docs/embedding.md: {p}", file=sys.stderr)
    if not problems:
        print(f"docs/embedding.md: {blocks} code blocks, each the same as the file it comes "
              "from; line counts right")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
