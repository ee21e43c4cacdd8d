//! The Python face of URLs: which arguments are URLs, the `headers=` argument, the client
//! (the core's `safetensors::source::http`, the one the CLI uses too), and loading every tensor of a
//! remote checkpoint with parallel Range requests.
//!
//! Reading a URL is otherwise the same as reading a file: `safe_open` opens a core
//! `Checkpoint` over it, and slices and single tensors go through the same planner.

use crate::container::Container;
use crate::error::{st_err, to_pyerr};
use crate::framework::{Empty, Hooks};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use safetensors::checkpoint::ShardFile;
use safetensors::reader::{read_into, Read, ReaderOptions};
use safetensors::source::http::{is_url, Client, HttpOptions};
use std::sync::Arc;

/// The URL a `filename`/`location` argument names, when it is a `str` starting with
/// `http://` or `https://` (a path-like object is always a local path).
pub fn url_of(location: &Bound<'_, PyAny>) -> Option<String> {
    let text: String = location.cast::<PyString>().ok()?.extract().ok()?;
    is_url(&text).then_some(text)
}

/// The `headers=` argument: None, or a mapping of header names to values (both `str`).
pub fn headers(arg: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(arg) = arg.filter(|a| !a.is_none()) else {
        return Ok(Vec::new());
    };
    let dict = arg.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "headers must be a dict of str to str (e.g. {{\"Authorization\": \"Bearer ...\"}}), \
             got {}",
            arg.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    dict.iter()
        .map(|(k, v)| {
            let pair: PyResult<(String, String)> = (|| Ok((k.extract()?, v.extract()?)))();
            pair.map_err(|_| PyTypeError::new_err("headers must map str names to str values"))
        })
        .collect()
}

/// A client sending `headers` on every request, with the core's defaults otherwise
/// (`SAFETENSORS_HTTP_TIMEOUT`, bounded redirects and retries, 16 keep-alive connections).
pub fn client(headers: Vec<(String, String)>) -> PyResult<Client> {
    let options = HttpOptions {
        headers,
        user_agent: concat!("safetensors-python/", env!("CARGO_PKG_VERSION")).to_string(),
        ..HttpOptions::default()
    };
    Client::new(&options).map_err(|e| st_err(e.to_string()))
}

/// Every tensor in `names` of a remote container, in that order: each framework tensor is
/// allocated first, then the bytes of every tensor of a shard are fetched straight into them
/// with `read_into` (blocks of up to 16 MiB, several Range requests at once on keep-alive
/// connections), then each is finished.
pub fn load_all<'py>(
    py: Python<'py>,
    hooks: &Hooks,
    container: &Container,
    names: &[String],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    // Opening the shards first fetches their headers several at a time.
    if let Container::Sharded { checkpoint, .. } = container {
        py.detach(|| checkpoint.open_all()).map_err(to_pyerr)?;
    }
    let mut files = Vec::with_capacity(names.len());
    let mut empties: Vec<Empty<'py>> = Vec::with_capacity(names.len());
    for name in names {
        let opened = container.for_tensor(py, name)?;
        let info = opened.info(name)?;
        let ShardFile::Remote(file) = &opened.origin else {
            return Err(st_err(format!("tensor {name} is not in a remote file")));
        };
        let offset = file.data_start() + info.data_offsets.0 as u64;
        let want = info.data_offsets.1 - info.data_offsets.0;
        empties.push(hooks.empty(py, name, info.dtype, &info.shape, want)?);
        files.push((file.clone(), offset));
    }
    // One read_into per file, in the order the files first appear.
    let mut groups: Vec<(Arc<safetensors::source::http::UrlFile>, Vec<Read<'_>>)> = Vec::new();
    for ((file, offset), empty) in files.into_iter().zip(empties.iter_mut()) {
        let read = Read {
            offset,
            dst: empty.dst.as_mut_slice(),
        };
        match groups.iter_mut().find(|(f, _)| Arc::ptr_eq(f, &file)) {
            Some((_, reads)) => reads.push(read),
            None => groups.push((file, vec![read])),
        }
    }
    py.detach(|| {
        let options = ReaderOptions::default();
        for (file, mut reads) in groups {
            reads.sort_by_key(|r| r.offset);
            read_into(file.source(), reads, &options)?;
        }
        Ok(())
    })
    .map_err(to_pyerr)?;
    empties
        .into_iter()
        .map(|empty| hooks.finish(py, empty))
        .collect()
}
