//! `medallion generate`: example landing data with realistic dirt.

use std::process::ExitCode;

use clap::Args;
use medallion_jobs::generate::ExampleData;
use medallion_jobs::pipeline::resolve_url;

use crate::error::Result;

/// Flags of `medallion generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Where to write (URL or path); `orders/` and `customers/` are created below it.
    #[arg(long, env = "MEDALLION_GENERATE_OUT", default_value = "data/landing")]
    pub out: String,
    /// Number of orders (customers are a tenth of that).
    #[arg(long, env = "MEDALLION_GENERATE_ORDERS", default_value_t = 10_000)]
    pub orders: u64,
    /// Files per source.
    #[arg(long, env = "MEDALLION_GENERATE_FILES", default_value_t = 4)]
    pub files: u64,
    /// Random seed; the same seed writes the same bytes.
    #[arg(long, env = "MEDALLION_GENERATE_SEED", default_value_t = 42)]
    pub seed: u64,
}

pub(crate) async fn run(args: GenerateArgs) -> Result<ExitCode> {
    let out = resolve_url(None, &args.out)?;
    let written = ExampleData::new(out.clone(), args.orders)
        .with_files(args.files)
        .with_seed(args.seed)
        .write()
        .await?;
    println!(
        "wrote {} files under {out}: {} order lines, {} customer lines",
        written.files.len(),
        written.order_lines,
        written.customer_lines
    );
    Ok(ExitCode::SUCCESS)
}
