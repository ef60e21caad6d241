//! [`PeriodicThread`]: a named thread that runs one piece of background work every interval
//! (retention, STREAM expiry, compaction), the first time one interval after it starts, and
//! stops (joined, after the run in progress) when dropped.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct PeriodicThread {
    name: &'static str,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PeriodicThread {
    pub fn start(
        name: &'static str,
        interval: Duration,
        mut work: impl FnMut() + Send + 'static,
    ) -> std::io::Result<PeriodicThread> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => work(),
                    // A stop message or a dropped sender: the server is stopping.
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
            })?;
        Ok(PeriodicThread {
            name,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stop the thread and wait for a run in progress to finish.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(thread = self.name, "a background thread panicked");
            }
        }
    }
}

impl Drop for PeriodicThread {
    fn drop(&mut self) {
        self.shut_down();
    }
}
