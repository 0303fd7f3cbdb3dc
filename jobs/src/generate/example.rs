//! Landing data for the example pipeline (`pipelines/example`): orders as CSV and customers as
//! NDJSON, split into several files, with the dirt real exports have — exact duplicates, late
//! updates of the same order, float-rendered ids, padded mixed-case enums, null keys, negative
//! amounts, unparseable numbers and malformed lines.

use std::fmt::Write as _;

use object_store::ObjectStore;
use object_store::path::Path;
use url::Url;

use super::rng::Rng;
use crate::error::Result;

const STATUSES: [&str; 4] = ["completed", "pending", "cancelled", "returned"];
const COUNTRIES: [&str; 6] = ["DE", "FR", "GB", "US", "ES", "NL"];
const CITIES: [&str; 6] = ["Berlin", "Paris", "London", "Austin", "Madrid", "Utrecht"];

/// Builder for the example landing data.
#[derive(Debug, Clone)]
#[must_use]
pub struct ExampleData {
    out: Url,
    orders: u64,
    customers: u64,
    files: u64,
    seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GeneratedFiles {
    /// Files written (URLs).
    pub files: Vec<String>,
    /// Order lines written, dirt included.
    pub order_lines: u64,
    /// Customer lines written, dirt included.
    pub customer_lines: u64,
}

impl ExampleData {
    /// `orders` orders (and a tenth as many customers) under `out`.
    pub fn new(out: Url, orders: u64) -> Self {
        Self {
            out,
            orders,
            customers: (orders / 10).max(10),
            files: 4,
            seed: 42,
        }
    }

    /// Seed of the generator.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Files per source.
    pub fn with_files(mut self, files: u64) -> Self {
        self.files = files.max(1);
        self
    }

    /// Writes `orders/orders_<i>.csv` and `customers/customers_<i>.ndjson` under the output URL.
    pub async fn write(self) -> Result<GeneratedFiles> {
        let (store, root) = crate::storage::store_for(&self.out)?;
        let mut rng = Rng::new(self.seed);
        let mut generated = GeneratedFiles::default();
        for part in 0..self.files {
            let (text, lines) = self.orders_file(&mut rng, part);
            self.put(
                &*store,
                &root,
                &format!("orders/orders_{part}.csv"),
                text,
                &mut generated,
            )
            .await?;
            generated.order_lines += lines;
        }
        for part in 0..self.files {
            let (text, lines) = self.customers_file(&mut rng, part);
            self.put(
                &*store,
                &root,
                &format!("customers/customers_{part}.ndjson"),
                text,
                &mut generated,
            )
            .await?;
            generated.customer_lines += lines;
        }
        Ok(generated)
    }

    async fn put(
        &self,
        store: &dyn ObjectStore,
        root: &Path,
        rel: &str,
        text: String,
        out: &mut GeneratedFiles,
    ) -> Result<()> {
        let url = super::put_text(store, (&self.out, root), rel, text).await?;
        out.files.push(url);
        Ok(())
    }

    fn orders_file(&self, rng: &mut Rng, part: u64) -> (String, u64) {
        let mut text = String::from("order_id,customer_id,status,amount,order_ts,updated_at\n");
        let mut lines = 0;
        let per_file = self.orders.div_ceil(self.files);
        let first = part * per_file;
        for order_id in first..(first + per_file).min(self.orders) {
            let line = self.order_line(rng, order_id, 0);
            text += &line;
            lines += 1;
            if rng.chance(0.02) {
                text += &line;
                lines += 1;
            }
            if rng.chance(0.05) {
                let revision = 1 + rng.below(3);
                text += &self.order_line(rng, order_id, revision);
                lines += 1;
            }
            if rng.chance(0.003) {
                let _ = writeln!(
                    text,
                    "{order_id},{},completed,12.50,2024-01-01 10:00:00,2024-01-01 10:00:00,EXTRA",
                    order_id % 97
                );
                lines += 1;
            }
        }
        (text, lines)
    }

    fn order_line(&self, rng: &mut Rng, order_id: u64, revision: u64) -> String {
        let id = if rng.chance(0.02) {
            format!("{order_id}.0")
        } else {
            order_id.to_string()
        };
        let customer = if rng.chance(0.01) {
            String::new()
        } else {
            rng.below(self.customers).to_string()
        };
        let status = *rng.pick(&STATUSES);
        let status = match rng.below(10) {
            0 => format!("  {}", status.to_uppercase()),
            1 => format!("{}{} ", &status[..1].to_uppercase(), &status[1..]),
            _ => status.to_string(),
        };
        let cents = 100 + rng.below(50_000) as i64;
        let amount = match rng.below(200) {
            0 => "n/a".to_string(),
            1 | 2 => format!("-{}.{:02}", cents / 100, cents % 100),
            _ => format!("{}.{:02}", cents / 100, cents % 100),
        };
        let day = 1 + (order_id * 7 + rng.below(3)) % 28;
        let month = 1 + (order_id / 1000) % 12;
        let hour = rng.below(24);
        let ts = format!("2024-{month:02}-{day:02} {hour:02}:{:02}:00", rng.below(60));
        let updated = format!(
            "2024-{month:02}-{day:02} {hour:02}:{:02}:{:02}",
            rng.below(60),
            revision * 10 + rng.below(10)
        );
        format!("{id},{customer},{status},{amount},{ts},{updated}\n")
    }

    fn customers_file(&self, rng: &mut Rng, part: u64) -> (String, u64) {
        let mut text = String::new();
        let mut lines = 0;
        let per_file = self.customers.div_ceil(self.files);
        let first = part * per_file;
        for id in first..(first + per_file).min(self.customers) {
            let country = rng.below(COUNTRIES.len() as u64) as usize;
            let _ = writeln!(
                text,
                r#"{{"customer_id":{id},"name":"Customer {id}","email":"c{id}@example.com","country":"{}","address":{{"city":"{}","postcode":"{:05}"}},"updated_at":"2024-01-{:02} 09:00:00"}}"#,
                COUNTRIES[country],
                CITIES[country],
                rng.below(99_999),
                1 + rng.below(28)
            );
            lines += 1;
            if rng.chance(0.01) {
                let _ = writeln!(text, r#"{{"customer_id":{id},"name":"Customer {id}","#);
                lines += 1;
            }
        }
        (text, lines)
    }
}
