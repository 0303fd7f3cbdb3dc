//! Driver-side discovery: which files a source matches, and which columns they have.

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use super::compression::decompressed_head;
use crate::error::{Error, Result};
use crate::spec::Compression;

/// Bytes read from the start of each file to find its columns.
const HEAD_BYTES: u64 = 256 * 1024;

/// Files under `url` matching its glob (`*` within a path segment, `**` across segments),
/// sorted, skipping hidden files (`_` or `.` prefixed) as Spark does.
pub async fn discover_files(store: &Arc<dyn ObjectStore>, url: &Url) -> Result<Vec<(Url, u64)>> {
    let segments: Vec<String> = url
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let glob_at = segments
        .iter()
        .position(|s| s.contains('*'))
        .unwrap_or(segments.len());
    let prefix = Path::from_iter(segments[..glob_at].iter().map(String::as_str));
    let pattern = &segments[glob_at..];
    let listed: Vec<_> =
        store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|source| Error::ObjectStore {
                url: url.to_string(),
                source: Box::new(source),
            })?;
    let mut files: Vec<(Url, u64)> = listed
        .into_iter()
        .filter_map(|meta| {
            let rel: Vec<String> = meta
                .location
                .prefix_match(&prefix)?
                .map(|p| p.as_ref().to_string())
                .collect();
            let rel: Vec<&str> = rel.iter().map(String::as_str).collect();
            let hidden = rel.iter().any(|p| p.starts_with('_') || p.starts_with('.'));
            let matches = pattern.is_empty() || glob_match(pattern, &rel);
            (!hidden && matches).then(|| (file_url(url, &meta.location), meta.size))
        })
        .collect();
    files.sort();
    Ok(files)
}

fn file_url(base: &Url, location: &Path) -> Url {
    let mut url = base.clone();
    url.set_path(&format!("/{}", location.as_ref()));
    url
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Matches path segments against glob segments.
fn glob_match(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => (0..=path.len()).any(|skip| glob_match(rest, &path[skip..])),
        Some((p, rest)) => match path.split_first() {
            Some((segment, path_rest)) => {
                segment_match(p.as_bytes(), segment.as_bytes()) && glob_match(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` matches any run of characters within one segment.
fn segment_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| segment_match(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && segment_match(rest, &text[1..]),
    }
}

/// Column names of each file: its CSV header, or the JSON keys seen in its first lines in
/// first-seen order.
pub async fn columns_per_file(
    store: &Arc<dyn ObjectStore>,
    files: &[(Url, u64)],
    csv_delimiter: Option<u8>,
    compression: Compression,
    skip_unreadable: bool,
) -> Result<Vec<(Url, Vec<String>)>> {
    let mut out = Vec::with_capacity(files.len());
    for (url, size) in files {
        let head = read_head(store, url, *size).await?;
        let head = match decompressed_head(compression, url.as_str(), head, HEAD_BYTES as usize) {
            Ok(head) => head,
            // The scan quarantines it; it has no columns to give.
            Err(message) if skip_unreadable => {
                tracing::warn!(%url, message, "unreadable landing file");
                out.push((url.clone(), Vec::new()));
                continue;
            }
            Err(message) => {
                return Err(Error::LandingFile {
                    url: url.to_string(),
                    message,
                });
            }
        };
        let mut columns = Vec::new();
        match csv_delimiter {
            Some(delimiter) => columns = csv_header(&head, delimiter),
            None => json_keys(&head, &mut columns),
        }
        out.push((url.clone(), columns));
    }
    Ok(out)
}

async fn read_head(store: &Arc<dyn ObjectStore>, url: &Url, size: u64) -> Result<Bytes> {
    let path = Path::from_url_path(url.path()).map_err(|e| Error::Url {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    if size == 0 {
        return Ok(Bytes::new());
    }
    let bytes = store
        .get_range(&path, 0..size.min(HEAD_BYTES))
        .await
        .map_err(|source| Error::ObjectStore {
            url: url.to_string(),
            source: Box::new(source),
        })?;
    Ok(bytes)
}

fn csv_header(head: &[u8], delimiter: u8) -> Vec<String> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .from_reader(head);
    let mut record = ::csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => record
            .iter()
            .map(|s| s.trim().trim_start_matches('\u{feff}').to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn json_keys(head: &[u8], columns: &mut Vec<String>) {
    // The last line of a truncated head may be cut short; unparseable lines are skipped here
    // and reported by the scan itself.
    for line in head.split(|b| *b == b'\n') {
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(line) {
            for key in object.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments() {
        let p = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert!(glob_match(&p("*.csv"), &["orders.csv"]));
        assert!(!glob_match(&p("*.csv"), &["a", "orders.csv"]));
        assert!(glob_match(&p("**/*.csv"), &["a", "b", "orders.csv"]));
        assert!(glob_match(&p("**/*.csv"), &["orders.csv"]));
        assert!(glob_match(
            &p("batch_*/orders*.csv"),
            &["batch_1", "orders_2.csv"]
        ));
        assert!(!glob_match(&p("batch_*/orders*.csv"), &["batch_1", "items.csv"]));
    }

    #[test]
    fn reads_headers_and_json_keys() {
        assert_eq!(csv_header(b"\xef\xbb\xbfid, name\n1,a\n", b','), ["id", "name"]);
        let mut cols = vec![];
        json_keys(
            b"{\"a\":1,\"b\":{\"c\":2}}\nnot json\n{\"d\":null,\"a\":3}\n{\"tr",
            &mut cols,
        );
        assert_eq!(cols, ["a", "b", "d"]);
    }
}
