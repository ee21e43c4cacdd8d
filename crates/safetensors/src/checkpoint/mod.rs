//! One handle over a checkpoint, whether it is one file or an index of shards, on disk or at
//! an `http(s)` URL.
//!
//! [`Checkpoint::open`] takes a safetensors file, a folder (see [`crate::checkpoint::shard_index::locate`]) or
//! an index JSON, or (feature `http`) the URL of a file or of an index JSON, whose shards
//! are resolved next to it (`Checkpoint::open_url` takes a configured client). A sharded checkpoint knows every tensor's shard from the index alone;
//! each shard's header is read and validated the first time one of its tensors is asked
//! for, and checked against the index then (a tensor the shard lacks, a tensor it holds that
//! the index does not list), so opening a 30-shard model reads one small JSON file.
//!
//! Local shards are opened with positioned reads ([`Backend::Pread`]); a face that wants a
//! memory map makes its own over [`SafeFile::file`] (the Python binding maps privately).
//! Remote shards are `source::http::UrlFile`s: opening one costs two Range requests, and
//! its bytes are read by the parallel reader over `source::http::RemoteFile`.
//! [`Checkpoint::shard_file`] gives either; the code that slices or validates does not care
//! which.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

mod check;
pub mod inspect;
pub mod shard_index;
pub mod sharded_writer;
#[cfg(feature = "http")]
pub mod url_index;
pub mod verify;

/// How local files are opened (an option of [`Checkpoint::open_with`]), and what a shard is.
pub use crate::source::file::{Backend, SafeFile};
/// What [`Backend::auto`] decides with: the filesystem a file lives on, and the choice.
pub use crate::source::filesystem::{AutoChoice, Filesystem, AUTO_BACKEND_ENV};
/// What opening a URL takes from the HTTP layer (the client and its options) and what its
/// failures carry, so that a face opens URLs through the checkpoint alone.
#[cfg(feature = "http")]
pub use crate::source::http::{is_url, Client, HttpError, HttpOptions};

use crate::checkpoint::shard_index::{locate, Layout, ShardIndex};
use crate::format::error::Error;
use crate::format::header::{Metadata, TensorInfo};
use crate::source::any::SourceFile;
use crate::source::{FileHeader, Source};
pub use check::CheckReport;

/// One opened, validated file of a checkpoint: local, at a URL, or over a caller's source.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ShardFile {
    /// A file on disk.
    Local(Arc<SafeFile>),
    /// A file at an `http(s)` URL.
    #[cfg(feature = "http")]
    Remote(Arc<crate::source::http::UrlFile>),
    /// A file read through a caller's source (a buffer in memory, a Python file object).
    Other(Arc<SourceFile>),
}

impl ShardFile {
    /// The validated header.
    pub fn metadata(&self) -> &crate::format::header::Metadata {
        match self {
            ShardFile::Local(file) => file.metadata(),
            #[cfg(feature = "http")]
            ShardFile::Remote(file) => file.metadata(),
            ShardFile::Other(file) => file.metadata(),
        }
    }

    /// Absolute offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        match self {
            ShardFile::Local(file) => file.data_start(),
            #[cfg(feature = "http")]
            ShardFile::Remote(file) => file.data_start(),
            ShardFile::Other(file) => file.data_start(),
        }
    }
}

