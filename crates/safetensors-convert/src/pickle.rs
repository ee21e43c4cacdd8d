//! A restricted pickle virtual machine: it understands only the opcodes a PyTorch state dict
//! needs and resolves globals through an allowlist, so no code named by the file ever runs.
//!
//! The VM never imports or calls anything: `GLOBAL` turns a (module, name) pair into a
//! [`Global`] from a fixed table (anything else is refused on the spot, naming it), and
//! `REDUCE` evaluates only those few constructors, in Rust. Every allocation is paid for by
//! bytes of input: lengths are checked against the bytes actually left before anything is
//! allocated, and the stack, the mark stack and the memo are capped by the input's size.

use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use crate::torch_types::{Global, StorageRef, TensorRecord};

/// A pickle value. Lists and dicts are mutable and may be shared through the memo, so they live
/// in the VM's [`Heap`] and are referred to by index; everything else is cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for `i64`: little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    /// Read by tests and shown in `Debug` error output; no conversion needs it.
    #[allow(dead_code)]
    Float(f64),
    Str(Rc<str>),
    /// Read by tests and shown in `Debug` error output; no conversion needs it.
    #[allow(dead_code)]
    Bytes(Rc<[u8]>),
    Tuple(Rc<Tuple>),
    List(usize),
    Dict(usize),
    Global(Global),
    /// A storage reference produced by the persistent-id hook.
    Storage(Rc<StorageRef>),
    /// A tensor produced by one of the rebuild functions.
    Tensor(Rc<TensorRecord>),
}

impl Value {
    /// A short description for error messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }
}

/// Deepest nesting of tuples inside tuples. Tuples are the only values that own other values
/// (lists and dicts live in the [`Heap`]), so bounding their depth bounds every recursive
/// walk, print and drop of a value.
pub(crate) const MAX_TUPLE_DEPTH: u16 = 64;

/// An immutable tuple, with its nesting depth.
#[derive(Debug)]
pub(crate) struct Tuple {
    depth: u16,
    items: Box<[Value]>,
}

impl std::ops::Deref for Tuple {
    type Target = [Value];
    fn deref(&self) -> &[Value] {
        &self.items
    }
}

impl Value {
    /// Builds a tuple, refusing nesting deeper than [`MAX_TUPLE_DEPTH`].
    pub(crate) fn tuple(items: Vec<Value>) -> Result<Value, String> {
        let inner = items
            .iter()
            .map(|v| if let Value::Tuple(t) = v { t.depth } else { 0 })
            .max()
            .unwrap_or(0);
        if inner >= MAX_TUPLE_DEPTH {
            return Err(format!("tuples nested more than {MAX_TUPLE_DEPTH} deep"));
        }
        Ok(Value::Tuple(Rc::new(Tuple {
            depth: inner + 1,
            items: items.into_boxed_slice(),
        })))
    }
}

/// Longest string accepted as a dict key.
pub(crate) const MAX_KEY_LEN: usize = 4096;

/// A dict that keeps insertion order; string keys are indexed so `SETITEM` replaces in place.
#[derive(Debug, Default)]
pub(crate) struct DictObj {
    pub(crate) items: Vec<(Value, Value)>,
    by_str: HashMap<Rc<str>, usize>,
}

impl DictObj {
    fn insert(&mut self, key: Value, value: Value) -> Result<(), String> {
        if let Value::Str(s) = &key {
            // Hashing is paid per insert, and one long key can be inserted many times through
            // the memo: capping key length keeps the work linear in the input.
            if s.len() > MAX_KEY_LEN {
                return Err(format!(
                    "dict key of {} bytes (the limit is {MAX_KEY_LEN})",
                    s.len()
                ));
            }
            if let Some(&i) = self.by_str.get(s) {
                self.items[i].1 = value;
                return Ok(());
            }
            self.by_str.insert(s.clone(), self.items.len());
        }
        self.items.push((key, value));
        Ok(())
    }
}

