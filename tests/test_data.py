"""The shared data cell: finds MNIST where the README says, never writes beside the data, and
says how to get the data when there is none."""

import os
import shutil
import stat
import sys
import types

import pytest
from lessons import DATA_DIR, ROOT

sys.path.insert(0, str(ROOT / "tools"))
from run_notebooks import environment  # noqa: E402
from series import GITHUB_REPO  # noqa: E402
from shared_cells import DATA_CELL, SETUP_CELL  # noqa: E402


@pytest.fixture
def data_cell(tmp_path, monkeypatch):
    """The data cell as a module, run from an empty folder with its own cache."""
    monkeypatch.chdir(tmp_path)
    module = types.ModuleType("data_cell")
    with environment(XDG_CACHE_HOME=str(tmp_path / "cache"), BN_FIGURES_DIR=str(tmp_path / "figures")):
        exec(SETUP_CELL, module.__dict__)
        exec(DATA_CELL, module.__dict__)
    return module


def read_only_copy(tmp_path):
    copy = tmp_path / "readonly-data"
    shutil.copytree(DATA_DIR / "MNIST", copy / "MNIST")
    for folder, _, files in os.walk(copy):
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    return copy


def test_reads_a_read_only_data_folder_without_writing_beside_it(data_cell, tmp_path):
    source = read_only_copy(tmp_path)
    before = sorted(p.name for p in (source / "MNIST" / "raw").iterdir())
    with environment(BN_DATA_DIR=str(source)):
        train, test = data_cell.load_mnist()
    assert (len(train), len(test)) == (8000, 2000)
    assert sorted(p.name for p in (source / "MNIST" / "raw").iterdir()) == before
    pixels = train.data.float() / 255
    assert abs(pixels.mean().item() - 0.1311) < 5e-4 and abs(pixels.std().item() - 0.3086) < 5e-4
    assert test.targets.bincount().tolist() == [200, 225, 198, 206, 196, 173, 203, 214, 189, 196]


def test_a_second_load_reuses_the_unpacked_cache(data_cell, tmp_path):
    with environment(BN_DATA_DIR=str(DATA_DIR)):
        first = data_cell.mnist_root()
        stamps = {p: p.stat().st_mtime_ns for p in first.rglob("*-ubyte")}
        assert data_cell.mnist_root() == first
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_finds_the_repository_data_folder_from_notebooks(data_cell, tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    shutil.copytree(DATA_DIR, tmp_path / "data")
    monkeypatch.chdir(tmp_path / "notebooks")
    with environment(BN_DATA_DIR=None):
        train, _ = data_cell.load_mnist()
    assert len(train) == 8000


def test_an_empty_data_dir_says_what_was_expected_and_how_to_get_it(data_cell, tmp_path):
    with environment(BN_DATA_DIR=str(tmp_path)), pytest.raises(FileNotFoundError) as error:
        data_cell.load_mnist()
    message = str(error.value)
    assert "MNIST/raw" in message and "train-images-idx3-ubyte" in message
    assert "BN_DATA_DIR" in message and "internet" in message


def failing_download(monkeypatch, data_cell):
    def refuse(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz (network unreachable)")
    monkeypatch.setattr(data_cell, "datasets", types.SimpleNamespace(MNIST=refuse))


def test_offline_with_nothing_local_names_both_fixes(data_cell, monkeypatch):
    failing_download(monkeypatch, data_cell)
    with environment(BN_DATA_DIR=None), pytest.raises(FileNotFoundError) as error:
        data_cell.mnist_root()
    assert "BN_DATA_DIR" in str(error.value) and "internet" in str(error.value)


def test_preferring_full_mnist_offline_falls_back_to_the_subset_and_says_so(data_cell, tmp_path,
                                                                             monkeypatch, capsys):
    shutil.copytree(DATA_DIR, tmp_path / "data")
    failing_download(monkeypatch, data_cell)
    with environment(BN_DATA_DIR=None):
        root = data_cell.mnist_root(prefer_full=True)
    assert (root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert "Offline" in capsys.readouterr().out


def test_the_message_gives_colab_two_lines_that_fetch_and_name_the_shipped_data(data_cell, tmp_path):
    with environment(BN_DATA_DIR=str(tmp_path)), pytest.raises(FileNotFoundError) as error:
        data_cell.load_mnist()
    lines = [line.strip() for line in str(error.value).splitlines()]
    clone = f"!git clone --depth 1 https://github.com/{GITHUB_REPO} /content/batchnorm-hands-on"
    assert clone in lines
    assert 'os.environ["BN_DATA_DIR"] = "/content/batchnorm-hands-on/data"' in lines
    # the clone's data/ is what BN_DATA_DIR must name: the repository's own data folder
    with environment(BN_DATA_DIR=str(ROOT / "data")):
        assert data_cell.mnist_root() is not None
