"""The translated editions: generated from the English lessons and their catalogs, complete, in
step with the English, and runnable on their own."""

import re
import sys

import nbformat
import pytest
from lessons import ROOT, execute_alone
from test_notebooks_run import problems

sys.path.insert(0, str(ROOT / "tools"))
import sync_notebooks  # noqa: E402
import translations  # noqa: E402
from series import LESSONS, colab_url  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
EDITIONS = [(lang, stem) for lang in translations.languages() for stem, _, _ in LESSONS]


def english(stem):
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def edition(lang, stem):
    return nbformat.read(ROOT / "notebooks" / lang / f"{stem}.ipynb", as_version=4)


def test_there_is_a_chinese_edition():
    assert "zh-CN" in translations.languages()


@pytest.mark.parametrize("lang, stem", EDITIONS)
def test_every_cell_is_translated_and_every_code_cell_is_the_english_one(lang, stem):
    ours, theirs = edition(lang, stem), english(stem)
    extra = [c for c in ours.cells if c.get("id") == "series-messages"]
    assert len(extra) == 1 and len(ours.cells) == len(theirs.cells) + 1
    pairs = zip([c for c in ours.cells if c.get("id") != "series-messages"], theirs.cells)
    for mine, original in pairs:
        assert mine.id == original.id and mine.cell_type == original.cell_type
        if original.cell_type == "code":
            assert mine.source == original.source
        else:
            assert CJK.search(mine.source), f"cell {mine.id} is not in Chinese: {mine.source[:80]}"


@pytest.mark.parametrize("lang, stem", EDITIONS)
def test_the_badge_opens_this_edition_in_colab(lang, stem):
    header = edition(lang, stem).cells[0].source
    assert f"]({colab_url(f'{lang}/{stem}')})" in header
    assert f"]({colab_url(stem)})" not in header  # not the English lesson's


@pytest.mark.parametrize("lang, stem", EDITIONS)
def test_a_changed_english_cell_makes_its_translation_stale(lang, stem):
    nb = english(stem)
    _, _, before = translations.translated_cells(nb, lang, stem)
    assert before == []
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.id != "series-header")
    cell.source += "\nOne more sentence."  # the temporary edit an author might make
    _, _, after = translations.translated_cells(nb, lang, stem)
    assert len(after) == 1 and cell.id in after[0] and "changed" in after[0]


@pytest.mark.parametrize("lang, stem", EDITIONS)
def test_every_hint_and_check_message_comes_out_translated(lang, stem):
    """Each message template of the lesson, filled in as a checker would fill it, goes through
    the edition's MESSAGES table (the generated cell) and comes out in the edition's language."""
    namespace = {"MESSAGES": {}}
    setup = next(c for c in edition(lang, stem).cells if "series-setup" in c.metadata.get("tags", []))
    exec(setup.source.split("\nprint(")[0], namespace)
    table = next(c for c in edition(lang, stem).cells if c.get("id") == "series-messages")
    exec(table.source, namespace)
    untranslated = []
    for template in translations.notebook_messages(english(stem)):
        text = template.replace("{}", "7")
        if not CJK.search(namespace["translated"](text)):
            untranslated.append(text)
    assert untranslated == []


def test_the_sync_check_holds_for_every_edition():
    assert sync_notebooks.main(["--check"]) == 0


@pytest.mark.parametrize("lang, stem", EDITIONS)
def test_the_edition_runs_alone_in_fast_mode(lang, stem):
    nb, _, _ = execute_alone(ROOT / "notebooks" / lang / f"{stem}.ipynb", f"{lang}-{stem[:2]}")
    assert problems(nb) == []
