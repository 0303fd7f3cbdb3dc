//! `medallion generate`: landing data with realistic dirt, for the e-commerce pipeline (default)
//! the small example pipeline, or the ratings (ALS) pipeline.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use medallion_jobs::generate::{ChangesData, EcommerceData, ExampleData, RatingsData};
use medallion_jobs::pipeline::resolve_url;
use medallion_jobs::spec::{KafkaConnection, Security};

use crate::error::{Error, Result};

/// Which landing data to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Dataset {
    /// Eight sources for `pipelines/ecommerce` (orders, order_items, customers, products,
    /// inventory, payments, clickstream, ratings).
    Ecommerce,
    /// Orders and customers for `pipelines/example`.
    Example,
    /// Ratings from a hidden low-rank taste model, for `pipelines/ratings` (ALS).
    Ratings,
    /// Keyed account changes for `pipelines/changes` (CDC): every key in batch 0, a fraction
    /// of them updated or deleted in each later batch.
    Changes,
}

/// Flags of `medallion generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where to write (URL or path); one folder per source is created below it.
    #[arg(long, env = "MEDALLION_GENERATE_OUT", default_value = "data/landing")]
    pub out: String,
    /// Which data set.
    #[arg(
        long,
        env = "MEDALLION_GENERATE_DATASET",
        value_enum,
        default_value = "ecommerce"
    )]
    pub dataset: Dataset,
    /// Scale factor (e-commerce): 1 = 100K customers, 10K products, 2M orders, 5M events.
    #[arg(long, env = "MEDALLION_GENERATE_SCALE", default_value_t = 0.01)]
    pub scale: f64,
    /// Batch (e-commerce, changes): 0 is the initial load; 1, 2, … add and update records.
    #[arg(long, env = "MEDALLION_GENERATE_BATCH", default_value_t = 0)]
    pub batch: u64,
    /// Number of orders (example data set; customers are a tenth of that).
    #[arg(long, env = "MEDALLION_GENERATE_ORDERS", default_value_t = 10_000)]
    pub orders: u64,
    /// Number of ratings (ratings data set; users are a hundredth, items a two-hundredth).
    #[arg(long, env = "MEDALLION_GENERATE_RATINGS", default_value_t = 100_000)]
    pub ratings: u64,
    /// Number of keys (changes data set).
    #[arg(long, env = "MEDALLION_GENERATE_KEYS", default_value_t = 100_000)]
    pub keys: u64,
    /// Fraction of the keys a later batch changes (changes data set).
    #[arg(long, env = "MEDALLION_GENERATE_UPDATE_FRACTION", default_value_t = 0.01)]
    pub update_fraction: f64,
    /// E-commerce: publish clickstream and payments to the Kafka topics `clickstream` and
    /// `payments` of this cluster (`kafka://host:port[,host:port]`, plaintext) instead of
    /// writing their files; the other sources are still written under `--out`.
    #[arg(long, env = "MEDALLION_GENERATE_TO")]
    pub to: Option<String>,
    /// Random seed; the same seed writes the same bytes.
    #[arg(long, env = "MEDALLION_GENERATE_SEED", default_value_t = 42)]
    pub seed: u64,
}

/// `kafka://host:port[,host:port]` as a plaintext connection.
pub(crate) fn kafka_target(to: &str) -> Result<KafkaConnection> {
    let brokers = to
        .strip_prefix("kafka://")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| Error::BadFlag {
            flag: "to",
            message: format!("`{to}` is not kafka://host:port[,host:port]"),
        })?;
    Ok(KafkaConnection {
        bootstrap: brokers
            .trim_end_matches('/')
            .split(',')
            .map(String::from)
            .collect(),
        security: Security::Plaintext,
        sasl: None,
        ca_file: None,
    })
}

pub(crate) async fn run(args: GenerateArgs) -> Result<ExitCode> {
    if args.to.is_some() && args.dataset != Dataset::Ecommerce {
        return Err(Error::BadFlag {
            flag: "to",
            message: "only the e-commerce data set publishes to Kafka".into(),
        });
    }
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        return Err(Error::BadFlag {
            flag: "scale",
            message: format!("{} is not in (0, 100]", args.scale),
        });
    }
    let out = resolve_url(None, &args.out)?;
    match args.dataset {
        Dataset::Ecommerce => {
            let mut data = EcommerceData::new(out.clone(), args.scale)
                .with_seed(args.seed)
                .with_batch(args.batch);
            if let Some(to) = &args.to {
                data = data.with_kafka(kafka_target(to)?);
            }
            let written = data.write().await?;
            println!("batch {} under {out}:", args.batch);
            for w in written {
                match (w.files, &args.to) {
                    (0, Some(to)) => println!(
                        "  {:<12} {:>10} records to topic `{}` at {to}",
                        w.source, w.lines, w.source
                    ),
                    _ => println!("  {:<12} {:>3} files {:>10} lines", w.source, w.files, w.lines),
                }
            }
        }
        Dataset::Example => {
            let written = ExampleData::new(out.clone(), args.orders)
                .with_seed(args.seed)
                .write()
                .await?;
            println!(
                "wrote {} files under {out}: {} order lines, {} customer lines",
                written.files.len(),
                written.order_lines,
                written.customer_lines
            );
        }
        Dataset::Ratings => {
            let lines = RatingsData::new(out.clone(), args.ratings)
                .with_seed(args.seed)
                .write()
                .await?;
            println!("wrote {lines} rating lines under {out}/ratings");
        }
        Dataset::Changes => {
            let lines = ChangesData::new(out.clone(), args.keys)
                .with_batch(args.batch)
                .with_update_fraction(args.update_fraction)
                .with_seed(args.seed)
                .write()
                .await?;
            println!(
                "batch {}: wrote {lines} change lines under {out}/accounts",
                args.batch
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
