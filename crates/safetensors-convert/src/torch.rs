//! PyTorch's side of the unpickler: the allowlist of globals, the few constructors a state dict
//! calls (`_rebuild_tensor_v2` and friends, `OrderedDict`, `torch.Size`), the persistent ids that
//! name storages, torch dtypes, and the walk that turns the unpickled object into named tensors.
//!
//! Nothing here runs Python: each allowlisted constructor is re-implemented as a plain Rust
//! function that only records numbers (storage key, offset, size, stride, dtype).

use std::collections::HashSet;
use std::rc::Rc;

use crate::pickle::{Allowlist, Heap, Value};
use crate::torch_types::{Global, StorageRef, TensorRecord, TorchDtype};

/// The allowlist of a PyTorch checkpoint, as the pickle machine takes it.
pub(crate) struct Torch;

impl Allowlist for Torch {
    fn global(&self, module: &str, name: &str) -> Option<Global> {
        lookup_global(module, name)
    }
    fn reduce(&self, heap: &mut Heap, global: Global, args: &[Value]) -> Result<Value, String> {
        reduce(heap, global, args)
    }
    fn build(&self, heap: &Heap, target: &Value, state: &Value) -> Result<(), String> {
        build(heap, target, state)
    }
}

/// The allowlist: the only (module, name) pairs a checkpoint may reference.
pub(crate) fn lookup_global(module: &str, name: &str) -> Option<Global> {
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("torch._utils", "_rebuild_tensor") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_tensor_v2") => Global::RebuildTensorV2,
        ("torch._utils", "_rebuild_tensor_v3") => Global::RebuildTensorV3,
        ("torch._utils", "_rebuild_parameter") => Global::RebuildParameter,
        ("torch._utils", "_rebuild_parameter_with_state") => Global::RebuildParameterWithState,
        ("torch._tensor", "_rebuild_from_type_v2") => Global::RebuildFromTypeV2,
        ("torch", "Tensor") | ("torch._tensor", "Tensor") => Global::TensorClass,
        ("torch.nn.parameter", "Parameter") => Global::ParameterClass,
        ("torch", "Size") => Global::TorchSize,
        ("torch", "device") => Global::Device,
        ("torch", "UntypedStorage") | ("torch.storage", "UntypedStorage") => {
            Global::StorageType(None)
        }
        ("torch", n) | ("torch.cuda", n) => {
            if let Some(d) = TorchDtype::from_storage_class(n) {
                Global::StorageType(Some(d))
            } else if module == "torch" {
                Global::Dtype(TorchDtype::from_torch_attr(n)?)
            } else {
                return None;
            }
        }
        _ => return None,
    })
}

fn int_arg(v: &Value, what: &str) -> Result<u64, String> {
    match v {
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Int(i) => Err(format!("{what} is negative ({i})")),
        other => Err(format!("{what} is a {}, expected an int", other.kind())),
    }
}

fn int_tuple(heap: &Heap, v: &Value, what: &str) -> Result<Vec<u64>, String> {
    let items: &[Value] = match v {
        Value::Tuple(t) => t,
        Value::List(l) => &heap.lists[*l],
        other => {
            return Err(format!(
                "{what} is a {}, expected a tuple of ints",
                other.kind()
            ))
        }
    };
    items.iter().map(|x| int_arg(x, what)).collect()
}

fn is_empty_mapping(heap: &Heap, v: &Value) -> bool {
    match v {
        Value::None => true,
        Value::Dict(d) => heap.dicts[*d].items.is_empty(),
        _ => false,
    }
}

fn rebuild(heap: &Heap, args: &[Value], dtype_arg: Option<&Value>) -> Result<Value, String> {
    let Value::Storage(storage) = &args[0] else {
        return Err(format!(
            "tensor storage argument is a {}, expected a storage",
            args[0].kind()
        ));
    };
    let dtype = match (dtype_arg, storage.dtype) {
        (Some(Value::Global(Global::Dtype(d))), _) => *d,
        (Some(other), _) => {
            return Err(format!(
                "tensor dtype argument is a {}, expected a torch dtype",
                other.kind()
            ))
        }
        (None, Some(d)) => d,
        (None, None) => return Err("tensor over an untyped storage without a dtype".to_owned()),
    };
    let offset = int_arg(&args[1], "storage offset")?;
    let size = int_tuple(heap, &args[2], "tensor size")?;
    let stride = int_tuple(heap, &args[3], "tensor stride")?;
    if size.len() != stride.len() {
        return Err(format!(
            "tensor size has {} dims but stride has {}",
            size.len(),
            stride.len()
        ));
    }
    Ok(Value::Tensor(Rc::new(TensorRecord {
        storage: storage.clone(),
        dtype,
        offset,
        size,
        stride,
    })))
}

