"""Tests for tinygrad_cnn.data: IDX files, real datasets, shapes, mnist-seg, DataLoader."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import urllib.error
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import data
from tinygrad_cnn.data import (
    DataLoader,
    datasets,
    get_dataset,
    load_fashion_mnist,
    load_mnist,
    make_mnist_seg,
    make_shapes,
    make_shapes_seg,
    parse_idx,
    read_idx,
    write_idx,
)


def real_data_root() -> Path:
    """The folder TINYGRAD_CNN_DATA names, or skip when it does not hold MNIST."""
    root = os.environ.get("TINYGRAD_CNN_DATA")
    if not root or not (Path(root) / "mnist" / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("real MNIST not available: set TINYGRAD_CNN_DATA to a folder holding mnist/")
    return Path(root)


@pytest.fixture
def no_network(monkeypatch):
    """Make every download fail at once, as on a machine with no network."""

    def refuse(url, dest, sha256, progress=None, timeout=None):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(datasets, "download", refuse)


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"x.idx{suffix}"
    write_idx(path, array)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == (suffix == ".gz")
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_idx_handwritten_mnist_header(tmp_path):
    # labels file as MNIST lays it out: magic 2049, N, then N bytes
    raw = np.array([2049, 3], ">i4").tobytes() + bytes([5, 0, 4])
    (tmp_path / "labels").write_bytes(raw)
    (tmp_path / "labels.gz").write_bytes(gzip.compress(raw))
    for name in ("labels", "labels.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), [5, 0, 4])
    images = np.array([2051, 2, 2, 2], ">i4").tobytes() + bytes(range(8))
    assert parse_idx(images).shape == (2, 2, 2)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x08\x01" + bytes(8), "wrong magic number"),
        (np.array([2051, 1, 2, 2], "<i4").tobytes() + bytes(4), "wrong magic number"),
        (b"\x00\x00\x07\x01" + np.array([3], ">i4").tobytes() + bytes(3), "unknown element type"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03" + np.array([1, 2], ">i4").tobytes(), "truncated inside its header"),
        (b"\x00\x00\x08\x01" + np.array([-1], ">i4").tobytes(), "negative size"),
        (np.array([2051, 2, 28, 28], ">i4").tobytes() + bytes(784), "truncated"),
        (np.array([2049, 3], ">i4").tobytes() + bytes(4), "too long"),
    ],
)
def test_idx_bad_content_is_a_clear_error(tmp_path, raw, message):
    for path, content in [(tmp_path / "f.idx", raw), (tmp_path / "f.idx.gz", gzip.compress(raw))]:
        path.write_bytes(content)
        with pytest.raises(ValueError, match=message) as info:
            read_idx(path)
        assert str(info.value).startswith("read_idx:") and str(path) in str(info.value)


def test_idx_truncated_gzip_is_a_clear_error(tmp_path):
    raw = gzip.compress(np.array([2049, 1000], ">i4").tobytes() + bytes(1000))
    path = tmp_path / "cut.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupted gzip"):
        read_idx(path)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(TypeError, match="write_idx: no IDX element type for dtype int64"):
        write_idx(tmp_path / "x", np.arange(3))


# ---------------------------------------------------------------- real datasets: files


def write_fake_mnist(folder: Path, split: str = "test") -> None:
    """Write small but valid-looking IDX files under the real names (their SHA-256 is wrong)."""
    (folder / "mnist").mkdir(parents=True, exist_ok=True)
    images_name, labels_name = datasets.SPLIT_FILES[split]
    write_idx(folder / "mnist" / images_name, np.zeros((10, 28, 28), np.uint8))
    write_idx(folder / "mnist" / labels_name, np.arange(10, dtype=np.uint8))


def test_checksum_mismatch_is_a_clear_error(tmp_path, no_network):
    write_fake_mnist(tmp_path)
    with pytest.raises(ValueError, match="load_mnist: .*t10k-images.* has SHA-256 .*expected 8d42"):
        load_mnist("test", root=tmp_path)


def test_missing_files_message_names_files_folders_and_env_var(tmp_path, no_network):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("train", root=tmp_path)
    message = str(info.value)
    assert message.startswith("load_fashion_mnist:")
    for part in [
        "fashion-mnist/train-images-idx3-ubyte.gz",
        "fashion-mnist/train-labels-idx1-ubyte.gz",
        str(tmp_path / "fashion-mnist"),
        str(tmp_path),
        "TINYGRAD_CNN_DATA",
        "network unreachable",
    ]:
        assert part in message
    assert not any(tmp_path.rglob("*.part"))  # no half-downloaded file left behind


def test_offline_stops_after_the_first_file_and_says_so_once(tmp_path, monkeypatch):
    calls = []

    def unreachable(url, dest, sha256, progress=None, timeout=None):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(datasets, "download", unreachable)
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test", root=tmp_path)
    mirrors = datasets.SOURCES["mnist"]["mirrors"]
    assert len(calls) == len(mirrors)  # the labels file is not tried: no mirror is reachable
    message = str(info.value)
    assert message.count("cannot connect: Name or service not known") == 1
    hosts = ", ".join(urllib.parse.urlsplit(mirror).netloc for mirror in mirrors)
    assert f"cannot connect: Name or service not known ({hosts})" in message  # each host once
    assert "mnist/t10k-images-idx3-ubyte.gz, mnist/t10k-labels-idx1-ubyte.gz" in message


def test_http_errors_are_named_with_their_mirror(tmp_path, monkeypatch):
    def not_found(url, dest, sha256, progress=None, timeout=None):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(datasets, "download", not_found)
    with pytest.raises(FileNotFoundError, match=r"HTTP 404 Not Found \(ossci-datasets"):
        load_mnist("test", root=tmp_path)


def test_data_folder_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "env"))
    assert datasets.data_folder(tmp_path / "arg") == tmp_path / "arg"
    assert datasets.data_folder() == tmp_path / "env"
    monkeypatch.delenv("TINYGRAD_CNN_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.data_folder() == tmp_path / "cache" / "tinygrad_cnn"


def test_download_is_atomic_and_verified(tmp_path, monkeypatch):
    payload = b"pretend this is a gzipped IDX file"
    source = tmp_path / "source.bin"
    source.write_bytes(payload)
    dest = tmp_path / "out" / "file.gz"
    seen = []
    datasets.download(source.as_uri(), dest, hashlib.sha256(payload).hexdigest(),
                      progress=lambda done, total: seen.append(done))  # fmt: skip
    assert dest.read_bytes() == payload and seen[-1] == len(payload)
    dest.unlink()
    with pytest.raises(ValueError, match="download: .* has SHA-256"):
        datasets.download(source.as_uri(), dest, "0" * 64, progress=None)
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor a temp file


def test_a_typo_in_the_data_folder_creates_nothing(tmp_path, monkeypatch):
    typo = tmp_path / "dat" / "mnist-typo"
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(typo))
    with pytest.raises(FileNotFoundError, match=r"\$TINYGRAD_CNN_DATA\) does not exist; nothing"):
        load_mnist("test")
    with pytest.raises(FileNotFoundError, match=r"\(the root argument\) does not exist"):
        load_fashion_mnist("test", root=typo)
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_mnist("test", root=tmp_path / "a-file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no folder was made


def test_train_with_a_typo_in_the_data_folder_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    from tinygrad_cnn.cli import main

    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "typo"))
    status = main(["evaluate", str(tmp_path / "missing.safetensors"), "--dataset", "mnist"])
    assert status == 2
    status = main(["train", "--dataset", "mnist", "--epochs", "1", "--out", str(tmp_path / "run")])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(stderr) == 2 and "typo" in stderr[1], stderr
    assert not (tmp_path / "typo").exists()


def closed_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_download_is_one_line_and_creates_no_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYGRAD_CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    mirror = f"http://127.0.0.1:{closed_loopback_port()}/"
    monkeypatch.setitem(datasets.SOURCES["mnist"], "mirrors", (mirror,))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("test")
    message = str(info.value)
    assert "\n" not in message and "cannot connect: Connection refused (127.0.0.1:" in message
    assert list(tmp_path.iterdir()) == []  # not even the cache folder


def test_a_mirror_that_never_answers_gives_up_within_the_budget(tmp_path, monkeypatch):
    """A loopback server that accepts connections and never answers: each attempt waits at most
    CONNECT_TIMEOUT, and all of them together at most CONNECT_BUDGET (shrunk here from 8 s and
    20 s so that the test is quick)."""
    monkeypatch.setattr(datasets, "CONNECT_TIMEOUT", 0.4)
    monkeypatch.setattr(datasets, "CONNECT_BUDGET", 0.6)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever reads or answers
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setitem(datasets.SOURCES["mnist"], "mirrors", (mirror, mirror, mirror))
        with pytest.raises(FileNotFoundError) as info:
            load_mnist("test", root=tmp_path)
    message = str(info.value)
    assert "\n" not in message and "timed out" in message
    assert "gave up after 0.6 s" in message  # the third attempt was never started
    assert list(tmp_path.iterdir()) == []


def test_bad_split_is_a_clear_error():
    with pytest.raises(ValueError, match="load_mnist: split must be 'train' or 'test', got 'val'"):
        load_mnist("val")


# ---------------------------------------------------------------- real datasets: contents


def test_real_mnist():
    root = real_data_root()
    images, labels = load_mnist("train", root=root)
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (60000,) and labels.dtype == np.int64
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(labels).tolist() == counts
    assert load_mnist("train", root=root)[0] is images  # cached: the second load is free
    assert not images.flags.writeable  # the cached arrays are shared, so read-only
    test_images, test_labels = load_mnist("test", root=root)
    assert test_images.shape == (10000, 28, 28) and test_labels.shape == (10000,)


def test_real_mnist_through_the_env_var(monkeypatch):
    root = real_data_root()
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(root))
    images, labels = get_dataset("mnist", "test", limit=100)
    assert images.shape == (100, 28, 28) and labels.shape == (100,)


def test_real_fashion_mnist():
    root = real_data_root()
    if not (root / "fashion-mnist").is_dir():
        pytest.skip(f"Fashion-MNIST not available in {root}")
    images, labels = load_fashion_mnist("train", root=root)
    assert images.shape == (60000, 28, 28)
    assert np.bincount(labels).tolist() == [6000] * 10
    _, test_labels = load_fashion_mnist("test", root=root)
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert data.FASHION_CLASSES[9] == "Ankle boot"


# ---------------------------------------------------------------- shapes


def test_shapes_are_deterministic_by_seed():
    first = make_shapes(64, seed=3)
    again = make_shapes(64, seed=3)
    other = make_shapes(64, seed=4)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("size", [12, 28, 40])
def test_shapes_masks_match_labels(size):
    images, labels, masks = make_shapes(500, size=size, seed=1)
    assert images.shape == masks.shape == (500, size, size)
    assert images.dtype == masks.dtype == np.uint8 and labels.dtype == np.int64
    assert np.bincount(labels).tolist() == [100] * 5  # balanced
    assert set(np.unique(masks).tolist()) == {0, 1}
    assert masks.reshape(500, -1).sum(axis=1).min() > 0  # every image shows its shape
    # the shape is brighter than its background in every image
    inside = (images * masks).sum((1, 2)) / masks.sum((1, 2))
    outside = (images * (1 - masks)).sum((1, 2)) / (1 - masks).sum((1, 2))
    assert (inside > outside + 50).all()
    # the mask's geometry identifies the label: a ring has a hole at its center; a square
    # fills more of its bounding box than a circle, which fills more than a triangle or cross
    fill = masks.sum((1, 2)) / bbox_area(masks)
    kinds = data.SHAPE_CLASSES
    mean_fill = {kind: fill[labels == k].mean() for k, kind in enumerate(kinds)}
    assert mean_fill["square"] > mean_fill["circle"] > mean_fill["triangle"]
    assert mean_fill["circle"] > mean_fill["cross"] > mean_fill["ring"] - 0.1


def bbox_area(masks: np.ndarray) -> np.ndarray:
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    height = rows.shape[1] - rows[:, ::-1].argmax(1) - rows.argmax(1)
    width = cols.shape[1] - cols[:, ::-1].argmax(1) - cols.argmax(1)
    return height * width


def test_shapes_ring_has_a_hole_and_class_subset():
    images, labels, masks = make_shapes(20, seed=0, classes=("ring", "circle"))
    assert set(labels.tolist()) == {0, 1}
    # the hole is around the mask's centroid for rings, never for circles
    n = len(masks)
    ys, xs = np.indices(masks.shape[1:])
    area = masks.sum((1, 2)).astype(np.int64)
    cy = np.rint((masks * ys).sum((1, 2)) / area).astype(np.int64)
    cx = np.rint((masks * xs).sum((1, 2)) / area).astype(np.int64)
    center = masks[np.arange(n), cy, cx]
    np.testing.assert_array_equal(center, labels)  # ring (0) -> 0 at center, circle (1) -> 1


def test_shapes_bad_arguments():
    with pytest.raises(ValueError, match="make_shapes: n must be a positive int, got 0"):
        make_shapes(0)
    with pytest.raises(ValueError, match="make_shapes: size must be an int >= 12, got 8"):
        make_shapes(5, size=8)
    with pytest.raises(ValueError, match="make_shapes: classes must be distinct names"):
        make_shapes(5, classes=("circle", "hexagon"))


@pytest.mark.parametrize("multiclass", [False, True])
def test_shapes_seg_masks(multiclass):
    images, masks = make_shapes_seg(200, seed=2, objects=(1, 4), multiclass=multiclass)
    assert images.shape == masks.shape == (200, 64, 64) and masks.dtype == np.uint8
    top = len(data.SHAPE_CLASSES) if multiclass else 1
    assert masks.min() == 0 and masks.max() == top
    again = make_shapes_seg(200, seed=2, objects=(1, 4), multiclass=multiclass)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(masks, again[1])
    foreground = masks > 0
    # each object stays inside its own 32x32 cell: count the occupied cells per image
    occupied = foreground.reshape(200, 2, 32, 2, 32).any(axis=(2, 4)).sum((1, 2))
    assert occupied.min() >= 1 and occupied.max() == 4
    bright = images[foreground].mean()
    assert bright > images[~foreground].mean() + 50


def test_shapes_seg_multiclass_agrees_with_foreground():
    _, binary = make_shapes_seg(50, seed=5)
    _, classes = make_shapes_seg(50, seed=5, multiclass=True)
    np.testing.assert_array_equal(binary, classes > 0)


def test_shapes_seg_bad_objects():
    with pytest.raises(ValueError, match="make_shapes_seg: objects must be"):
        make_shapes_seg(2, objects=(3, 2))
    with pytest.raises(ValueError, match="make_shapes_seg: 30 objects need a 6x6 grid"):
        make_shapes_seg(2, size=64, objects=(1, 30))


# ---------------------------------------------------------------- mnist-seg


def test_mnist_seg_masks_match_the_digits_placed():
    root = real_data_root()
    images, masks = make_mnist_seg("test", 40, seed=1, threshold=127, root=root)
    assert images.shape == masks.shape == (40, 64, 64) and masks.dtype == np.uint8
    assert masks.max() <= 10
    np.testing.assert_array_equal(masks > 0, images > 127)  # mask = ink above the threshold
    digit_images, digit_labels = load_mnist("test", root=root)
    # find each placed digit again: every 28x28 window of a cell must be an MNIST test digit
    # with the label its mask says; check the cell holding each image's first mask pixel
    for i in range(0, 40, 7):
        ys, xs = np.nonzero(masks[i])
        cell_y, cell_x = (ys[0] // 32) * 32, (xs[0] // 32) * 32
        in_cell = masks[i, cell_y : cell_y + 32, cell_x : cell_x + 32]
        label = np.unique(in_cell[in_cell > 0])
        assert len(label) == 1  # one digit per cell
        window = images[i, cell_y : cell_y + 32, cell_x : cell_x + 32]
        matches = [
            j
            for j in np.flatnonzero(digit_labels == label[0] - 1)
            if contains(window, digit_images[j])
        ]
        assert matches, f"canvas {i}: no MNIST test digit {label[0] - 1} found in its cell"
    again = make_mnist_seg("test", 40, seed=1, root=root)
    np.testing.assert_array_equal(images, again[0])


def contains(window: np.ndarray, digit: np.ndarray) -> bool:
    for dy in range(window.shape[0] - 27):
        for dx in range(window.shape[1] - 27):
            if np.array_equal(window[dy : dy + 28, dx : dx + 28], digit):
                return True
    return False


def test_mnist_seg_bad_sizes():
    with pytest.raises(ValueError, match="make_mnist_seg: 9 digits need a 3x3 grid"):
        make_mnist_seg("train", 2, size=64, digits=(1, 9))


# ---------------------------------------------------------------- DataLoader


def test_loader_batches_cover_the_data_once_per_epoch():
    images = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((1, 3, 3), np.uint8)
    labels = np.arange(10)
    loader = DataLoader(images, labels, batch_size=4, seed=0)
    assert len(loader) == 3 and loader.num_samples == 10
    epochs = []
    for _ in range(2):
        batches = list(loader)
        assert [len(y) for _, y in batches] == [4, 4, 2]  # the last batch is smaller
        seen = np.concatenate([y for _, y in batches])
        assert sorted(seen.tolist()) == list(range(10))
        for x, y in batches:  # images and labels stay paired
            np.testing.assert_allclose(x[:, 0, 0, 0] * 255, y, atol=1e-4)
        epochs.append(seen)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    replay = DataLoader(images, labels, batch_size=4, seed=0)
    np.testing.assert_array_equal(np.concatenate([y for _, y in replay]), epochs[0])


def test_loader_no_shuffle_and_drop_last():
    loader = DataLoader(np.zeros((10, 2, 2), np.uint8), np.arange(10), 4, shuffle=False,
                        drop_last=True)  # fmt: skip
    assert len(loader) == 2 and loader.num_samples == 8
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(np.zeros((8, 2, 2)), np.arange(8), 4, drop_last=True)) == 2


def test_loader_dtype_scale_and_layouts():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (6, 5, 5), dtype=np.uint8)
    x, y = next(iter(DataLoader(gray, np.arange(6, dtype=np.uint8), 6, shuffle=False)))
    assert x.shape == (6, 1, 5, 5) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], gray.astype(np.float32) / 255)
    assert 0 <= x.min() and x.max() <= 1
    color = rng.integers(0, 256, (6, 3, 5, 5), dtype=np.uint8)
    masks = rng.integers(0, 11, (6, 5, 5), dtype=np.uint8)
    x, y = next(iter(DataLoader(color, masks, 4, shuffle=False)))
    assert x.shape == (4, 3, 5, 5) and y.shape == (4, 5, 5) and y.dtype == np.int64
    floats = rng.random((6, 5, 5))
    x, _ = next(iter(DataLoader(floats, np.arange(6), 6, shuffle=False)))
    np.testing.assert_allclose(x[:, 0], floats, rtol=1e-6)  # floats are not rescaled
    assert x.dtype == np.float32


def test_loader_batches_are_fresh_arrays():
    images = np.zeros((6, 2, 2), np.uint8)
    batches = list(DataLoader(images, np.arange(6), 2, shuffle=False))
    batches[0][0][...] = 7  # the caller may keep and change a batch
    assert batches[1][0].max() == 0 and images.max() == 0
    assert not np.shares_memory(batches[0][0], batches[1][0])


def test_loader_bad_arguments():
    with pytest.raises(ValueError, match=r"DataLoader: 4 images \(4, 2, 2\) but labels \(3,\)"):
        DataLoader(np.zeros((4, 2, 2)), np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"DataLoader: images must be \(N, H, W\)"):
        DataLoader(np.zeros((4, 2)), np.zeros(4), 2)
    with pytest.raises(ValueError, match="DataLoader: batch_size must be >= 1, got 0"):
        DataLoader(np.zeros((4, 2, 2)), np.zeros(4), 0)
    with pytest.raises(TypeError, match="DataLoader: images must be uint8 or floating"):
        DataLoader(np.zeros((4, 2, 2), np.int32), np.zeros(4), 2)


# ---------------------------------------------------------------- registry


def test_get_dataset_generated_sets():
    images, labels = get_dataset("shapes", "train", limit=50)
    test_images, _ = get_dataset("shapes", "test", limit=50)
    assert images.shape == (50, 28, 28) and labels.shape == (50,)
    assert not np.array_equal(images, test_images)  # the splits differ
    np.testing.assert_array_equal(images, get_dataset("shapes", "train", limit=50)[0])
    seg_images, seg_masks = get_dataset("shapes-seg", "test", limit=8, multiclass=True)
    assert seg_images.shape == seg_masks.shape == (8, 64, 64)
    info = data.dataset_info("shapes-seg", multiclass=True)
    assert info["num_classes"] == 6 and seg_masks.max() < 6
    assert data.dataset_info("mnist-seg")["num_classes"] == 11
    assert data.dataset_info("fashion-mnist")["classes"] == data.FASHION_CLASSES


def test_get_dataset_bad_arguments():
    with pytest.raises(ValueError, match="get_dataset: unknown dataset 'cifar'"):
        get_dataset("cifar")
    with pytest.raises(ValueError, match="get_dataset: limit must be a positive int"):
        get_dataset("shapes", limit=0)
    with pytest.raises(ValueError, match="get_dataset: split must be 'train' or 'test'"):
        get_dataset("shapes", "valid")
