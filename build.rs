//! Bakes the path of the libpython that pyo3 linked against into the `ficus` binary's rpath (and
//! the tests'), so it finds the right interpreter without `LD_LIBRARY_PATH` and never a system
//! libpython of the same soname by accident. Link arguments do not pass from a library to its
//! dependents, so the binary's own package asks for them here.
//!
//! It also embeds the ported templates (every `.html` below `src/handlers/`) in the binary, so
//! a deployed `ficus` needs no template files beside it.

fn main() {
    minijinja_embed::embed_templates!("src/handlers", &[".html"][..]);
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
