//! Object stores for every URL a pipeline uses — `file://`, `s3://`/`s3a://`,
//! `abfss://`/`abfs://`/`az://`/`azure://` and `memory://` — built once per bucket or container
//! and shared by the client, the scheduler and the executors of a process.
//!
//! Credentials and endpoints come from the environment, the way the clouds hand them out
//! (`AWS_*` for S3 and S3-compatible stores, `AZURE_*` for ADLS Gen2 / Blob Storage), never from
//! the pipeline spec. Delta commits go through deltalake's own stores, which read the same
//! variables; [`register_delta_handlers`] enables its S3 and Azure support.

mod registry;
mod retry;

pub use registry::{StoreRegistry, runtime_env, shared_registry};
pub use retry::{RetrySettings, retry_settings};

/// A deltalake table builder for `url` with this process's retry policy.
pub fn delta_builder(url: &url::Url) -> deltalake::DeltaResult<deltalake::DeltaTableBuilder> {
    Ok(deltalake::DeltaTableBuilder::from_url(url.clone())?
        .with_storage_options(retry_settings().delta_options()))
}

/// The shared store for `url` and the path of `url` inside it.
pub fn store_for(
    url: &url::Url,
) -> crate::Result<(
    std::sync::Arc<dyn object_store::ObjectStore>,
    object_store::path::Path,
)> {
    use datafusion::execution::object_store::ObjectStoreRegistry;
    let err = |message: String| crate::Error::Url {
        url: url.to_string(),
        message,
    };
    let store = shared_registry().get_store(url).map_err(|e| err(e.to_string()))?;
    let path = object_store::path::Path::from_url_path(url.path()).map_err(|e| err(e.to_string()))?;
    Ok((store, path))
}

/// The shared store for a table, rooted at the table's folder (what deltalake's writer expects).
pub fn table_store(url: &url::Url) -> crate::Result<std::sync::Arc<dyn object_store::ObjectStore>> {
    let (store, path) = store_for(url)?;
    Ok(std::sync::Arc::new(object_store::prefix::PrefixStore::new(
        store, path,
    )))
}

/// Lets deltalake open `s3://` and `abfss://` tables (call once per process, before any I/O).
pub fn register_delta_handlers() {
    deltalake::aws::register_handlers(None);
    deltalake::azure::register_handlers(None);
}

/// Deletes every object under the folder `url` (best effort: failures are logged, since what
/// is left is scratch data no table refers to).
pub async fn delete_folder(url: &url::Url) {
    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    let Ok((store, prefix)) = store_for(url) else {
        return;
    };
    let mut listing = store.list(Some(&prefix));
    while let Some(entry) = listing.next().await {
        let result = match entry {
            Ok(meta) => store.delete(&meta.location).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(%url, error = %e, "could not delete scratch data");
        }
    }
    // Local disk keeps the emptied folders; object stores have none.
    if let Ok(path) = url.to_file_path()
        && let Err(e) = tokio::fs::remove_dir_all(&path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(%url, error = %e, "could not delete scratch folders");
    }
}
