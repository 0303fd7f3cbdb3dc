//! A DataFusion object-store registry that builds stores on first use from the URL and the
//! environment, and keeps them for the life of the process.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use url::Url;

/// Stores by `scheme://authority`, created lazily.
#[derive(Debug, Default)]
pub struct StoreRegistry {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

impl StoreRegistry {
    fn build(url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let err = |e: object_store::Error| DataFusionError::External(Box::new(e));
        let retry = super::retry::retry_settings().retry_config();
        let store: Arc<dyn ObjectStore> = match url.scheme() {
            "file" => Arc::new(LocalFileSystem::new()),
            "memory" => Arc::new(InMemory::new()),
            "s3" | "s3a" => {
                let s3 = AmazonS3Builder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry);
                Arc::new(s3.build().map_err(err)?)
            }
            "abfs" | "abfss" | "az" | "azure" | "adl" => {
                let az = MicrosoftAzureBuilder::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry);
                Arc::new(az.build().map_err(err)?)
            }
            other => {
                return Err(DataFusionError::Configuration(format!(
                    "no object store for `{other}://` URLs ({url}); use file://, s3://, abfss:// or az://"
                )));
            }
        };
        Ok(store)
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(&self, url: &Url, store: Arc<dyn ObjectStore>) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .expect("store registry lock")
            .insert(key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .expect("store registry lock")
            .remove(&key(url))
            .ok_or_else(|| DataFusionError::Internal(format!("no object store registered for {url}")))
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let k = key(url);
        if let Some(store) = self.stores.read().expect("store registry lock").get(&k) {
            return Ok(Arc::clone(store));
        }
        let store = Self::build(url)?;
        let mut stores = self.stores.write().expect("store registry lock");
        Ok(Arc::clone(stores.entry(k).or_insert(store)))
    }
}

/// The process-wide registry.
pub fn shared_registry() -> Arc<StoreRegistry> {
    static REGISTRY: OnceLock<Arc<StoreRegistry>> = OnceLock::new();
    Arc::clone(REGISTRY.get_or_init(Default::default))
}

/// A runtime over the shared registry, spilling to `temp_dir` when given.
pub fn runtime_env(temp_dir: Option<&str>) -> Result<Arc<RuntimeEnv>> {
    let mut builder = RuntimeEnvBuilder::new().with_object_store_registry(shared_registry());
    if let Some(dir) = temp_dir {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_store_once_and_rejects_unknown_schemes() {
        let registry = StoreRegistry::default();
        let a = registry.get_store(&Url::parse("memory://x/a").unwrap()).unwrap();
        let b = registry
            .get_store(&Url::parse("memory://x/b/c").unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let err = registry
            .get_store(&Url::parse("ftp://host/x").unwrap())
            .unwrap_err();
        assert!(err.to_string().contains("no object store for `ftp://`"), "{err}");
    }
}
