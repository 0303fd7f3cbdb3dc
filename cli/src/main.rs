//! The `medallion` binary: parses flags and hands over to the CLI library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = medallion_cli::Cli::parse();
    medallion_cli::main(cli)
}
