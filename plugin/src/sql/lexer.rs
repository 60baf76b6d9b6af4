//! Tokens of one SQL text, with byte offsets.
//!
//! sqlparser's tokenizer does the lexing (strings, `''` and `e'…'` escapes, `$$…$$`, quoted
//! identifiers, nested comments); this module drops whitespace and comments, turns its line/column
//! spans into byte offsets, joins string constants continued on a new line (as CockroachDB's
//! scanner does), and reports a failed token the way CockroachDB does (`lexical error: …`).

use std::any::TypeId;

use sqlparser::dialect::{Dialect, PostgreSqlDialect};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

/// What a token is, as far as extconn's grammar cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bare word (keyword or identifier), as written.
    Word(String),
    /// A `"quoted identifier"`, unescaped.
    QuotedIdent(String),
    /// A string constant CockroachDB accepts as one (`'…'`, `e'…'`, `$$…$$`), unescaped.
    Str(String),
    /// Any other literal (`b'…'`, `x'…'`, `n'…'`), unescaped: never a name or a URI.
    OtherLiteral(String),
    /// A number.
    Number,
    /// `$1`.
    Placeholder,
    /// `;`
    Semicolon,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `=`
    Eq,
    /// Any other operator or character.
    Punct,
}

/// One token: what it is and where (byte offsets into the whole SQL text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tok {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// A token that could not be lexed: CockroachDB's text for it and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    /// Without the `lexical error: ` prefix, e.g. `unterminated string`.
    pub message: String,
    pub pos: usize,
}

/// PostgreSQL's lexical rules (which CockroachDB follows), less what CockroachDB's scanner does
/// not do: no `COPY … FROM STDIN` payload capture (it would reorder tokens), no `U&'…'` strings,
/// no `1_000` or `0b101` numbers.
#[derive(Debug, Default)]
struct CockroachLexicon(PostgreSqlDialect);

impl Dialect for CockroachLexicon {
    // Behave as PostgreSQL wherever the tokenizer asks "is this PostgreSQL?" (`b'…'` literals).
    fn dialect(&self) -> TypeId {
        self.0.dialect()
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        self.0.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        self.0.is_identifier_part(ch)
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        self.0.is_delimited_identifier_start(ch)
    }

    fn is_custom_operator_part(&self, ch: char) -> bool {
        self.0.is_custom_operator_part(ch)
    }

    fn supports_geometric_types(&self) -> bool {
        self.0.supports_geometric_types()
    }

    fn supports_nested_comments(&self) -> bool {
        true
    }

    fn supports_string_escape_constant(&self) -> bool {
        true
    }
}

/// Turns the tokenizer's 1-based line/column locations (columns count chars) into byte offsets.
/// Tokens come in source order, so a cursor that only moves forward makes this linear overall.
#[derive(Debug)]
struct Locator<'a> {
    src: &'a str,
    line: u64,
    column: u64,
    byte: usize,
}

impl<'a> Locator<'a> {
    fn new(src: &'a str) -> Self {
        Self { src, line: 1, column: 1, byte: 0 }
    }

    fn byte_of(&mut self, loc: Location) -> usize {
        let target = (loc.line, loc.column);
        if target < (self.line, self.column) {
            // Not expected (tokens arrive in order); stay correct rather than fast.
            *self = Self::new(self.src);
        }
        let src = self.src;
        for ch in src[self.byte..].chars() {
            if (self.line, self.column) >= target {
                break;
            }
            self.byte += ch.len_utf8();
            if ch == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.byte
    }
}

/// How much text the tokenizer takes at once. sqlparser makes one 88-byte token per space, so
/// lexing a whole 1 MiB text at once would take over 100 MB; a chunk at a time takes a few.
const CHUNK_BYTES: usize = 16 << 10;

/// Tokens ending this close to the end of a chunk may have been cut, or decided by looking ahead
/// into the cut (the tokenizer looks a few characters ahead at most): they are lexed again with
/// the next chunk.
const CHUNK_MARGIN: usize = 64;

/// sqlparser's tokens of a text with byte offsets, a chunk at a time.
#[derive(Debug)]
struct RawTokens<'a> {
    src: &'a str,
    chunk_bytes: usize,
    /// Where the next chunk starts.
    pos: usize,
    ready: std::vec::IntoIter<TokenWithSpan>,
    /// Byte offsets of `ready`, one for one.
    spans: std::vec::IntoIter<(usize, usize)>,
    /// The last non-whitespace token before `pos`, then the last token if it is whitespace:
    /// what the tokenizer looks back at (`t._c`).
    context: Vec<TokenWithSpan>,
    /// Set once the last chunk is lexed: its error, with where the failed token starts.
    end: Option<Option<(String, usize)>>,
}

