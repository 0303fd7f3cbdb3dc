//! Data files that carry the attempt that wrote them in their name
//! (`<tag>-part-00000-<uuid>-c000.snappy.parquet`), so the files of an attempt that never
//! committed can be found and deleted without touching anyone else's.
//!
//! deltalake's writer picks file names itself; [`TaggedStore`] is the store it writes through,
//! renaming each object it creates, and [`tag_path`] renames the `Add` action's path the same
//! way. Only the writer uses this store, so listing passes through unchanged.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use url::Url;

/// `path` with its file name prefixed by `<tag>-`; works on store paths and on the
/// URL-encoded relative paths of `Add` actions alike, since tags are plain ASCII.
pub fn tag_path(path: &str, tag: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{tag}-{name}"),
        None => format!("{tag}-{path}"),
    }
}

/// A store that writes every object under its tagged name.
#[derive(Debug)]
pub(crate) struct TaggedStore {
    inner: Arc<dyn ObjectStore>,
    tag: String,
}

impl TaggedStore {
    pub(crate) fn new(inner: Arc<dyn ObjectStore>, tag: &str) -> Self {
        Self {
            inner,
            tag: tag.to_string(),
        }
    }

    fn tagged(&self, location: &Path) -> Path {
        Path::from(tag_path(location.as_ref(), &self.tag))
    }
}

impl fmt::Display for TaggedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tagged({}, {})", self.tag, self.inner)
    }
}

#[async_trait]
impl ObjectStore for TaggedStore {
    async fn put_opts(&self, location: &Path, payload: PutPayload, opts: PutOptions) -> Result<PutResult> {
        self.inner.put_opts(&self.tagged(location), payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(&self.tagged(location), opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(&self.tagged(location), options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(&self.tagged(location), ranges).await
    }

    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        let tag = self.tag.clone();
        let tagged = locations.map(move |l| l.map(|p| Path::from(tag_path(p.as_ref(), &tag))));
        self.inner.delete_stream(tagged.boxed())
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// Deletes the files `tag` wrote under the table at `url` that its current version does not
/// reference: what an attempt that failed or was abandoned left behind. Best effort — such
/// files are invisible to readers either way — so failures are logged, not returned.
pub async fn discard_tagged(url: &Url, tag: &str) {
    // Without the table's state nothing can be known to be unreferenced: keep everything.
    let committed: std::collections::HashSet<Path> = match super::TableSnapshot::load(url).await {
        Ok(Some(snapshot)) => match snapshot.scan_table() {
            Ok(scan) => match scan.files.iter().map(|f| Path::from_url_path(&f.path)).collect() {
                Ok(paths) => paths,
                Err(_) => return,
            },
            Err(_) => return,
        },
        Ok(None) => Default::default(),
        Err(_) => return,
    };
    let Ok(store) = crate::storage::table_store(url) else {
        return;
    };
    let prefix = format!("{tag}-");
    let mut listing = store.list(None);
    let mut deleted = 0usize;
    while let Some(entry) = listing.next().await {
        let Ok(meta) = entry else { continue };
        let path = meta.location.as_ref().to_string();
        let ours = meta.location.filename().is_some_and(|n| n.starts_with(&prefix));
        if !ours || path.starts_with("_delta_log") || committed.contains(&meta.location) {
            continue;
        }
        match store.delete(&meta.location).await {
            Ok(()) => deleted += 1,
            Err(e) => tracing::warn!(%url, %path, error = %e, "could not delete an uncommitted data file"),
        }
    }
    if deleted > 0 {
        tracing::info!(%url, tag, files = deleted, "deleted the files of a failed attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::PutPayload;
    use object_store::memory::InMemory;

    #[test]
    fn tags_the_file_name_only() {
        assert_eq!(tag_path("part-0.parquet", "run-1-a2"), "run-1-a2-part-0.parquet");
        assert_eq!(
            tag_path("day=2024-01-01/part-0.parquet", "t"),
            "day=2024-01-01/t-part-0.parquet"
        );
    }

    #[tokio::test]
    async fn writes_and_reads_under_the_tagged_name() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = TaggedStore::new(Arc::clone(&inner), "run-7-a1");
        let path = Path::from("k=1/part-0.parquet");
        store.put(&path, PutPayload::from_static(b"x")).await.unwrap();
        assert!(
            inner
                .head(&Path::from("k=1/run-7-a1-part-0.parquet"))
                .await
                .is_ok()
        );
        assert!(inner.head(&path).await.is_err());
        assert_eq!(
            store.get(&path).await.unwrap().bytes().await.unwrap().as_ref(),
            b"x"
        );
    }
}
