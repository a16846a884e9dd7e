//! Progress bars on stderr (indicatif), silenced by `--quiet` and invisible when stderr is not
//! a terminal, so logs and CI output stay clean.

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// Whether to draw progress bars, and where; cheap to copy into every stage. The default is
/// quiet.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    quiet: bool,
    /// Where bars are drawn instead of stderr (the Python package draws into `sys.stderr`, so
    /// a notebook shows them in the cell).
    target: Option<fn() -> ProgressDrawTarget>,
}

impl Progress {
    /// Bars on stderr unless `quiet` (the CLI's `--quiet`).
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            target: None,
        }
    }

    /// Bars drawn where `target` says (each bar gets a new target), always.
    pub fn drawn_to(target: fn() -> ProgressDrawTarget) -> Progress {
        Progress {
            quiet: false,
            target: Some(target),
        }
    }

    /// No bars at all (library use, tests).
    pub fn hidden() -> Progress {
        Progress::new(true)
    }

    /// True when bars (and the stage's other stderr chatter) should be left out.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// A bar of `len` steps counted in `unit` (e.g. "points", "buildings").
    pub fn bar(&self, len: u64, message: &str, unit: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let target = self.target.map_or_else(ProgressDrawTarget::stderr, |t| t());
        let bar = ProgressBar::with_draw_target(Some(len), target);
        let template = format!(
            "{{msg:>12}} [{{bar:32}}] {{human_pos}}/{{human_len}} {unit} ({{rate}}, {{eta}} left)"
        );
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("static template")
                // indicatif's `per_sec` prints four decimals of millions of points a second.
                .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{}/s", HumanCount(s.per_sec().round() as u64));
                })
                .progress_chars("=> "),
        );
        bar.set_message(message.to_string());
        bar
    }
}
