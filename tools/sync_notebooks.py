"""Keep the notebooks and the README in step with tools/series.py and tools/shared_cells.py.

    python tools/sync_notebooks.py                  # rewrite what is out of date
    python tools/sync_notebooks.py --check          # change nothing; exit 1, listing what is stale
    python tools/sync_notebooks.py --repo you/fork  # point every badge and link at your fork
    python tools/sync_notebooks.py --todo zh-CN     # what an edition still needs translated

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

Translated editions (tools/translations.py): for every i18n/<lang>/ it writes notebooks/<lang>/ from
the English notebooks and the catalogs, and README.<lang>.md's lesson table; a missing or stale
translation fails, naming the cells.
"""

import argparse
import json
import os
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import series  # noqa: E402
import translations  # noqa: E402
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


ENGLISH = {  # the series' own words; a translated edition has its own in i18n/<lang>/edition.json
    "language": "English", "folder": "", "readme": "README.md",
    "series": "Batch Normalization, hands-on", "lesson_of": "lesson {number} of {count}",
    "learn": "What you will learn", "overview": "Series overview", "previous": "Previous",
    "next": "Next", "in_colab": "in Colab", "table": ["#", "Lesson", "What you will learn", "Open"],
}


def edition_words(lang=None):
    return ENGLISH if lang is None else {**ENGLISH, **translations.edition(lang), "folder": lang}


def title_and_summary(index, words):
    stem, title, learn = LESSONS[index]
    return words.get("lessons", {}).get(stem, [title, learn])


def edition_colab_url(stem, words):
    return colab_url(f"{words['folder']}/{stem}" if words["folder"] else stem)


def lesson_link(index, words):
    """The lesson beside this one, and the same lesson in Colab (a relative link leads nowhere
    there)."""
    stem = LESSONS[index][0]
    title = title_and_summary(index, words)[0]
    return (f"[{stem[:2]} · {title}]({stem}.ipynb) "
            f"([{words['in_colab']}]({edition_colab_url(stem, words)}))")


def other_editions(index, words):
    """Links to the lesson in the other languages of the series."""
    stem = LESSONS[index][0]
    links = []
    for lang in [None, *translations.languages()]:
        other = edition_words(lang)
        if other["folder"] != words["folder"]:
            up = "../" if words["folder"] else ""
            path = f"{up}{other['folder'] + '/' if other['folder'] else ''}{stem}.ipynb"
            links.append(f"[{other['language']}]({path})")
    return links


def navigation(index, words):
    parts = [f"[{words['overview']}]({repository_url()}/blob/{series.BRANCH}/{words['readme']})"]
    if index > 0:
        parts.insert(0, f"← {words['previous']}: {lesson_link(index - 1, words)}")
    if index < len(LESSONS) - 1:
        parts.append(f"{words['next']}: {lesson_link(index + 1, words)} →")
    return " · ".join(parts)


def header(index, words=ENGLISH):
    stem = LESSONS[index][0]
    title, learn = title_and_summary(index, words)
    lesson_of = words["lesson_of"].format(number=index + 1, count=len(LESSONS))
    editions = " · ".join(other_editions(index, words))
    return (
        f"# {stem[:2]} · {title}\n"
        f"*{words['series']} — {lesson_of}*\n\n"
        f"**{words['learn']}:** {learn}{'' if learn.endswith('。') else '.'}\n\n"
        f"[![Open In Colab]({BADGE})]({edition_colab_url(stem, words)})"
        f"{'   ' + editions if editions else ''}\n\n"
        f"{navigation(index, words)}"
    )


def footer(index, words=ENGLISH):
    return f"---\n{navigation(index, words)}"


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
    [path] = NOTEBOOKS.glob(f"{lesson}_*.ipynb")
    cells = nbformat.read(path, as_version=4).cells
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


