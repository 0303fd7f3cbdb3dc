//! Deterministic landing-data generators with realistic dirt.

mod changes;
mod ecommerce;
mod example;
mod ratings;
mod rng;

pub use changes::ChangesData;
pub use ecommerce::{EcommerceData, STREAMED_SOURCES, Written};
pub use example::{ExampleData, GeneratedFiles};
pub use ratings::RatingsData;
pub use rng::Rng;

/// Writes `text` to `rel` below `root` (the store of `out`); returns the file's URL.
async fn put_text(
    store: &dyn object_store::ObjectStore,
    (out, root): (&url::Url, &object_store::path::Path),
    rel: &str,
    text: String,
) -> crate::error::Result<String> {
    use object_store::ObjectStoreExt;
    let path = rel.split('/').fold(root.clone(), |p, part| p.join(part));
    let url = format!("{}/{rel}", out.as_str().trim_end_matches('/'));
    store
        .put(&path, text.into_bytes().into())
        .await
        .map_err(|source| crate::error::Error::ObjectStore {
            url: url.clone(),
            source: Box::new(source),
        })?;
    Ok(url)
}
