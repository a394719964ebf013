//! The `ficus` command of this migration: the engine, with this repository's ported views.

fn main() -> std::process::ExitCode {
    ficus::main(legacy_migration::handlers::registry())
}
