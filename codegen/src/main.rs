//! `chanx-codegen`: writes a typed client for the endpoints an AsyncAPI 3.0
//! document describes.
//!
//! ```text
//! quickstart asyncapi > asyncapi.json
//! chanx-codegen typescript --input asyncapi.json --output src/chanx.ts
//! curl -s localhost:8000/asyncapi.json | chanx-codegen typescript > chanx.ts
//! ```

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Typed clients from a chanx server's AsyncAPI 3.0 document.
#[derive(Debug, Parser)]
#[command(name = "chanx-codegen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write a TypeScript module: message types and a typed WebSocket client.
    Typescript {
        /// The AsyncAPI document (JSON); standard input when absent or `-`.
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Where to write the module; standard output when absent or `-`.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let Command::Typescript { input, output } = Cli::parse().command;
    match run(input, output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chanx-codegen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn is_stdio(path: &Option<PathBuf>) -> bool {
    path.as_ref().is_none_or(|p| p.as_os_str() == "-")
}

fn run(input: Option<PathBuf>, output: Option<PathBuf>) -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    match &input {
        Some(path) if !is_stdio(&input) => {
            text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        }
        _ => {
            std::io::stdin().read_to_string(&mut text)?;
        }
    }
    let document: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the document is not JSON: {e}"))?;
    let module = chanx_codegen::typescript(&document)?;
    match &output {
        Some(path) if !is_stdio(&output) => std::fs::write(path, module)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        _ => std::io::stdout().write_all(module.as_bytes())?,
    }
    Ok(())
}
