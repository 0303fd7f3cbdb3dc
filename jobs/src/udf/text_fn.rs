//! Row-wise text functions for cleaning and PII masking:
//!
//! - `normalize_id(text) → BIGINT`: `" 1050 "` and `"1050.0"` → 1050; `"10.5"`, `"abc"` → NULL.
//! - `mask_phone(text) → text`: keeps the last 4 digits, `*` for the others (`"+1-555-123-4567"`
//!   → `"*******4567"`); 4 digits or fewer → all `*`.
//! - `email_hash(text) → text`: SHA-256 hex of `lower(trim(email))`; NULL or blank → NULL.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Builder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::exec_err;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};
use sha2::{Digest, Sha256};

/// Which text function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextFn {
    /// `normalize_id`.
    NormalizeId,
    /// `mask_phone`.
    MaskPhone,
    /// `email_hash`.
    EmailHash,
}

/// A one-argument text function as a DataFusion UDF.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextUdf {
    kind: TextFn,
    signature: Signature,
}

impl TextUdf {
    /// The UDF for `kind`.
    pub fn new(kind: TextFn) -> Self {
        let types = vec![
            DataType::Utf8,
            DataType::Utf8View,
            DataType::LargeUtf8,
            DataType::Int64,
        ];
        Self {
            kind,
            signature: Signature::uniform(1, types, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TextUdf {
    fn name(&self) -> &str {
        match self.kind {
            TextFn::NormalizeId => "normalize_id",
            TextFn::MaskPhone => "mask_phone",
            TextFn::EmailHash => "email_hash",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            TextFn::NormalizeId => DataType::Int64,
            TextFn::MaskPhone | TextFn::EmailHash => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [input] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name());
        };
        let input = cast(&input.to_array(args.number_rows)?, &DataType::Utf8)?;
        let texts = input
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let out: ArrayRef = match self.kind {
            TextFn::NormalizeId => {
                let mut b = Int64Builder::with_capacity(texts.len());
                texts
                    .iter()
                    .for_each(|t| b.append_option(t.and_then(normalize_id)));
                Arc::new(b.finish())
            }
            TextFn::MaskPhone | TextFn::EmailHash => {
                let f = if self.kind == TextFn::MaskPhone {
                    mask_phone
                } else {
                    email_hash
                };
                let mut b = StringBuilder::with_capacity(texts.len(), texts.len() * 16);
                texts.iter().for_each(|t| b.append_option(t.and_then(f)));
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn normalize_id(text: &str) -> Option<i64> {
    let t = text.trim();
    let whole = match t.split_once('.') {
        Some((whole, frac)) if !frac.is_empty() && frac.bytes().all(|b| b == b'0') => whole,
        Some(_) => return None,
        None => t,
    };
    whole.parse().ok()
}

fn mask_phone(text: &str) -> Option<String> {
    let digits: Vec<char> = text.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    // Up to 4 digits would be shown whole, so they are masked entirely.
    let masked = if digits.len() <= 4 {
        digits.len()
    } else {
        digits.len() - 4
    };
    Some(
        digits
            .iter()
            .enumerate()
            .map(|(i, d)| if i < masked { '*' } else { *d })
            .collect(),
    )
}

fn email_hash(text: &str) -> Option<String> {
    let normalized = text.trim().to_lowercase();
    (!normalized.is_empty()).then(|| hex::encode(Sha256::digest(normalized.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_ids() {
        assert_eq!(normalize_id(" 1050 "), Some(1050));
        assert_eq!(normalize_id("1050.0"), Some(1050));
        assert_eq!(normalize_id("1050.000"), Some(1050));
        assert_eq!(normalize_id("10.5"), None);
        assert_eq!(normalize_id("10."), None);
        assert_eq!(normalize_id("abc"), None);
        assert_eq!(normalize_id("-3"), Some(-3));
    }

    #[test]
    fn masks_pii() {
        assert_eq!(mask_phone("+1-555-123-4567").as_deref(), Some("*******4567"));
        assert_eq!(mask_phone("(555) 123 4567").as_deref(), Some("******4567"));
        assert_eq!(mask_phone("12").as_deref(), Some("**"));
        assert_eq!(mask_phone("n/a"), None);
        let h = email_hash(" Ada@Example.COM ").unwrap();
        assert_eq!(h, email_hash("ada@example.com").unwrap());
        assert_eq!(h.len(), 64);
        assert_eq!(email_hash("   "), None);
    }
}
