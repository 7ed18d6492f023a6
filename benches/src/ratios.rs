//! Prints tulip/peer ratios at the end of a bench run, from the estimates
//! criterion just wrote (`target/criterion/<group>/<id>/new/estimates.json`).
//! Used by the bench files as `benches::ratios::print`.

use std::path::PathBuf;
use std::time::SystemTime;

/// The mean (ns) of one benchmark, if criterion wrote it after `since`
/// (a group filtered out of this run keeps an older file: skipped).
fn mean_ns(id: &str, since: SystemTime) -> Option<f64> {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = dir.join("criterion").join(id).join("new/estimates.json");
    if std::fs::metadata(&path).and_then(|m| m.modified()).ok()? < since {
        return None;
    }
    let text = std::fs::read_to_string(path).ok()?;
    // {"mean":{"confidence_interval":{…},"point_estimate":X,…
    let mean = &text[text.find("\"mean\"")?..];
    let value = &mean[mean.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value.find([',', '}'])?;
    value[..end].trim().parse().ok()
}

/// Prints `tulip / peer` for each `(tulip id, peer id, target)` measured
/// since `since` (the start of this bench binary).
#[allow(clippy::print_stdout)]
pub fn print(since: SystemTime, pairs: &[(&str, &str, &str)]) {
    println!("\nratios (mean time, tulip / peer; < 1 means tulip is faster):");
    for (tulip, peer, target) in pairs {
        if let (Some(t), Some(p)) = (mean_ns(tulip, since), mean_ns(peer, since)) {
            println!(
                "  {tulip:<34} / {peer:<36} = {:>6.3}   target {target}",
                t / p
            );
        }
    }
}