/// Evaluates `REDUCE` for an allowlisted callable.
pub(crate) fn reduce(heap: &mut Heap, g: Global, args: &[Value]) -> Result<Value, String> {
    let n = args.len();
    let arity = |lo: usize, hi: usize, name: &str| {
        if n < lo || n > hi {
            Err(format!("{name} called with {n} arguments"))
        } else {
            Ok(())
        }
    };
    match g {
        Global::OrderedDict => {
            if n == 0 {
                Ok(heap.new_dict())
            } else {
                Err(format!("collections.OrderedDict called with {n} arguments"))
            }
        }
        Global::TorchSize => {
            arity(1, 1, "torch.Size")?;
            let dims = int_tuple(heap, &args[0], "torch.Size argument")?;
            Value::tuple(dims.into_iter().map(|d| Value::Int(d as i64)).collect())
        }
        Global::RebuildTensor => {
            arity(4, 4, "torch._utils._rebuild_tensor")?;
            rebuild(heap, args, None)
        }
        Global::RebuildTensorV2 => {
            arity(6, 7, "torch._utils._rebuild_tensor_v2")?;
            rebuild(heap, args, None)
        }
        Global::RebuildTensorV3 => {
            arity(7, 8, "torch._utils._rebuild_tensor_v3")?;
            rebuild(heap, args, Some(&args[6]))
        }
        Global::RebuildParameter | Global::RebuildParameterWithState => {
            let name = if g == Global::RebuildParameter {
                "_rebuild_parameter"
            } else {
                "_rebuild_parameter_with_state"
            };
            let want = if g == Global::RebuildParameter { 3 } else { 4 };
            arity(want, want, name)?;
            match &args[0] {
                Value::Tensor(_) => Ok(args[0].clone()),
                other => Err(format!("{name} got a {}, expected a tensor", other.kind())),
            }
        }
        Global::RebuildFromTypeV2 => {
            arity(4, 4, "torch._tensor._rebuild_from_type_v2")?;
            let Value::Global(func) = &args[0] else {
                return Err(
                    "_rebuild_from_type_v2 function argument is not an allowlisted global"
                        .to_owned(),
                );
            };
            if !matches!(
                args[1],
                Value::Global(Global::TensorClass | Global::ParameterClass)
            ) {
                return Err(
                    "_rebuild_from_type_v2 builds a type other than torch.Tensor or Parameter"
                        .to_owned(),
                );
            }
            let Value::Tuple(inner) = &args[2] else {
                return Err("_rebuild_from_type_v2 arguments are not a tuple".to_owned());
            };
            if !matches!(
                func,
                Global::RebuildTensor | Global::RebuildTensorV2 | Global::RebuildTensorV3
            ) {
                return Err(
                    "_rebuild_from_type_v2 wraps a function other than a tensor rebuild".to_owned(),
                );
            }
            let inner = inner.clone();
            reduce(heap, *func, &inner)
        }
        Global::Device => {
            // `torch.device("cuda", 0)` in a training checkpoint: kept as its string.
            match args {
                [Value::Str(s)] => Ok(Value::Str(s.clone())),
                [Value::Str(s), Value::Int(i)] => Ok(Value::Str(format!("{s}:{i}").into())),
                _ => Err("torch.device called with unexpected arguments".to_owned()),
            }
        }
        Global::TensorClass
        | Global::ParameterClass
        | Global::StorageType(_)
        | Global::Dtype(_) => Err(format!("{g:?} is not callable in a checkpoint")),
    }
}

/// Evaluates `BUILD`: attribute state on dicts (an `OrderedDict`'s `_metadata`) is accepted and
/// dropped; tensors accept only empty state.
pub(crate) fn build(heap: &Heap, target: &Value, state: &Value) -> Result<(), String> {
    match target {
        Value::Dict(_) => Ok(()),
        Value::Tensor(_) if is_empty_mapping(heap, state) => Ok(()),
        other => Err(format!("BUILD on a {} is not supported", other.kind())),
    }
}