impl<'a> RawTokens<'a> {
    fn new(src: &'a str, chunk_bytes: usize) -> Self {
        Self {
            src,
            chunk_bytes,
            pos: 0,
            ready: Vec::new().into_iter(),
            spans: Vec::new().into_iter(),
            context: Vec::new(),
            end: None,
        }
    }

    fn next(&mut self) -> Option<(Token, usize, usize)> {
        loop {
            if let (Some(token), Some((start, end))) = (self.ready.next(), self.spans.next()) {
                return Some((token.token, start, end));
            }
            if self.end.is_some() {
                return None;
            }
            self.refill();
        }
    }

    /// The tokenizer's error for the text, once [`Self::next`] has returned `None`.
    fn take_error(&mut self) -> Option<(String, usize)> {
        self.end.take().flatten()
    }

    fn refill(&mut self) {
        let dialect = CockroachLexicon::default();
        let mut size = self.chunk_bytes;
        loop {
            let mut end = self.pos.saturating_add(size).min(self.src.len());
            while !self.src.is_char_boundary(end) {
                end += 1;
            }
            let text = &self.src[self.pos..end];
            let mut buf = self.context.clone();
            let error =
                Tokenizer::new(&dialect, text).tokenize_with_location_into_buf(&mut buf).err();
            buf.drain(..self.context.len());
            let mut locator = Locator::new(text);
            let mut spans: Vec<(usize, usize)> = buf
                .iter()
                .map(|token| {
                    let start = self.pos + locator.byte_of(token.span.start);
                    (start, (self.pos + locator.byte_of(token.span.end)).max(start))
                })
                .collect();
            if end == self.src.len() {
                // The last chunk: everything counts, and an error is real.
                let failed_at = spans.last().map_or(self.pos, |&(_, end)| end);
                self.end = Some(error.map(|error| (error.message, failed_at)));
                self.pos = end;
                self.ready = buf.into_iter();
                self.spans = spans.into_iter();
                return;
            }
            // Keep what the cut cannot have touched: never the last token, nothing near the end.
            let mut keep = spans.len().saturating_sub(1);
            while keep > 0 && spans[keep - 1].1 + CHUNK_MARGIN > end {
                keep -= 1;
            }
            if keep == 0 {
                // One token longer than the chunk (a long string, say): take more text.
                size = size.saturating_mul(2);
                continue;
            }
            buf.truncate(keep);
            spans.truncate(keep);
            self.context.clear();
            let is_whitespace =
                |token: &&TokenWithSpan| matches!(token.token, Token::Whitespace(_));
            if let Some(last_word) = buf.iter().rev().find(|token| !is_whitespace(token)) {
                self.context.push(last_word.clone());
            }
            if let Some(last) = buf.last().filter(is_whitespace) {
                self.context.push(last.clone());
            }
            self.pos = spans[keep - 1].1;
            self.ready = buf.into_iter();
            self.spans = spans.into_iter();
            return;
        }
    }
}

