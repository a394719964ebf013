//! Records the Python version the engine embeds (`FICUS_PYTHON_VERSION`), so a mismatched venv is
//! refused with a clear sentence, and gives the engine's own test and example binaries
//! libpython's rpath. A binary built on the engine adds the rpath in its own build script (link
//! arguments do not pass from a library to its dependents).

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
