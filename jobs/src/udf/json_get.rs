//! `json_get(json_text, 'a.b.c')`: the value at a dotted path of a JSON object held as text,
//! as text (strings unquoted, other values as JSON), or NULL when the text is not JSON or the
//! path is absent. Bronze keeps nested JSON as text; silver flattens it with this.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use serde_json::Value;

/// The `json_get` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct JsonGet {
    signature: Signature,
}

impl JsonGet {
    /// A new instance.
    pub fn new() -> Self {
        let string = |a: DataType, b: DataType| TypeSignature::Exact(vec![a, b]);
        let types = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8];
        let signatures = types.iter().map(|t| string(t.clone(), DataType::Utf8)).collect();
        Self {
            signature: Signature::one_of(signatures, Volatility::Immutable),
        }
    }
}

impl Default for JsonGet {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for JsonGet {
    fn name(&self) -> &str {
        "json_get"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [json, path] = args.args.as_slice() else {
            return exec_err!("json_get takes (json_text, 'path')");
        };
        let ColumnarValue::Scalar(path) = path else {
            return exec_err!("json_get: the path must be a literal");
        };
        let path: Vec<String> = match path {
            ScalarValue::Utf8(Some(p)) => p.split('.').map(String::from).collect(),
            other => return exec_err!("json_get: the path must be text, got {other}"),
        };
        let texts = json.to_array(args.number_rows)?;
        let texts = cast(&texts, &DataType::Utf8)?;
        let texts = texts
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        let mut out = StringBuilder::with_capacity(texts.len(), texts.len() * 8);
        for text in texts.iter() {
            out.append_option(text.and_then(|t| lookup(t, &path)));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
    }
}

fn lookup(text: &str, path: &[String]) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    for key in path {
        value = match value {
            Value::Object(mut map) => map.remove(key)?,
            _ => return None,
        };
    }
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_dotted_paths() {
        let doc = r#"{"address":{"city":"Oslo","geo":{"lat":59.9}},"tags":[1,2],"n":null}"#;
        let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(lookup(doc, &path("address.city")).as_deref(), Some("Oslo"));
        assert_eq!(lookup(doc, &path("address.geo.lat")).as_deref(), Some("59.9"));
        assert_eq!(lookup(doc, &path("tags")).as_deref(), Some("[1,2]"));
        assert_eq!(lookup(doc, &path("n")), None);
        assert_eq!(lookup(doc, &path("address.zip")), None);
        assert_eq!(lookup("not json", &path("a")), None);
    }
}
