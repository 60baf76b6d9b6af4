//! The grammar, by hand over the lexer's tokens: statement splitting, the table of statement
//! families extconn owns, and one function per family. Nothing here recurses.

use super::lexer::{Kind, LexError, Lexer, Tok};
use super::{MAX_SQL_BYTES, MAX_STATEMENTS, ParseError, Statement, literal};

/// A family of statements extconn parses itself: the leading keywords that claim a statement,
/// and the function that parses the rest (the cursor starts after the prefix). A statement
/// claimed here that does not parse is a syntax error; one no family claims is
/// [`Statement::Other`]. A new family (GRANT, BACKUP, …) is one more row.
#[derive(Debug)]
struct Family {
    prefix: &'static [&'static str],
    parse: fn(&mut Cursor<'_>) -> Result<Statement, ParseError>,
}

const FAMILIES: &[Family] = &[
    Family { prefix: &["create", "external"], parse: create_external_connection },
    Family { prefix: &["alter", "external"], parse: alter_external_connection },
    Family { prefix: &["drop", "external"], parse: drop_external_connection },
    Family { prefix: &["show", "external"], parse: show_external_connections },
    Family { prefix: &["show", "create", "external"], parse: show_create_external_connection },
    Family { prefix: &["show", "create", "all"], parse: show_create_all_external_connections },
    Family { prefix: &["check", "external"], parse: check_external_connection },
];

/// CockroachDB's reserved keywords: not allowed as a bare name (`non_reserved_word`).
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
    "cast", "check", "collate", "column", "concurrently", "constraint", "create",
    "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do",
    "else", "end", "except", "false", "fetch", "for", "foreign", "from", "grant", "group",
    "having", "in", "index", "initially", "intersect", "into", "lateral", "leading", "limit",
    "localtime", "localtimestamp", "not", "nothing", "null", "offset", "on", "only", "or",
    "order", "placing", "primary", "references", "returning", "select", "session_user", "some",
    "symmetric", "table", "then", "to", "trailing", "true", "union", "unique", "user", "using",
    "variadic", "when", "where", "window", "with",
];

/// The most tokens kept of a statement a family claims. None of ours needs more than a few
/// dozen; a statement past this is refused rather than held in memory.
pub(super) const MAX_OWNED_TOKENS: usize = 10_000;

pub(super) fn parse(sql: &str) -> Result<Vec<Statement>, ParseError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(ParseError::TooLong { bytes: sql.len() });
    }
    parse_tokens(sql, Lexer::new(sql))
}

/// [`parse`] lexing `chunk_bytes` at a time, to test chunk boundaries.
#[cfg(test)]
pub(super) fn parse_chunked(sql: &str, chunk_bytes: usize) -> Result<Vec<Statement>, ParseError> {
    parse_tokens(sql, Lexer::with_chunk_bytes(sql, chunk_bytes))
}

fn parse_tokens(sql: &str, mut lexer: Lexer<'_>) -> Result<Vec<Statement>, ParseError> {
    let mut statements = Vec::new();
    let mut current = Current::default();
    loop {
        match lexer.next_tok() {
            Ok(Some(tok)) if tok.kind == Kind::Semicolon => current.finish(sql, &mut statements)?,
            Ok(Some(tok)) => current.push(tok),
            Ok(None) => {
                current.finish(sql, &mut statements)?;
                return Ok(statements);
            }
            // As in CockroachDB, the statement of a lexical error runs to the end of the text.
            Err(LexError { message, pos }) => {
                let start = current.start().unwrap_or(pos);
                let detail = source_detail(&sql[start..], pos - start);
                return Err(ParseError::Lexical { message, detail });
            }
        }
    }
}

/// The statement being read.
#[derive(Debug, Default)]
struct Current {
    /// Its tokens, while a family may claim it.
    tokens: Vec<Tok>,
    /// Its extent, once no family can claim it: its tokens are not needed.
    other: Option<(usize, usize)>,
    /// The end of its last token, once it has more than [`MAX_OWNED_TOKENS`].
    truncated: Option<usize>,
}

impl Current {
    fn start(&self) -> Option<usize> {
        self.other.map(|(start, _)| start).or_else(|| self.tokens.first().map(|tok| tok.start))
    }

