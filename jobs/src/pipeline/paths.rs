//! Where tables live: every path is a URL resolved through object_store.

use url::Url;

use crate::error::{Error, Result};
use crate::spec::TableSpec;

/// Parses an absolute URL, an absolute local path, or a path relative to `base`.
pub fn resolve_url(base: Option<&Url>, path: &str) -> Result<Url> {
    let err = |message: String| Error::Url {
        url: path.to_string(),
        message,
    };
    if path.contains("://") {
        return Url::parse(path).map_err(|e| err(e.to_string()));
    }
    if path.starts_with('/') {
        return Url::from_file_path(path).map_err(|()| err("not an absolute path".into()));
    }
    match base {
        Some(base) => as_dir(base).join(path).map_err(|e| err(e.to_string())),
        None => {
            let cwd = std::env::current_dir().map_err(|e| err(e.to_string()))?;
            let base = Url::from_directory_path(cwd).map_err(|()| err("bad working directory".into()))?;
            base.join(path).map_err(|e| err(e.to_string()))
        }
    }
}

fn as_dir(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    url
}

/// The lakehouse root and the table URLs under it: `<root>/<layer>/<table>`.
#[derive(Debug, Clone)]
pub struct Lakehouse {
    root: Url,
}

impl Lakehouse {
    /// A lakehouse rooted at `root`.
    pub fn new(root: Url) -> Self {
        Self { root: as_dir(&root) }
    }

    /// URL of a table.
    pub fn table_url(&self, table: &TableSpec) -> Url {
        self.at(&format!("{}/{}", table.layer.as_str(), table.name))
    }

    /// URL of a table's quarantine table.
    pub fn quarantine_url(&self, table: &TableSpec) -> Url {
        self.companion_url(table, crate::quality::QUARANTINE_SUFFIX)
    }

    /// URL of a table written beside `table` (`<table><suffix>`, same layer).
    pub fn companion_url(&self, table: &TableSpec, suffix: &str) -> Url {
        self.at(&format!("{}/{}{suffix}", table.layer.as_str(), table.name))
    }

    /// URL of a path under the root.
    pub fn at(&self, relative: &str) -> Url {
        self.root
            .join(relative)
            .expect("relative table paths are valid URL paths")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_urls_paths_and_relative_paths() {
        let base = Url::parse("s3://bucket/landing").unwrap();
        assert_eq!(
            resolve_url(Some(&base), "orders/*.csv").unwrap().as_str(),
            "s3://bucket/landing/orders/*.csv"
        );
        assert_eq!(
            resolve_url(Some(&base), "/tmp/x").unwrap().as_str(),
            "file:///tmp/x"
        );
        assert_eq!(resolve_url(None, "file:///a/b").unwrap().as_str(), "file:///a/b");
        assert!(resolve_url(None, "bad://[x").is_err());
    }

    #[test]
    fn lays_out_tables_by_layer() {
        let lake = Lakehouse::new(Url::parse("file:///lake").unwrap());
        let spec = crate::spec::parse_spec(
            "[pipeline]\nname='p'\n[[table]]\nname='t'\nlayer='silver'\nsql='SELECT 1'\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(lake.table_url(&spec.tables[0]).as_str(), "file:///lake/silver/t");
        assert_eq!(
            lake.quarantine_url(&spec.tables[0]).as_str(),
            "file:///lake/silver/t__quarantine"
        );
    }
}
