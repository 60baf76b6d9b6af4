//! `extconn`: parses the command line and hands it to the host library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    extconn_host::cli::run(extconn_host::cli::Args::parse())
}
