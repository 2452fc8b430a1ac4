"""Keep the notebooks and the README in step with tools/series.py and tools/shared_cells.py.

    python tools/sync_notebooks.py                  # rewrite what is out of date
    python tools/sync_notebooks.py --check          # change nothing; exit 1, listing what is stale
    python tools/sync_notebooks.py --repo you/fork  # point every badge and link at your fork

For every notebooks/NN_*.ipynb it writes the header cell (title, what you will learn, Colab badge,
previous/next links) and the footer cell (previous/next links), copies the shared cells (tagged
series-setup / series-data) from tools/shared_cells.py, collapses support cells, and strips
outputs, execution counts and editor metadata. It also writes the lesson table of README.md
between its two marker comments.

A cell tagged `from-lesson-NN` is a copy of the cell with the same id in lesson NN (each lesson runs
alone, so one that builds on an earlier lesson's code carries that code): the tool copies its source.

A code cell whose first line starts with `#@title` is support, not lesson (setup, figure and widget
code, reference solutions): it is collapsed where the learner opens it, in JupyterLab and Notebook 7
(`jupyter.source_hidden`) and in Colab (`cellView: form`, which shows the title).
"""

import argparse
import os
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import series  # noqa: E402
from series import LESSONS, colab_url, repository_url  # noqa: E402
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
    """The lesson beside this one, and the same lesson in Colab (a relative link leads nowhere
    there)."""
    stem, title, _ = LESSONS[index]
    return f"[{stem[:2]} · {title}]({stem}.ipynb) ([in Colab]({colab_url(stem)}))"


def navigation(index):
    parts = [f"[Series overview]({repository_url()}#readme)"]
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


TITLE_MARK = "#@title"
COLLAPSED = {"cellView": "form", "jupyter": {"source_hidden": True}}


def is_support(cell):
    """A code cell that starts with #@title: collapsed where the learner opens the notebook."""
    return cell.cell_type == "code" and cell.source.startswith(TITLE_MARK)


def is_generated(cell):
    """A header or footer this tool wrote, recognised by its id or by its text (a copy pasted
    in by an editor gets a new id)."""
    if cell.get("id") in ("series-header", "series-footer"):
        return True
    text = cell.source.strip()
    return cell.cell_type == "markdown" and (
        bool(re.match(r"# \d\d · .*\n\*Batch Normalization, hands-on — lesson", text))
        or (text.startswith("---\n") and "Series overview" in text and text.count("\n") <= 2))


COPY_TAG = re.compile(r"from-lesson-(\d\d)")


def copied_source(cell, lesson):
    """The source of the cell with `cell`'s id in the lesson numbered `lesson` (e.g. "04"), as a
    collapsed cell: the code is taught there, here it is only run."""
    [path] = NOTEBOOKS.glob(f"{lesson}_*.ipynb") or [None]
    cells = nbformat.read(path, as_version=4).cells if path else []
    sources = [c.source for c in cells if c.get("id") == cell.get("id")]
    if not sources:
        raise SystemExit(f"a cell tagged from-lesson-{lesson} has id {cell.get('id')!r}, which "
                         f"no cell of lesson {lesson} has")
    lines = sources[0].splitlines()
    if lines and lines[0].startswith(TITLE_MARK):
        lines = lines[1:]
    title = f"{TITLE_MARK} From lesson {lesson}, where this code is explained (run it, read it there)"
    return "\n".join([title, *lines])


def synced(nb, index):
    """A copy of `nb` with its generated cells rewritten and its outputs stripped."""
    nb = nbformat.from_dict(nb)
    cells = [c for c in nb.cells if not is_generated(c)]
    for cell in cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        tags = cell.metadata.get("tags", [])
        cell.metadata = {"tags": tags} if tags else {}
        for tag in tags:
            if tag in CELLS:
                cell.source = CELLS[tag].rstrip("\n")
            elif COPY_TAG.fullmatch(tag):
                cell.source = copied_source(cell, COPY_TAG.fullmatch(tag).group(1))
        if is_support(cell):
            cell.metadata.update(COLLAPSED)
    head = nbformat.v4.new_markdown_cell(header(index), id="series-header")
    foot = nbformat.v4.new_markdown_cell(footer(index), id="series-footer")
    nb.cells = [head, *cells, foot]
    nb.metadata = NOTEBOOK_METADATA
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def readme_table():
    rows = ["| # | Lesson | What you will learn | Open |", "|---|---|---|---|"]
    for stem, title, learn in LESSONS:
        link = f"[{title}](notebooks/{stem}.ipynb)"
        badge = f"[![Open In Colab]({BADGE})]({colab_url(stem)})"
        rows.append(f"| {stem[:2]} | {link} | {learn[0].upper()}{learn[1:]}. | {badge} |")
    return "\n".join(rows)


def synced_readme(text):
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"README.md needs the markers {TABLE_START} and {TABLE_END}")
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    return f"{before}{TABLE_START}\n{readme_table()}\n{TABLE_END}{after}"


SOLUTION_MARK = "#@title Reference solution"


def exercise_problems(nb):
    """How the notebook breaks the exercise pattern: every reference solution (a cell starting
    with SOLUTION_MARK) follows the learner's stub (a cell that raises NotImplementedError) and
    the cell that checks it (check_exercise(...)), in that order."""
    problems, stub, checked = [], None, False
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(SOLUTION_MARK):
            if stub is None or not checked:
                problems.append(f"cell {index}: a reference solution without a stub and a check "
                                "before it")
            stub, checked = None, False
        elif "raise NotImplementedError" in cell.source:
            stub, checked = index, False
        elif stub is not None and "check_exercise(" in cell.source:
            checked = True
    if stub is not None:
        problems.append(f"cell {stub}: an exercise stub without a check and a reference solution")
    return problems


def set_repository(repo):
    """Point the series at `repo` (owner/name): the one place that holds it is tools/series.py."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise SystemExit(f"--repo wants owner/name, e.g. octocat/batchnorm-hands-on; got {repo!r}")
    path = Path(series.__file__)
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r'^GITHUB_REPO = ".*"$', f'GITHUB_REPO = "{repo}"', text, flags=re.M),
                    encoding="utf-8")
    print(f"tools/series.py now points at {repo}; rewriting the notebooks and the README")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    parser.add_argument("--repo", help="owner/name of the GitHub repository the badges point at")
    args = parser.parse_args(argv)
    if args.repo:
        set_repository(args.repo)
        os.execv(sys.executable, [sys.executable, __file__])  # afresh, with the new path
    stems = [stem for stem, _, _ in LESSONS]
    stale, broken = [], []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if path.stem not in stems:
            stale.append(f"{path.relative_to(ROOT)} is not in tools/series.py's LESSONS")
            continue
        old = path.read_text(encoding="utf-8")
        nb = nbformat.reads(old, as_version=4)
        broken.extend(f"{path.relative_to(ROOT)}: {problem}" for problem in exercise_problems(nb))
        new = nbformat.writes(synced(nb, stems.index(path.stem))) + "\n"
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
    if broken:
        print("exercises out of pattern (stub, check_exercise(...), reference solution):\n  "
              + "\n  ".join(broken))
    return 1 if broken or (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
