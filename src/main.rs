//! The `roofline` binary. The command line lives here, not in the library, so the library's
//! public API is the pipeline's stages only (as ripgrep keeps its args and printer in the binary).

mod cli;

fn main() {
    std::process::exit(cli::main());
}