/// A checkpoint's file read as a [`Source`]: positioned reads (or copies from its map) of a
/// local file, Range requests of a remote one.
impl Source for ShardFile {
    fn size(&self) -> Result<u64, Error> {
        match self {
            ShardFile::Local(file) => Source::size(file.as_ref()),
            #[cfg(feature = "http")]
            ShardFile::Remote(file) => Source::size(file.source()),
            ShardFile::Other(file) => Source::size(file.as_ref()),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        match self {
            ShardFile::Local(file) => Source::read_at(file.as_ref(), offset, buf),
            #[cfg(feature = "http")]
            ShardFile::Remote(file) => Source::read_at(file.source(), offset, buf),
            ShardFile::Other(file) => Source::read_at(file.as_ref(), offset, buf),
        }
    }
}

/// One file of a checkpoint, opened on first use.
#[derive(Debug)]
struct Shard {
    /// The name the index gives it (the file name for a single file).
    name: String,
    /// Where it lives (for a remote shard, its URL as a path, for display).
    path: PathBuf,
    /// Its URL, for a remote shard.
    url: Option<String>,
    /// The open, validated file, once something asked for it.
    file: OnceLock<ShardFile>,
}

/// A safetensors checkpoint: one file, or the shards an index names. `Send + Sync`.
#[derive(Debug)]
pub struct Checkpoint {
    /// The index and its path, for a sharded checkpoint.
    index: Option<(PathBuf, ShardIndex)>,
    /// The files, in the index's (sorted) shard order.
    shards: Vec<Shard>,
    /// Tensor name -> position in `shards`.
    /// Tensor name -> shard, for a sharded checkpoint (a single file answers from its header,
    /// so opening one costs no second table of its names).
    names: BTreeMap<String, usize>,
    /// How local shards are opened (never `auto`: resolved at open).
    backend: Backend,
    /// Why `Backend::auto` picked `backend`, when it was asked for.
    auto: Option<AutoChoice>,
    /// Whether shards are read in parts (see [`Checkpoint::for_parts`]).
    parts: AtomicBool,
    /// The client remote shards are read with (boxed: a local checkpoint stays small).
    #[cfg(feature = "http")]
    client: Option<Box<crate::source::http::Client>>,
}

impl Checkpoint {
    /// Opens a file, a folder or an index JSON. A single file's header is read now; an
    /// index is parsed and every shard it names must exist, but no shard is read yet.
    ///
    /// With the `http` feature, an `http://` or `https://` location is opened with
    /// `Checkpoint::open_url` and a client with the default options.
    pub fn open(location: impl AsRef<Path>) -> Result<Self, Error> {
        Self::open_with(location, Backend::Pread)
    }

    /// [`Checkpoint::open`], with local files opened with `backend` (a memory map gives
    /// zero-copy views through [`SafeFile::tensor`]; see [`Backend::mmap`] for its contract).
    /// [`Backend::auto`] is resolved now, by the filesystem of the file (or of the index's
    /// folder, for every shard): [`Checkpoint::backend`] says what it picked.
    /// Remote shards are read with Range requests whatever the backend.
    pub fn open_with(location: impl AsRef<Path>, backend: Backend) -> Result<Self, Error> {
        #[cfg(feature = "http")]
        if let Some(url) = location
            .as_ref()
            .to_str()
            .filter(|l| crate::source::http::is_url(l))
        {
            let client =
                crate::source::http::Client::new(&crate::source::http::HttpOptions::default())?;
            return Self::open_url(url, &client);
        }
        match locate(location.as_ref())? {
            Layout::Single(path) => Self::open_file(path, backend),
            Layout::Sharded { index, folder } => Self::open_index(index, &folder, backend),
        }
    }

    fn open_file(path: PathBuf, backend: Backend) -> Result<Self, Error> {
        let file = SafeFile::open(&path, backend)?;
        let (backend, auto) = (file.backend(), file.auto_choice());
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shard = Shard {
            name,
            path,
            url: None,
            file: OnceLock::from(ShardFile::Local(Arc::new(file))),
        };
        Ok(Checkpoint {
            index: None,
            shards: vec![shard],
            names: BTreeMap::new(),
            backend,
            auto,
            parts: AtomicBool::new(false),
            #[cfg(feature = "http")]
            client: None,
        })
    }

    /// A checkpoint of one file read through a caller's `source` (a buffer in memory, a
    /// Python file object): its header is read and validated now. `name` is shown in errors
    /// and reports.
    ///
    /// ```
    /// use safetensors::checkpoint::Checkpoint;
    /// use safetensors::{serialize, Dtype};
    /// use safetensors::tensor::TensorView;
    ///
    /// let data = [0u8; 8];
    /// let view = TensorView::new(Dtype::F32, vec![2], &data).unwrap();
    /// let bytes = serialize([("w", view)], None).unwrap();
    /// let checkpoint = Checkpoint::from_source("buffer", bytes).unwrap();
    /// assert_eq!(checkpoint.names().collect::<Vec<_>>(), ["w"]);
    /// ```
    pub fn from_source(
        name: &str,
        source: impl Source + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let file = SourceFile::open(source)?;
        let shard = Shard {
            name: name.to_string(),
            path: PathBuf::from(name),
            url: None,
            file: OnceLock::from(ShardFile::Other(Arc::new(file))),
        };
        Ok(Checkpoint {
            index: None,
            shards: vec![shard],
            names: BTreeMap::new(),
            backend: Backend::Pread,
            auto: None,
            parts: AtomicBool::new(false),
            #[cfg(feature = "http")]
            client: None,
        })
    }

