//! Integration tests of `airlift mirror sync` (written ahead of the engine).
