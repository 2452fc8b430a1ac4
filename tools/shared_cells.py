"""The cells every lesson shares, in their one canonical form.

Each lesson must run alone (in Colab, with no file of this repository beside it), so these cells are
copied into the notebooks rather than imported. `tools/sync_notebooks.py` keeps the copies identical
to the text here; edit them here, then run the tool.
"""

from series import GITHUB_REPO

# Series conventions: the fast/full switch, where figures go, slider panels, exercise checks.
SETUP_CELL = '''\
#@title Series setup: run this first (what every lesson shares)
#@save
import io
import os
import re
import traceback
from pathlib import Path

import ipywidgets as widgets
import matplotlib
import numpy as np
from IPython.display import display
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

FAST = os.environ.get("BN_FAST") == "1"  # BN_FAST=1: the quick run the tests use
IN_REPO = Path.cwd().name == "notebooks" and Path("../figures").is_dir()
FIGURES = Path(os.environ.get("BN_FIGURES_DIR")
               or ("../figures" if IN_REPO else "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)


def save_figure(fig, name):
    """Write `fig` to FIGURES/<name>.png (the README shows the repository's figures/)."""
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")


def figure_png(fig):
    """The PNG bytes of `fig`: exactly what a slider panel shows. Written for speed (zlib
    level 1; RGB when no pixel is transparent); the same figure gives the same bytes."""
    canvas = fig.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(fig)  # one canvas for good, drawn again each time
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba()))
    if image.getextrema()[3][0] == 255:  # opaque: an alpha channel would only add bytes
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


class SliderPanel:
    """Controls above a figure. build() makes the figure and returns (fig, update); every
    change of a control calls update(**values), which redraws fig in place."""

    MEMORY = 64  # a panel keeps the PNGs of its latest values: going back is instant
    # Titles sit on top of their axes, so that a redraw need not measure the tick
    # labels to lift them (no panel has tick labels above an axes: the same pictures).
    STYLE = {"axes.titley": 1.0}

    def __init__(self, build, controls):
        self.make_figure, self.controls = build, controls
        self.errors = []  # tracebacks of failed redraws (each also shown in the panel)

    def build(self):
        """(fig, update) from the panel's build function, in the panel's STYLE."""
        with matplotlib.rc_context(self.STYLE):
            return self.make_figure()

    def values(self):
        return {name: control.value for name, control in self.controls.items()}

    def render(self, fig, update, values):
        """The PNG a panel shows for `values` (control name -> value) when it draws
        them: update(**values) in STYLE, then figure_png(fig). As update is deterministic,
        the bytes depend on the values alone, not on what fig showed before."""
        with matplotlib.rc_context(self.STYLE):
            update(**values)
        return figure_png(fig)

    def widget(self):
        """The panel as a widget: the controls, the figure for their values, and a line
        that shows an error if a redraw fails."""
        fig, update = self.build()
        image, error = widgets.Image(format="png"), widgets.HTML()
        drawn = {}  # repr(values) -> PNG, the latest MEMORY values drawn, oldest first

        def redraw(change=None):
            values = self.values()
            plain = all(type(v) in (bool, int, float, str) for v in values.values())
            key = repr(values) if plain else None  # such values differ iff their reprs do
            try:
                png = drawn.pop(key, None) or self.render(fig, update, values)
            except Exception:
                if change is None:
                    raise  # the first drawing: let the cell fail
                self.errors.append(traceback.format_exc())
                message = self.errors[-1].replace("&", "&amp;").replace("<", "&lt;")
                error.value = f"<pre style='color: #b00'>{message}</pre>"
                return
            if key is not None:
                drawn[key] = png
                if len(drawn) > self.MEMORY:
                    del drawn[next(iter(drawn))]
            image.value, error.value = png, ""

        redraw()
        for control in self.controls.values():
            control.observe(redraw, names="value")
        row = widgets.Box(list(self.controls.values()),
                          layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([row, image, error])

    def _ipython_display_(self):
        display(self.widget())


def slider_panel(build, **controls):
    """A SliderPanel: `build` returns (fig, update); each keyword names a control (a core
    ipywidget) and the argument of update(...) it sets. A cell's last line shows it."""
    return SliderPanel(build, controls)


MESSAGES = {}  # a translated edition fills it: English hint or message -> translation


def translated(text):
    """`text` in the lesson's language. A {} in a key of MESSAGES stands for what varies
    (a number, a name, a phrase: translated too), passed on to the translation's {} (or
    {0}, {1}, ... reordered). The key with the most fixed words wins; a message made of
    known ones (a case, then its explanation) is translated part by part."""
    keys = sorted(MESSAGES, key=lambda english: -len(english.replace("{}", "")))
    value = r"((?:(?!\\.\\s+[A-Z]).)+?)"  # what a {} stands for: no sentence ends inside
    for rest in ("", r"(\\s.+)"):  # the whole message, else a known part and the rest
        for english in keys:
            pattern = value.join(map(re.escape, english.split("{}"))) + rest
            match = re.fullmatch(pattern, text, flags=re.S)
            if match:
                values = list(match.groups())
                tail = " " + translated(values.pop().strip()) if rest else ""
                return MESSAGES[english].format(*map(translated, values)) + tail
    return text


def check_exercise(check, *attempt):
    """Run `check` on your attempt and say what it finds: right, the mistake it names, or
    that the exercise is still a stub (the lesson then goes on with the reference one)."""
    try:
        check(*attempt)
    except NotImplementedError as stub:
        hint = translated(str(stub))
        print(translated(f"⏳ Not written yet ({hint}). Write it above and run both cells "
                         "again; until then the lesson uses the reference solution."))
    except AssertionError as mistake:
        print(translated(f"✗ Not yet. {translated(str(mistake))}"))
    except Exception as error:
        where = traceback.extract_tb(error.__traceback__)[-1]
        raised = f"{type(error).__name__}: {translated(str(error))}"
        print(translated(f"✗ Your code raised {raised}"))
        print(translated(f"   at line {where.lineno}: {where.line}"))
    else:
        print(translated("✓ Right: every check passed."))


print(f"{'Fast' if FAST else 'Full'} mode; figures are saved to {FIGURES.resolve()}")
'''