/// Storage for the mutable objects (lists and dicts) a pickle builds.
#[derive(Debug, Default)]
pub(crate) struct Heap {
    pub(crate) lists: Vec<Vec<Value>>,
    pub(crate) dicts: Vec<DictObj>,
}

impl Heap {
    pub(crate) fn new_dict(&mut self) -> Value {
        self.dicts.push(DictObj::default());
        Value::Dict(self.dicts.len() - 1)
    }
    fn new_list(&mut self) -> Value {
        self.lists.push(Vec::new());
        Value::List(self.lists.len() - 1)
    }
}

/// Why a pickle could not be read. `offset` is the byte offset of the opcode, relative to the
/// start of the pickle stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PickleError {
    /// An opcode outside the supported set.
    UnsupportedOpcode {
        opcode: u8,
        name: &'static str,
        offset: usize,
    },
    /// A global outside the allowlist.
    ForbiddenGlobal {
        module: String,
        name: String,
        offset: usize,
    },
    /// Anything else wrong with the stream.
    Malformed { offset: usize, message: String },
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PickleError::UnsupportedOpcode { opcode, name, offset } => write!(
                f,
                "pickle opcode {name} (0x{opcode:02x}) at byte {offset} is not supported by the safe unpickler"
            ),
            PickleError::ForbiddenGlobal { module, name, offset } => write!(
                f,
                "pickle references global `{module}.{name}` at byte {offset}, which is not on the allowlist of \
                 state-dict types; refusing to load it"
            ),
            PickleError::Malformed { offset, message } => {
                write!(f, "malformed pickle at byte {offset}: {message}")
            }
        }
    }
}

/// The persistent-id hook: turns the object a `BINPERSID` popped into a value.
pub(crate) type PersistentLoad<'h> = dyn FnMut(&Heap, &Value) -> Result<Value, String> + 'h;

/// Upper bound on nesting of marks, independent of input size (real state dicts use a handful).
const MAX_MARKS: usize = 4096;

/// Names of the opcodes this VM refuses, for error messages.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'I' => "INT",
        b'L' => "LONG",
        b'F' => "FLOAT",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'P' => "PERSID",
        b'p' => "PUT",
        b'g' => "GET",
        b'l' => "LIST",
        b'd' => "DICT",
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "unknown",
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, at: usize, what: &str) -> Result<&'a [u8], PickleError> {
        let left = self.data.len() - self.pos;
        if n > left {
            return Err(PickleError::Malformed {
                offset: at,
                message: format!(
                    "{what} needs {n} bytes but only {left} remain (truncated pickle?)"
                ),
            });
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, at: usize) -> Result<u8, PickleError> {
        Ok(self.take(1, at, "argument")?[0])
    }
    fn u16(&mut self, at: usize) -> Result<u16, PickleError> {
        let b = self.take(2, at, "argument")?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, at: usize) -> Result<u32, PickleError> {
        let b = self.take(4, at, "argument")?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, at: usize) -> Result<u64, PickleError> {
        let b = self.take(8, at, "argument")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    /// A length argument, which must fit in what is left of the input.
    fn len_of(&mut self, n: u64, at: usize, what: &str) -> Result<&'a [u8], PickleError> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        self.take(n, at, what)
    }
    fn line(&mut self, at: usize) -> Result<&'a str, PickleError> {
        let rest = &self.data[self.pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Err(malformed(
                at,
                "GLOBAL argument is not terminated by a newline",
            ));
        };
        self.pos += nl + 1;
        std::str::from_utf8(&rest[..nl])
            .map_err(|_| malformed(at, "GLOBAL argument is not valid UTF-8"))
    }
}

fn malformed(offset: usize, message: impl Into<String>) -> PickleError {
    PickleError::Malformed {
        offset,
        message: message.into(),
    }
}

