//! The `safetensors._safetensors_rust` extension module: Python bindings over the
//! `safetensors` core crate. This file only registers the module's contents; each concern
//! lives in its own file (see the module list below).
#![deny(missing_docs)]

mod bulk;
mod container;
mod dtype;
mod error;
mod framework;
mod handle;
mod mapping;
mod open;
mod prefetch;
mod py_source;
mod raw;
mod remote;
mod serialize;
mod slice;
mod split;
mod staging;
mod writer;

use pyo3::prelude::*;

/// The extension module. `gil_used = false`: every exposed class is `Sync` (frozen, with
/// thread-safe contents) and reads run with the interpreter detached, so the module is
/// declared safe for free-threaded Python.
#[pymodule(gil_used = false)]
fn _safetensors_rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<open::SafeOpen>()?;
    m.add_class::<slice::PySafeSlice>()?;
    m.add_class::<serialize::TensorSpec>()?;
    m.add_class::<prefetch::TensorMeta>()?;
    m.add_class::<prefetch::PrefetchLoader>()?;
    m.add_class::<prefetch::TensorStream>()?;
    m.add_class::<prefetch::PrefetchSource>()?;
    m.add_class::<staging::StagingRing>()?;
    m.add_class::<writer::Writer>()?;
    m.add_function(wrap_pyfunction!(handle::safe_open_handle, m)?)?;
    m.add_function(wrap_pyfunction!(handle::safe_open_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(serialize::serialize, m)?)?;
    m.add_function(wrap_pyfunction!(serialize::serialize_file, m)?)?;
    m.add_function(wrap_pyfunction!(serialize::serialize_sharded, m)?)?;
    m.add_function(wrap_pyfunction!(writer::open_writer, m)?)?;
    m.add_function(wrap_pyfunction!(writer::open_sharded_writer, m)?)?;
    m.add_function(wrap_pyfunction!(open::inspect, m)?)?;
    m.add_function(wrap_pyfunction!(open::filesystem_backend, m)?)?;
    m.add_function(wrap_pyfunction!(split::rank_part, m)?)?;
    m.add_function(wrap_pyfunction!(split::rank_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(serialize::deserialize, m)?)?;
    m.add(
        "SafetensorError",
        m.py().get_type::<error::SafetensorError>(),
    )?;
    error::register_dual(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
