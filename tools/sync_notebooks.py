"""Keep the notebooks and the README in step with tools/series.py and tools/shared_cells.py.

    python tools/sync_notebooks.py          # rewrite what is out of date
    python tools/sync_notebooks.py --check  # change nothing; exit 1 and list what is out of date

For every notebooks/NN_*.ipynb it writes the header cell (title, what you will learn, Colab badge,
previous/next links) and the footer cell (previous/next links), copies the shared cells (tagged
series-setup / series-data) from tools/shared_cells.py, and strips outputs, execution counts and
editor metadata. It also writes the lesson table of README.md between its two marker comments.
"""

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from series import LESSONS, colab_url  # noqa: E402
from shared_cells import CELLS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
README = ROOT / "README.md"
TABLE_START, TABLE_END = "<!-- lessons:start -->", "<!-- lessons:end -->"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
NOTEBOOK_METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def lesson_link(index):
    stem, title, _ = LESSONS[index]
    label = f"{stem[:2]} · {title}"
    if (NOTEBOOKS / f"{stem}.ipynb").exists():
        return f"[{label}]({stem}.ipynb)"
    return f"{label} (not yet written)"


def navigation(index):
    parts = ["[Series overview](../README.md)"]
    if index > 0:
        parts.insert(0, f"← Previous: {lesson_link(index - 1)}")
    if index < len(LESSONS) - 1:
        parts.append(f"Next: {lesson_link(index + 1)} →")
    return " · ".join(parts)


def header(index):
    stem, title, learn = LESSONS[index]
    return (
        f"# {stem[:2]} · {title}\n"
        f"*Batch Normalization, hands-on — lesson {index + 1} of {len(LESSONS)}*\n\n"
        f"**What you will learn:** {learn}.\n\n"
        f"[![Open In Colab]({BADGE})]({colab_url(stem)})\n\n"
        f"{navigation(index)}"
    )


def footer(index):
    return f"---\n{navigation(index)}"


def synced(nb, index):
    """A copy of `nb` with its generated cells rewritten and its outputs stripped."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if c.get("id") not in ("series-header", "series-footer")]
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        tags = cell.metadata.get("tags", [])
        cell.metadata = {"tags": tags} if tags else {}
        for tag in tags:
            if tag in CELLS:
                cell.source = CELLS[tag].rstrip("\n")
    head = nbformat.v4.new_markdown_cell(header(index), id="series-header")
    foot = nbformat.v4.new_markdown_cell(footer(index), id="series-footer")
    nb.cells = [head, *cells, foot]
    nb.metadata = NOTEBOOK_METADATA
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def readme_table():
    rows = ["| # | Lesson | What you will learn | Open |", "|---|---|---|---|"]
    for stem, title, learn in LESSONS:
        if (NOTEBOOKS / f"{stem}.ipynb").exists():
            link = f"[{title}](notebooks/{stem}.ipynb)"
            badge = f"[![Open In Colab]({BADGE})]({colab_url(stem)})"
        else:
            link, badge = f"{title} *(not yet written)*", "—"
        rows.append(f"| {stem[:2]} | {link} | {learn[0].upper()}{learn[1:]}. | {badge} |")
    return "\n".join(rows)


def synced_readme(text):
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"README.md needs the markers {TABLE_START} and {TABLE_END}")
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    return f"{before}{TABLE_START}\n{readme_table()}\n{TABLE_END}{after}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    args = parser.parse_args(argv)
    stems = [stem for stem, _, _ in LESSONS]
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if path.stem not in stems:
            stale.append(f"{path.relative_to(ROOT)} is not in tools/series.py's LESSONS")
            continue
        old = path.read_text(encoding="utf-8")
        new = nbformat.writes(synced(nbformat.reads(old, as_version=4), stems.index(path.stem))) + "\n"
        if new != old:
            stale.append(str(path.relative_to(ROOT)))
            if not args.check:
                path.write_text(new, encoding="utf-8")
    old = README.read_text(encoding="utf-8")
    new = synced_readme(old)
    if new != old:
        stale.append("README.md (lesson table)")
        if not args.check:
            README.write_text(new, encoding="utf-8")
    if stale:
        verb = "out of date (run python tools/sync_notebooks.py)" if args.check else "updated"
        print(f"{verb}:\n  " + "\n  ".join(stale))
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
