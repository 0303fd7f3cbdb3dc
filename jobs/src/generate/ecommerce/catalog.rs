//! Products (nested NDJSON) and the daily inventory snapshot (CSV), plus the attributes other
//! sources derive from a product or customer id.

use chrono::Duration;

use super::sink::{Lines, Sink, Written, enum_text, epoch, id_text, ts_text};
use super::{Scale, slice};
use crate::error::Result;

pub(crate) const COUNTRIES: [&str; 8] = ["US", "GB", "DE", "FR", "ES", "NL", "CA", "AU"];
const CATEGORIES: [&str; 8] = [
    "electronics",
    "books",
    "home",
    "toys",
    "sports",
    "beauty",
    "grocery",
    "fashion",
];
const BRANDS: [&str; 6] = ["acme", "globex", "initech", "umbrella", "hooli", "stark"];
const WAREHOUSES: [&str; 3] = ["east", "west", "central"];

/// List price of a product, in cents: fixed per id so every source agrees.
pub(crate) fn price_cents(product_id: u64) -> u64 {
    500 + (product_id.wrapping_mul(7919) % 20_000)
}

/// Home country of a customer.
pub(crate) fn country_of(customer_id: u64) -> &'static str {
    COUNTRIES[(customer_id.wrapping_mul(2_654_435_761) % COUNTRIES.len() as u64) as usize]
}

pub(crate) async fn write_part(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Vec<Written>> {
    Ok(vec![
        products(sink, scale, part, parts).await?,
        inventory(sink, scale, part, parts).await?,
    ])
}

async fn products(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Written> {
    let mut rng = sink.rng("products", part);
    let mut out = Lines::default();
    // Batch 0 lists every product; later batches re-send a few with a new price.
    let ids: Vec<u64> = if sink.batch == 0 {
        slice(scale.products, part, parts).map(|i| i + 1).collect()
    } else {
        slice(scale.per_batch.products, part, parts)
            .map(|_| 1 + rng.below(scale.products))
            .collect()
    };
    for id in ids {
        let category = CATEGORIES[(id % CATEGORIES.len() as u64) as usize];
        let brand = BRANDS[(id % BRANDS.len() as u64) as usize];
        let cents = price_cents(id) + if sink.batch > 0 { 100 } else { 0 };
        let updated = ts_text(
            &mut rng,
            epoch() + Duration::days(sink.batch as i64 * 3) + Duration::hours(6),
        );
        out.push(format_args!(
            r#"{{"product_id":"{}","name":"Product {id}","category":"{}","brand":"{brand}","price":{}.{:02},"attributes":{{"color":"{}","weight_kg":{}.{}}},"updated_at":"{updated}"}}"#,
            id_text(&mut rng, id),
            enum_text(&mut rng, category),
            cents / 100,
            cents % 100,
            ["red", "blue", "black", "white"][rng.below(4) as usize],
            rng.below(20),
            rng.below(10)
        ));
        if rng.chance(0.001) {
            out.push(format_args!(r#"{{"product_id":"{id}","name":"Product {id}""#));
        }
    }
    sink.put("products", "ndjson", part, out).await
}

async fn inventory(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Written> {
    let mut rng = sink.rng("inventory", part);
    let mut out = Lines::header("snapshot_date,product_id,warehouse,on_hand");
    let day = (epoch() + Duration::days(365 + sink.batch as i64))
        .format("%Y-%m-%d")
        .to_string();
    for id in slice(scale.products, part, parts).map(|i| i + 1) {
        for warehouse in WAREHOUSES {
            let on_hand = if rng.chance(0.01) {
                -(rng.below(20) as i64) - 1
            } else {
                rng.below(500) as i64
            };
            out.push(format_args!(
                "{day},{},{warehouse},{on_hand}",
                id_text(&mut rng, id)
            ));
        }
    }
    sink.put("inventory", "csv", part, out).await
}