/// Parses a persistent id: `('storage', storage_type, key, location, numel)` in zip checkpoints,
/// plus a sixth `view_metadata` entry in legacy ones.
pub(crate) fn storage_from_pid(heap: &Heap, pid: &Value, legacy: bool) -> Result<Value, String> {
    let Value::Tuple(t) = pid else {
        return Err(format!(
            "persistent id is a {}, expected a tuple",
            pid.kind()
        ));
    };
    match t.first() {
        Some(Value::Str(s)) if &**s == "storage" => {}
        Some(Value::Str(s)) if &**s == "module" => {
            return Err("checkpoint pickles a whole nn.Module class (persistent id 'module'); only state dicts are supported".to_owned())
        }
        _ => return Err("persistent id is not a ('storage', ...) tuple".to_owned()),
    }
    let want = if legacy { 6 } else { 5 };
    if t.len() != want {
        return Err(format!(
            "storage persistent id has {} fields, expected {want}",
            t.len()
        ));
    }
    let dtype = match &t[1] {
        Value::Global(Global::StorageType(d)) => *d,
        other => {
            return Err(format!(
                "storage type is a {}, expected a torch storage class",
                other.kind()
            ))
        }
    };
    let key: Rc<str> = match &t[2] {
        Value::Str(s) => s.clone(),
        Value::Int(i) => Rc::from(i.to_string()),
        other => {
            return Err(format!(
                "storage key is a {}, expected a string",
                other.kind()
            ))
        }
    };
    if key.len() > MAX_STORAGE_KEY_LEN {
        return Err(format!(
            "storage key of {} bytes (the limit is {MAX_STORAGE_KEY_LEN})",
            key.len()
        ));
    }
    if !matches!(t[3], Value::Str(_)) {
        return Err("storage location is not a string".to_owned());
    }
    let elem = dtype.map_or(1, TorchDtype::element_size) as u64;
    let (byte_offset, view_len) = if legacy {
        match &t[5] {
            Value::None => (0, None),
            Value::Tuple(v) if v.len() == 3 => {
                let off = int_arg(&v[1], "view offset")?;
                let len = int_arg(&v[2], "view size")?;
                let off = off.checked_mul(elem).ok_or("view offset overflows")?;
                let len = len.checked_mul(elem).ok_or("view size overflows")?;
                (off, Some(len))
            }
            _ => return Err("legacy storage view metadata is malformed".to_owned()),
        }
    } else {
        (0, None)
    };
    let _ = heap;
    Ok(Value::Storage(Rc::new(StorageRef {
        key,
        dtype,
        byte_offset,
        view_len,
    })))
}

/// Longest tensor name produced by flattening (real names are a few dozen bytes).
const MAX_NAME_LEN: usize = 1024;

/// Longest storage key accepted (torch writes small decimal numbers).
const MAX_STORAGE_KEY_LEN: usize = 256;

/// Maximum nesting walked when flattening nested dicts/lists into tensor names.
const MAX_DEPTH: usize = 64;

