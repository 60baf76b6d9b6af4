//! Builds the extconn component that the `extconn` binary embeds.
//!
//! 1. Builds `plugin/` for `wasm32-unknown-unknown` in release (opt-level 2), with LTO and one
//!    codegen unit, in a nested `cargo build` whose target directory is
//!    `<workspace>/target/plugin-wasm` (so it never waits for the outer build's lock), with every
//!    inherited flag that targets the outer build cleared.
//! 2. Turns the core module into a component with `wit-component` (validated).
//! 3. Writes `$OUT_DIR/extconn.component.wasm`, which `src/runtime.rs` includes.
//!
//! `EXTCONN_PLUGIN_WASM=/path/to/extconn_plugin.wasm` skips step 1 and componentizes that core
//! module instead (a prebuilt plugin, e.g. from a cached CI artifact or a faster machine).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment the outer build sets or inherits that must not reach the nested wasm build.
const CLEARED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "CARGO_CRATE_NAME",
    "CARGO_PROFILE",
    "CARGO_INCREMENTAL",
    "CARGO_LLVM_COV",
    "LLVM_PROFILE_FILE",
];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ lives in the workspace").to_owned();
    let out_dir = PathBuf::from(env("OUT_DIR"));

    println!("cargo::rerun-if-env-changed=EXTCONN_PLUGIN_WASM");
    let core = match std::env::var_os("EXTCONN_PLUGIN_WASM") {
        Some(prebuilt) => {
            let prebuilt = PathBuf::from(prebuilt);
            println!("cargo::rerun-if-changed={}", prebuilt.display());
            read(&prebuilt)
        }
        None => {
            for input in ["plugin/src", "plugin/Cargo.toml", "wit", "Cargo.lock", "Cargo.toml"] {
                println!("cargo::rerun-if-changed={}", workspace.join(input).display());
            }
            read(&build_plugin(&workspace))
        }
    };

    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| fail(&format!("cannot componentize the plugin: {e:#}")));
    let out = out_dir.join("extconn.component.wasm");
    std::fs::write(&out, component)
        .unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", out.display())));
}

/// Runs the nested release build and returns the core module's path.
fn build_plugin(workspace: &Path) -> PathBuf {
    let target_dir = workspace.join("target").join("plugin-wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args(["build", "--package", "extconn-plugin", "--lib", "--release"])
        .args(["--target", "wasm32-unknown-unknown"])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
    for var in CLEARED_ENV {
        command.env_remove(var);
    }
    command
        .env("CARGO_PROFILE_RELEASE_LTO", "true")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        // opt-level 2, not 3: what Cranelift makes of it runs the URI benchmark about 5% faster
        // (less code unrolled and vectorized for LLVM's own backends); "s" was 40% slower
        // (docs/benchmarks.md).
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "2")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_TERM_COLOR", "never");
    let output = command
        .output()
        .unwrap_or_else(|e| fail(&format!("cannot run cargo for the plugin build: {e}")));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        eprintln!("{stderr}");
        if stderr.contains("target may not be installed") {
            eprintln!("hint: rustup target add wasm32-unknown-unknown");
        }
        fail(&format!(
            "building extconn-plugin for wasm32-unknown-unknown failed ({}); its output is above",
            output.status
        ));
    }
    target_dir.join("wasm32-unknown-unknown").join("release").join("extconn_plugin.wasm")
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fail(&format!("{name} is not set")))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())))
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1);
}
