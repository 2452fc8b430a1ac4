"""The cells every lesson shares, in their one canonical form.

Each lesson must run alone (in Colab, with no file of this repository beside it), so these cells are
copied into the notebooks rather than imported. `tools/sync_notebooks.py` keeps the copies identical
to the text here; edit them here, then run the tool.
"""

# Series conventions: the fast/full switch, where figures go, how sliders drive a figure.
SETUP = '''\
#@save
# Series conventions, the same in every lesson.
import io
import os
from pathlib import Path

import ipywidgets as widgets
from IPython.display import Image, display
from matplotlib.backends.backend_agg import FigureCanvasAgg

FAST = os.environ.get("BN_FAST") == "1"  # BN_FAST=1: the quick run the tests use; unset: the full lesson
IN_REPO = Path.cwd().name == "notebooks" and Path("../figures").is_dir()
FIGURES = Path(os.environ.get("BN_FIGURES_DIR") or ("../figures" if IN_REPO else "figures"))
FIGURES.mkdir(parents=True, exist_ok=True)


def save_figure(fig, name):
    """Write `fig` to FIGURES/<name>.png (the README shows the ones in the repository's figures/)."""
    fig.savefig(FIGURES / f"{name}.png", dpi=100, bbox_inches="tight")


def figure_png(fig):
    """The PNG bytes of `fig`: exactly what a slider panel shows."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # keep one canvas: savefig would make a new one, and lay out text anew
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


PANELS = []  # every slider panel of this notebook, in order


def slider_panel(fig, update, **controls):
    """Sliders (or toggles) above a figure: each change calls update(**values), which redraws `fig`
    in place (reusing a figure keeps a slider responsive). Called once now with the defaults."""
    def show(**values):
        update(**values)
        display(Image(figure_png(fig)))
    output = widgets.interactive_output(show, controls)
    PANELS.append({"fig": fig, "update": update, "controls": controls})
    box = widgets.Box(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    return widgets.VBox([box, output])


print(f"{'Fast' if FAST else 'Full'} mode; figures are saved to {FIGURES.resolve()}")
'''

# Finding MNIST: the data folder named by BN_DATA_DIR, the repository's data/, or a download.
DATA = '''\
#@save
# Where the MNIST digits come from (the same cell in every lesson that uses them).
import hashlib

from torchvision import datasets
from torchvision.datasets.utils import extract_archive

MNIST_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "batchnorm-hands-on"
HOW_TO_GET_MNIST = (
    "Either point BN_DATA_DIR at a folder holding MNIST/raw/ (the series' data/ folder has 10,000 "
    "real digits: git clone the repository and run from it, or set BN_DATA_DIR=/path/to/data), or "
    "connect to the internet so that torchvision can download the full MNIST into " + str(CACHE))


def local_mnist_root(folder):
    """A torchvision `root` for the MNIST in folder/MNIST/raw/, un-gzipping into the cache if needed
    (the folder itself may be read-only). None when the folder holds no MNIST."""
    raw = Path(folder) / "MNIST" / "raw"
    if all((raw / name).is_file() for name in MNIST_FILES):
        return Path(folder)
    if not all((raw / f"{name}.gz").is_file() for name in MNIST_FILES):
        return None
    root = CACHE / "unpacked" / hashlib.sha1(str(raw.resolve()).encode()).hexdigest()[:12]
    (root / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        target = root / "MNIST" / "raw" / name
        if not target.is_file() or target.stat().st_mtime < (raw / f"{name}.gz").stat().st_mtime:
            extract_archive(str(raw / f"{name}.gz"), str(target.parent))
    return root


def download_mnist_root():
    """Download the full MNIST (70,000 digits) with torchvision; None when that fails (offline)."""
    root = CACHE / "full"
    try:
        for train in (True, False):
            datasets.MNIST(root, train=train, download=True)
    except Exception as error:  # offline, blocked, or the mirrors are down
        print(f"Could not download MNIST: {error}")
        return None
    return root


def mnist_root(prefer_full=False):
    """Choose the MNIST to use. With BN_DATA_DIR set, that folder or a clear error. Otherwise the
    repository's data/ (10,000 digits); with prefer_full, the full MNIST first, when it downloads."""
    if os.environ.get("BN_DATA_DIR"):
        folder = Path(os.environ["BN_DATA_DIR"]).expanduser()
        root = local_mnist_root(folder)
        if root is None:
            raise FileNotFoundError(
                f"BN_DATA_DIR={folder} holds no MNIST: expected {folder / 'MNIST' / 'raw'} with "
                f"{', '.join(MNIST_FILES)} (each may be .gz). " + HOW_TO_GET_MNIST)
        return root
    local = next((root for root in map(local_mnist_root, ["../data", "data"]) if root), None)
    if local is None or prefer_full:
        full = download_mnist_root()
        if full is not None:
            return full
        if local is not None:
            print("Offline: using the 10,000-digit MNIST subset in the repository's data/ instead.")
    if local is None:
        raise FileNotFoundError("No MNIST found and none could be downloaded. " + HOW_TO_GET_MNIST)
    return local


def load_mnist(prefer_full=False):
    """MNIST as (train, test) torchvision datasets; .data holds uint8 digits, .targets the labels."""
    root = mnist_root(prefer_full)
    train, test = (datasets.MNIST(root, train=flag, download=False) for flag in (True, False))
    print(f"MNIST from {root}: {len(train):,} training and {len(test):,} test digits")
    return train, test
'''

CELLS = {"series-setup": SETUP, "series-data": DATA}
