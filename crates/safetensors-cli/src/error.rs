//! The CLI's error type. Every variant names the file, URL or tensor involved so that the
//! one line `main` prints is enough to act on; causes are kept as `source()`.

use safetensors::Error as CoreError;

/// A failure of one subcommand.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done, e.g. "read" or "create folder".
        action: &'static str,
        /// The path involved.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The core rejected a file (or a header read from a URL).
    #[error("{path} is not a valid safetensors file")]
    Format {
        /// The file or URL.
        path: String,
        /// The core's reason, naming the tensor and the numbers.
        #[source]
        source: CoreError,
    },
    /// The core failed while writing an output file.
    #[error("cannot write {path}")]
    Write {
        /// The output file.
        path: String,
        /// The core's reason.
        #[source]
        source: CoreError,
    },
    /// A file is malformed in a way found by the CLI itself (header bounds, index json, ...).
    #[error("{path}: {message}")]
    Invalid {
        /// The file, URL or folder.
        path: String,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// An HTTP request failed or the server answered something unusable.
    #[error("{url}: {message}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The PyTorch checkpoint conversion failed.
    #[error("cannot convert{}", if source.to_string().contains(input.as_str()) { String::new() } else { format!(" {input}") })]
    Convert {
        /// The input checkpoint or folder.
        input: String,
        /// The converter's reason (boxed: it is large, and rare).
        #[source]
        source: Box<safetensors_convert::ConvertError>,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(
        action: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Wraps a core error about `path`: an I/O failure reads as one (not as an invalid file).
    pub fn from_core(path: impl std::fmt::Display, source: CoreError) -> Self {
        match source {
            // A CLI error (an HTTP failure) raised inside a `Source` the core was reading.
            CoreError::IoError(e) => match e.downcast::<Error>() {
                Ok(inner) => inner,
                Err(e) => Error::Io {
                    action: "read",
                    path: path.to_string(),
                    source: e,
                },
            },
            source => Error::Format {
                path: path.to_string(),
                source,
            },
        }
    }

    /// An [`Error::Invalid`] for `path`.
    pub fn invalid(path: impl std::fmt::Display, message: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.to_string(),
            message: message.into(),
        }
    }
}

/// `error` and its sources joined by `": "` on one line (what `anyhow` prints with `{:#}`).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source's message in their own; say it once.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// `text` with line breaks folded into spaces, so every error is one line.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
