# Convenience recipes. `just` is optional: every recipe is a plain cargo command.

default: check

# Format, lint and test, as CI does
check: fmt-check clippy test

fmt:
    cargo fmt --all

fmt-check:
    cargo fmt --all -- --check

clippy:
    cargo clippy --workspace --all-targets -- -D warnings

# The README's test command
test:
    cargo test --workspace

# The whole story against the built-in sandbox
demo:
    cargo run --release -p authmigrate-cli -- demo

# Local emulators of Auth0 and Authgear until Ctrl-C
sandbox:
    cargo run --release -p authmigrate-cli -- sandbox

bench:
    cargo bench --workspace

ci:
    bash .ci/run
