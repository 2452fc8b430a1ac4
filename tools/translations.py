"""Translated editions of the series, kept in step with the English by a catalog per lesson.

An edition lives in i18n/<lang>/: `edition.json` holds the series' own words (title, navigation,
the lessons' titles and summaries, the messages of the shared setup cell) and `NN.json` one
lesson's catalog:

    {"cells": {"<English cell id>": {"sha1": "<hash of the English source>", "text": "..."}},
     "messages": {"<English hint or check message>": "<translation>"}}

tools/sync_notebooks.py writes notebooks/<lang>/NN_*.ipynb from the English notebook: every
markdown cell is replaced by its translation, every code cell is the English one (the same code,
so the English lesson's tests hold for both), and a cell after the setup cell fills `MESSAGES`,
through which `check_exercise` prints hints and check messages in the edition's language. A message
may be a template: `{}` stands for a number or a name the English message carries, `{0}`, `{1}`, ...
for the same in another order. The messages an edition must translate are found in the code: every
string of three words or more in a cell that defines a `check_...` function or holds an exercise
stub (`learner_messages`). A translation is stale when its English cell changed after it was
written (the hash differs); missing and stale translations fail `sync_notebooks.py --check`.
"""

import ast
import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
I18N = ROOT / "i18n"
SETUP_MESSAGES = "series"  # the key in edition.json's "messages" for the shared setup cell's words


def languages():
    """The editions there are: the folders of i18n/."""
    return sorted(p.name for p in I18N.iterdir() if (p / "edition.json").is_file()) if I18N.is_dir() else []


def source_hash(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def load_json(path):
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def edition(lang):
    return load_json(I18N / lang / "edition.json")


def catalog(lang, stem):
    return load_json(I18N / lang / f"{stem[:2]}.json")


def message_text(node):
    """The text of a str literal or f-string (its placeholders as {}), or of a sum of them; None
    for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = message_text(node.left), message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def learner_messages(source):
    """The hints and check messages a learner reads, as templates: every string literal or
    f-string of three words or more (docstrings aside) in a cell that defines a `check_...`
    function or holds an exercise stub. (A checker's messages may be built in helpers beside it,
    so the whole cell counts.)"""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    if "raise NotImplementedError" not in source and not any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("check_")
            for node in ast.walk(tree)):
        return []
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    inner = {id(child) for node in ast.walk(tree) if isinstance(node, (ast.JoinedStr, ast.BinOp))
             for child in ast.walk(node) if child is not node}
    found = []
    for node in ast.walk(tree):
        if id(node) in docstrings or id(node) in inner:
            continue
        text = message_text(node)
        if text and len(text.split()) >= 3:
            found.append(text)
    return found


def notebook_messages(nb):
    return list(dict.fromkeys(m for cell in nb.cells if cell.cell_type == "code"
                              and "series-setup" not in cell.metadata.get("tags", [])
                              for m in learner_messages(cell.source)))


def translated_cells(nb, lang, stem):
    """(translated markdown by cell id, messages, problems): the lesson's catalog checked against
    its English notebook."""
    entries = catalog(lang, stem)
    cells, problems = {}, []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown" or cell.get("id") in ("series-header", "series-footer"):
            continue
        entry = entries.get("cells", {}).get(cell.id)
        first_line = cell.source.strip().splitlines()[0][:60] if cell.source.strip() else ""
        if entry is None:
            problems.append(f"cell {index} ({cell.id}, “{first_line}”): no translation")
        elif entry.get("sha1") != source_hash(cell.source):
            problems.append(f"cell {index} ({cell.id}, “{first_line}”): the English changed "
                            "since it was translated")
        else:
            cells[cell.id] = entry["text"]
    messages = entries.get("messages", {})
    for message in notebook_messages(nb):
        if message not in messages:
            problems.append(f"message not translated: “{message[:70]}”")
    return cells, messages, problems


def todo(nb, lang, stem):
    """What a translator must write for this lesson: the missing or stale cells and messages,
    with their English, in the catalog's format (text/translation left empty)."""
    entries = catalog(lang, stem)
    cells = {}
    for cell in nb.cells:
        if cell.cell_type != "markdown" or cell.get("id") in ("series-header", "series-footer"):
            continue
        entry = entries.get("cells", {}).get(cell.id)
        if entry is None or entry.get("sha1") != source_hash(cell.source):
            cells[cell.id] = {"sha1": source_hash(cell.source), "english": cell.source,
                              "text": (entry or {}).get("text", "")}
    known = entries.get("messages", {})
    messages = {m: "" for m in notebook_messages(nb) if m not in known}
    return {"cells": cells, "messages": messages} if cells or messages else None


def messages_cell_source(lang, messages):
    """The code of the cell that fills MESSAGES in a translated lesson."""
    words = edition(lang)
    table = {**words.get("messages", {}).get(SETUP_MESSAGES, {}), **messages}
    lines = [f"#@title {words['messages_title']}", "MESSAGES.update({"]
    for english, local in table.items():
        lines.append(f"    {json.dumps(english, ensure_ascii=False)}:")
        lines.append(f"        {json.dumps(local, ensure_ascii=False)},")
    lines.append("})")
    return "\n".join(lines)
