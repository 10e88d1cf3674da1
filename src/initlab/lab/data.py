"""Datasets for the laboratory: seeded, explicitly split and standardized.

>>> data = load_dataset("digits", seed=0, n_val=200)
>>> data.x_train.shape, data.n_classes            # doctest: +SKIP
((1237, 64), 10)

Every loader returns a :class:`Dataset` of NumPy arrays: features ``float32`` of shape
``(n, d)`` (images flattened; ``data.shape`` is the per-example shape, e.g. ``(1, 8, 8)``, for
CNNs) and labels ``int64``. Splits come from one seeded permutation; standardization uses the
statistics of the training split only (never the validation or test split).

Names: ``digits`` (scikit-learn's 8x8 digits, built in), ``mnist`` (IDX files, downloaded into a
cache with MD5 checks, or an ``.npz`` with ``images``/``labels``), ``mnist1d`` (procedural),
``circles``, ``moons``, ``spirals`` (2-D toy sets).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.validation import InitlabError, check_choice, check_scalar, fail

DATASETS = ("digits", "mnist", "mnist1d", "circles", "moons", "spirals")

# MNIST (LeCun, Cortes, Burges 1998): file name -> MD5 of the gzip file, as published by
# torchvision (torchvision/datasets/mnist.py, ``MNIST.resources``).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# The mirrors torchvision uses, in order.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
DATA_DIR_ENV = "INITLAB_DATA_DIR"


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train / validation / test splits as NumPy arrays (features float32 (n, d), labels int64).

    ``shape`` is the per-example shape before flattening (``(d,)`` for tabular data);
    ``info`` says where the data came from and how it differs from the papers' data.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    shape: tuple[int, ...]
    info: str = ""

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def chance(self) -> float:
        """The accuracy of guessing, ``1 / n_classes`` (the lab's splits are near balanced)."""
        return 1.0 / self.n_classes

    def summary(self) -> str:
        return (f"{self.name}: {len(self.y_train)} train / {len(self.y_val)} val / "
                f"{len(self.y_test)} test, {self.n_features} features, {self.n_classes} classes")


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """``data_dir`` if given, else ``$INITLAB_DATA_DIR``, else ``~/.cache/initlab``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "initlab"


# ----------------------------------------------------------------------------- splitting


def _check_count(value, name: str, *, allow_none: bool = True, min_val: int = 0) -> int | None:
    if value is None and allow_none:
        return None
    return check_scalar(value, name, min_val=min_val, integer=True)


def _split(x, y, *, seed, n_train, n_val, n_test, default_test, x_test=None, y_test=None, name=""):
    """Shuffle with ``default_rng(seed)``; carve test (unless given), then val, then train."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    if x_test is None:
        n_test = default_test if n_test is None else n_test
        if n_test >= len(y):
            raise fail("n_test", f"must be smaller than the {len(y)} examples of `{name}`", n_test,
                       "pass a smaller n_test.")
        x_test, y_test, x, y = x[:n_test], y[:n_test], x[n_test:], y[n_test:]
    elif n_test is not None:
        if n_test > len(y_test):
            raise fail("n_test", f"must be <= the {len(y_test)} test examples of `{name}`", n_test,
                       "pass a smaller n_test.")
        x_test, y_test = x_test[:n_test], y_test[:n_test]
    if n_val + 1 > len(y):
        raise fail("n_val", f"must leave at least one training example of the {len(y)} available",
                   n_val, "pass a smaller n_val.")
    x_val, y_val, x, y = x[:n_val], y[:n_val], x[n_val:], y[n_val:]
    if n_train is not None:
        if n_train > len(y):
            raise fail("n_train", f"must be <= the {len(y)} training examples available for "
                       f"`{name}` (after the validation split)", n_train, "pass a smaller n_train.")
        x, y = x[:n_train], y[:n_train]
    return x, y, x_val, y_val, x_test, y_test


def _standardize(xtr, xva, xte, per_feature: bool):
    """Standardize with the training split's statistics: per feature, or one global mean/std."""
    if per_feature:
        mu = xtr.mean(0, keepdims=True)
        sd = xtr.std(0, keepdims=True)
        sd = np.where(sd > 0, sd, 1.0)  # constant features (e.g. blank corner pixels) stay 0
    else:
        mu, sd = xtr.mean(), xtr.std()
        sd = sd if sd > 0 else 1.0
    return tuple(((a - mu) / sd).astype(np.float32) for a in (xtr, xva, xte))


def _make(name, x, y, *, seed, n_train, n_val, n_test, default_test, standardize, per_feature,
          n_classes, shape, info, x_test=None, y_test=None) -> Dataset:
    parts = _split(x, y, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test,
                   default_test=default_test, x_test=x_test, y_test=y_test, name=name)
    xtr, ytr, xva, yva, xte, yte = parts
    if standardize:
        xtr, xva, xte = _standardize(xtr, xva, xte, per_feature)
    return Dataset(name=name, x_train=np.ascontiguousarray(xtr, np.float32),
                   y_train=ytr.astype(np.int64), x_val=np.ascontiguousarray(xva, np.float32),
                   y_val=yva.astype(np.int64), x_test=np.ascontiguousarray(xte, np.float32),
                   y_test=yte.astype(np.int64), n_classes=n_classes, shape=tuple(shape), info=info)


# ----------------------------------------------------------------------------- MNIST files


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzip-compressed when its name ends in ``.gz`` or it starts with the gzip
    magic). Format (LeCun et al.): 2 zero bytes, a type code (0x08 = uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
    big-endian uint32, then the data, big-endian.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in dtypes:
        raise fail("path", "must be an IDX file (magic: two zero bytes, a type code, ndim)",
                   str(path), "pass an MNIST IDX file such as train-images-idx3-ubyte(.gz).")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise fail("path", f"holds {len(body)} data bytes but its header {dims} needs {expected} "
                   "(truncated or corrupt IDX file)", str(path), "download the file again.")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _missing_message(directory: Path, names) -> str:
    return (f"the MNIST files {', '.join(names)} are not in {directory} and could not be "
            f"downloaded (no network?). Fix: download them from {MNIST_MIRRORS[0]} (or any MNIST "
            f"mirror) and place them in {directory} (gzip or uncompressed), pass "
            f"--data-dir / data_dir=DIR, set ${DATA_DIR_ENV}, or pass an .npz with "
            "`images` and `labels` as data_dir.")


def _download(url: str, dest: Path, timeout: float) -> None:
    from ..util.atomic import atomic_write_bytes

    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (fixed https mirror)
        atomic_write_bytes(dest, resp.read())


def _fetch(name: str, md5: str, dest: Path, mirrors, timeout: float, base: Path) -> Path | None:
    """Download ``name`` from the first mirror that serves it with the right MD5; None if no
    mirror answers. A file that fails its checksum is deleted, never kept."""
    wrong = None
    for mirror in mirrors:
        try:
            _download(mirror + name, dest, timeout)
        except OSError:
            continue
        got = _md5(dest)
        if not md5 or got == md5:
            return dest
        dest.unlink()
        wrong = fail("data_dir", f"received {name} from {mirror} with MD5 {got}, which differs "
                     f"from the published {md5}", str(base),
                     "try again later, or download the file by hand from another mirror.")
    if wrong is not None:
        raise wrong
    return None


def mnist_files(data_dir=None, *, download: bool = True, checksums: dict | None = None,
                mirrors=None, timeout: float = 30.0) -> dict[str, Path]:
    """Find (or download) the four MNIST IDX files; verify MD5s of the gzip files.

    Looks in ``data_dir`` and ``data_dir/mnist`` for each file, gzipped or not; downloads missing
    ones into ``data_dir/mnist`` from the ``mirrors``. The gzip files are checked against
    ``checksums`` (default: torchvision's published MD5s); a mismatch is an error. Uncompressed
    files have no published checksum; their IDX headers and sizes are checked when read.
    """
    base = default_data_dir(data_dir)
    checksums = MNIST_MD5 if checksums is None else checksums
    mirrors = MNIST_MIRRORS if mirrors is None else mirrors
    found: dict[str, Path] = {}
    missing = []
    for gz_name, md5 in checksums.items():
        raw_name = gz_name[:-3] if gz_name.endswith(".gz") else gz_name
        path = None
        for d in (base, base / "mnist"):
            if (d / gz_name).is_file():
                path = d / gz_name
                break
            if (d / raw_name).is_file():
                path = d / raw_name
                break
        if path is None and download:
            path = _fetch(gz_name, md5, base / "mnist" / gz_name, mirrors, timeout, base)
        if path is None:
            missing.append(gz_name)
            continue
        if path.name == gz_name and md5 and _md5(path) != md5:
            raise fail("data_dir", f"holds {path} whose MD5 {_md5(path)} differs from the "
                       f"published {md5} (corrupt or not the MNIST file)", str(base),
                       f"delete {path} and download it again.")
        found[gz_name] = path
    if missing:
        raise FileNotFoundError(_missing_message(base / "mnist", missing))
    return found


def load_mnist_idx(data_dir=None, *, download: bool = True, checksums: dict | None = None,
                   mirrors=None):
    """``(x_train, y_train, x_test, y_test)`` uint8 arrays from the MNIST IDX files."""
    files = mnist_files(data_dir, download=download, checksums=checksums, mirrors=mirrors)
    arr = {k.split("-idx")[0]: read_idx(p) for k, p in files.items()}
    return arr["train-images"], arr["train-labels"], arr["t10k-images"], arr["t10k-labels"]


def load_mnist_npz(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` from an ``.npz`` holding ``images`` (n, 28, 28) and ``labels`` (n,).

    Read without pickle: a file that is not a readable .npz of numeric arrays (truncated,
    pickled, object arrays, another format renamed) is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"`data_dir` must be an existing .npz file; got {str(path)!r}. "
                                "Fix: pass the path of an .npz with `images` and `labels` arrays.")
    fix = "save one with np.savez(path, images=..., labels=...) (numeric arrays, no pickle)."
    try:
        with open(path, "rb") as fh:  # our handle: closed on every path, also on a bad file
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise fail("data_dir", "must be an .npz archive (this is a single .npy array)",
                           str(path), fix)
            with z:
                if "images" not in z or "labels" not in z:
                    raise fail("data_dir", "must be an .npz holding `images` and `labels` "
                               "arrays", str(path), f"it holds {sorted(z.files)}; {fix}")
                images, labels = z["images"], z["labels"]
    except InitlabError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise fail("data_dir", f"must be a readable .npz file ({type(exc).__name__}: {exc})",
                   str(path), fix) from None
    for what, arr in (("images", images), ("labels", labels)):
        if arr.dtype.kind not in "biuf":
            raise fail("data_dir", f"must hold numeric `{what}` (dtype {arr.dtype} found)",
                       str(path), fix)
    if len(images) != len(labels):
        raise fail("data_dir", "must hold as many images as labels", str(path),
                   f"images has {len(images)} rows, labels {len(labels)}.")
    return images, labels


# ----------------------------------------------------------------------------- loaders


@functools.lru_cache(maxsize=1)
def _digits_raw() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.data.astype(np.float64) / 16.0  # grey levels 0..16 -> [0, 1]
    x.flags.writeable = False
    y = d.target.astype(np.int64)
    y.flags.writeable = False
    return x, y


@functools.lru_cache(maxsize=4)
def _mnist1d_raw(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from .mnist1d import make_mnist1d

    x, y = make_mnist1d(5000, seed=seed)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def _digits(seed, n_train, n_val, n_test, standardize):
    x, y = _digits_raw()
    return _make("digits", x, y, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test,
                 default_test=360, standardize=standardize, per_feature=False, n_classes=10,
                 shape=(1, 8, 8),
                 info="scikit-learn's 8x8 handwritten digits (UCI, 1797 images; not MNIST: "
                      "smaller images, fewer examples); pixels scaled to [0, 1]"
                      + (", standardized with the training split's mean and std" if standardize
                         else ""))


def _mnist(seed, n_train, n_val, n_test, standardize, data_dir):
    p = default_data_dir(data_dir)
    if p.suffix == ".npz":
        images, labels = load_mnist_npz(p)
        x = images.reshape(len(images), -1).astype(np.float64) / 255.0
        # An .npz is one pool: its last 20% is the test split (mnist10k.npz: 8,000 / 2,000).
        n_pool_test = len(labels) // 5
        xte, yte = x[len(x) - n_pool_test:], labels[len(x) - n_pool_test:]
        x, y = x[:len(x) - n_pool_test], labels[:len(x) - n_pool_test]
        src = (f"MNIST digits from {p.name} ({len(labels)} images: last {n_pool_test} as test); "
               "the papers use the full 60,000/10,000 MNIST")
    else:
        xtr, ytr, xte, yte = load_mnist_idx(data_dir)
        x, y = xtr.reshape(len(xtr), -1).astype(np.float64) / 255.0, ytr
        xte = xte.reshape(len(xte), -1).astype(np.float64) / 255.0
        src = "MNIST IDX files (60,000 train / 10,000 test)"
    return _make("mnist", x, y.astype(np.int64), seed=seed, n_train=n_train, n_val=n_val,
                 n_test=n_test, default_test=0, standardize=standardize, per_feature=False,
                 n_classes=10, shape=(1, 28, 28), x_test=xte, y_test=yte.astype(np.int64),
                 info=src + "; pixels scaled to [0, 1]"
                 + (", standardized with the training split's mean and std" if standardize
                    else ""))


def _mnist1d(seed, n_train, n_val, n_test, standardize):
    x, y = _mnist1d_raw(42 + seed)
    # The package's split: the first 80% train, the last 20% test.
    split = int(len(y) * 0.8)
    return _make("mnist1d", x[:split], y[:split], seed=seed, n_train=n_train, n_val=n_val,
                 n_test=n_test, default_test=0, standardize=standardize, per_feature=False,
                 n_classes=10, shape=(1, 40), x_test=x[split:], y_test=y[split:],
                 info="MNIST-1D (Greydanus 2020), 4,000/1,000, generated by initlab's own "
                      "implementation of the published procedure with an explicit NumPy "
                      "Generator (same distribution as the `mnist1d` package, not bit-identical)")


def _spirals(n, seed, noise=0.02, turns=1.5):
    """Two interleaved spirals: for class c in {0, 1}, angle t ~ 2 pi turns sqrt(U) (uniform
    density along the arm), radius t / (2 pi turns) in [0, 1], rotated by c pi, plus Gaussian
    noise of std ``noise``; labels and angles from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    t = np.sqrt(rng.random(n)) * turns * 2 * np.pi
    r = t / (turns * 2 * np.pi)
    ang = t + np.pi * y
    x = np.stack([r * np.cos(ang), r * np.sin(ang)], 1) + noise * rng.standard_normal((n, 2))
    return x, y


def _toy(name, seed, n_train, n_val, n_test, standardize):
    """Ng's assignment: ``make_circles(300, noise=0.05)`` after ``np.random.seed(1)`` (train) and
    ``make_circles(100, noise=0.05)`` after ``np.random.seed(2)`` (test); ``random_state=s`` draws
    the same stream as the global seed s, so seed=0 here gives exactly those arrays."""
    from sklearn.datasets import make_circles, make_moons

    n_tr = 300 if n_train is None else n_train
    n_te = 100 if n_test is None else n_test
    gen = {
        "circles": lambda n, s: make_circles(n_samples=n, noise=0.05, random_state=s),
        "moons": lambda n, s: make_moons(n_samples=n, noise=0.2, random_state=s),
        "spirals": _spirals,
    }[name]
    xtr, ytr = gen(n_tr, seed + 1)
    xte, yte = gen(n_te, seed + 2)
    # validation: a third independent draw, so asking for one never changes the training set
    xva, yva = gen(n_val, seed + 3) if n_val else (np.zeros((0, 2)), np.zeros(0, np.int64))
    if standardize:
        xtr, xva, xte = _standardize(xtr, xva, xte, per_feature=True)
    info = {"circles": "sklearn make_circles, noise 0.05 (Ng's 'Initialization' exercise data "
                       "at seed=0: train random_state 1, test random_state 2)",
            "moons": "sklearn make_moons, noise 0.2",
            "spirals": "two interleaved spirals (initlab), 1.5 turns"}[name]
    as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return Dataset(name=name, x_train=as32(xtr), y_train=ytr.astype(np.int64), x_val=as32(xva),
                   y_val=yva.astype(np.int64), x_test=as32(xte), y_test=yte.astype(np.int64),
                   n_classes=2, shape=(2,), info=info + (", standardized" if standardize else ""))


def downsample(data: Dataset, factor: int) -> Dataset:
    """``data`` with each image average-pooled over ``factor x factor`` blocks (MNIST 28x28 ->
    14x14 at ``factor=2``), then re-standardized with the training split's global mean and std
    (pooling shrinks the pixels' spread). ``factor=1`` returns ``data`` itself. The image side
    must be divisible by ``factor``.

    >>> small = downsample(load_dataset("digits"), 2)      # doctest: +SKIP
    >>> small.shape, small.n_features                       # doctest: +SKIP
    ((1, 4, 4), 16)
    """
    factor = check_scalar(factor, "factor", min_val=1, integer=True)
    if factor == 1:
        return data
    if len(data.shape) != 3 or any(s % factor for s in data.shape[1:]):
        raise fail("factor", f"must divide the image sides of `{data.name}` {data.shape}",
                   factor, "pass a divisor of the height and width (e.g. 2 for 28x28).")
    c, h, w = data.shape

    def pool(x):
        x = x.reshape(len(x), c, h // factor, factor, w // factor, factor).mean((3, 5))
        return x.reshape(len(x), -1)

    xtr, xva, xte = _standardize(pool(data.x_train), pool(data.x_val), pool(data.x_test),
                                 per_feature=False)
    return Dataset(name=data.name, x_train=xtr, y_train=data.y_train, x_val=xva,
                   y_val=data.y_val, x_test=xte, y_test=data.y_test, n_classes=data.n_classes,
                   shape=(c, h // factor, w // factor),
                   info=data.info + f"; average-pooled {factor}x{factor} to "
                        f"{h // factor}x{w // factor} and re-standardized")


def load_dataset(name: str, *, seed: int = 0, data_dir=None, n_train: int | None = None,
                 n_val: int | None = 0, n_test: int | None = None,
                 standardize: bool | None = None) -> Dataset:
    """Load a dataset by name, split and standardized, deterministically for ``seed``.

    Parameters
    ----------
    name : one of ``digits``, ``mnist``, ``mnist1d``, ``circles``, ``moons``, ``spirals``.
    seed : seeds the split permutation (and, for generated sets, the generator).
    data_dir : ``mnist`` only: a directory with the IDX files (or where to download them;
        default ``$INITLAB_DATA_DIR`` or ``~/.cache/initlab``), or an ``.npz`` file with
        ``images``/``labels`` (its last 20% is the test split).
    n_train, n_val, n_test : split sizes; ``n_val`` examples are taken from the training pool;
        ``None`` keeps the default (digits: 360 test; mnist: the official test set; mnist1d:
        4,000/1,000; toy sets: 300 train / 100 test).
    standardize : subtract the training split's mean and divide by its std (images: one global
        mean/std over pixels; 2-D toy sets: per feature). ``None`` = the dataset's default:
        True for image sets, False for the toy sets (so ``circles`` is Ng's data exactly).
    """
    check_choice(name, "name", DATASETS)
    seed = check_scalar(seed, "seed", min_val=0, integer=True)
    n_train = _check_count(n_train, "n_train", min_val=1)
    n_val = _check_count(n_val, "n_val") or 0  # None keeps the default, no validation split
    n_test = _check_count(n_test, "n_test", min_val=1)
    if name in ("circles", "moons", "spirals"):
        return _toy(name, seed, n_train, n_val, n_test, bool(standardize))
    std = True if standardize is None else bool(standardize)
    if name == "digits":
        return _digits(seed, n_train, n_val, n_test, std)
    if name == "mnist":
        return _mnist(seed, n_train, n_val, n_test, std, data_dir)
    return _mnist1d(seed, n_train, n_val, n_test, std)
