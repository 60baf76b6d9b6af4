//! The `extconn` command line: arguments, scripts, the interactive shell.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::output::{Format, Printer};
use crate::runtime::{self, Runtime, RuntimeConfig};
use crate::{Host, Session, Validation};

/// The shell's history file, inside the data directory.
const HISTORY_FILE: &str = ".extconn_history";

/// CockroachDB's external connections, run by a sandboxed WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "extconn", version, about)]
pub struct Args {
    /// Directory for the catalog and nodelocal files.
    #[arg(long, global = true, value_name = "DIR", default_value = "extconn-data")]
    pub data_dir: PathBuf,

    /// The user statements run as.
    #[arg(long, global = true, value_name = "NAME", default_value = "root")]
    pub user: String,

    /// The current database.
    #[arg(long, global = true, value_name = "NAME")]
    pub database: Option<String>,

    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = FormatArg::Table)]
    pub format: FormatArg,

    /// How CREATE and ALTER check their target: `full` writes and reads a sentinel file (as
    /// CockroachDB does), `parse-only` checks parameters without any I/O.
    #[arg(long, global = true, value_enum, default_value_t = ValidationArg::Full)]
    pub validation: ValidationArg,

    /// Run this component file instead of the embedded one.
    #[arg(long, global = true, value_name = "FILE")]
    pub plugin: Option<PathBuf>,

    /// Memory cap of the component, in MiB.
    #[arg(long, global = true, value_name = "MIB", default_value_t = runtime::DEFAULT_MEMORY_LIMIT >> 20)]
    pub memory_limit_mib: usize,

    /// How long one call into the component may run, in milliseconds.
    #[arg(long, global = true, value_name = "MS", default_value_t = runtime::DEFAULT_CALL_DEADLINE.as_millis() as u64)]
    pub call_deadline_ms: u64,

    /// Execute these statements and exit (repeatable; each may hold several `;`-separated
    /// statements). Without `-e`, statements come from stdin, or the interactive shell.
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    pub execute: Vec<String>,

    /// What to do instead of running statements.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `extconn <command>`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the embedded WebAssembly component to a file (for other hosts, e.g. jco).
    Component {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Walk through external connections on nodelocal storage, printing each statement.
    Demo,
    /// Run a node: it runs the changefeed jobs of the data directory (and resumes them after a
    /// restart) until it is stopped.
    Start,
    /// Upload, list, download and delete `userfile://` files, like `cockroach userfile`.
    Userfile {
        /// What to do.
        #[command(subcommand)]
        command: crate::userfile_cmd::UserfileCommand,
    },
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Aligned tables, like `cockroach sql`.
    Table,
    /// One JSON object per line.
    Json,
}

/// `--validation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidationArg {
    /// Parameter checks and the I/O round trip.
    Full,
    /// Parameter checks only.
    ParseOnly,
}

impl Args {
    fn session(&self) -> Session {
        Session {
            user: self.user.clone(),
            database: self.database.clone(),
            validation: match self.validation {
                ValidationArg::Full => Validation::Full,
                ValidationArg::ParseOnly => Validation::ParseOnly,
            },
        }
    }

    fn format(&self) -> Format {
        match self.format {
            FormatArg::Table => Format::Table,
            FormatArg::Json => Format::Json,
        }
    }

    fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            plugin: self.plugin.clone(),
            memory_limit: self.memory_limit_mib.saturating_mul(1 << 20),
            call_deadline: Duration::from_millis(self.call_deadline_ms),
            ..RuntimeConfig::default()
        }
    }
}

