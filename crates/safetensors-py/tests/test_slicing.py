"""`get_slice(name)[index]` is numpy's `arr[index]`, to the letter, on every read path.

The core's planner decides the bytes and the shape for every path (mmap views, copies of
several runs, pread, in-memory bytes, file objects): these tests compare it with numpy itself
over random shapes (zero-size and scalar included) and random basic indexers, and pin the
cases code written for the reference relies on (`[[]]`, negative steps).
"""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
from frameworks import advanced_key, shapes_and_advanced_indices, shapes_and_indices
from hypothesis import given, settings
from hypothesis import strategies as st

import safetensors
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save, save_file

_counter = itertools.count()


def _open(arr: np.ndarray, how: str, tmp_dir, framework: str = "np"):
    """A safe_open over a file holding `arr` as "t", read the way `how` says."""
    if how == "bytes":
        return safetensors._safe_open_bytes(save({"t": arr}), framework)
    if how == "handle":
        return safetensors._safe_open_handle(io.BytesIO(save({"t": arr})), framework)
    p = tmp_dir / f"t{next(_counter)}.safetensors"
    save_file({"t": arr}, p)
    return safe_open(p, framework, backend=how)


HOWS = ["mmap", "pread", "bytes", "handle"]


def _compare(arr: np.ndarray, index, how: str, tmp_dir) -> bool:
    """Ours and numpy's agree: same shape and values, or both raise (then True)."""
    try:
        want = np.asarray(arr[index])
    except (IndexError, ValueError, TypeError):
        with _open(arr, how, tmp_dir) as f:
            with pytest.raises(SafetensorError):
                f.get_slice("t")[index]
        return True
    with _open(arr, how, tmp_dir) as f:
        try:
            got = f.get_slice("t")[index]
        except IndexError as e:
            # numpy skips its bounds check when index arrays broadcast to nothing; ours
            # refuses a position out of range whatever the result (README).
            assert want.size == 0 and "out of range" in str(e), (index, e)
            return False
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape, (index, got.shape, want.shape)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    return False


# --- random shapes and random basic indexers ---------------------------------------------


@settings(max_examples=400, deadline=None, database=None)
@given(case=shapes_and_indices(), how=st.sampled_from(HOWS))
def test_get_slice_is_numpy_indexing_property(tmp_path_factory, case, how):
    shape, index = case
    arr = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape)
    _compare(arr, index, how, tmp_path_factory.getbasetemp())


@settings(max_examples=400, deadline=None, database=None)
@given(case=shapes_and_advanced_indices(), how=st.sampled_from(HOWS))
def test_get_slice_is_numpy_advanced_indexing_property(tmp_path_factory, case, how):
    """Lists, index arrays, bools and masks, mixed with basic entries: numpy's result, or an
    error where numpy raises one."""
    shape, entries, kinds, bare = case
    arr = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape)
    _compare(arr, advanced_key(entries, kinds, bare, np.asarray), how, tmp_path_factory.getbasetemp())


# --- the cases reference users hit -------------------------------------------------------


@pytest.mark.parametrize("how", HOWS)
def test_empty_list_selects_nothing_along_the_first_axis(tmp_path, how):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with _open(arr, how, tmp_path) as f:
        got = f.get_slice("t")[[]]
    assert got.shape == (0, 3, 4) and got.dtype == np.float32
    for index in [(slice(None), []), (1, []), ([], Ellipsis, 1), ([], None, 1), (Ellipsis, [], 0, None)]:
        _compare(arr, index, how, tmp_path)


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize(
    "index",
    [
        slice(None, None, -1),
        (slice(None), slice(None, None, -2)),
        (slice(-1, 0, -1), 2, slice(None, None, -3)),
        (Ellipsis, slice(3, None, -1)),
        (slice(None, -100, -1),),
        (slice(2**63 - 1, None, -(2**70)),),
    ],
    ids=repr,
)
def test_negative_steps_give_numpys_result(tmp_path, how, index):
    arr = np.arange(4 * 5 * 6, dtype=np.int64).reshape(4, 5, 6)
    assert not _compare(arr, index, how, tmp_path)


def test_one_run_is_a_view_several_runs_a_copy(tmp_path):
    arr = np.arange(24, dtype=np.float32).reshape(4, 6)
    p = tmp_path / "t.safetensors"
    save_file({"t": arr}, p)
    with safe_open(p, "np") as f:
        rows = f.get_slice("t")[1:3]
        cols = f.get_slice("t")[:, ::-1]
    assert not rows.flags["OWNDATA"]
    assert cols.flags["OWNDATA"] and cols.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(rows, arr[1:3])
    np.testing.assert_array_equal(cols, arr[:, ::-1])


@pytest.mark.parametrize(
    "index, message, numpy_raises",
    [
        (1.5, "got float", IndexError),
        ("a", "got str", TypeError),
        ((Ellipsis, Ellipsis), "single ellipsis", IndexError),
        (slice(None, None, 0), "step cannot be zero", ValueError),
        ((0, 0, 0), "3 indices given for a tensor of rank 2", IndexError),
        ([0, 5], "index 5 is out of range for dimension 0 of size 2", IndexError),
        ([True, False, True], "shape of the mask", IndexError),
        ([0.5], "integer or boolean type", IndexError),
    ],
    ids=repr,
)
def test_unsupported_or_invalid_indices_are_refused(tmp_path, index, message, numpy_raises):
    with _open(np.zeros((2, 3), dtype=np.float32), "mmap", tmp_path) as f:
        with pytest.raises(SafetensorError, match=message) as info:
            f.get_slice("t")[index]
    assert isinstance(info.value, numpy_raises)  # what numpy raises for the same index


def test_numpy_integers_index_like_ints(tmp_path):
    arr = np.arange(24, dtype=np.int32).reshape(4, 6)
    for index in [np.int64(-1), (np.int32(2), slice(np.int64(5), None, np.int8(-2))), np.uint8(3)]:
        assert not _compare(arr, index, "mmap", tmp_path)
    # A bool is a mask for numpy (a new axis of length 1 or 0), never the position 1 or 0.
    for index in [np.True_, False, (np.False_, 1)]:
        assert not _compare(arr, index, "mmap", tmp_path)
