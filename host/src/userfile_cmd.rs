//! `extconn userfile upload|list|get|delete`: files in the catalog database, as
//! `cockroach userfile` manages them.
//!
//! Names are paths in the user's default table (`defaultdb.public.userfiles_<user>`) or full
//! `userfile://db.schema.table/path` URIs. The component checks each one exactly as it checks a
//! `userfile://` URI in a statement (so `..` and `//` are refused the same way); the
//! `extconn-providers` userfile store does the I/O. `list`, `get` and `delete` take glob
//! patterns: `*` and `?` match within one path segment.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::runtime::{Runtime, RuntimeConfig};
use extconn_providers::{self as providers, storage};

/// `extconn userfile …`.
#[derive(Debug, Subcommand)]
pub enum UserfileCommand {
    /// Upload a local file (to its own name in your table unless a destination is given).
    Upload {
        /// The local file.
        source: PathBuf,
        /// A path in your table, or `userfile://db.schema.table/path`.
        destination: Option<String>,
    },
    /// List files, all of them or those matching a glob pattern.
    List {
        /// A path pattern such as `*.csv`, or `userfile://db.schema.table/pattern`.
        pattern: Option<String>,
    },
    /// Download files matching a name or pattern.
    Get {
        /// A path or pattern, or `userfile://db.schema.table/path`.
        name: String,
        /// A local file (one match) or directory; the current directory by default.
        destination: Option<PathBuf>,
    },
    /// Delete files matching a name or pattern.
    Delete {
        /// A path or pattern, or `userfile://db.schema.table/path`.
        name: String,
    },
}

/// Runs `command` for `user` on the catalog under `data_dir`, printing to `out`.
pub fn run(
    data_dir: &Path,
    user: &str,
    config: RuntimeConfig,
    command: &UserfileCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let catalog = crate::Catalog::open(data_dir)?;
    if catalog.read_principal(user)?.is_none() {
        bail!("role/user \"{user}\" does not exist");
    }
    drop(catalog);
    let runtime = Runtime::new(config)?;
    let files = Files {
        runtime,
        config: crate::provider_config(data_dir),
        user: user.to_owned(),
        tokio: tokio::runtime::Builder::new_current_thread().enable_all().build()?,
    };
    match command {
        UserfileCommand::Upload { source, destination } => {
            let name = match destination {
                Some(d) => d.clone(),
                None => source
                    .file_name()
                    .context("the source has no file name")?
                    .to_string_lossy()
                    .into_owned(),
            };
            let file = files.resolve(&name)?;
            let data = std::fs::read(source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            let location = files.open(&file)?;
            let exists = files
                .tokio
                .block_on(location.list(&file.path, None))?
                .iter()
                .any(|o| o.key == file.path);
            if exists {
                bail!("destination file already exists for /{}", file.path);
            }
            files.tokio.block_on(location.put(&file.path, data))?;
            writeln!(out, "successfully uploaded to {}", file.uri())?;
        }
        UserfileCommand::List { pattern } => {
            let all = pattern.is_none();
            let pattern = files.resolve(pattern.as_deref().unwrap_or(""))?;
            for key in files.matching(&pattern, all || pattern.path.is_empty())? {
                writeln!(out, "{key}")?;
            }
        }
        UserfileCommand::Get { name, destination } => {
            let pattern = files.resolve(name)?;
            let keys = files.matching(&pattern, false)?;
            if keys.is_empty() {
                bail!("no files match {name}");
            }
            let location = files.open(&pattern)?;
            let destination = destination.clone().unwrap_or_else(|| PathBuf::from("."));
            for key in &keys {
                let local = if keys.len() > 1 || destination.is_dir() {
                    destination.join(key.rsplit('/').next().unwrap_or(key))
                } else {
                    destination.clone()
                };
                let data = files.tokio.block_on(location.get(key))?;
                std::fs::write(&local, data)
                    .with_context(|| format!("cannot write {}", local.display()))?;
                writeln!(out, "downloaded {key} to {}", local.display())?;
            }
        }
        UserfileCommand::Delete { name } => {
            let pattern = files.resolve(name)?;
            let keys = files.matching(&pattern, false)?;
            if keys.is_empty() {
                bail!("no files match {name}");
            }
            let location = files.open(&pattern)?;
            for key in &keys {
                files.tokio.block_on(location.delete(key))?;
                writeln!(out, "successfully deleted {key}")?;
            }
        }
    }
    Ok(())
}

struct Files {
    runtime: Runtime,
    config: providers::Config,
    user: String,
    tokio: tokio::runtime::Runtime,
}

/// A checked `userfile://table/path`.
struct File {
    table: String,
    path: String,
}

impl File {
    fn uri(&self) -> String {
        format!("userfile://{}/{}", self.table, self.path)
    }
}

impl Files {
    /// `name` (a path or a `userfile://` URI) checked by the component, with its table.
    fn resolve(&self, name: &str) -> anyhow::Result<File> {
        let uri = if name.contains("://") {
            name.to_owned()
        } else {
            format!("userfile:///{}", name.trim_start_matches('/'))
        };
        let info = self.runtime.instantiate()?.parse_uri(&uri)?.map_err(|e| {
            anyhow::anyhow!(
                "{}",
                e.message.replace("failed to construct External Connection details: ", "")
            )
        })?;
        if info.scheme != "userfile" {
            bail!("{} is not a userfile URI", info.redacted);
        }
        Ok(File {
            table: storage::userfile::qualified_table(&info.host, &self.user),
            path: info.path.trim_matches('/').to_owned(),
        })
    }

    /// The file's table, opened at its root.
    fn open(&self, file: &File) -> anyhow::Result<storage::Location> {
        let mut target = providers::Target::new("userfile", &file.table, "");
        target.user = self.user.clone();
        Ok(storage::open(&self.config, &target)?)
    }

    /// The names in `pattern`'s table that match its path (all of them when `all`).
    fn matching(&self, pattern: &File, all: bool) -> anyhow::Result<Vec<String>> {
        let location = self.open(pattern)?;
        let listed = self.tokio.block_on(location.list("", None))?;
        Ok(listed
            .into_iter()
            .map(|o| o.key)
            .filter(|key| all || glob(&pattern.path, key))
            .collect())
    }
}

/// Whether `name` matches `pattern`: `*` is any run and `?` any one character, neither
/// crossing `/` (Go's `path.Match`, without classes).
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Classic two-pointer match with one backtrack point per star.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some('?') if n[ni] != '/' => {
                pi += 1;
                ni += 1;
            }
            Some(&c) if c != '*' && c != '?' && c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) if n[sn] != '/' => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                _ => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_within_a_segment() {
        let rows = [
            ("*.csv", "a.csv", true),
            ("*.csv", "dir/a.csv", false),
            ("dir/*", "dir/a.csv", true),
            ("d?r/a.csv", "dir/a.csv", true),
            ("a.csv", "a.csv", true),
            ("a.csv", "b.csv", false),
            ("*", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (pattern, name, expected) in rows {
            assert_eq!(glob(pattern, name), expected, "{pattern} {name}");
        }
    }
}
