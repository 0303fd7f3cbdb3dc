//! The values of a key column a change touches, and which data files may hold them: a file
//! whose statistics' `[min, max]` of the column holds none of them certainly holds no row of
//! those keys, so a MERGE need neither read nor rewrite it.
//!
//! Integers, strings and dates are compared as the statistics order them: numbers by value,
//! strings byte-wise (what `Ord` on `str` does), dates as their ISO text `YYYY-MM-DD` (how the
//! Delta statistics write them; byte order is date order). A key of another type, or a NULL
//! among the values, tells nothing and every file may hold one.

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use serde_json::Value;

/// The sorted, distinct values of a key column.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyValues {
    /// Of an integer column.
    Integers(Vec<i64>),
    /// Of a string or date column (dates as `YYYY-MM-DD`).
    Strings(Vec<String>),
}

impl KeyValues {
    /// Whether a column of this type can be pruned by its statistics.
    pub fn supports(data_type: &DataType) -> bool {
        data_type.is_integer()
            || matches!(
                data_type,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Date32
            )
    }

    /// The values of `columns` (parts of one column), or `None` when one is NULL — a NULL
    /// key's rows may be in any file — or the type is not one statistics order.
    pub fn collect(columns: &[ArrayRef]) -> Option<Self> {
        let data_type = columns.first()?.data_type();
        if !Self::supports(data_type) || columns.iter().any(|c| c.null_count() > 0) {
            return None;
        }
        let values = match data_type.is_integer() {
            true => KeyValues::Integers(integers(columns)?),
            false => KeyValues::Strings(strings(columns)?),
        };
        Some(values.sorted())
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        match self {
            KeyValues::Integers(v) => v.len(),
            KeyValues::Strings(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a file whose `column` statistics are in `stats` (a Delta `stats` JSON) may hold
    /// one of the values: yes unless its `[min, max]` of the column is known and holds none.
    pub fn may_be_in(&self, stats: Option<&str>, column: &str) -> bool {
        let Some((min, max)) = stats.and_then(|s| bounds(s, column)) else {
            return true;
        };
        match self {
            KeyValues::Integers(v) => match (min.as_i64(), max.as_i64()) {
                (Some(min), Some(max)) => any_within(v, &min, &max),
                _ => true,
            },
            KeyValues::Strings(v) => match (min.as_str(), max.as_str()) {
                (Some(min), Some(max)) => any_within(v, &min.to_string(), &max.to_string()),
                _ => true,
            },
        }
    }

    /// The values of both, when both are of one kind.
    pub fn union(self, other: KeyValues) -> Option<KeyValues> {
        let both = match (self, other) {
            (KeyValues::Integers(mut a), KeyValues::Integers(b)) => {
                a.extend(b);
                KeyValues::Integers(a)
            }
            (KeyValues::Strings(mut a), KeyValues::Strings(b)) => {
                a.extend(b);
                KeyValues::Strings(a)
            }
            _ => return None,
        };
        Some(both.sorted())
    }

    fn sorted(self) -> Self {
        match self {
            KeyValues::Integers(mut v) => {
                v.sort_unstable();
                v.dedup();
                KeyValues::Integers(v)
            }
            KeyValues::Strings(mut v) => {
                v.sort_unstable();
                v.dedup();
                KeyValues::Strings(v)
            }
        }
    }
}

/// Whether sorted `values` hold one in `[min, max]`.
fn any_within<T: Ord>(values: &[T], min: &T, max: &T) -> bool {
    let first = values.partition_point(|v| v < min);
    values.get(first).is_some_and(|v| v <= max)
}

/// The column's `minValues` and `maxValues` in a file's statistics.
fn bounds(stats: &str, column: &str) -> Option<(Value, Value)> {
    let mut stats: Value = serde_json::from_str(stats).ok()?;
    let min = stats.get_mut("minValues")?.get_mut(column)?.take();
    let max = stats.get_mut("maxValues")?.get_mut(column)?.take();
    Some((min, max))
}

fn integers(columns: &[ArrayRef]) -> Option<Vec<i64>> {
    let mut values = vec![];
    for column in columns {
        let column = cast(column, &DataType::Int64).ok()?;
        values.extend(column.as_any().downcast_ref::<Int64Array>()?.iter().flatten());
    }
    Some(values)
}

fn strings(columns: &[ArrayRef]) -> Option<Vec<String>> {
    let mut values = vec![];
    for column in columns {
        let column = cast(column, &DataType::Utf8).ok()?;
        let texts = column.as_any().downcast_ref::<StringArray>()?;
        values.extend(texts.iter().flatten().map(str::to_string));
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn stats(min: Value, max: Value) -> String {
        serde_json::json!({"numRecords": 3, "minValues": {"k": min}, "maxValues": {"k": max}}).to_string()
    }

    #[test]
    fn a_file_holds_a_value_only_within_its_range() {
        let ints = KeyValues::collect(&[Arc::new(Int64Array::from(vec![40, 7, 7])) as ArrayRef]).unwrap();
        assert_eq!(ints, KeyValues::Integers(vec![7, 40]));
        assert!(ints.may_be_in(Some(&stats(1.into(), 7.into())), "k"));
        assert!(!ints.may_be_in(Some(&stats(8.into(), 39.into())), "k"));
        assert!(
            ints.may_be_in(Some(&stats(8.into(), 39.into())), "other"),
            "no statistics: may hold"
        );
        assert!(ints.may_be_in(None, "k"));

        let texts = Arc::new(StringArray::from(vec!["s1-9-0", "s1-10-2"])) as ArrayRef;
        let texts = KeyValues::collect(&[texts]).unwrap();
        assert!(!texts.may_be_in(Some(&stats("s0-0-0".into(), "s0-99-9".into())), "k"));
        assert!(texts.may_be_in(Some(&stats("s1-0-0".into(), "s1-5".into())), "k"));
        assert!(!texts.may_be_in(Some(&stats("s1-2".into(), "s1-5".into())), "k"));

        let days = datafusion::arrow::array::Date32Array::from(vec![19_723]); // 2024-01-01
        let days = KeyValues::collect(&[Arc::new(days) as ArrayRef]).unwrap();
        assert_eq!(days, KeyValues::Strings(vec!["2024-01-01".into()]));
        assert!(days.may_be_in(Some(&stats("2023-12-31".into(), "2024-01-01".into())), "k"));
        assert!(!days.may_be_in(Some(&stats("2024-01-02".into(), "2024-12-31".into())), "k"));
    }

    #[test]
    fn a_null_or_an_unordered_type_tells_nothing() {
        let with_null = Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef;
        assert_eq!(KeyValues::collect(&[with_null]), None);
        let floats = Arc::new(datafusion::arrow::array::Float64Array::from(vec![1.0])) as ArrayRef;
        assert_eq!(KeyValues::collect(&[floats]), None);
    }

    #[test]
    fn values_of_one_kind_unite_sorted_and_distinct() {
        let a = KeyValues::Integers(vec![3, 9]);
        assert_eq!(
            a.clone().union(KeyValues::Integers(vec![1, 9])),
            Some(KeyValues::Integers(vec![1, 3, 9]))
        );
        assert_eq!(a.union(KeyValues::Strings(vec!["x".into()])), None);
    }
}