/// What the machine may build, handed to it by its caller: which globals a stream may name,
/// and what `REDUCE` and `BUILD` make of them. The machine knows no global of its own, so a
/// stream can only ever make what this table allows (for checkpoints: `torch::Torch`).
pub(crate) trait Allowlist {
    /// The global that `module.name` stands for, or `None` when a stream may not name it.
    fn global(&self, module: &str, name: &str) -> Option<Global>;
    /// What calling `global` with `args` makes (`REDUCE`).
    fn reduce(&self, heap: &mut Heap, global: Global, args: &[Value]) -> Result<Value, String>;
    /// Whether `state` may be set on `target` (`BUILD`); nothing is kept of it.
    fn build(&self, heap: &Heap, target: &Value, state: &Value) -> Result<(), String>;
}

/// The VM state for one pickle stream.
pub(crate) struct Machine<'a, 'h> {
    allowlist: &'a dyn Allowlist,
    reader: Reader<'a>,
    pub(crate) heap: Heap,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    persistent_load: &'h mut PersistentLoad<'h>,
    /// Maximum number of values on the stack or in the memo.
    cap: usize,
}

/// Result of running one pickle: the value and the number of bytes it occupied.
pub(crate) struct Loaded {
    pub(crate) value: Value,
    pub(crate) heap: Heap,
    pub(crate) consumed: usize,
}

