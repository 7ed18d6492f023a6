//! Examples live in this folder, one `[[example]]` per file.