    fn push(&mut self, tok: Tok) {
        if let Some((_, end)) = &mut self.other {
            *end = tok.end;
        } else if self.tokens.len() == MAX_OWNED_TOKENS {
            self.truncated = Some(tok.end);
        } else {
            let (start, end) =
                (self.tokens.first().map_or(tok.start, |first| first.start), tok.end);
            self.tokens.push(tok);
            let claimable = FAMILIES.iter().any(|family| {
                family
                    .prefix
                    .iter()
                    .zip(&self.tokens)
                    .all(|(keyword, tok)| is_keyword(tok, keyword))
            });
            if !claimable {
                self.other = Some((start, end));
                self.tokens = Vec::new();
            }
        }
    }

    /// Parses the statement read (if any) into `statements` and starts a new one.
    fn finish(&mut self, sql: &str, statements: &mut Vec<Statement>) -> Result<(), ParseError> {
        let Self { tokens, other, truncated } = std::mem::take(self);
        if tokens.is_empty() && other.is_none() {
            return Ok(());
        }
        if statements.len() == MAX_STATEMENTS {
            return Err(ParseError::TooManyStatements);
        }
        statements.push(match other {
            Some((start, end)) => Statement::Other { sql: sql[start..end].to_owned() },
            None => statement(sql, &tokens, truncated)?,
        });
        Ok(())
    }
}

/// One statement from its (non-empty) tokens; `truncated` is the statement's end if tokens past
/// [`MAX_OWNED_TOKENS`] were dropped.
fn statement(sql: &str, tokens: &[Tok], truncated: Option<usize>) -> Result<Statement, ParseError> {
    let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
        unreachable!("finish() passes at least one token")
    };
    let (start, end) = (first.start, truncated.unwrap_or(last.end));
    let claimed = FAMILIES.iter().find(|family| {
        family.prefix.len() <= tokens.len()
            && family.prefix.iter().zip(tokens).all(|(keyword, tok)| is_keyword(tok, keyword))
    });
    match claimed {
        Some(family) => {
            let truncated = truncated.is_some();
            let mut cursor =
                Cursor { sql, start, end, tokens, pos: family.prefix.len(), truncated };
            (family.parse)(&mut cursor)
        }
        None => Ok(Statement::Other { sql: sql[start..end].to_owned() }),
    }
}

/// `CREATE EXTERNAL CONNECTION [IF NOT EXISTS] name AS uri`
fn create_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let if_not_exists = c.eat_if_not_exists()?;
    let name = c.name()?;
    c.expect_keyword("as")?;
    let uri = c.string_or_placeholder()?;
    c.expect_end()?;
    Ok(Statement::CreateExternalConnection { if_not_exists, name, uri })
}

/// `ALTER EXTERNAL CONNECTION [IF EXISTS] [IF NOT EXISTS] name AS uri`
///
/// CockroachDB's rule is `ALTER EXTERNAL CONNECTION [IF EXISTS] label_spec AS …`, and `label_spec`
/// (shared with CREATE) allows `IF NOT EXISTS name`. It parses there but means nothing (only the
/// IF EXISTS flag is read), so here too it is accepted and ignored: a plain ALTER.
fn alter_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let if_exists = c.is_keyword_at(0, "if") && c.is_keyword_at(1, "exists");
    if if_exists {
        c.pos += 2;
    }
    c.eat_if_not_exists()?;
    let name = c.name()?;
    c.expect_keyword("as")?;
    let uri = c.string_or_placeholder()?;
    c.expect_end()?;
    Ok(Statement::AlterExternalConnection { if_exists, name, uri })
}

/// `DROP EXTERNAL CONNECTION name` (no IF EXISTS, no CASCADE: `IF` is taken as the name and
/// `EXISTS` is then the error, as in CockroachDB).
fn drop_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let name = c.name()?;
    c.expect_end()?;
    Ok(Statement::DropExternalConnection { name })
}

/// `SHOW EXTERNAL CONNECTIONS` and `SHOW EXTERNAL CONNECTION name`
fn show_external_connections(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    let statement = if c.eat_keyword("connections") {
        Statement::ShowExternalConnections
    } else {
        c.expect_keyword("connection")?;
        Statement::ShowExternalConnection { name: c.name()? }
    };
    c.expect_end()?;
    Ok(statement)
}

