//! Landing files as users' landing zones have them: gzip, zstd and bzip2 files read whether
//! their names say so or only their first bytes do, a file that does not decompress failing
//! its table by name — never skipped — and a reader of a table that was never committed told so.

use bytes::Bytes;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use futures::{StreamExt, TryStreamExt};

use crate::support::*;

const SPEC: &str = r#"
[pipeline]
name = "ingest"

[[table]]
name = "sales_raw"
layer = "bronze"
source = { path = "sales/*", format = "csv", schema = { id = "bigint", amount = "bigint" } }

[[table]]
name = "clicks_raw"
layer = "bronze"
source = { path = "clicks/*", format = "ndjson" }
"#;

async fn compressed(codec: FileCompressionType, text: &str) -> Bytes {
    let input = futures::stream::once(async move { Ok(Bytes::from(text.to_string())) }).boxed();
    let parts: Vec<Bytes> = codec
        .convert_to_compress_stream(input)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    Bytes::from(parts.concat())
}

#[tokio::test(flavor = "multi_thread")]
async fn compressed_landing_files_are_read_and_a_broken_one_fails_naming_it() {
    let ws = Workspace::new(SPEC);
    let write = |rel: &str, bytes: &[u8]| {
        let path = ws.path(&format!("landing/{rel}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("sales/a.csv", b"id,amount\n1,10\n2,20\n");
    write(
        "sales/b.csv.gz",
        &compressed(FileCompressionType::GZIP, "id,amount\n3,30\n").await,
    );
    // Only its first bytes say this one is bzip2.
    write(
        "sales/c.csv",
        &compressed(FileCompressionType::BZIP2, "id,amount\n4,40\n").await,
    );
    let clicks = "{\"id\": 1, \"page\": \"home\"}\n{\"id\": 2, \"page\": \"cart\"}\n";
    write(
        "clicks/a.ndjson.zst",
        &compressed(FileCompressionType::ZSTD, clicks).await,
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let sales = ws.path("lake/bronze/sales_raw");
    let rows = table_rows(&sales, "id, amount").await;
    for row in [
        "| 1  | 10     |",
        "| 2  | 20     |",
        "| 3  | 30     |",
        "| 4  | 40     |",
    ] {
        assert!(rows.contains(row), "{row} missing:\n{rows}");
    }
    let pages = table_rows(&ws.path("lake/bronze/clicks_raw"), "page").await;
    assert!(pages.contains("home") && pages.contains("cart"), "{pages}");

    // A file that is not the gzip its name says fails the table, naming the file; nothing of
    // the batch is committed, and the next run reads it again.
    write("sales/d.csv.gz", b"\x1f\x8b\x08\x00not gzip at all");
    write("sales/e.csv", b"id,amount\n5,50\n");
    let before = version(&sales).await;
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("d.csv.gz") && msg.contains("not a valid gzip file") && !msg.contains("panicked"),
        "{msg}"
    );
    assert_eq!(version(&sales).await, before);
    write(
        "sales/d.csv.gz",
        &compressed(FileCompressionType::GZIP, "id,amount\n6,60\n").await,
    );
    let out = ws.run("lake", &[]);
    assert!(out.status.success(), "{}", text(&out));
    let rows = table_rows(&sales, "id").await;
    assert!(rows.contains("| 5  |") && rows.contains("| 6  |"), "{rows}");
}

#[test]
fn a_table_whose_upstream_never_committed_fails_saying_so() {
    let spec = r#"
[pipeline]
name = "unbuilt"

[[table]]
name = "o_raw"
layer = "bronze"
source = { path = "o/*.csv", format = "csv" }

[[table]]
name = "o"
layer = "silver"
sql = "SELECT * FROM o_raw"
"#;
    let ws = Workspace::new(spec);
    // An empty file: no columns, no rows — bronze has nothing to commit.
    std::fs::create_dir_all(ws.path("landing/o")).unwrap();
    std::fs::write(ws.path("landing/o/a.csv"), b"").unwrap();
    let out = ws.run("lake", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("table `o`: upstream table `o_raw` has no data yet (it has never been committed)"),
        "{msg}"
    );
    assert!(!msg.contains("not found"), "{msg}");
}
