//! End-to-end tests live in tests/; this package has no library code of its own.