    /// Opens the `http(s)` URL of a safetensors file (its header is read now: two Range
    /// requests) or of an index JSON (fetched and parsed now; each shard, resolved next to
    /// it, is read the first time one of its tensors is asked for).
    #[cfg(feature = "http")]
    pub fn open_url(url: &str, client: &crate::source::http::Client) -> Result<Self, Error> {
        use crate::checkpoint::url_index::{is_index_url, resolve_sibling};
        use crate::source::http::UrlFile;
        if !is_index_url(url) {
            let file = UrlFile::open(client, url).map_err(|e| match e {
                Error::IoError(io) => Error::IoError(io),
                other => {
                    Error::InvalidIndex(format!("{url} is not a valid safetensors file: {other}"))
                }
            })?;
            let shard = Shard {
                name: url.to_string(),
                path: PathBuf::from(url),
                url: Some(url.to_string()),
                file: OnceLock::from(ShardFile::Remote(Arc::new(file))),
            };
            return Ok(Checkpoint {
                index: None,
                shards: vec![shard],
                names: BTreeMap::new(),
                backend: Backend::Pread,
                auto: None,
                parts: AtomicBool::new(false),
                client: Some(Box::new(client.clone())),
            });
        }
        let bytes = client.fetch_document(url)?;
        let index =
            ShardIndex::parse(&bytes).map_err(|e| Error::InvalidIndex(format!("{url}: {e}")))?;
        let files = index.files();
        let mut shards = Vec::with_capacity(files.len());
        for name in &files {
            let shard_url = resolve_sibling(url, name)?;
            shards.push(Shard {
                name: (*name).to_owned(),
                path: PathBuf::from(&shard_url),
                url: Some(shard_url),
                file: OnceLock::new(),
            });
        }
        let names = Self::names_of(&index, &files);
        Ok(Checkpoint {
            index: Some((PathBuf::from(url), index)),
            shards,
            names,
            backend: Backend::Pread,
            auto: None,
            parts: AtomicBool::new(false),
            client: Some(Box::new(client.clone())),
        })
    }

    /// Tensor name -> position of its shard in `files`.
    fn names_of(index: &ShardIndex, files: &[&str]) -> BTreeMap<String, usize> {
        index
            .weight_map
            .iter()
            .map(|(tensor, file)| {
                let at = files
                    .binary_search(&file.as_str())
                    .expect("files() lists it");
                (tensor.clone(), at)
            })
            .collect()
    }

