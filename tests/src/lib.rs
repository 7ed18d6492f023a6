//! Cross-crate integration tests live in `tests/`.
//!
//! This library also runs the Rust code blocks of the project's Markdown
//! pages as doctests, so the README and the docs cannot drift from the API:
//! `cargo test --workspace` compiles and runs each of them.

#![doc(test(attr(deny(warnings))))]

/// The README's code blocks.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The code blocks of `docs/architecture.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/architecture.md")]
pub struct ArchitectureDoctests;

/// The code blocks of `docs/asyncio-mapping.md`.
#[cfg(doctest)]
#[doc = include_str!("../../docs/asyncio-mapping.md")]
pub struct AsyncioMappingDoctests;
