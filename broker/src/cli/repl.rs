//! The interactive `strand sql` prompt: rustyline editing and history (`~/.strand_history`),
//! statements ended by `;` (possibly over several lines), `\q` / `quit` / `exit` or Ctrl-D to
//! leave, Ctrl-C to drop the statement being typed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;

use strand_broker::limits::CLI_HISTORY_LINES_MAX;

use super::client::Client;
use super::statements::StatementBuffer;
use super::{run_and_print, Output};

const PROMPT: &str = "strand=> ";
const CONTINUATION_PROMPT: &str = "strand-> ";

pub fn run(client: &Client, output: Output) -> anyhow::Result<ExitCode> {
    let config = Config::builder()
        .max_history_size(CLI_HISTORY_LINES_MAX)
        .context("history size")?
        .auto_add_history(false)
        .build();
    let mut editor = DefaultEditor::with_config(config).context("starting the line editor")?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    println!("strand sql: end statements with ';', \\q to quit");
    let mut buffer = StatementBuffer::default();
    loop {
        let prompt = if buffer.has_pending() {
            CONTINUATION_PROMPT
        } else {
            PROMPT
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let command = line.trim();
                if !buffer.has_pending() && matches!(command, "\\q" | "quit" | "exit") {
                    break;
                }
                for statement in buffer.push_line(&line) {
                    let _ = editor.add_history_entry(statement.as_str());
                    if let Err(error) = run_and_print(client, &statement, output) {
                        eprintln!("strand: {error:#}");
                    }
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(error) => return Err(error).context("reading input"),
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(ExitCode::SUCCESS)
}

fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".strand_history"))
}
