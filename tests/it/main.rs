//! Integration tests: one binary so the crate links once.

mod inventory;
mod registry;
mod support;
