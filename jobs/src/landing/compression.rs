//! Compressed landing files: gzip, Zstandard, bzip2 and xz, told by the file's name or, when
//! the name says nothing, by its first bytes (so `orders.csv` that is really gzip is read
//! too), or forced by the source's `compression`. A file is decompressed whole before it is
//! parsed; one that does not decompress fails the table naming the file, never skipped.

use std::io::{Cursor, Read};

use bytes::Bytes;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;

use crate::spec::Compression;

/// The codec `compression` means for a file named `file` that starts with `head`.
fn codec(compression: Compression, file: &str, head: &[u8]) -> Option<(FileCompressionType, &'static str)> {
    let named = match compression {
        Compression::None => return None,
        Compression::Auto => by_name(file).unwrap_or_else(|| by_magic(head)),
        forced => forced,
    };
    match named {
        Compression::Gzip => Some((FileCompressionType::GZIP, "gzip")),
        Compression::Zstd => Some((FileCompressionType::ZSTD, "zstd")),
        Compression::Bzip2 => Some((FileCompressionType::BZIP2, "bzip2")),
        Compression::Xz => Some((FileCompressionType::XZ, "xz")),
        Compression::None | Compression::Auto => None,
    }
}

fn by_name(file: &str) -> Option<Compression> {
    let name = file.rsplit('/').next().unwrap_or(file).to_ascii_lowercase();
    let suffixes = [
        (".gz", Compression::Gzip),
        (".gzip", Compression::Gzip),
        (".zst", Compression::Zstd),
        (".bz2", Compression::Bzip2),
        (".xz", Compression::Xz),
    ];
    suffixes
        .into_iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map(|(_, c)| c)
}

fn by_magic(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        // "BZh" and the block size digit: a text file may well start with "BZh".
        [b'B', b'Z', b'h', b'1'..=b'9', ..] => Compression::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Compression::Xz,
        _ => Compression::None,
    }
}

/// The bytes of the file named `file`, decompressed when it is compressed; the error says why
/// they do not decompress.
pub(crate) fn decompressed(compression: Compression, file: &str, bytes: Bytes) -> Result<Bytes, String> {
    let Some((codec, name)) = codec(compression, file, &bytes) else {
        return Ok(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len() * 4);
    reader(codec, name, bytes)?
        .read_to_end(&mut out)
        .map_err(|e| format!("not a valid {name} file: {e}"))?;
    Ok(Bytes::from(out))
}

/// Up to `limit` decompressed bytes from `head`, the first bytes of a file: what can be
/// decoded of them (the stream is cut where `head` ends), to find the file's columns.
pub(crate) fn decompressed_head(
    compression: Compression,
    file: &str,
    head: Bytes,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let Some((codec, name)) = codec(compression, file, &head) else {
        return Ok(head.to_vec());
    };
    let mut decoder = reader(codec, name, head)?;
    let mut out = Vec::with_capacity(limit);
    let mut chunk = [0u8; 64 * 1024];
    while out.len() < limit {
        match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            // The cut end of the stream; what came before it is good.
            Err(_) if !out.is_empty() => break,
            Err(e) => return Err(format!("not a valid {name} file: {e}")),
        }
    }
    Ok(out)
}

fn reader(codec: FileCompressionType, name: &str, bytes: Bytes) -> Result<Box<dyn Read + Send>, String> {
    codec
        .convert_read(Cursor::new(bytes))
        .map_err(|e| format!("not a valid {name} file: {e}"))
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, TryStreamExt};

    use super::*;

    const TEXT: &[u8] = b"id,amount\n1,10\n2,20\n";

    /// `bytes` compressed with `codec`.
    async fn compressed(codec: FileCompressionType, bytes: &[u8]) -> Bytes {
        let input = futures::stream::once(async move { Ok(Bytes::from(bytes.to_vec())) }).boxed();
        let parts: Vec<Bytes> = codec
            .convert_to_compress_stream(input)
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        Bytes::from(parts.concat())
    }

    #[tokio::test]
    async fn a_compressed_file_is_told_by_its_name_or_its_first_bytes() {
        let gz = compressed(FileCompressionType::GZIP, TEXT).await;
        assert_eq!(
            decompressed(Compression::Auto, "a/b.csv.gz", gz.clone()).unwrap(),
            TEXT
        );
        assert_eq!(
            decompressed(Compression::Auto, "a/b.csv", gz.clone()).unwrap(),
            TEXT
        );
        assert_eq!(
            decompressed(Compression::Gzip, "b.dat", gz.clone()).unwrap(),
            TEXT
        );
        assert_eq!(
            decompressed(Compression::None, "b.csv.gz", gz.clone()).unwrap(),
            gz
        );
        let plain = Bytes::from_static(TEXT);
        assert_eq!(decompressed(Compression::Auto, "b.csv", plain).unwrap(), TEXT);
        for (codec, name) in [
            (FileCompressionType::ZSTD, "b.ndjson.zst"),
            (FileCompressionType::BZIP2, "b.csv.bz2"),
            (FileCompressionType::XZ, "b.csv.xz"),
        ] {
            let bytes = compressed(codec, TEXT).await;
            assert_eq!(
                decompressed(Compression::Auto, name, bytes.clone()).unwrap(),
                TEXT,
                "{name}"
            );
            assert_eq!(
                decompressed(Compression::Auto, "plain", bytes).unwrap(),
                TEXT,
                "{name} by magic"
            );
        }
    }

    #[tokio::test]
    async fn a_broken_file_is_an_error_naming_it_and_a_cut_head_decodes_what_it_holds() {
        let broken = Bytes::from_static(b"not gzip");
        let err = decompressed(Compression::Auto, "landing/c.csv.gz", broken).unwrap_err();
        assert!(err.starts_with("not a valid gzip file"), "{err}");
        let long: Vec<u8> = TEXT.iter().copied().cycle().take(2_000_000).collect();
        let gz = compressed(FileCompressionType::GZIP, &long).await;
        let cut = gz.slice(..gz.len() / 2);
        let head = decompressed_head(Compression::Auto, "c.csv.gz", cut, 1000).unwrap();
        assert!(head.len() >= 1000 && long.starts_with(&head), "{}", head.len());
    }
}