/// Runs the pickle at the start of `data` until `STOP`.
pub(crate) fn load(
    data: &[u8],
    allowlist: &dyn Allowlist,
    persistent_load: &mut PersistentLoad<'_>,
) -> Result<Loaded, PickleError> {
    let mut m = Machine {
        allowlist,
        reader: Reader { data, pos: 0 },
        heap: Heap::default(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        persistent_load,
        cap: data.len().saturating_add(16),
    };
    let value = m.run()?;
    Ok(Loaded {
        value,
        heap: m.heap,
        consumed: m.reader.pos,
    })
}

impl Machine<'_, '_> {
    fn push(&mut self, v: Value, at: usize) -> Result<(), PickleError> {
        if self.stack.len() >= self.cap {
            return Err(malformed(at, "stack grew beyond the size of the input"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Result<Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "stack underflow"));
        }
        Ok(self.stack.pop().expect("length checked above"))
    }

    fn top(&mut self, at: usize) -> Result<&mut Value, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(malformed(at, "stack underflow"));
        }
        Ok(self.stack.last_mut().expect("length checked above"))
    }

    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.marks.pop() else {
            return Err(malformed(at, "no MARK on the stack"));
        };
        Ok(self.stack.split_off(mark))
    }

    fn memo_put(&mut self, idx: u32, at: usize) -> Result<(), PickleError> {
        let v = self.top(at)?.clone();
        if self.memo.len() >= self.cap && !self.memo.contains_key(&idx) {
            return Err(malformed(at, "memo grew beyond the size of the input"));
        }
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u32, at: usize) -> Result<(), PickleError> {
        let Some(v) = self.memo.get(&idx).cloned() else {
            return Err(malformed(at, format!("memo key {idx} was never stored")));
        };
        self.push(v, at)
    }

    fn string(&self, bytes: &[u8], at: usize) -> Result<Value, PickleError> {
        std::str::from_utf8(bytes)
            .map(|s| Value::Str(Rc::from(s)))
            .map_err(|_| malformed(at, "string is not valid UTF-8"))
    }

    fn int_from_le(bytes: &[u8]) -> Value {
        if bytes.is_empty() {
            return Value::Int(0);
        }
        if bytes.len() <= 8 {
            let neg = bytes[bytes.len() - 1] & 0x80 != 0;
            let mut a = if neg { [0xffu8; 8] } else { [0u8; 8] };
            a[..bytes.len()].copy_from_slice(bytes);
            Value::Int(i64::from_le_bytes(a))
        } else {
            Value::BigInt(Rc::from(bytes))
        }
    }

    fn set_items(
        &mut self,
        target: &Value,
        pairs: Vec<Value>,
        at: usize,
    ) -> Result<(), PickleError> {
        if pairs.len() % 2 != 0 {
            return Err(malformed(at, "SETITEMS with an odd number of values"));
        }
        let Value::Dict(d) = *target else {
            return Err(malformed(
                at,
                format!("SETITEM(S) on a {}, expected a dict", target.kind()),
            ));
        };
        let mut it = pairs.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            self.heap.dicts[d]
                .insert(k, v)
                .map_err(|m| malformed(at, m))?;
        }
        Ok(())
    }

    fn append(&mut self, target: &Value, items: Vec<Value>, at: usize) -> Result<(), PickleError> {
        let Value::List(l) = *target else {
            return Err(malformed(
                at,
                format!("APPEND(S) on a {}, expected a list", target.kind()),
            ));
        };
        self.heap.lists[l].extend(items);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.reader.pos;
            let op = self.reader.take(1, at, "opcode")?[0];
            match op {
                0x80 => {
                    // PROTO
                    let p = self.reader.u8(at)?;
                    if p > 5 {
                        return Err(malformed(at, format!("unsupported pickle protocol {p}")));
                    }
                }
                0x95 => {
                    // FRAME: a length hint only; the bytes follow inline.
                    self.reader.u64(at)?;
                }
                b'.' => {
                    // STOP
                    let v = self.pop(at)?;
                    return Ok(v);
                }
                b'}' => {
                    let d = self.heap.new_dict();
                    self.push(d, at)?;
                }
                b']' => {
                    let l = self.heap.new_list();
                    self.push(l, at)?;
                }
                b')' => {
                    let t = Value::tuple(Vec::new()).map_err(|m| malformed(at, m))?;
                    self.push(t, at)?;
                }
                b'(' => {
                    if self.marks.len() >= MAX_MARKS {
                        return Err(malformed(at, format!("more than {MAX_MARKS} nested MARKs")));
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop(at)?;
                }
                b'1' => {
                    self.pop_mark(at)?;
                }
                b'2' => {
                    let v = self.top(at)?.clone();
                    self.push(v, at)?;
                }
                b'N' => self.push(Value::None, at)?,
                0x88 => self.push(Value::Bool(true), at)?,
                0x89 => self.push(Value::Bool(false), at)?,
                b'J' => {
                    let v = self.reader.u32(at)? as i32;
                    self.push(Value::Int(i64::from(v)), at)?;
                }
                b'K' => {
                    let v = self.reader.u8(at)?;
                    self.push(Value::Int(i64::from(v)), at)?;
                }
                b'M' => {
                    let v = self.reader.u16(at)?;
                    self.push(Value::Int(i64::from(v)), at)?;
                }
                0x8a => {
                    // LONG1
                    let n = self.reader.u8(at)?;
                    let b = self.reader.len_of(u64::from(n), at, "LONG1")?;
                    self.push(Self::int_from_le(b), at)?;
                }
                0x8b => {
                    // LONG4
                    let n = self.reader.u32(at)? as i32;
                    if n < 0 {
                        return Err(malformed(at, "LONG4 with a negative length"));
                    }
                    let b = self.reader.len_of(n as u64, at, "LONG4")?;
                    self.push(Self::int_from_le(b), at)?;
                }
                b'G' => {
                    let bits = self.reader.take(8, at, "BINFLOAT")?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(bits);
                    self.push(Value::Float(f64::from_be_bytes(a)), at)?;
                }
                b'X' => {
                    let n = self.reader.u32(at)?;
                    let b = self.reader.len_of(u64::from(n), at, "BINUNICODE")?;
                    let v = self.string(b, at)?;
                    self.push(v, at)?;
                }
                0x8c => {
                    let n = self.reader.u8(at)?;
                    let b = self.reader.len_of(u64::from(n), at, "SHORT_BINUNICODE")?;
                    let v = self.string(b, at)?;
                    self.push(v, at)?;
                }
                0x8d => {
                    let n = self.reader.u64(at)?;
                    let b = self.reader.len_of(n, at, "BINUNICODE8")?;
                    let v = self.string(b, at)?;
                    self.push(v, at)?;
                }
                b'U' | b'T' => {
                    // SHORT_BINSTRING / BINSTRING: Python 2 `str`; decoded as text (latin-1 when
                    // not UTF-8), as `torch.load` does with its default encoding.
                    let n = if op == b'U' {
                        u64::from(self.reader.u8(at)?)
                    } else {
                        let n = self.reader.u32(at)? as i32;
                        if n < 0 {
                            return Err(malformed(at, "BINSTRING with a negative length"));
                        }
                        n as u64
                    };
                    let b = self.reader.len_of(n, at, "BINSTRING")?;
                    let s: String = match std::str::from_utf8(b) {
                        Ok(s) => s.to_owned(),
                        Err(_) => b.iter().map(|&c| char::from(c)).collect(),
                    };
                    self.push(Value::Str(Rc::from(s)), at)?;
                }
                b'C' | b'B' | 0x8e => {
                    let n = match op {
                        b'C' => u64::from(self.reader.u8(at)?),
                        b'B' => u64::from(self.reader.u32(at)?),
                        _ => self.reader.u64(at)?,
                    };
                    let b = self.reader.len_of(n, at, "BINBYTES")?;
                    self.push(Value::Bytes(Rc::from(b)), at)?;
                }
                b't' => {
                    let items = self.pop_mark(at)?;
                    let t = Value::tuple(items).map_err(|m| malformed(at, m))?;
                    self.push(t, at)?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let floor = self.marks.last().copied().unwrap_or(0);
                    if self.stack.len() < floor + n {
                        return Err(malformed(at, "stack underflow"));
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    let t = Value::tuple(items).map_err(|m| malformed(at, m))?;
                    self.push(t, at)?;
                }
                b'q' => {
                    let i = self.reader.u8(at)?;
                    self.memo_put(u32::from(i), at)?;
                }
                b'r' => {
                    let i = self.reader.u32(at)?;
                    self.memo_put(i, at)?;
                }
                0x94 => {
                    // MEMOIZE
                    let i = u32::try_from(self.memo.len())
                        .map_err(|_| malformed(at, "memo too large"))?;
                    self.memo_put(i, at)?;
                }
                b'h' => {
                    let i = self.reader.u8(at)?;
                    self.memo_get(u32::from(i), at)?;
                }
                b'j' => {
                    let i = self.reader.u32(at)?;
                    self.memo_get(i, at)?;
                }
                b's' => {
                    let v = self.pop(at)?;
                    let k = self.pop(at)?;
                    let target = self.top(at)?.clone();
                    self.set_items(&target, vec![k, v], at)?;
                }
                b'u' => {
                    let items = self.pop_mark(at)?;
                    let target = self.top(at)?.clone();
                    self.set_items(&target, items, at)?;
                }
                b'a' => {
                    let v = self.pop(at)?;
                    let target = self.top(at)?.clone();
                    self.append(&target, vec![v], at)?;
                }
                b'e' => {
                    let items = self.pop_mark(at)?;
                    let target = self.top(at)?.clone();
                    self.append(&target, items, at)?;
                }
                b'c' => {
                    let module = self.reader.line(at)?.to_owned();
                    let name = self.reader.line(at)?.to_owned();
                    let g = self.resolve_global(&module, &name, at)?;
                    self.push(Value::Global(g), at)?;
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop(at)?;
                    let module = self.pop(at)?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        return Err(malformed(at, "STACK_GLOBAL needs two strings"));
                    };
                    let g = self.resolve_global(module, name, at)?;
                    self.push(Value::Global(g), at)?;
                }
                b'Q' => {
                    // BINPERSID
                    let pid = self.pop(at)?;
                    let v =
                        (self.persistent_load)(&self.heap, &pid).map_err(|m| malformed(at, m))?;
                    self.push(v, at)?;
                }
                b'R' => {
                    let args = self.pop(at)?;
                    let func = self.pop(at)?;
                    let Value::Global(g) = func else {
                        return Err(malformed(
                            at,
                            format!(
                                "REDUCE on a {}, expected an allowlisted global",
                                func.kind()
                            ),
                        ));
                    };
                    let Value::Tuple(args) = args else {
                        return Err(malformed(
                            at,
                            format!("REDUCE arguments are a {}, expected a tuple", args.kind()),
                        ));
                    };
                    let v = self
                        .allowlist
                        .reduce(&mut self.heap, g, &args)
                        .map_err(|m| malformed(at, m))?;
                    self.push(v, at)?;
                }
                b'b' => {
                    // BUILD: only state on dicts (OrderedDict's `_metadata` attribute) and empty
                    // state on tensors is accepted; it carries nothing a safetensors file stores.
                    let state = self.pop(at)?;
                    let target = self.top(at)?.clone();
                    self.allowlist
                        .build(&self.heap, &target, &state)
                        .map_err(|m| malformed(at, m))?;
                }
                other => {
                    return Err(PickleError::UnsupportedOpcode {
                        opcode: other,
                        name: opcode_name(other),
                        offset: at,
                    });
                }
            }
        }
    }
}