/// Runs `extconn` with parsed arguments; the process's exit code.
pub fn run(args: Args) -> ExitCode {
    init_logging();
    match run_inner(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("ERROR: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: a statement failed (its error is printed already).
fn run_inner(args: &Args) -> anyhow::Result<bool> {
    if let Some(Command::Start) = &args.command {
        let config = std::sync::Arc::new(crate::provider_config(&args.data_dir));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        eprintln!(
            "extconn node on {} (pid {}): running changefeed jobs; stop it with Ctrl-C",
            args.data_dir.display(),
            std::process::id()
        );
        let runtime = Runtime::new(args.runtime_config())?;
        crate::node::run(&args.data_dir, config, runtime, stop)?;
        return Ok(true);
    }
    if let Some(Command::Component { out }) = &args.command {
        std::fs::write(out, runtime::embedded_component())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
        return Ok(true);
    }
    if let Some(Command::Userfile { command }) = &args.command {
        let config = args.runtime_config();
        let mut out = std::io::stdout().lock();
        crate::userfile_cmd::run(&args.data_dir, &args.user, config, command, &mut out)?;
        return Ok(true);
    }
    let runtime = Runtime::new(args.runtime_config())?;
    let mut host = Host::open(runtime, &args.data_dir)?;
    if std::io::stderr().is_terminal() {
        host.set_progress(progress_bar());
    }
    let mut session = args.session();
    let interactive =
        args.command.is_none() && args.execute.is_empty() && std::io::stdin().is_terminal();
    if interactive {
        shell(&mut host, &mut session, args.format(), &args.data_dir)?;
        wait_detached(&mut host);
        return Ok(true);
    }
    // stderr is not held locked: logs and progress bars from other threads (librdkafka's, a
    // detached job's) write to it while a statement runs.
    let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
    let mut printer = Printer::new(args.format(), &mut stdout, &mut stderr);
    if let Some(Command::Demo) = &args.command {
        return Ok(crate::demo::run(&mut host, &session, &mut printer)?);
    }
    if !args.execute.is_empty() {
        for sql in &args.execute {
            if !run_script(&mut host, &session, sql, &mut printer)? {
                wait_detached(&mut host);
                return Ok(false);
            }
            // `USE` in one -e carries into the next, as in one session.
            session.database = host.current_database().map(str::to_owned);
        }
        wait_detached(&mut host);
        return Ok(true);
    }
    let mut script = String::new();
    std::io::stdin().read_to_string(&mut script)?;
    let ok = run_script(&mut host, &session, &script, &mut printer)?;
    wait_detached(&mut host);
    Ok(ok)
}

/// Detached operations finish before the process ends: say so if there is a wait.
fn wait_detached(host: &mut Host) {
    let running = host.detached_running();
    if running > 0 {
        eprintln!("waiting for {running} detached job(s) to finish (SHOW JOBS shows them)");
        host.wait_detached();
    }
}

/// Runs one script, printing each result as it comes; `false` if a statement failed.
pub fn run_script(
    host: &mut Host,
    session: &Session,
    sql: &str,
    printer: &mut Printer<'_>,
) -> std::io::Result<bool> {
    let mut ok = true;
    let mut printed = Ok(());
    host.execute_each(session, sql, |result| {
        ok &= result.outcome.is_ok();
        if printed.is_ok() {
            printed = printer.print(&result);
        }
    });
    printed.map(|()| ok)
}

/// A progress bar on stderr for long operations (BACKUP, RESTORE, IMPORT, EXPORT), cleared
/// when the operation is done.
fn progress_bar() -> impl Fn(&str, u64, u64) + Send + Sync + 'static {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    let bar: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    move |operation: &str, done: u64, total: u64| {
        let Ok(mut bar) = bar.lock() else { return };
        if total == 0 {
            return;
        }
        let current = bar.get_or_insert_with(|| {
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let new = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            new.set_style(style);
            new.set_message(operation.to_owned());
            new
        });
        current.set_length(total);
        current.set_position(done);
        if done >= total {
            current.finish_and_clear();
            *bar = None;
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// The interactive shell: line editing and history; a statement ends at a `;` outside quotes
/// and comments; `\q` or Ctrl-D quits; Ctrl-C drops the statement being typed.
fn shell(
    host: &mut Host,
    session: &mut Session,
    format: Format,
    data_dir: &Path,
) -> anyhow::Result<()> {
    use rustyline::error::ReadlineError;

    let mut editor = rustyline::DefaultEditor::new()?;
    let history = data_dir.join(HISTORY_FILE);
    // A missing history file is the normal first run.
    let _ = editor.load_history(&history);
    let prompt = format!("{}@extconn> ", session.user);
    let continuation = format!("{:>width$}", "-> ", width = prompt.len());
    let mut buffer = String::new();
    println!(
        "# extconn {}: external connections in a sandboxed component.",
        env!("CARGO_PKG_VERSION")
    );
    println!("# End statements with `;`. Type \\q or press Ctrl-D to quit.");
    loop {
        let line = match editor.readline(if buffer.is_empty() { &prompt } else { &continuation }) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if buffer.is_empty() && matches!(line.trim(), "\\q" | "quit" | "exit") {
            break;
        }
        if buffer.is_empty() && line.trim().is_empty() {
            continue;
        }
        if !buffer.is_empty() {
            buffer.push('\n');
        }
        buffer.push_str(&line);
        if !statement_complete(&buffer) {
            continue;
        }
        let _ = editor.add_history_entry(buffer.as_str());
        if editor.save_history(&history).is_ok() {
            restrict_permissions(&history);
        }
        let (mut stdout, mut stderr) = (std::io::stdout().lock(), std::io::stderr());
        let mut printer = Printer::new(format, &mut stdout, &mut stderr);
        run_script(host, session, &buffer, &mut printer)?;
        session.database = host.current_database().map(str::to_owned);
        buffer.clear();
    }
    Ok(())
}

/// Statements hold secrets: the history file is for its owner only.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Whether `sql` ends with a `;` that is outside quotes and comments.
pub fn statement_complete(sql: &str) -> bool {
    #[derive(PartialEq)]
    enum State {
        Code,
        Single,
        Double,
        Line,
        Block,
    }
    let mut state = State::Code;
    let mut last_code = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        state = match (state, c) {
            // A quoted token is code: a `;` inside it does not end the statement.
            (State::Code, '\'') => {
                last_code = Some(c);
                State::Single
            }
            (State::Code, '"') => {
                last_code = Some(c);
                State::Double
            }
            (State::Code, '-') if chars.peek() == Some(&'-') => State::Line,
            (State::Code, '/') if chars.peek() == Some(&'*') => {
                chars.next();
                State::Block
            }
            (State::Code, c) => {
                if !c.is_whitespace() {
                    last_code = Some(c);
                }
                State::Code
            }
            // `''` and `""` inside quotes are escapes: leave and re-enter.
            (State::Single, '\'') => State::Code,
            (State::Double, '"') => State::Code,
            (State::Line, '\n') => State::Code,
            (State::Block, '*') if chars.peek() == Some(&'/') => {
                chars.next();
                State::Code
            }
            (state, _) => state,
        };
    }
    matches!(state, State::Code | State::Line) && last_code == Some(';')
}

#[cfg(test)]
mod tests {
    use super::statement_complete;

    #[test]
    fn statements_end_at_a_semicolon_outside_quotes_and_comments() {
        let rows = [
            ("SHOW EXTERNAL CONNECTIONS;", true),
            ("SHOW EXTERNAL CONNECTIONS", false),
            ("SHOW EXTERNAL CONNECTIONS;  ", true),
            ("CREATE EXTERNAL CONNECTION a AS 'x;", false),
            ("CREATE EXTERNAL CONNECTION a AS 'x;'", false),
            ("CREATE EXTERNAL CONNECTION a AS 'x;';", true),
            ("CREATE EXTERNAL CONNECTION \"a;\" AS 'it''s';", true),
            ("CREATE EXTERNAL CONNECTION \"a;", false),
            ("SHOW EXTERNAL CONNECTIONS; -- done", true),
            ("SHOW EXTERNAL CONNECTIONS -- not yet;", false),
            ("SHOW /* ; */ EXTERNAL CONNECTIONS", false),
            ("SHOW EXTERNAL CONNECTIONS /* ; */;", true),
            ("SHOW EXTERNAL CONNECTIONS; /* open", false),
            ("", false),
        ];
        for (sql, complete) in rows {
            assert_eq!(statement_complete(sql), complete, "{sql:?}");
        }
    }
}
