#!/usr/bin/env bash
# Builds the extconn component, transpiles it with jco and runs demo.mjs against it in Node.
# Exits non-zero if any step or any check of the demo fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$here"

# npm's downloads are cached in the repository's ignored .cache/, so reruns work offline.
npm ci --no-audit --no-fund --cache "$root/.cache/npm"

# The exact component the Rust host embeds, built from source.
mkdir -p gen
(cd "$root" && cargo run -q -p extconn-host --bin extconn -- component --out "$here/gen/extconn.wasm")

# --instantiation sync: the host compiles the core module once and instantiates it itself, so a
# trapped instance can be replaced. The component has no imports, so no WASI shim is involved.
rm -rf gen/extconn
npx --no-install jco transpile gen/extconn.wasm -o gen/extconn --instantiation sync --quiet

node demo.mjs