/// `SHOW CREATE EXTERNAL CONNECTION name`
fn show_create_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("connection")?;
    let name = c.name()?;
    c.expect_end()?;
    Ok(Statement::ShowCreateExternalConnection { name })
}

/// `SHOW CREATE ALL EXTERNAL CONNECTIONS`
fn show_create_all_external_connections(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    c.expect_keyword("external")?;
    c.expect_keyword("connections")?;
    c.expect_end()?;
    Ok(Statement::ShowCreateAllExternalConnections)
}

/// `CHECK EXTERNAL CONNECTION uri [WITH option, … | WITH OPTIONS (option, …)]` where option is
/// `CONCURRENTLY = expr`, `TRANSFER = string` or `TIME = string`, each at most once.
fn check_external_connection(c: &mut Cursor<'_>) -> Result<Statement, ParseError> {
    const NAMES: [&str; 3] = ["concurrently", "transfer", "time"];
    c.expect_keyword("connection")?;
    let uri = c.string_or_placeholder()?;
    let mut values: [Option<String>; 3] = Default::default();
    if c.eat_keyword("with") {
        let parenthesized = c.eat_keyword("options");
        if parenthesized {
            c.expect(&Kind::LParen)?;
        }
        loop {
            let Some(slot) = NAMES.iter().position(|name| c.is_keyword_at(0, name)) else {
                return Err(c.syntax_error(None));
            };
            c.pos += 1;
            c.expect(&Kind::Eq)?;
            let value =
                if slot == 0 { c.expression()? } else { literal(&c.string_or_placeholder()?) };
            if values[slot].is_some() {
                // CockroachDB notices at the token after the repeated option.
                let reason = format!("{} option specified multiple times", NAMES[slot]);
                return Err(c.syntax_error(Some(reason)));
            }
            values[slot] = Some(value);
            if !c.eat(&Kind::Comma) {
                break;
            }
        }
        if parenthesized {
            c.expect(&Kind::RParen)?;
        }
    }
    c.expect_end()?;
    let options = NAMES
        .iter()
        .zip(values)
        .filter_map(|(name, value)| Some((name.to_ascii_uppercase(), value?)))
        .collect();
    Ok(Statement::CheckExternalConnection { uri, options })
}

/// Whether `tok` is the bare word `keyword` (any case; a quoted identifier is never a keyword).
fn is_keyword(tok: &Tok, keyword: &str) -> bool {
    matches!(&tok.kind, Kind::Word(word) if word.eq_ignore_ascii_case(keyword))
}

/// A position in one statement's tokens.
#[derive(Debug)]
struct Cursor<'a> {
    /// The whole SQL text.
    sql: &'a str,
    /// The statement: `sql[start..end]`.
    start: usize,
    end: usize,
    tokens: &'a [Tok],
    pos: usize,
    /// Tokens past the end of `tokens` were dropped ([`MAX_OWNED_TOKENS`]).
    truncated: bool,
}

