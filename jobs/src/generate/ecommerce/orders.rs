//! Orders (CSV), their lines (CSV) and one payment each (NDJSON), generated together so that
//! payment amounts match the lines.

use chrono::{Duration, NaiveDateTime};

use super::catalog::{country_of, price_cents};
use super::sink::{Lines, Sink, Written, enum_text, epoch, id_text, moment, ts_text};
use super::{Scale, slice};
use crate::error::Result;
use crate::generate::rng::Rng;

const STATUSES: [&str; 4] = ["completed", "pending", "cancelled", "returned"];
const CHANNELS: [&str; 4] = ["web", "mobile", "store", "marketplace"];
const METHODS: [&str; 5] = [
    "credit_card",
    "paypal",
    "debit_card",
    "apple_pay",
    "bank_transfer",
];

struct Parts {
    orders: Lines,
    items: Lines,
    payments: Lines,
}

pub(crate) async fn write_part(sink: &Sink, scale: Scale, part: u64, parts: u64) -> Result<Vec<Written>> {
    let mut rng = sink.rng("orders", part);
    let mut out = Parts {
        orders: Lines::header("order_id,customer_id,order_ts,status,channel,updated_at"),
        items: Lines::header("order_id,line_no,product_id,quantity,unit_price,discount"),
        payments: Lines::default(),
    };
    let new_per_batch = scale.per_batch.orders;
    let ids = if sink.batch == 0 {
        slice(scale.orders, part, parts)
    } else {
        let first = scale.orders + (sink.batch - 1) * new_per_batch;
        let s = slice(new_per_batch, part, parts);
        first + s.start..first + s.end
    };
    for id in ids.map(|i| i + 1) {
        new_order(&mut rng, &mut out, sink, scale, id);
    }
    if sink.batch > 0 {
        // Status changes of orders placed in the weeks before the batch — delivered, returned
        // — as the shop's system re-exports them: same order, customer and order time.
        let placed_before = scale.orders + (sink.batch - 1) * new_per_batch;
        let recent = (RECENT_DAYS * scale.orders / HISTORY_DAYS).clamp(1, placed_before);
        for _ in slice(new_per_batch, part, parts) {
            let id = placed_before - rng.below(recent);
            let placed = Placed::of(sink, scale, id);
            let at = moment(&mut rng, sink.batch);
            let status = if rng.chance(0.5) { "returned" } else { "completed" };
            order_line(
                &mut rng,
                &mut out.orders,
                id,
                placed.customer,
                placed.at,
                status,
                at,
            );
        }
    }
    Ok(vec![
        sink.put("orders", "csv", part, out.orders).await?,
        sink.put("order_items", "csv", part, out.items).await?,
        sink.put("payments", "ndjson", part, out.payments).await?,
    ])
}

/// Days the history (batch 0) spans, and how far back a batch's status changes reach.
const HISTORY_DAYS: u64 = 366;
const RECENT_DAYS: u64 = 21;

/// Who placed an order and when: a function of its id, so a later status change repeats them.
/// History ids grow with time (one day's orders have neighbouring ids), as a shop's do.
struct Placed {
    customer: u64,
    at: NaiveDateTime,
}

impl Placed {
    fn of(sink: &Sink, scale: Scale, id: u64) -> Self {
        let mut rng = sink.rng_of("order", id);
        let customer = 1 + rng.below(scale.customers);
        let day = if id <= scale.orders {
            (id - 1) * HISTORY_DAYS / scale.orders
        } else {
            365 + (id - scale.orders - 1) / scale.per_batch.orders.max(1) + 1
        };
        let at = epoch() + Duration::days(day as i64) + Duration::seconds(rng.below(86_400) as i64);
        Self { customer, at }
    }
}

