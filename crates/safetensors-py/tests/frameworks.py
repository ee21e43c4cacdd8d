"""Test helpers shared by the framework test files: random bit patterns per dtype, and a
round-trip check through every save/load entry point of a framework module."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from conftest import header_of
from hypothesis import strategies as st

from safetensors import safe_open

SHAPES = [(3, 4), (), (0,), (2, 0, 3)]


def random_array(np_dtype, shape, seed=0) -> np.ndarray:
    """An array of random bits of `np_dtype` (booleans stay 0/1)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(np_dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(np.bool_).reshape(shape)
    if dtype.kind == "f" or dtype.kind == "c" or dtype.kind == "V":
        # finite values so that frameworks which canonicalize NaNs still compare bit-exactly
        return rng.uniform(-4, 4, n).astype(dtype).reshape(shape)
    return rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(shape)


def check_round_trip(module, framework: str, tensor, header: str, shape, to_bytes, tmp_path, **load_kw):
    """save_file/load_file/save/load/safe_open all keep dtype, shape, bytes and metadata."""
    p = tmp_path / "t.safetensors"
    module.save_file({"t": tensor}, p, metadata={"fw": framework})
    data = p.read_bytes()
    h, _ = header_of(data)
    assert h["t"]["dtype"] == header and h["t"]["shape"] == list(shape)
    assert h["__metadata__"] == {"fw": framework}
    assert module.save({"t": tensor}, metadata={"fw": framework}) == data
    want = to_bytes(tensor)
    loaded = [module.load_file(p, **load_kw)["t"], module.load(data)["t"]]
    with safe_open(p, framework) as f:
        assert f.metadata() == {"fw": framework}
        loaded.append(f.get_tensor("t"))
    for out in loaded:
        assert tuple(out.shape) == tuple(shape)
        assert out.dtype == tensor.dtype
        assert to_bytes(out) == want


# --- behaviours every framework module shares with the reference ------------------------


def check_missing_file_error(e: BaseException, given) -> None:
    """The reference's missing-file error: FileNotFoundError, exact text, errno, filename."""
    assert isinstance(e, FileNotFoundError)
    assert str(e) == f"No such file or directory: {given}"
    assert e.errno == errno.ENOENT
    assert e.filename == given


def check_load_file_missing_file(module, tmp_path) -> None:
    given = str(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError) as excinfo:
        module.load_file(given)
    check_missing_file_error(excinfo.value, given)


def check_load_file_backend(module, tensors, to_numpy, tmp_path) -> None:
    """``load_file(..., backend=...)`` takes safe_open's backends and refuses others."""
    p = tmp_path / "b.safetensors"
    module.save_file(tensors, p)
    for backend in ("mmap", "pread", "auto"):
        out = module.load_file(p, backend=backend)
        assert sorted(out) == sorted(tensors)
        for k, v in tensors.items():
            np.testing.assert_array_equal(to_numpy(out[k]), to_numpy(v))
    with pytest.raises(ValueError, match="backend"):
        module.load_file(p, backend="nonsense")


def check_non_tensor_values_refused(module, tmp_path) -> None:
    """A value that is not a tensor (e.g. an int) or an argument that is not a dict raises
    ValueError naming the key and the type received, and writes nothing."""
    target = tmp_path / "x.safetensors"
    for save in (module.save, lambda d: module.save_file(d, target)):
        with pytest.raises(ValueError, match=r"'answer'.*got int"):
            save({"answer": 42})
        with pytest.raises(ValueError, match="received list"):
            save([1, 2])
    assert not target.exists()


# --- random basic indexers (numpy's rules) ------------------------------------------------

BOUND = st.none() | st.integers(-9, 9) | st.sampled_from([-(2**70), 2**70, -(2**63), 2**63 - 1])
STEP = st.none() | st.integers(-4, 4) | st.sampled_from([-(2**70), 2**70])
ENTRY = st.one_of(
    st.integers(-7, 7),
    st.sampled_from([2**70, -(2**70)]),
    st.builds(slice, BOUND, BOUND, STEP),
    st.just(Ellipsis),
    st.just(None),
    st.just([]),
)


@st.composite
def shapes_and_indices(draw):
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    # Up to two entries past the rank: too many indices must raise, as numpy does.
    entries = draw(st.lists(ENTRY, min_size=0, max_size=len(shape) + 2))
    bare = len(entries) == 1 and draw(st.booleans())  # `t[x]` as well as `t[(x,)]`
    index = entries[0] if bare else tuple(entries)
    return shape, index


# --- random advanced indexers: lists, index arrays or tensors, bools, masks -------------------

# Positions (some out of range), nested (2-d) positions, masks of random lengths (so some fit
# their dimension and some do not), and bools; each list later given as a list, a numpy array
# or a torch tensor (`kinds`).
INDEX_LIST = st.lists(st.integers(-7, 7), min_size=1, max_size=3)
NESTED_INDEX = st.lists(st.lists(st.integers(-5, 5), min_size=2, max_size=2), min_size=1, max_size=2)
MASK = st.lists(st.booleans(), min_size=0, max_size=5)
ADVANCED_ENTRY = st.one_of(ENTRY, INDEX_LIST, NESTED_INDEX, MASK, st.booleans())


@st.composite
def shapes_and_advanced_indices(draw):
    """``(shape, entries, kinds, bare)``: a shape, index entries (basic and advanced), for each
    entry how a list in it is passed ("list", "array" or "tensor"), and whether a single entry
    is passed bare (``t[x]``) rather than in a tuple."""
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    entries = draw(st.lists(ADVANCED_ENTRY, min_size=1, max_size=len(shape) + 2))
    kinds = draw(st.lists(st.sampled_from(["list", "array", "tensor"]), min_size=len(entries), max_size=len(entries)))
    # A bare nested list is a deprecated "sequence of indices" for torch: always in a tuple.
    bare = (
        len(entries) == 1
        and draw(st.booleans())
        and not (isinstance(entries[0], list) and entries[0] and isinstance(entries[0][0], list))
    )
    return shape, entries, kinds, bare


def advanced_key(entries, kinds, bare, tensor):
    """The index of ``shapes_and_advanced_indices``, each list passed as its kind says
    (``tensor`` makes a torch tensor from a list; numpy arrays otherwise)."""

    def one(entry, kind):
        if not isinstance(entry, list) or not entry or kind == "list":
            return entry
        arr = np.array(entry)
        return tensor(arr) if kind == "tensor" else arr

    converted = [one(e, k) for e, k in zip(entries, kinds)]
    return converted[0] if bare else tuple(converted)