impl Cursor<'_> {
    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.tokens.get(self.pos + n)
    }

    fn is_keyword_at(&self, n: usize, keyword: &str) -> bool {
        self.peek_at(n).is_some_and(|tok| is_keyword(tok, keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword_at(0, keyword);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), ParseError> {
        if self.eat_keyword(keyword) { Ok(()) } else { Err(self.syntax_error(None)) }
    }

    fn eat(&mut self, kind: &Kind) -> bool {
        let found = self.peek_at(0).is_some_and(|tok| tok.kind == *kind);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, kind: &Kind) -> Result<(), ParseError> {
        if self.eat(kind) { Ok(()) } else { Err(self.syntax_error(None)) }
    }

    fn expect_end(&self) -> Result<(), ParseError> {
        if self.pos == self.tokens.len() && !self.truncated {
            Ok(())
        } else {
            Err(self.syntax_error(None))
        }
    }

    /// `IF NOT EXISTS`, if there. `IF` alone is a name (it is not reserved).
    fn eat_if_not_exists(&mut self) -> Result<bool, ParseError> {
        if !(self.is_keyword_at(0, "if") && self.is_keyword_at(1, "not")) {
            return Ok(false);
        }
        self.pos += 2;
        self.expect_keyword("exists")?;
        Ok(true)
    }

    /// A connection name: [`Self::string_or_placeholder`], not empty.
    fn name(&mut self) -> Result<String, ParseError> {
        let name = self.string_or_placeholder()?;
        if name.is_empty() {
            return Err(ParseError::EmptyName);
        }
        Ok(name)
    }

    /// CockroachDB's `string_or_placeholder`: a string constant (as is), a quoted identifier
    /// (as is), or a bare non-reserved word (lower-cased). Placeholders are not supported.
    fn string_or_placeholder(&mut self) -> Result<String, ParseError> {
        let Some(tok) = self.peek_at(0) else {
            return Err(self.syntax_error(None));
        };
        let value = match &tok.kind {
            Kind::Str(value) | Kind::QuotedIdent(value) => value.clone(),
            Kind::Word(word) => {
                let word = word.to_lowercase();
                if RESERVED.contains(&word.as_str()) {
                    return Err(self.syntax_error(None));
                }
                word
            }
            Kind::Placeholder => return Err(self.placeholder_error(tok)),
            _ => return Err(self.syntax_error(None)),
        };
        self.pos += 1;
        Ok(value)
    }

    /// An expression's text, as written: tokens up to a `,` or `)` outside parentheses, or the
    /// end. Its meaning is the executor's business.
    fn expression(&mut self) -> Result<String, ParseError> {
        let first = self.pos;
        let mut depth = 0usize;
        while let Some(tok) = self.peek_at(0) {
            match tok.kind {
                Kind::LParen => depth += 1,
                Kind::RParen if depth == 0 => break,
                Kind::RParen => depth -= 1,
                Kind::Comma if depth == 0 => break,
                Kind::Placeholder => return Err(self.placeholder_error(tok)),
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == first || depth > 0 {
            return Err(self.syntax_error(None));
        }
        let (start, end) = (self.tokens[first].start, self.tokens[self.pos - 1].end);
        Ok(self.sql[start..end].to_owned())
    }

    /// A syntax error at the current token, or at the end of the statement (but past the tokens
    /// kept of a truncated statement, the limit error).
    fn syntax_error(&self, reason: Option<String>) -> ParseError {
        let (near, pos) = match self.peek_at(0) {
            Some(tok) => (self.near(tok), tok.start),
            None if self.truncated => return ParseError::TooManyTokens,
            None => ("EOF".to_owned(), self.end),
        };
        let detail = source_detail(&self.sql[self.start..self.end], pos - self.start);
        ParseError::Syntax { near, reason, detail }
    }

    fn placeholder_error(&self, tok: &Tok) -> ParseError {
        let detail = source_detail(&self.sql[self.start..self.end], tok.start - self.start);
        ParseError::Placeholder { detail }
    }

    /// A token as CockroachDB's syntax errors show it: words lower-cased, literals and quoted
    /// identifiers by value, placeholders by number, operators by their first character.
    fn near(&self, tok: &Tok) -> String {
        let text = &self.sql[tok.start..tok.end];
        match &tok.kind {
            Kind::Word(word) => word.to_lowercase(),
            Kind::QuotedIdent(value) | Kind::Str(value) | Kind::OtherLiteral(value) => {
                value.clone()
            }
            Kind::Number => text.to_owned(),
            Kind::Placeholder => match text.strip_prefix('$') {
                Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => digits.to_owned(),
                _ => text.to_owned(),
            },
            _ => text.chars().next().map(String::from).unwrap_or_default(),
        }
    }
}

/// CockroachDB's detail for a syntax error: the statement up to the end of the line holding the
/// fault, then a caret under it. `pos` is a byte offset into `statement`. The caret is placed by
/// characters (CockroachDB counts bytes, which misplaces it after non-ASCII text), and tabs are
/// kept so it lines up in a terminal.
pub(super) fn source_detail(statement: &str, pos: usize) -> String {
    let line_end = statement[pos..].find('\n').map_or(statement.len(), |i| pos + i);
    let line_start = statement[..pos].rfind('\n').map_or(0, |i| i + 1);
    let indent: String =
        statement[line_start..pos].chars().map(|ch| if ch == '\t' { '\t' } else { ' ' }).collect();
    format!("source SQL:\n{}\n{indent}^", &statement[..line_end])
}