    fn open_index(index_path: PathBuf, folder: &Path, backend: Backend) -> Result<Self, Error> {
        // `auto` decides once for the checkpoint, by the filesystem of the index's folder,
        // where the layout puts every shard.
        let auto = match backend.is_auto() {
            true => Some(AutoChoice::for_path(&index_path)?),
            false => None,
        };
        let backend = auto.map_or(backend, AutoChoice::backend);
        let bytes = std::fs::read(&index_path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the index {}: {e}", index_path.display()),
            )
        })?;
        let index = ShardIndex::parse(&bytes)
            .map_err(|e| Error::InvalidIndex(format!("{}: {e}", index_path.display())))?;
        let files = index.files();
        let mut shards = Vec::with_capacity(files.len());
        for name in &files {
            let path = folder.join(name);
            if !path.is_file() {
                let tensor = index
                    .weight_map
                    .iter()
                    .find(|(_, f)| f == name)
                    .map(|(t, _)| t.as_str())
                    .unwrap_or_default();
                return Err(Error::IoError(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "the index {} maps tensor `{tensor}` to {name}, but {} does not exist",
                        index_path.display(),
                        path.display()
                    ),
                )));
            }
            shards.push(Shard {
                name: (*name).to_owned(),
                path,
                url: None,
                file: OnceLock::new(),
            });
        }
        let names = Self::names_of(&index, &files);
        Ok(Checkpoint {
            index: Some((index_path, index)),
            shards,
            names,
            backend,
            auto,
            parts: AtomicBool::new(false),
            #[cfg(feature = "http")]
            client: None,
        })
    }

    /// How local files are read: the backend asked for at open, or what [`Backend::auto`]
    /// resolved to (never `auto` itself). Remote files and caller sources are not mapped:
    /// [`Backend::Pread`].
    ///
    /// ```no_run
    /// use safetensors::checkpoint::{Backend, Checkpoint};
    ///
    /// // SAFETY: nobody modifies the file in place while it is open (see `Backend::mmap`).
    /// let checkpoint = Checkpoint::open_with("model.safetensors", unsafe { Backend::auto() })?;
    /// // "pread (nfs)", "mmap (ext4)", ...
    /// println!("{} {}", checkpoint.backend().name(), checkpoint.auto_choice().unwrap());
    /// # Ok::<(), safetensors::Error>(())
    /// ```
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why [`Backend::auto`] picked [`Checkpoint::backend`]: the filesystem it saw, or the
    /// environment's override. `None` when another backend was asked for.
    pub fn auto_choice(&self) -> Option<AutoChoice> {
        self.auto
    }

    /// True when the checkpoint is an index of shards.
    pub fn is_sharded(&self) -> bool {
        self.index.is_some()
    }

    /// True when the checkpoint's files are at URLs.
    pub fn is_remote(&self) -> bool {
        self.shards.iter().any(|s| s.url.is_some())
    }

    /// The index and the path it was read from (its URL as a path, for a remote one), for a
    /// sharded checkpoint.
    pub fn index(&self) -> Option<(&Path, &ShardIndex)> {
        self.index.as_ref().map(|(p, i)| (p.as_path(), i))
    }

    /// The header of a single-file checkpoint (opened with the checkpoint); `None` for an
    /// index of shards.
    fn single(&self) -> Option<&Metadata> {
        match (&self.index, self.shards.first().and_then(|s| s.file.get())) {
            (None, Some(file)) => Some(file.metadata()),
            _ => None,
        }
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> Box<dyn ExactSizeIterator<Item = &str> + '_> {
        match self.single() {
            Some(metadata) => Box::new(metadata.iter_names_sorted()),
            None => Box::new(self.names.keys().map(String::as_str)),
        }
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        match self.single() {
            Some(metadata) => metadata.len(),
            None => self.names.len(),
        }
    }

    /// True when the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when some shard holds tensor `name` (by the index; no shard is read).
    pub fn contains(&self, name: &str) -> bool {
        self.shard_of(name).is_some()
    }

    /// The number of files.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Which shard holds tensor `name` (by the index; no shard is read).
    pub fn shard_of(&self, name: &str) -> Option<usize> {
        match self.single() {
            Some(metadata) => metadata.contains(name).then_some(0),
            None => self.names.get(name).copied(),
        }
    }

    /// Shard `i`'s name, as the index spells it (the file name for a single file).
    pub fn shard_name(&self, i: usize) -> &str {
        &self.shards[i].name
    }

    /// Shard `i`'s path (for a remote shard, its URL as a path).
    pub fn shard_path(&self, i: usize) -> &Path {
        &self.shards[i].path
    }

    /// Shard `i`'s URL, for a remote checkpoint.
    pub fn shard_url(&self, i: usize) -> Option<&str> {
        self.shards[i].url.as_deref()
    }

    /// Shard `i` as a local file, opened and checked against the index on first use. A
    /// remote file or one over a caller's source is an `InvalidArgument` error: use
    /// [`Checkpoint::shard_file`].
    pub fn shard(&self, i: usize) -> Result<&Arc<SafeFile>, Error> {
        match self.shard_file(i)? {
            ShardFile::Local(file) => Ok(file),
            #[cfg(feature = "http")]
            ShardFile::Remote(file) => Err(Error::InvalidArgument(format!(
                "shard {} is at a URL, not on disk: read it through Checkpoint::shard_file",
                file.url()
            ))),
            ShardFile::Other(_) => Err(Error::InvalidArgument(format!(
                "{} is read through a source, not a file on disk: read it through \
                 Checkpoint::shard_file",
                self.shards[i].name
            ))),
        }
    }

    /// Opens shard `i`, local or remote.
    fn open_shard(&self, shard: &Shard) -> Result<ShardFile, Error> {
        #[cfg(feature = "http")]
        if let (Some(url), Some(client)) = (&shard.url, &self.client) {
            let file = crate::source::http::UrlFile::open(client, url).map_err(|e| match e {
                Error::IoError(io) => Error::IoError(io),
                other => Error::InvalidIndex(format!(
                    "shard {url} is not a valid safetensors file: {other}"
                )),
            })?;
            return Ok(ShardFile::Remote(Arc::new(file)));
        }
        let opened = std::fs::File::open(&shard.path).map_err(Error::IoError);
        let file = opened
            .and_then(|file| {
                // Before the header is read: its read would otherwise set the kernel's
                // readahead off past it, into bytes a reader of parts may not want.
                if self.parts.load(Ordering::Relaxed) {
                    crate::source::cache::advise_random(&file);
                }
                SafeFile::from_file(file, self.backend)
            })
            .map_err(|e| match e {
                Error::IoError(io) => Error::IoError(io::Error::new(
                    io.kind(),
                    format!("cannot open shard {}: {io}", shard.path.display()),
                )),
                other => Error::InvalidIndex(format!(
                    "shard {} is not a valid safetensors file: {other}",
                    shard.path.display()
                )),
            })?;
        Ok(ShardFile::Local(Arc::new(file)))
    }

    /// Shard `i`, local or remote, opened and checked against the index on first use.
    pub fn shard_file(&self, i: usize) -> Result<&ShardFile, Error> {
        let shard = &self.shards[i];
        if let Some(file) = shard.file.get() {
            return Ok(file);
        }
        let file = self.open_shard(shard)?;
        self.check_shard(shard, file)
    }

    /// Checks a freshly opened shard against the index and keeps it.
    fn check_shard<'a>(
        &'a self,
        shard: &'a Shard,
        file: ShardFile,
    ) -> Result<&'a ShardFile, Error> {
        if let Some((index_path, index)) = &self.index {
            let problems = index.shard_problems(&shard.name, &file.metadata());
            if !problems.is_empty() {
                let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return Err(Error::InvalidIndex(format!(
                    "shard {} disagrees with the index {}: {}",
                    shard.path.display(),
                    index_path.display(),
                    listed.join("; ")
                )));
            }
        }
        // Two threads may race to open a shard: both files are valid, one is kept.
        Ok(shard.file.get_or_init(|| file))
    }

    /// Opens every shard not opened yet; remote ones several at a time (two Range requests
    /// each), so that a call that needs every header waits a few round trips, not 2 per shard.
    pub fn open_all(&self) -> Result<(), Error> {
        #[cfg(feature = "http")]
        if let Some(client) = &self.client {
            let waiting: Vec<&Shard> = self
                .shards
                .iter()
                .filter(|s| s.file.get().is_none())
                .collect();
            let urls: Vec<String> = waiting.iter().filter_map(|s| s.url.clone()).collect();
            if urls.len() == waiting.len() && urls.len() > 1 {
                for (shard, opened) in waiting
                    .into_iter()
                    .zip(crate::source::http::UrlFile::open_many(client, &urls))
                {
                    let url = shard.url.as_deref().unwrap_or_default();
                    let file = opened.map_err(|e| match e {
                        Error::IoError(io) => Error::IoError(io),
                        other => Error::InvalidIndex(format!(
                            "shard {url} is not a valid safetensors file: {other}"
                        )),
                    })?;
                    self.check_shard(shard, ShardFile::Remote(Arc::new(file)))?;
                }
            }
        }
        for i in 0..self.shards.len() {
            self.shard_file(i)?;
        }
        Ok(())
    }

    /// Declares that the checkpoint is read in parts (one rank's share of each tensor): local
    /// files, those open now and those opened later, get the kernel's random-access advice
    /// before anything more is read from them, so its readahead fetches no bytes past what
    /// each read asks for (another rank's). Large reads stay large.
    pub fn for_parts(&self) {
        self.parts.store(true, Ordering::Relaxed);
        for shard in &self.shards {
            if let Some(ShardFile::Local(file)) = shard.file.get() {
                crate::source::cache::advise_random(file.file());
            }
        }
    }

    /// Every file's validated header, moved out of the checkpoint (no header is copied), with
    /// the index: what a headers-only report needs. A single file is named by its path or
    /// URL, a shard as the index spells it. Files not opened yet are opened now
    /// (remote ones several at a time) and not held against the index: the report says where
    /// they disagree. An error comes with the path or URL of the file it is about.
    #[allow(clippy::type_complexity)]
    pub fn into_headers(
        self,
    ) -> Result<(Option<ShardIndex>, Vec<(String, FileHeader)>), (String, Error)> {
        let shown = |shard: &Shard| {
            shard
                .url
                .clone()
                .unwrap_or_else(|| shard.path.display().to_string())
        };
        #[cfg(feature = "http")]
        if let Some(client) = &self.client {
            let waiting: Vec<&Shard> = self
                .shards
                .iter()
                .filter(|s| s.file.get().is_none())
                .collect();
            let urls: Vec<String> = waiting.iter().filter_map(|s| s.url.clone()).collect();
            if urls.len() == waiting.len() {
                for (shard, opened) in waiting
                    .into_iter()
                    .zip(crate::source::http::UrlFile::open_many(client, &urls))
                {
                    let file = opened.map_err(|e| (shown(shard), e))?;
                    let _ = shard.file.set(ShardFile::Remote(Arc::new(file)));
                }
            }
        }
        for shard in &self.shards {
            if shard.file.get().is_none() {
                let file = self.open_shard(shard).map_err(|e| (shown(shard), e))?;
                let _ = shard.file.set(file);
            }
        }
        let single = self.index.is_none();
        let mut headers = Vec::with_capacity(self.shards.len());
        for shard in self.shards {
            // A single file is named by its path or URL, a shard as the index spells it.
            let name = if single {
                shown(&shard)
            } else {
                shard.name.clone()
            };
            let header = match shard.file.into_inner() {
                Some(ShardFile::Local(file)) => Arc::try_unwrap(file)
                    .map(SafeFile::into_header)
                    .unwrap_or_else(|shared| FileHeader {
                        file_len: shared.data_start() + shared.metadata().data_len() as u64,
                        header_len: shared.header_len(),
                        metadata: shared.metadata().clone(),
                    }),
                #[cfg(feature = "http")]
                Some(ShardFile::Remote(file)) => Arc::try_unwrap(file)
                    .map(crate::source::http::UrlFile::into_header)
                    .unwrap_or_else(|shared| shared.header().clone()),
                Some(ShardFile::Other(file)) => Arc::try_unwrap(file)
                    .map(SourceFile::into_header)
                    .unwrap_or_else(|shared| shared.header().clone()),
                None => unreachable!("every shard was opened above"),
            };
            headers.push((name, header));
        }
        Ok((self.index.map(|(_, index)| index), headers))
    }

    /// The shard holding tensor `name` (opened if needed, local or remote) and the
    /// tensor's header entry.
    pub fn tensor_file(&self, name: &str) -> Result<(&ShardFile, TensorInfo), Error> {
        let at = self
            .shard_of(name)
            .ok_or_else(|| Error::TensorNotFound(crate::format::error::excerpt(name)))?;
        let file = self.shard_file(at)?;
        let info = file
            .metadata()
            .entry(name)
            .ok_or_else(|| Error::TensorNotFound(crate::format::error::excerpt(name)))?;
        Ok((file, info))
    }

    /// The shard holding tensor `name` (opened if needed) and the tensor's header entry.
    pub fn tensor(&self, name: &str) -> Result<(&Arc<SafeFile>, TensorInfo), Error> {
        let (_, info) = self.tensor_file(name)?;
        let at = self.shard_of(name).expect("tensor_file found its shard");
        Ok((self.shard(at)?, info))
    }

    /// Every tensor name in shard order, then by position of its data within the shard.
    /// Opens every shard.
    pub fn offset_keys(&self) -> Result<Vec<String>, Error> {
        self.open_all()?;
        let mut keys = Vec::with_capacity(self.len());
        for i in 0..self.shards.len() {
            keys.extend(self.shard_file(i)?.metadata().offset_keys());
        }
        Ok(keys)
    }

    /// The checkpoint's metadata as string pairs: for a sharded checkpoint the index's
    /// `metadata` (non-string values as their JSON text, e.g. `total_size`), then each
    /// shard's `__metadata__` keys not seen yet; for one file its `__metadata__`. None when
    /// there is none at all. Opens every shard.
    pub fn metadata(&self) -> Result<Option<Vec<(String, String)>>, Error> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut any = false;
        if let Some((_, index)) = &self.index {
            if let Some(map) = &index.metadata {
                any = true;
                for (key, value) in map {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    pairs.push((key.clone(), text));
                }
            }
        }
        self.open_all()?;
        for i in 0..self.shards.len() {
            if let Some(shard_pairs) = self.shard_file(i)?.metadata().metadata_ordered() {
                any = true;
                for (key, value) in shard_pairs {
                    if !pairs.iter().any(|(k, _)| k == key) {
                        pairs.push((key.into(), value.into()));
                    }
                }
            }
        }
        Ok(any.then_some(pairs))
    }
}
