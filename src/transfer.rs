//! The copy engine: plan, then execute.