/// The significant tokens of a SQL text, in order, then possibly one [`LexError`].
#[derive(Debug)]
pub(super) struct Lexer<'a> {
    src: &'a str,
    raw: RawTokens<'a>,
    /// A token read ahead while looking for a string continuation.
    pending: Option<Tok>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Self::with_chunk_bytes(src, CHUNK_BYTES)
    }

    /// A lexer taking `chunk_bytes` of text at a time (tests use tiny chunks).
    pub(super) fn with_chunk_bytes(src: &'a str, chunk_bytes: usize) -> Self {
        Self { src, raw: RawTokens::new(src, chunk_bytes.max(1)), pending: None }
    }

    /// The next significant token; `Ok(None)` at the end of a text that lexed completely.
    pub(super) fn next_tok(&mut self) -> Result<Option<Tok>, LexError> {
        let Some(mut tok) = self.pending.take().or_else(|| self.next_significant()) else {
            return match self.raw.take_error() {
                Some((message, pos)) => Err(self.lex_error(&message, pos)),
                None => Ok(None),
            };
        };
        if matches!(tok.kind, Kind::Str(_)) && starts_with_quote(&self.src[tok.start..]) {
            self.join_continuations(&mut tok);
        }
        Ok(Some(tok))
    }

    /// `'foo'` followed by whitespace holding a newline (and no comment) and `'bar'` is
    /// `'foobar'`: the SQL standard, which CockroachDB's scanner follows and sqlparser does not.
    fn join_continuations(&mut self, tok: &mut Tok) {
        loop {
            let mut newline = false;
            let mut comment = false;
            let next = loop {
                let Some((token, start, end)) = self.raw.next() else { return };
                match token {
                    Token::Whitespace(Whitespace::Newline) => newline = true,
                    Token::Whitespace(Whitespace::Space | Whitespace::Tab) => {}
                    Token::Whitespace(_) => comment = true,
                    token => {
                        if let Some(next) = convert(token, start, end) {
                            break next;
                        }
                    }
                }
            };
            match (&mut tok.kind, &next.kind) {
                (Kind::Str(value), Kind::Str(more))
                    if newline && !comment && self.src[next.start..].starts_with('\'') =>
                {
                    value.push_str(more);
                    tok.end = next.end;
                }
                _ => {
                    self.pending = Some(next);
                    return;
                }
            }
        }
    }

    fn next_significant(&mut self) -> Option<Tok> {
        loop {
            let (token, start, end) = self.raw.next()?;
            if let Some(tok) = convert(token, start, end) {
                return Some(tok);
            }
        }
    }

    /// The failed token starts at `pos`; what it starts with says what went wrong, in
    /// CockroachDB's words.
    fn lex_error(&self, tokenizer_message: &str, pos: usize) -> LexError {
        let rest = &self.src[pos..];
        let lower = |s: &str| s.get(..2).map(str::to_ascii_lowercase);
        let message = if rest.starts_with('"') {
            "unterminated quoted identifier".to_owned()
        } else if rest.starts_with("/*") {
            "unterminated comment".to_owned()
        } else if lower(rest).as_deref() == Some("e'") && escaped_string_terminated(&rest[2..]) {
            "invalid escape sequence in string".to_owned()
        } else if rest.starts_with(['\'', '$']) || starts_with_prefixed_quote(rest) {
            "unterminated string".to_owned()
        } else {
            let mut chars = tokenizer_message.chars();
            chars
                .next()
                .map_or_else(String::new, |first| first.to_lowercase().chain(chars).collect())
        };
        LexError { message, pos }
    }
}

fn starts_with_quote(text: &str) -> bool {
    text.starts_with('\'') || starts_with_prefixed_quote(text)
}

/// `e'…'`, `b'…'`, `x'…'`, `n'…'` (any case), `u&'…'`.
fn starts_with_prefixed_quote(text: &str) -> bool {
    matches!(
        text.as_bytes(),
        [b'e' | b'E' | b'b' | b'B' | b'x' | b'X' | b'n' | b'N', b'\'', ..]
            | [b'u' | b'U', b'&', b'\'', ..]
    )
}

/// Whether the body of an `e'…'` string (after the opening quote) has a closing quote.
fn escaped_string_terminated(body: &str) -> bool {
    let mut chars = body.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                chars.next();
            }
            '\'' => {
                if !chars.as_str().starts_with('\'') {
                    return true;
                }
                chars.next();
            }
            _ => {}
        }
    }
    false
}

/// The significant token for a raw one, `None` for whitespace and comments.
fn convert(token: Token, start: usize, end: usize) -> Option<Tok> {
    let kind = match token {
        Token::EOF | Token::Whitespace(_) => return None,
        Token::Word(word) => match word.quote_style {
            None => Kind::Word(word.value),
            Some(_) => Kind::QuotedIdent(word.value),
        },
        Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s) => Kind::Str(s),
        Token::DollarQuotedString(s) => Kind::Str(s.value),
        Token::DoubleQuotedString(s)
        | Token::TripleSingleQuotedString(s)
        | Token::TripleDoubleQuotedString(s)
        | Token::SingleQuotedByteStringLiteral(s)
        | Token::DoubleQuotedByteStringLiteral(s)
        | Token::TripleSingleQuotedByteStringLiteral(s)
        | Token::TripleDoubleQuotedByteStringLiteral(s)
        | Token::SingleQuotedRawStringLiteral(s)
        | Token::DoubleQuotedRawStringLiteral(s)
        | Token::TripleSingleQuotedRawStringLiteral(s)
        | Token::TripleDoubleQuotedRawStringLiteral(s)
        | Token::NationalStringLiteral(s)
        | Token::UnicodeStringLiteral(s)
        | Token::HexStringLiteral(s) => Kind::OtherLiteral(s),
        Token::QuoteDelimitedStringLiteral(s) | Token::NationalQuoteDelimitedStringLiteral(s) => {
            Kind::OtherLiteral(s.value)
        }
        Token::Number(..) => Kind::Number,
        Token::Placeholder(_) => Kind::Placeholder,
        Token::SemiColon => Kind::Semicolon,
        Token::LParen => Kind::LParen,
        Token::RParen => Kind::RParen,
        Token::Comma => Kind::Comma,
        Token::Eq => Kind::Eq,
        _ => Kind::Punct,
    };
    Some(Tok { kind, start, end })
}
