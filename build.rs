//! Bakes the path of the libpython that pyo3 linked against into the binary's rpath, so `ficus`
//! finds the right interpreter without `LD_LIBRARY_PATH` (and never a system libpython of the same
//! soname by accident), and records the Python version the binary embeds so a mismatched venv is
//! refused with a clear sentence.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    let config = pyo3_build_config::get();
    println!(
        "cargo:rustc-env=FICUS_PYTHON_VERSION={}.{}",
        config.version().major,
        config.version().minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
