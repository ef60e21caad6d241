//! Progress bars while a workload runs (on stderr, only on a terminal and without
//! `--no-progress`).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Makes the run's progress bars.
#[derive(Clone, Copy)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    pub fn new(enabled: bool) -> Progress {
        Progress { enabled }
    }

    /// A bar that fills by itself over `duration` (a timed window) and disappears when
    /// dropped.
    pub fn timed(&self, label: &str, duration: Duration) -> TimedBar {
        let bar = self.bar(duration.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {elapsed}/{duration} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        let ticking = bar.clone();
        let started = std::time::Instant::now();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                ticking.set_position(started.elapsed().as_millis() as u64);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        TimedBar { bar, stop }
    }

    /// A bar over `total` items (records written, subscribers connected).
    pub fn counted(&self, label: &str, total: u64) -> ProgressBar {
        let bar = self.bar(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {human_pos}/{human_len} {per_sec} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        bar
    }

    /// A line above the bars (or on stderr when there are none).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.enabled {
            eprintln!("{}", line.as_ref());
        }
    }

    fn bar(&self, length: u64) -> ProgressBar {
        if self.enabled {
            ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        }
    }
}

/// A bar of [`Progress::timed`].
pub struct TimedBar {
    pub bar: ProgressBar,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for TimedBar {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.bar.finish_and_clear();
    }
}