def readme_table(words=ENGLISH):
    rows = ["| " + " | ".join(words["table"]) + " |", "|---|---|---|---|"]
    folder = f"notebooks/{words['folder']}/" if words["folder"] else "notebooks/"
    for index, (stem, _, _) in enumerate(LESSONS):
        title, learn = title_and_summary(index, words)
        link = f"[{title}]({folder}{stem}.ipynb)"
        badge = f"[![Open In Colab]({BADGE})]({edition_colab_url(stem, words)})"
        end = "" if learn.endswith("。") else "."
        rows.append(f"| {stem[:2]} | {link} | {learn[0].upper()}{learn[1:]}{end} | {badge} |")
    return "\n".join(rows)


def synced_readme(text, words=ENGLISH):
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{words['readme']} needs the markers {TABLE_START} and {TABLE_END}")
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    return f"{before}{TABLE_START}\n{readme_table(words)}\n{TABLE_END}{after}"


def translated(nb, index, lang):
    """The edition `lang` of the synced English notebook `nb`, and what its catalog lacks."""
    words = edition_words(lang)
    stem = LESSONS[index][0]
    texts, messages, problems = translations.translated_cells(nb, lang, stem)
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if cell.get("id") == "series-header":
            cell.source = header(index, words)
        elif cell.get("id") == "series-footer":
            cell.source = footer(index, words)
        elif cell.cell_type == "markdown":
            cell.source = texts.get(cell.id, cell.source)
    setup = next(i for i, c in enumerate(nb.cells) if "series-setup" in c.metadata.get("tags", []))
    table = nbformat.v4.new_code_cell(translations.messages_cell_source(lang, messages),
                                      id="series-messages", metadata=dict(COLLAPSED))
    nb.cells.insert(setup + 1, table)
    return nb, problems


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


def write_if_changed(path, text, check, stale):
    """Write `text` to `path` unless it holds it already (or `check`); note the stale path."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        stale.append(str(path.relative_to(ROOT)))
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def todo(lang):
    """Print, as catalog entries to fill, what the edition `lang` lacks."""
    for index, (stem, _, _) in enumerate(LESSONS):
        nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
        missing = translations.todo(nb, lang, stem)
        if missing:
            print(f"i18n/{lang}/{stem[:2]}.json needs:")
            print(json.dumps(missing, ensure_ascii=False, indent=1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    parser.add_argument("--repo", help="owner/name of the GitHub repository the badges point at")
    parser.add_argument("--todo", metavar="LANG", help="list what edition LANG still needs translated")
    args = parser.parse_args(argv)
    if args.repo:
        set_repository(args.repo)
        os.execv(sys.executable, [sys.executable, __file__])  # afresh, with the new path
    if args.todo:
        return todo(args.todo)
    stems = [stem for stem, _, _ in LESSONS]
    stale, broken, untranslated = [], [], []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if path.stem not in stems:
            stale.append(f"{path.relative_to(ROOT)} is not in tools/series.py's LESSONS")
            continue
        nb = nbformat.read(path, as_version=4)
        broken.extend(f"{path.relative_to(ROOT)}: {problem}" for problem in exercise_problems(nb))
        english = synced(nb, stems.index(path.stem))
        write_if_changed(path, nbformat.writes(english) + "\n", args.check, stale)
        for lang in translations.languages():
            edition, problems = translated(english, stems.index(path.stem), lang)
            untranslated.extend(f"notebooks/{lang}/{path.name}: {problem}" for problem in problems)
            write_if_changed(NOTEBOOKS / lang / path.name, nbformat.writes(edition) + "\n",
                             args.check, stale)
    for lang in [None, *translations.languages()]:
        words = edition_words(lang)
        readme = ROOT / words["readme"]
        write_if_changed(readme, synced_readme(readme.read_text(encoding="utf-8"), words),
                         args.check, stale)
    if stale:
        verb = "out of date (run python tools/sync_notebooks.py)" if args.check else "updated"
        print(f"{verb}:\n  " + "\n  ".join(stale))
    if broken:
        print("exercises out of pattern (stub, check_exercise(...), reference solution):\n  "
              + "\n  ".join(broken))
    if untranslated:
        print("translations missing or stale (python tools/sync_notebooks.py --todo LANG lists "
              "them with their English):\n  " + "\n  ".join(untranslated))
    return 1 if broken or untranslated or (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
