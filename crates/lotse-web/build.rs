//! Measures the widget script: its size and gzipped size appear in the build output, and a
//! widget over the budget (40 KB gzipped) fails the build.

use std::io::Write;

const BUDGET_GZ: usize = 40 * 1024;

fn main() {
    let path = "assets/widget/widget.js";
    println!("cargo:rerun-if-changed={path}");
    let js = std::fs::read(path).expect("the widget script exists");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&js).expect("gzip in memory");
    let gz = gz.finish().expect("gzip in memory");
    println!(
        "cargo:warning=widget.js: {:.1} KB, {:.1} KB gzipped (budget {} KB)",
        js.len() as f64 / 1024.0,
        gz.len() as f64 / 1024.0,
        BUDGET_GZ / 1024
    );
    if gz.len() > BUDGET_GZ {
        panic!("widget.js is {} bytes gzipped, over the budget of {BUDGET_GZ}", gz.len());
    }
}
