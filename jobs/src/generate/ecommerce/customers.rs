//! Customers (nested NDJSON with PII). Later batches move customers or change their e-mail;
//! from batch 2 on, some updates are older than ones an earlier batch already delivered.

use chrono::{Duration, NaiveDateTime};

use super::catalog::country_of;
use super::sink::{Lines, Sink, Written, epoch, id_text, moment, ts_text};
use super::{Scale, slice};
use crate::error::Result;
use crate::generate::rng::Rng;

const FIRST: [&str; 8] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken",
];
const LAST: [&str; 8] = [
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson",
];
const CITIES: [&str; 6] = [
    "Springfield",
    "Riverton",
    "Lakeside",
    "Hillview",
    "Fairmont",
    "Oakdale",
];

pub(crate) async fn write_part(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Vec<Written>> {
    let mut rng = sink.rng("customers", part);
    let mut out = Lines::default();
    if sink.batch == 0 {
        for id in slice(scale.customers, part, parts).map(|i| i + 1) {
            let signup = epoch() - Duration::days(1 + rng.below(365) as i64);
            customer(&mut rng, &mut out, id, signup, signup, 0);
        }
    } else {
        let per_batch = scale.per_batch.customers;
        let first_new = scale.customers + (sink.batch - 1) * per_batch;
        for i in slice(per_batch, part, parts) {
            let at = moment(&mut rng, sink.batch);
            customer(&mut rng, &mut out, first_new + i + 1, at, at, 0);
            let existing = 1 + rng.below(scale.customers);
            // From batch 2 on, a fifth of the updates are late: older than the previous batch.
            let updated = if sink.batch >= 2 && rng.chance(0.2) {
                moment(&mut rng, sink.batch - 1) - Duration::days(1)
            } else {
                moment(&mut rng, sink.batch)
            };
            customer(
                &mut rng,
                &mut out,
                existing,
                epoch() - Duration::days(400),
                updated,
                sink.batch,
            );
        }
    }
    Ok(vec![sink.put("customers", "ndjson", part, out).await?])
}

/// One customer version; `version` > 0 changes the address and e-mail.
fn customer(
    rng: &mut Rng,
    out: &mut Lines,
    id: u64,
    signup: NaiveDateTime,
    updated: NaiveDateTime,
    version: u64,
) {
    let first = FIRST[(id % 8) as usize];
    let last = LAST[(id / 8 % 8) as usize];
    let email = match rng.below(100) {
        0 => "null".to_string(),
        1 | 2 => format!(r#"" {}.{}{id}@Example.COM ""#, first.to_uppercase(), last),
        _ if version > 0 => format!(
            r#""{}.{}{id}.v{version}@example.com""#,
            first.to_lowercase(),
            last.to_lowercase()
        ),
        _ => format!(
            r#""{}.{}{id}@example.com""#,
            first.to_lowercase(),
            last.to_lowercase()
        ),
    };
    let phone = match rng.below(3) {
        0 => format!("+1-555-{:03}-{:04}", rng.below(1000), id % 10_000),
        1 => format!("(555) {:03} {:04}", rng.below(1000), id % 10_000),
        _ => format!("555{:03}{:04}", rng.below(1000), id % 10_000),
    };
    let city = CITIES[((id + version) % CITIES.len() as u64) as usize];
    let line = format!(
        r#"{{"customer_id":"{}","first_name":"{first}","last_name":"{last}","email":{email},"phone":"{phone}","address":{{"street":"{} Main St","city":"{city}","state":"S{}","country":"{}","postcode":"{:05}"}},"signup_ts":"{}","updated_at":"{}"}}"#,
        id_text(rng, id),
        1 + (id + version) % 999,
        id % 50,
        country_of(id),
        (id * 31 + version) % 100_000,
        ts_text(rng, signup),
        ts_text(rng, updated)
    );
    out.push(format_args!("{line}"));
    if rng.chance(0.005) {
        out.push(format_args!("{line}"));
    }
    if rng.chance(0.001) {
        out.push(format_args!(r#"{{"customer_id":"{id}","first_name":"{first}","#));
    }
}