# Finding MNIST: the data folder named by BN_DATA_DIR, the repository's data/, or a download.
DATA_CELL = '''\
#@title Where the MNIST digits come from (the same cell in every lesson that uses them)
#@save
import hashlib

from torchvision import datasets
from torchvision.datasets.utils import extract_archive

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
CACHE = CACHE_ROOT / "batchnorm-hands-on"
REPOSITORY = "https://github.com/GITHUB_REPO"
HOW_TO_GET_MNIST = f"""
To use the 10,000 MNIST digits that ship with the series, either
  * run the lesson from a clone of the repository ({REPOSITORY}), or
  * point BN_DATA_DIR at a folder holding MNIST/raw/. In Colab, paste these two lines into
    a new cell, run it, then run this cell again:
        !git clone --depth 1 {REPOSITORY} /content/batchnorm-hands-on
        os.environ["BN_DATA_DIR"] = "/content/batchnorm-hands-on/data"
or connect to the internet, so that torchvision can download the full MNIST into
{CACHE}."""


def local_mnist_root(folder):
    """A torchvision `root` for the MNIST in folder/MNIST/raw/, un-gzipping into the cache
    if needed (the folder itself may be read-only). None if the folder holds no MNIST."""
    raw = Path(folder) / "MNIST" / "raw"
    if all((raw / name).is_file() for name in MNIST_FILES):
        return Path(folder)
    if not all((raw / f"{name}.gz").is_file() for name in MNIST_FILES):
        return None
    root = CACHE / "unpacked" / hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    (root / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        target = root / "MNIST" / "raw" / name
        archive = raw / f"{name}.gz"
        if not target.is_file() or target.stat().st_mtime < archive.stat().st_mtime:
            extract_archive(str(archive), str(target.parent))
    return root


def download_mnist_root():
    """Download the full MNIST (70,000 digits) with torchvision; None when that fails."""
    root = CACHE / "full"
    try:
        for train in (True, False):
            datasets.MNIST(root, train=train, download=True)
    except Exception as error:  # offline, blocked, or the mirrors are down
        print(f"Could not download MNIST: {error}")
        return None
    return root


def mnist_root(prefer_full=False):
    """Choose the MNIST to use. With BN_DATA_DIR set, that folder or a clear error.
    Otherwise the repository's data/ (10,000 digits); with prefer_full, the full MNIST
    first, if it downloads."""
    if os.environ.get("BN_DATA_DIR"):
        folder = Path(os.environ["BN_DATA_DIR"]).expanduser()
        root = local_mnist_root(folder)
        if root is None:
            raise FileNotFoundError(
                f"BN_DATA_DIR={folder} holds no MNIST: expected "
                f"{folder / 'MNIST' / 'raw'} with {', '.join(MNIST_FILES)} "
                "(each may be .gz).\\n" + HOW_TO_GET_MNIST)
        return root
    folders = ["../data", "../../data", "data"]  # notebooks/, notebooks/<language>/, top
    local = next((root for root in map(local_mnist_root, folders) if root), None)
    if local is None or prefer_full:
        full = download_mnist_root()
        if full is not None:
            return full
        if local is not None:
            print("Offline: using the 10,000-digit MNIST subset in the repository.")
    if local is None:
        raise FileNotFoundError("No MNIST found and none could be downloaded.\\n"
                                + HOW_TO_GET_MNIST)
    return local


def load_mnist(prefer_full=False):
    """MNIST as (train, test) torchvision datasets: .data holds uint8 digits, .targets
    the labels."""
    root = mnist_root(prefer_full)
    train, test = (datasets.MNIST(root, train=flag) for flag in (True, False))
    print(f"MNIST from {root}: {len(train):,} training and {len(test):,} test digits")
    return train, test
'''.replace("GITHUB_REPO", GITHUB_REPO)

CELLS = {"series-setup": SETUP_CELL, "series-data": DATA_CELL}
