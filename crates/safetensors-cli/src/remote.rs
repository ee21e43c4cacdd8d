//! URLs on the command line, read through the core's one HTTP client (`safetensors::checkpoint::Client`,
//! shared with the Python package): this module only gives the client the CLI's user agent
//! and turns its errors into the CLI's.

use safetensors::checkpoint::{Client, HttpError, HttpOptions};
use safetensors::Error as CoreError;

use crate::error::Error;

pub use safetensors::checkpoint::is_url;

/// The client `inspect URL` uses: the core's defaults (time limits, `SAFETENSORS_HTTP_TIMEOUT`,
/// bounded redirects and retries) with the CLI's user agent.
pub fn client() -> Result<Client, Error> {
    let options = HttpOptions {
        user_agent: concat!("safetensors-cli/", env!("CARGO_PKG_VERSION")).to_string(),
        ..HttpOptions::default()
    };
    Client::new(&options).map_err(|e| Error::invalid("HTTP client", e.to_string()))
}

/// A core error about `url` (a file or an index JSON): an HTTP failure names its URL, an
/// unusable index is invalid, a bad header is a format error.
pub fn url_error(url: &str, error: CoreError) -> Error {
    match error {
        CoreError::IoError(io) => match io.downcast::<HttpError>() {
            Ok(http) => Error::Http {
                url: http.url,
                message: http.message,
            },
            Err(io) => Error::from_core(url, CoreError::IoError(io)),
        },
        CoreError::InvalidIndex(message) => Error::invalid(url, message),
        other => Error::from_core(url, other),
    }
}
