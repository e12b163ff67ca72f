//! Integration tests (minimal entry point of the `proxy` branch; the shared one lives elsewhere).

mod proxy_faults;
mod support;
