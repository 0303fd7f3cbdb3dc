//! Clickstream sessions (NDJSON) with legacy event spellings, and product ratings (CSV).

use chrono::Duration;

use super::sink::{Lines, Sink, Written, id_text, moment, ts_text};
use super::{Scale, slice};
use crate::error::Result;
use crate::generate::rng::Rng;

const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];
const REFERRERS: [&str; 4] = ["google", "direct", "newsletter", "social"];

pub(crate) async fn write_part(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Vec<Written>> {
    Ok(vec![
        clickstream(sink, scale, part, parts).await?,
        ratings(sink, scale, part, parts).await?,
    ])
}

fn batch_size(batch: u64, initial: u64, later: u64) -> u64 {
    match batch {
        0 => initial,
        _ => later,
    }
}

async fn clickstream(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Written> {
    let mut rng = sink.rng("clickstream", part);
    let mut out = Lines::default();
    for n in slice(
        batch_size(sink.batch, scale.sessions, scale.per_batch.sessions),
        part,
        parts,
    ) {
        session(
            &mut rng,
            &mut out,
            sink.batch,
            scale,
            &format!("s{}-{n}", sink.batch),
        );
    }
    sink.put("clickstream", "ndjson", part, out).await
}

fn session(rng: &mut Rng, out: &mut Lines, batch: u64, scale: Scale, id: &str) {
    let customer = if rng.chance(0.7) {
        (1 + rng.below(scale.customers)).to_string()
    } else {
        "null".into()
    };
    let device = DEVICES[rng.below(3) as usize];
    let referrer = REFERRERS[rng.below(4) as usize];
    let mut at = moment(rng, batch);
    let product = 1 + rng.below(scale.products);
    let mut steps: Vec<&str> = Vec::new();
    if rng.chance(0.2) {
        steps.push("search");
    }
    for _ in 0..1 + rng.below(6) {
        steps.push(*rng.pick(&["page_view", "page_view", "page_view", "view", "PageView"]));
    }
    if rng.chance(0.4) {
        steps.push(*rng.pick(&["add_to_cart", "add_to_cart", "addToCart", "ADD_TO_CART"]));
        if rng.chance(0.25) {
            steps.push("remove_from_cart");
        } else if rng.chance(0.5) {
            steps.push("begin_checkout");
            if rng.chance(0.6) {
                steps.push("purchase");
            }
        }
    }
    for (k, step) in steps.into_iter().enumerate() {
        at += Duration::seconds(5 + rng.below(120) as i64);
        let product_field = if step == "search" {
            "null".to_string()
        } else {
            format!(r#""{}""#, id_text(rng, product))
        };
        out.push(format_args!(
            r#"{{"event_id":"{id}-{k}","session_id":"{id}","customer_id":{customer},"event_type":"{step}","product_id":{product_field},"ts":"{}","device":"{device}","referrer":"{referrer}"}}"#,
            ts_text(rng, at)
        ));
        if rng.chance(0.0005) {
            out.push(format_args!(r#"{{"event_id":"{id}-{k}","session_id":"{id}","#));
        }
    }
}

async fn ratings(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Written> {
    let mut rng = sink.rng("ratings", part);
    let mut out = Lines::header("customer_id,product_id,rating,rated_at");
    for _ in slice(
        batch_size(sink.batch, scale.ratings, scale.per_batch.ratings),
        part,
        parts,
    ) {
        let customer_id = 1 + rng.below(scale.customers);
        let customer = if rng.chance(0.001) {
            String::new()
        } else {
            id_text(&mut rng, customer_id)
        };
        // Popular products get most ratings, as in real catalogues.
        let product = 1 + (rng.below(scale.products) * rng.below(scale.products)) / scale.products;
        let rating = if rng.chance(0.002) {
            [0, 6][rng.below(2) as usize]
        } else {
            1 + rng.below(5)
        };
        let at = moment(&mut rng, sink.batch);
        let line = format!(
            "{customer},{},{rating},{}",
            id_text(&mut rng, product),
            ts_text(&mut rng, at)
        );
        out.push(format_args!("{line}"));
        if rng.chance(0.005) {
            out.push(format_args!("{line}"));
        }
    }
    sink.put("ratings", "csv", part, out).await
}
