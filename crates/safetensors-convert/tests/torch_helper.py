"""Test helper for safetensors-convert: makes real torch checkpoints and checks converted output.

Usage:
  torch_helper.py probe                   exit 0 when torch is importable
  torch_helper.py make DIR                write the checkpoints the Rust tests convert
  torch_helper.py compare PAIRS.json      PAIRS: [[checkpoint, safetensors], ...]; prints a JSON report
  torch_helper.py fixture DIR             regenerate the small committed fixtures in tests/data/

`compare` loads each checkpoint with torch.load(weights_only=True) and the converted file with
the tiny safetensors reader below (not the safetensors package), and checks every tensor's
dtype, shape and bytes, plus that each name recorded as dropped really shares storage with
the name it was folded into.
"""

import json
import os
import struct
import sys

ST_DTYPES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64", "float16": "F16",
    "bfloat16": "BF16", "float32": "F32", "float64": "F64", "complex64": "C64",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2", "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ", "float8_e8m0fnu": "F8_E8M0", "float4_e2m1fn_x2": "F4",
}


def read_safetensors(path):
    """Returns (metadata, {name: (dtype, shape, bytes)}) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    meta = header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[b:e])
    return meta, out


def tensor_bytes(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == __import__("torch").bool:
        t = t.to(__import__("torch").uint8)
    return t.view(__import__("torch").uint8).numpy().tobytes()


def flatten(obj, prefix=""):
    import torch
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from flatten(v, f"{prefix}.{i}" if prefix else str(i))


def compare(pairs_path):
    import torch
    with open(pairs_path) as f:
        pairs = json.load(f)
    report = {"checked": 0, "dropped": 0, "errors": []}
    for ckpt, st in pairs:
        err = lambda msg: report["errors"].append(f"{os.path.basename(ckpt)}: {msg}")
        obj = torch.load(ckpt, weights_only=True)
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        expected = dict(flatten(obj))
        meta, got = read_safetensors(st)
        if meta is None or meta.get("format") != "pt":
            err(f"metadata {meta!r} lacks format=pt")
            meta = meta or {}
        dropped = json.loads(meta.get("shared_tensors", "{}"))
        if set(got) | set(dropped) != set(expected) or set(got) & set(dropped):
            err(f"names differ: written {sorted(got)}, dropped {sorted(dropped)}, torch {sorted(expected)}")
            continue
        for name, (dtype, shape, data) in got.items():
            t = expected[name]
            want_dtype = ST_DTYPES[str(t.dtype).replace("torch.", "")]
            want_shape = list(t.shape)
            if t.dtype == torch.float4_e2m1fn_x2:
                want_shape = want_shape[:-1] + [want_shape[-1] * 2] if want_shape else [2]
            if dtype != want_dtype or shape != want_shape:
                err(f"{name}: got {dtype} {shape}, torch has {want_dtype} {want_shape}")
            elif data != tensor_bytes(t):
                err(f"{name}: bytes differ")
            report["checked"] += 1
        for d, k in dropped.items():
            a, b = expected[d], expected[k]
            same = a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            inside = (a.numel() == 0) or (
                a.data_ptr() >= b.data_ptr()
                and a.data_ptr() + a.numel() * a.element_size() <= b.data_ptr() + b.untyped_storage().nbytes())
            if not (same and inside):
                err(f"dropped {d} does not share storage with kept {k}")
            report["dropped"] += 1
    print(json.dumps(report))


def all_dtypes():
    import torch
    g = torch.Generator().manual_seed(0)
    sd = {}
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f64"] = torch.randn(2, 3, generator=g, dtype=torch.float64)
    sd["f16"] = torch.randn(5, generator=g).half()
    sd["bf16"] = torch.randn(2, 2, 2, generator=g).bfloat16()
    sd["c64"] = torch.randn(3, generator=g, dtype=torch.complex64)
    sd["bool"] = torch.randn(7, generator=g) > 0
    sd["u8"] = torch.randint(0, 256, (4, 3), generator=g, dtype=torch.uint8)
    sd["i8"] = torch.randint(-128, 128, (6,), generator=g, dtype=torch.int8)
    sd["i16"] = torch.randint(-30000, 30000, (3, 2), generator=g, dtype=torch.int16)
    sd["i32"] = torch.randint(-2**31, 2**31 - 1, (4,), generator=g, dtype=torch.int32)
    sd["i64"] = torch.randint(-2**62, 2**62, (2, 2), generator=g, dtype=torch.int64)
    sd["u16"] = torch.randint(0, 65535, (5,), generator=g, dtype=torch.int32).to(torch.uint16)
    sd["u32"] = torch.randint(0, 2**31 - 1, (3,), generator=g, dtype=torch.int64).to(torch.uint32)
    sd["u64"] = torch.randint(0, 2**62, (2,), generator=g, dtype=torch.int64).to(torch.uint64)
    base = torch.randn(4, 6, generator=g)
    for name in ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"]:
        if hasattr(torch, name):
            sd[name] = base.abs().to(getattr(torch, name))
    if hasattr(torch, "float4_e2m1fn_x2"):
        sd["f4"] = torch.randint(0, 256, (3, 4), generator=g, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    return sd


def shared_and_views():
    import torch
    g = torch.Generator().manual_seed(1)
    emb = torch.nn.Parameter(torch.randn(10, 4, generator=g))
    big = torch.randn(100, generator=g)
    m = torch.randn(3, 5, generator=g)
    sd = {
        "embed.weight": emb,
        "lm_head.weight": emb,                       # tied: the very same tensor
        "alias.weight": emb.data.view(10, 4),        # another view of the same whole storage
        "row3": emb.data[3],                         # a view inside it
        "slice": big[10:20],                         # a view into a larger storage, alone
        "transposed": m.t(),                         # non-contiguous
        "strided": big[::7],                         # non-contiguous 1-d
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "int_scalar": torch.tensor(7, dtype=torch.int64),
        "expanded": torch.tensor([1.0, 2.0]).expand(3, 2),
    }
    # Python attributes make torch pickle through _rebuild_from_type_v2 (tensors) and
    # _rebuild_parameter_with_state (parameters).
    with_attr = torch.randn(2, 2, generator=g)
    with_attr.note = "hello"
    sd["tensor_with_attr"] = with_attr
    param = torch.nn.Parameter(torch.randn(3, generator=g))
    param.note = 1
    sd["param_with_state"] = param
    return sd


def make(out):
    import collections
    import torch
    os.makedirs(out, exist_ok=True)
    torch.save(all_dtypes(), f"{out}/all_dtypes.bin")
    torch.save(shared_and_views(), f"{out}/shared.pt")
    # torch.load cannot read the legacy format's untyped storages (uint16/32/64, float8, float4)
    # back, so the legacy file holds the dtypes that have a legacy storage class.
    legacy_dtypes = torch.storage._dtype_to_storage_type_map()
    legacy = {k: v for k, v in all_dtypes().items() if v.dtype in legacy_dtypes}
    legacy.update(shared_and_views())
    torch.save(legacy, f"{out}/legacy.pth", _use_new_zipfile_serialization=False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.save({"state_dict": model.state_dict(), "epoch": 3, "lr": 0.1, "note": "x"}, f"{out}/training.pt")
    torch.save(collections.OrderedDict([("a", torch.ones(2)), ("nested", {"b": torch.zeros(3), "list": [torch.arange(3)]})]),
               f"{out}/nested.pt")
    torch.save({"z": torch.zeros(2, dtype=torch.complex128)}, f"{out}/complex128.pt")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {out}/PWNED",))
    torch.save({"w": torch.ones(2), "evil": Evil()}, f"{out}/evil.pt")
    torch.save({"w": torch.ones(2), "evil": Evil()}, f"{out}/evil_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"w": torch.ones(2), "dq": collections.deque([1])}, f"{out}/unknown_global.pt")

    shard = f"{out}/sharded"
    os.makedirs(shard, exist_ok=True)
    g = torch.Generator().manual_seed(2)
    weights = {f"layers.{i}.weight": torch.randn(4, 4, generator=g) for i in range(5)}
    weights["layers.0.bias"] = torch.randn(4, generator=g, dtype=torch.float64)
    weights["tied.a"] = weights["layers.4.weight"]
    files = {1: ["layers.0.weight", "layers.0.bias", "layers.1.weight"],
             2: ["layers.2.weight", "layers.3.weight", "layers.4.weight", "tied.a"]}
    weight_map = {}
    for i, names in files.items():
        fname = f"pytorch_model-{i:05d}-of-00002.bin"
        torch.save({n: weights[n] for n in names}, f"{shard}/{fname}")
        weight_map.update({n: fname for n in names})
    with open(f"{shard}/pytorch_model.bin.index.json", "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)


def fixture(out):
    """tests/data/small.pt and small_legacy.pt: tiny checkpoints with known contents, used by
    the tests that must run without torch (fuzzing, hand-checked values)."""
    import torch
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd = {"w": w, "t": w.t(), "tied": w, "b": torch.arange(3, dtype=torch.int64), "h": torch.tensor([1.5, -2.0]).half()}
    torch.save(sd, f"{out}/small.pt")
    torch.save(sd, f"{out}/small_legacy.pt", _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "probe":
        import torch  # noqa: F401
    elif cmd == "make":
        make(sys.argv[2])
    elif cmd == "fixture":
        fixture(sys.argv[2])
    elif cmd == "compare":
        compare(sys.argv[2])
    else:
        sys.exit(f"unknown command {cmd}")