impl Machine<'_, '_> {
    fn resolve_global(&self, module: &str, name: &str, at: usize) -> Result<Global, PickleError> {
        self.allowlist
            .global(module, name)
            .ok_or_else(|| PickleError::ForbiddenGlobal {
                module: crate::error::excerpt(module),
                name: crate::error::excerpt(name),
                offset: at,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> Result<Loaded, PickleError> {
        load(bytes, &crate::torch::Torch, &mut |_, _| {
            Err("no persistent ids expected".to_owned())
        })
    }

    #[test]
    fn dict_with_memoized_mutation_is_shared() {
        // {} memoized at 0, then SETITEM, then GET 0 -> the same, now filled, dict.
        let p = b"\x80\x02}q\x00X\x01\x00\x00\x00aK\x07sh\x00\x86.";
        let out = run(p).unwrap();
        let Value::Tuple(t) = out.value else {
            panic!("expected tuple")
        };
        let (Value::Dict(a), Value::Dict(b)) = (&t[0], &t[1]) else {
            panic!("expected dicts")
        };
        assert_eq!(a, b);
        let items = &out.heap.dicts[*a].items;
        assert_eq!(items.len(), 1);
        assert!(
            matches!((&items[0].0, &items[0].1), (Value::Str(s), Value::Int(7)) if &**s == "a")
        );
        assert_eq!(out.consumed, p.len());
    }

    #[test]
    fn integers_of_every_width() {
        let p = b"(K\xffM\xff\xffJ\xff\xff\xff\xff\x8a\x02\x00\x80\x8a\x00\x8a\x09\x01\x00\x00\x00\x00\x00\x00\x00\x01t.";
        let out = run(p).unwrap();
        let Value::Tuple(t) = out.value else { panic!() };
        assert!(matches!(t[0], Value::Int(255)));
        assert!(matches!(t[1], Value::Int(65535)));
        assert!(matches!(t[2], Value::Int(-1)));
        assert!(matches!(t[3], Value::Int(-32768)));
        assert!(matches!(t[4], Value::Int(0)));
        assert!(matches!(&t[5], Value::BigInt(b) if b.len() == 9));
    }

    #[test]
    fn floats_bools_none_and_lists() {
        let p = b"]q\x01(G?\xf0\x00\x00\x00\x00\x00\x00\x88\x89Ne.";
        let out = run(p).unwrap();
        let Value::List(l) = out.value else { panic!() };
        let l = &out.heap.lists[l];
        assert!(matches!(l[0], Value::Float(f) if f == 1.0));
        assert!(matches!(l[1], Value::Bool(true)));
        assert!(matches!(l[2], Value::Bool(false)));
        assert!(matches!(l[3], Value::None));
    }

    #[test]
    fn forbidden_global_is_named_and_refused_before_reduce() {
        let p = b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00touch\x85R.";
        let err = run(p).err().unwrap();
        assert_eq!(
            err,
            PickleError::ForbiddenGlobal {
                module: "posix".into(),
                name: "system".into(),
                offset: 2
            }
        );
        assert!(err.to_string().contains("posix.system"));
    }

    #[test]
    fn forbidden_stack_global_is_named() {
        let p = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.";
        let err = run(p).err().unwrap();
        assert!(err.to_string().contains("builtins.eval"), "{err}");
    }

    #[test]
    fn unknown_opcode_names_itself_and_offset() {
        let err = run(b"\x80\x02\x81.").err().unwrap();
        assert_eq!(
            err,
            PickleError::UnsupportedOpcode {
                opcode: 0x81,
                name: "NEWOBJ",
                offset: 2
            }
        );
        assert!(err.to_string().contains("NEWOBJ") && err.to_string().contains("byte 2"));
        let err = run(b"\xff").err().unwrap();
        assert!(matches!(
            err,
            PickleError::UnsupportedOpcode {
                opcode: 0xff,
                offset: 0,
                ..
            }
        ));
    }

    #[test]
    fn length_claims_beyond_input_are_errors_not_allocations() {
        for p in [
            &b"X\xff\xff\xff\xff"[..],
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x8b\xff\xff\xff\x7f",
            b"B\x10\x00\x00\x00ab",
        ] {
            let err = run(p).err().unwrap();
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }

    #[test]
    fn truncated_and_underflow() {
        assert!(run(b"").is_err());
        assert!(run(b"\x80\x02").is_err());
        assert!(run(b".").err().unwrap().to_string().contains("underflow"));
        assert!(run(b"(.").err().unwrap().to_string().contains("underflow"));
        assert!(run(b"t.").err().unwrap().to_string().contains("MARK"));
        assert!(run(b"h\x05.")
            .err()
            .unwrap()
            .to_string()
            .contains("memo key 5"));
        assert!(run(b"K\x00K\x01K\x02s.")
            .err()
            .unwrap()
            .to_string()
            .contains("expected a dict"));
    }

    #[test]
    fn setitem_replaces_string_keys_in_place() {
        let p = b"}(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bK\x02X\x01\x00\x00\x00aK\x03u.";
        let out = run(p).unwrap();
        let Value::Dict(d) = out.value else { panic!() };
        let items = &out.heap.dicts[d].items;
        assert_eq!(items.len(), 2);
        assert!(matches!(items[0].1, Value::Int(3)));
    }

    #[test]
    fn ordered_dict_reduce_and_build_are_allowed() {
        // collections.OrderedDict() then BUILD with a state dict (like `_metadata`).
        let p = b"ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadata}sb.";
        let out = run(p).unwrap();
        assert!(matches!(out.value, Value::Dict(_)));
    }

    #[test]
    fn reduce_on_non_global_is_refused() {
        let err = run(b"K\x01)R.").err().unwrap();
        assert!(err.to_string().contains("REDUCE on a int"), "{err}");
    }

    #[test]
    fn tuple_nesting_is_bounded() {
        // 100k nested TUPLE1s would overflow the stack when printed or dropped recursively.
        let mut p = vec![b'N'];
        p.extend(std::iter::repeat_n(0x85, 100_000));
        p.push(b'.');
        let err = run(&p).err().unwrap();
        assert!(err.to_string().contains("nested more than 64"), "{err}");
        let mut p = vec![b'N'];
        p.extend(std::iter::repeat_n(0x85, 64));
        p.push(b'.');
        assert!(run(&p).is_ok());
    }

    #[test]
    fn long_dict_keys_are_refused() {
        let mut p = b"}X".to_vec();
        p.extend_from_slice(&(MAX_KEY_LEN as u32 + 1).to_le_bytes());
        p.extend(std::iter::repeat_n(b'k', MAX_KEY_LEN + 1));
        p.extend_from_slice(b"Ns.");
        let err = run(&p).err().unwrap();
        assert!(err.to_string().contains("dict key of 4097 bytes"), "{err}");
    }

    #[test]
    fn marks_are_bounded() {
        let mut p = vec![b'('; MAX_MARKS + 1];
        p.push(b'.');
        assert!(run(&p).err().unwrap().to_string().contains("nested MARK"));
    }

    #[test]
    fn dup_bomb_is_bounded_by_input_size() {
        // A long run of DUP can only push one value per input byte.
        let mut p = vec![b'N'];
        p.extend(std::iter::repeat_n(b'2', 10_000));
        let err = run(&p).err().unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
