//! `ficus-engine`: the engine with no ported view, so every route is Django's. It is the drop-in
//! server on its own (`ficus-engine serve mysite.wsgi`, gunicorn's command line), and the binary
//! the engine's own integration tests run. A migration's binary is its own `ficus`, built with
//! its handlers (`ficus init` writes it); the name differs so both fit in one target directory.

fn main() -> std::process::ExitCode {
    ficus::main(ficus::prelude::Registry::new())
}
