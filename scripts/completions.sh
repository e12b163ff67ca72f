#!/usr/bin/env bash
# Regenerates the committed shell completions from the CLI definition (a unit test fails
# when they are stale).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet
bin=target/debug/airlift
mkdir -p completions
"$bin" completions bash >completions/airlift.bash
"$bin" completions zsh >completions/_airlift
"$bin" completions fish >completions/airlift.fish
"$bin" completions powershell >completions/_airlift.ps1
"$bin" completions elvish >completions/airlift.elv