fn new_order(rng: &mut Rng, out: &mut Parts, sink: &Sink, scale: Scale, id: u64) {
    let Placed { customer, at } = Placed::of(sink, scale, id);
    let status = STATUSES[[0, 0, 0, 0, 0, 0, 0, 1, 2, 3][rng.below(10) as usize]];
    let updated = at + Duration::minutes(rng.below(30) as i64);
    let first = order_line(rng, &mut out.orders, id, customer, at, status, updated);
    if rng.chance(0.01) {
        out.orders.push(format_args!("{first}"));
    }
    if rng.chance(0.08) {
        let later = if status == "completed" {
            "returned"
        } else {
            "completed"
        };
        order_line(
            rng,
            &mut out.orders,
            id,
            customer,
            at,
            later,
            updated + Duration::days(2),
        );
    }
    if rng.chance(0.0005) {
        out.orders.push(format_args!(
            "{id},{customer},{},completed,web,{},EXTRA",
            at, updated
        ));
    }
    let total_cents = items(rng, &mut out.items, scale, id);
    payment(rng, &mut out.payments, id, customer, at, total_cents);
}

fn order_line(
    rng: &mut Rng,
    out: &mut Lines,
    id: u64,
    customer: u64,
    at: NaiveDateTime,
    status: &str,
    updated: NaiveDateTime,
) -> String {
    let customer = if rng.chance(0.005) {
        String::new()
    } else {
        id_text(rng, customer)
    };
    let channel = CHANNELS[rng.below(4) as usize];
    let line = format!(
        "{},{customer},{},{},{},{}",
        id_text(rng, id),
        ts_text(rng, at),
        enum_text(rng, status),
        enum_text(rng, channel),
        ts_text(rng, updated)
    );
    out.push(format_args!("{line}"));
    line
}

/// Writes the order's lines; returns the order's total in cents.
fn items(rng: &mut Rng, out: &mut Lines, scale: Scale, order: u64) -> u64 {
    let mut total = 0;
    let order_ref = if rng.chance(0.002) {
        order + 10 * scale.orders
    } else {
        order
    };
    for line_no in 1..=1 + rng.below(4) {
        let product = 1 + rng.below(scale.products);
        let quantity: i64 = if rng.chance(0.005) {
            -(rng.below(2) as i64)
        } else {
            1 + rng.below(5) as i64
        };
        let cents = price_cents(product);
        let discount_pct = if rng.chance(0.7) { 0 } else { 5 * rng.below(11) };
        let line = format!(
            "{order_ref},{line_no},{},{quantity},{}.{:02},{}.{:02}",
            id_text(rng, product),
            cents / 100,
            cents % 100,
            discount_pct / 100,
            discount_pct % 100
        );
        out.push(format_args!("{line}"));
        if rng.chance(0.005) {
            out.push(format_args!("{line}"));
        }
        total += (quantity.max(0) as u64) * cents * (100 - discount_pct) / 100;
    }
    total
}

fn payment(rng: &mut Rng, out: &mut Lines, order: u64, customer: u64, at: NaiveDateTime, total_cents: u64) {
    let method = METHODS[rng.below(5) as usize];
    let separator = if rng.chance(0.05) { " " } else { "_" };
    let method = enum_text(rng, method).replace('_', separator);
    let cents = if rng.chance(0.003) {
        total_cents * 20 + 1
    } else {
        total_cents
    };
    let country = if rng.chance(0.02) {
        "BR"
    } else {
        country_of(customer)
    };
    let risk = if rng.chance(0.01) {
        81 + rng.below(19)
    } else {
        rng.below(60)
    };
    let paid_at = at + Duration::seconds(1 + rng.below(600) as i64);
    let paid_at = ts_text(rng, paid_at);
    out.push(format_args!(
        r#"{{"payment_id":{order},"order_id":{order},"method":"{method}","amount":{}.{:02},"currency":"USD","paid_at":"{}","country":"{country}","risk_score":0.{risk:02}}}"#,
        cents / 100,
        cents % 100,
        paid_at
    ));
}
