//! Where the shards of a checkpoint at a URL are: an index JSON's URL, and each shard name
//! of its `weight_map` resolved next to it, refusing names that would point elsewhere.

use crate::checkpoint::shard_index::check_shard_name;
use crate::format::error::Error;

/// True when the URL names an index JSON (its path ends with `.json`) rather than a file.
pub fn is_index_url(url: &str) -> bool {
    url.split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase()
        .ends_with(".json")
}

/// Resolves `name` (a shard file name from an index JSON) against the URL of the index.
///
/// Names are relative paths (see [`check_shard_name`]): absolute URLs,
/// absolute paths, `..` components, queries and fragments are refused, so an index cannot
/// point the reader elsewhere. The index URL's own query (a signed URL's token) is dropped.
///
/// ```
/// use safetensors::checkpoint::url_index::resolve_sibling;
/// let index = "https://host/org/model/resolve/main/model.safetensors.index.json";
/// assert_eq!(
///     resolve_sibling(index, "model-00001-of-00002.safetensors").unwrap(),
///     "https://host/org/model/resolve/main/model-00001-of-00002.safetensors"
/// );
/// assert!(resolve_sibling(index, "../secret.safetensors").is_err());
/// ```
pub fn resolve_sibling(index_url: &str, name: &str) -> Result<String, Error> {
    check_shard_name(name).map_err(|e| Error::InvalidIndex(format!("{index_url}: {e}")))?;
    let without_query = index_url.split(['?', '#']).next().unwrap_or(index_url);
    let path_start = without_query
        .find("://")
        .map(|scheme_end| scheme_end + 3)
        .and_then(|authority| without_query[authority..].find('/').map(|p| authority + p));
    let base = match (path_start, without_query.rfind('/')) {
        (Some(_), Some(slash)) => &without_query[..=slash],
        _ => {
            return Err(Error::InvalidIndex(format!(
                "{index_url}: cannot tell the folder of this URL"
            )))
        }
    };
    let mut url = String::from(base);
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                url.push(byte as char)
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_index_urls() {
        assert!(is_index_url("http://h/a/model.safetensors.index.json?x=1"));
        assert!(!is_index_url("http://h/a/model.safetensors?x=.json"));
    }

    #[test]
    fn resolves_shards_next_to_the_index() {
        let index = "https://host/org/model/resolve/main/model.safetensors.index.json";
        assert_eq!(
            resolve_sibling("http://h/a/index.json?download=1", "sub dir/x.safetensors").unwrap(),
            "http://h/a/sub%20dir/x.safetensors"
        );
        for bad in [
            "../x.safetensors",
            "/etc/passwd",
            "http://evil/x",
            "a/../../b",
            "x?y",
            "",
        ] {
            assert!(resolve_sibling(index, bad).is_err(), "{bad}");
        }
        assert!(resolve_sibling("http://host", "x.safetensors").is_err());
    }
}