/// Collects the tensors of an unpickled checkpoint as `(name, record)`.
///
/// A dict of tensors is a state dict. A top-level dict with a `"state_dict"` dict inside (the
/// common training-checkpoint layout) is unwrapped to it. Nested dicts and lists are flattened
/// with `.`-joined names (`{"model": {"w": t}}` gives `model.w`); leaves that are not tensors
/// (ints, strings, `None`, ...) carry no tensor data and are skipped.
///
/// `visit_budget` caps the number of values visited (pass the pickle's length: a state dict
/// visits each value once, and each value costs at least one byte).
pub(crate) fn collect_tensors(
    heap: &Heap,
    root: &Value,
    visit_budget: usize,
) -> Result<Vec<(String, Rc<TensorRecord>)>, String> {
    let mut root = root;
    if let Value::Dict(d) = root {
        for (k, v) in &heap.dicts[*d].items {
            if matches!(k, Value::Str(s) if &**s == "state_dict") && matches!(v, Value::Dict(_)) {
                root = v;
            }
        }
    }
    match root {
        Value::Dict(_) | Value::List(_) | Value::Tuple(_) => {}
        Value::Tensor(_) => {
            return Err("checkpoint is a single tensor, not a state dict".to_owned())
        }
        other => {
            return Err(format!(
                "checkpoint holds a {}, expected a state dict",
                other.kind()
            ))
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut budget = visit_budget;
    walk(
        heap,
        root,
        String::new(),
        0,
        &mut Walk {
            out: &mut out,
            seen: &mut seen,
            budget: &mut budget,
        },
    )?;
    Ok(out)
}

/// State of one flattening walk.
struct Walk<'w> {
    out: &'w mut Vec<(String, Rc<TensorRecord>)>,
    seen: &'w mut HashSet<String>,
    /// Values still allowed to be visited: a container referenced from many places (through the
    /// memo) would otherwise make the walk exponential in the pickle's size.
    budget: &'w mut usize,
}

fn walk(
    heap: &Heap,
    v: &Value,
    prefix: String,
    depth: usize,
    w: &mut Walk<'_>,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "checkpoint nests containers more than {MAX_DEPTH} deep"
        ));
    }
    if *w.budget == 0 {
        return Err(
            "checkpoint references the same containers too many times (visit budget exhausted)"
                .to_owned(),
        );
    }
    *w.budget -= 1;
    // Names are capped so that a long prefix repeated over many entries cannot multiply memory.
    let join = |k: &str, child: &Value| -> Result<Option<String>, String> {
        let len = prefix.len() + k.len() + usize::from(!prefix.is_empty());
        if len > MAX_NAME_LEN {
            return if matches!(
                child,
                Value::Tensor(_) | Value::Dict(_) | Value::List(_) | Value::Tuple(_)
            ) {
                Err(format!(
                    "a tensor name under `{}...` is longer than {MAX_NAME_LEN} bytes",
                    prefix.chars().take(64).collect::<String>()
                ))
            } else {
                Ok(None)
            };
        }
        Ok(Some(if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }))
    };
    match v {
        Value::Tensor(t) => {
            if !w.seen.insert(prefix.clone()) {
                return Err(format!(
                    "tensor name `{prefix}` occurs twice after flattening nested containers"
                ));
            }
            w.out.push((prefix, t.clone()));
        }
        Value::Dict(d) => {
            for (k, child) in &heap.dicts[*d].items {
                let key = match k {
                    Value::Str(s) => s.to_string(),
                    Value::Int(i) => i.to_string(),
                    other => {
                        if matches!(
                            child,
                            Value::Tensor(_) | Value::Dict(_) | Value::List(_) | Value::Tuple(_)
                        ) {
                            return Err(format!(
                                "a dict key under `{prefix}` is a {}, expected a string",
                                other.kind()
                            ));
                        }
                        continue;
                    }
                };
                if let Some(name) = join(&key, child)? {
                    walk(heap, child, name, depth + 1, w)?;
                }
            }
        }
        Value::List(l) => {
            for (i, child) in heap.lists[*l].iter().enumerate() {
                if let Some(name) = join(&i.to_string(), child)? {
                    walk(heap, child, name, depth + 1, w)?;
                }
            }
        }
        Value::Tuple(t) => {
            for (i, child) in t.iter().enumerate() {
                if let Some(name) = join(&i.to_string(), child)? {
                    walk(heap, child, name, depth + 1, w)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_accepts_state_dict_globals_only() {
        assert_eq!(
            lookup_global("torch", "FloatStorage"),
            Some(Global::StorageType(Some(TorchDtype::Float32)))
        );
        assert_eq!(
            lookup_global("torch.cuda", "HalfStorage"),
            Some(Global::StorageType(Some(TorchDtype::Float16)))
        );
        assert_eq!(
            lookup_global("torch", "bfloat16"),
            Some(Global::Dtype(TorchDtype::BFloat16))
        );
        assert_eq!(
            lookup_global("torch", "UntypedStorage"),
            Some(Global::StorageType(None))
        );
        assert_eq!(
            lookup_global("torch._utils", "_rebuild_tensor_v2"),
            Some(Global::RebuildTensorV2)
        );
        for (m, n) in [
            ("os", "system"),
            ("posix", "system"),
            ("builtins", "eval"),
            ("torch", "load"),
            ("torch.cuda", "float32"),
            ("torch", "save"),
            ("torch._utils", "_rebuild_qtensor"),
            ("collections", "deque"),
        ] {
            assert_eq!(lookup_global(m, n), None, "{m}.{n}");
        }
    }

    #[test]
    fn every_safetensors_dtype_has_a_name_and_size() {
        for n in [
            "bool",
            "uint8",
            "int8",
            "int16",
            "uint16",
            "int32",
            "uint32",
            "int64",
            "uint64",
            "float16",
            "bfloat16",
            "float32",
            "float64",
            "complex64",
            "float8_e4m3fn",
            "float8_e5m2",
            "float8_e4m3fnuz",
            "float8_e5m2fnuz",
            "float8_e8m0fnu",
            "float4_e2m1fn_x2",
        ] {
            let d = TorchDtype::from_torch_attr(n).unwrap();
            assert_eq!(d.name(), n);
            assert!(d.safetensors_name().is_some(), "{n}");
            assert!(d.element_size() >= 1);
        }
        assert_eq!(TorchDtype::Complex128.safetensors_name(), None);
        assert_eq!(TorchDtype::Quantized("qint8").safetensors_name(), None);
    }

    #[test]
    fn shared_containers_cannot_make_the_walk_exponential() {
        // L(i+1) = [L(i), L(i)], 60 times: 2^60 paths from a 500-byte pickle.
        let mut p = b"]q\x00".to_vec();
        for i in 0u8..60 {
            p.extend_from_slice(&[b']', b'(', b'h', i, b'h', i, b'e', b'q', i + 1]);
        }
        p.push(b'.');
        let loaded = crate::pickle::load(&p, &Torch, &mut |_, _| Err("no pid".into())).unwrap();
        let err = collect_tensors(&loaded.heap, &loaded.value, p.len()).unwrap_err();
        assert!(err.contains("budget"), "{err}");
    }

    #[test]
    fn long_names_are_refused_not_multiplied() {
        let mut heap = Heap::default();
        let st = Value::Storage(Rc::new(StorageRef {
            key: "0".into(),
            dtype: Some(TorchDtype::Float32),
            byte_offset: 0,
            view_len: None,
        }));
        let t = reduce(
            &mut heap,
            Global::RebuildTensor,
            &[
                st,
                Value::Int(0),
                Value::tuple(vec![]).unwrap(),
                Value::tuple(vec![]).unwrap(),
            ],
        )
        .unwrap();
        let inner = heap.new_dict();
        let Value::Dict(i) = inner else {
            unreachable!()
        };
        heap.dicts[i].items.push((Value::Str("w".into()), t));
        heap.dicts[i]
            .items
            .push((Value::Str("n".into()), Value::Int(1)));
        let outer = heap.new_dict();
        let Value::Dict(o) = outer else {
            unreachable!()
        };
        heap.dicts[o]
            .items
            .push((Value::Str("x".repeat(MAX_NAME_LEN).into()), inner.clone()));
        let err = collect_tensors(&heap, &outer, 100).unwrap_err();
        assert!(err.contains("longer than 1024"), "{err}");
        // A long key on a non-tensor leaf is simply skipped.
        heap.dicts[o].items[0] = (Value::Str("x".repeat(2000).into()), Value::Int(3));
        heap.dicts[o].items.push((Value::Str("m".into()), inner));
        let got = collect_tensors(&heap, &outer, 100).unwrap();
        assert_eq!(
            got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["m.w"]
        );
    }

    #[test]
    fn rebuild_checks_argument_shapes() {
        let mut heap = Heap::default();
        let st = Value::Storage(Rc::new(StorageRef {
            key: "0".into(),
            dtype: Some(TorchDtype::Float32),
            byte_offset: 0,
            view_len: None,
        }));
        let tup = |v: &[i64]| Value::tuple(v.iter().map(|&i| Value::Int(i)).collect()).unwrap();
        let hooks = heap.new_dict();
        let ok = reduce(
            &mut heap,
            Global::RebuildTensorV2,
            &[
                st.clone(),
                Value::Int(2),
                tup(&[2, 3]),
                tup(&[3, 1]),
                Value::Bool(false),
                hooks.clone(),
            ],
        )
        .unwrap();
        let Value::Tensor(t) = ok else { panic!() };
        assert_eq!(
            (t.offset, t.size.clone(), t.stride.clone(), t.dtype),
            (2, vec![2, 3], vec![3, 1], TorchDtype::Float32)
        );
        let err = reduce(
            &mut heap,
            Global::RebuildTensorV2,
            &[
                st.clone(),
                Value::Int(0),
                tup(&[2, 3]),
                tup(&[1]),
                Value::Bool(false),
                hooks.clone(),
            ],
        )
        .unwrap_err();
        assert!(err.contains("stride"), "{err}");
        let err = reduce(
            &mut heap,
            Global::RebuildTensorV2,
            &[
                st.clone(),
                Value::Int(-1),
                tup(&[2]),
                tup(&[1]),
                Value::Bool(false),
                hooks.clone(),
            ],
        )
        .unwrap_err();
        assert!(err.contains("negative"), "{err}");
        let err = reduce(&mut heap, Global::RebuildTensorV2, &[st]).unwrap_err();
        assert!(err.contains("1 arguments"), "{err}");
        assert!(reduce(&mut heap, Global::Dtype(TorchDtype::Float32), &[]).is_err());
    }
}
