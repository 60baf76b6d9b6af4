//! A push parser for CSV that keeps what the `csv` crate does not tell: whether each field was
//! quoted (`nullif` matches unquoted fields only) and the physical line each field starts on.
//!
//! It follows Go's `encoding/csv`, which CockroachDB's IMPORT uses: records end at `\n` or
//! `\r\n`, `""` in a quoted field is one quote, lines starting with the comment character are
//! skipped, blank lines are skipped, and without `strict_quotes` stray quotes are kept as data
//! (`LazyQuotes`). One difference: `\r\n` inside a quoted field is kept as is (Go turns it into
//! `\n`), so that EXPORT then IMPORT round-trips CRLF exactly.

/// One field of a record: its bytes are `data[start..end]` of the [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field {
    pub end: usize,
    pub quoted: bool,
    /// 1-based physical line the field starts on.
    pub line: u64,
}

/// A parsed record, borrowed from the parser until the next one.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    data: &'a [u8],
    fields: &'a [Field],
    /// 1-based physical line the record starts on.
    pub line: u64,
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// The bytes, quotedness and line of field `i`.
    pub fn field(&self, i: usize) -> (&'a [u8], Field) {
        let start = if i == 0 { 0 } else { self.fields[i - 1].end };
        let field = self.fields[i];
        (&self.data[start..field.end], field)
    }
}

/// A malformed record (only with `strict_quotes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub message: &'static str,
    /// 1-based physical line where the record starts.
    pub record_line: u64,
    /// 1-based physical line of the offending character.
    pub line: u64,
    /// 1-based index of the field in the record.
    pub field: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first byte of a record (a comment or blank line may start here).
    RecordStart,
    /// Before the first byte of a field other than the first.
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the closing one, or the first of `""`.
    QuoteInQuoted,
    /// After a quoted field's closing quote, a `\r` (Go: end of record if `\n` follows).
    CrAfterQuoted,
    /// A `\r` in an unquoted field: the end of the record if `\n` follows, else data.
    CrUnquoted,
    /// A `\r` at the start of a record: a blank `\r\n` line if `\n` follows.
    CrAtRecordStart,
    Comment,
}

/// Parser settings.
#[derive(Debug, Clone)]
pub(crate) struct Dialect {
    pub delimiter: Vec<u8>,
    pub comment: Option<Vec<u8>>,
    pub strict_quotes: bool,
    /// A blank line is one empty unquoted field rather than nothing: for one-column tables,
    /// whose NULL exports (with `nullas = ''`) as an empty line.
    pub blank_line_is_record: bool,
}

/// What the caller's record handler tells the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

#[derive(Debug)]
pub(crate) struct Parser {
    dialect: Dialect,
    state: State,
    data: Vec<u8>,
    fields: Vec<Field>,
    /// The current physical line (1-based).
    line: u64,
    record_line: u64,
    field_line: u64,
    field_quoted: bool,
    /// Bytes of a possible delimiter or comment split across two chunks.
    carry: Vec<u8>,
    stopped: bool,
}

impl Parser {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            state: State::RecordStart,
            data: Vec::with_capacity(1024),
            fields: Vec::with_capacity(32),
            line: 1,
            record_line: 1,
            field_line: 1,
            field_quoted: false,
            carry: Vec::new(),
            stopped: false,
        }
    }

    /// Parses `input`, calling `on_record` for every complete record. Returns early, with
    /// [`Flow::Stop`], once `on_record` asks to stop; later calls then do nothing.
    pub fn feed<E>(
        &mut self,
        input: &[u8],
        on_record: &mut impl FnMut(Record<'_>) -> Result<Flow, E>,
    ) -> Result<Flow, ParseOrHandler<E>> {
        if self.stopped {
            return Ok(Flow::Stop);
        }
        if self.carry.is_empty() {
            let used = self.run(input, false, on_record)?;
            self.carry.extend_from_slice(&input[used..]);
        } else {
            let mut joined = std::mem::take(&mut self.carry);
            joined.extend_from_slice(input);
            let used = self.run(&joined, false, on_record)?;
            self.carry.extend_from_slice(&joined[used..]);
        }
        Ok(if self.stopped { Flow::Stop } else { Flow::Continue })
    }

    /// Ends the input: the last record may lack its line terminator.
    pub fn finish<E>(
        &mut self,
        on_record: &mut impl FnMut(Record<'_>) -> Result<Flow, E>,
    ) -> Result<(), ParseOrHandler<E>> {
        if self.stopped {
            return Ok(());
        }
        let carry = std::mem::take(&mut self.carry);
        self.run(&carry, true, on_record)?;
        if self.stopped {
            return Ok(());
        }
        match self.state {
            State::RecordStart | State::Comment => Ok(()),
            State::CrAtRecordStart => {
                if self.dialect.blank_line_is_record {
                    self.field_line = self.line;
                    self.end_field();
                    self.emit(on_record)?;
                }
                Ok(())
            }
            State::Quoted if self.dialect.strict_quotes => Err(ParseOrHandler::Parse(
                self.syntax_error("extraneous or missing \" in quoted-field"),
            )),
            _ => {
                self.end_field();
                self.emit(on_record).map(drop)
            }
        }
    }

    /// Runs the state machine over `input`; returns how many bytes it consumed (all, except a
    /// possible partial delimiter or comment marker at the end when more input may follow).
    fn run<E>(
        &mut self,
        input: &[u8],
        eof: bool,
        on_record: &mut impl FnMut(Record<'_>) -> Result<Flow, E>,
    ) -> Result<usize, ParseOrHandler<E>> {
        let delim = self.dialect.delimiter.clone();
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::RecordStart | State::FieldStart => {
                    let at_record_start = self.state == State::RecordStart;
                    if at_record_start {
                        self.record_line = self.line;
                        if let Some(comment) = &self.dialect.comment {
                            match prefix_match(&input[i..], comment, eof) {
                                Match::Yes => {
                                    self.state = State::Comment;
                                    i += comment.len();
                                    continue;
                                }
                                Match::NeedMore => return Ok(i),
                                Match::No => {}
                            }
                        }
                        if b == b'\n' {
                            self.line += 1;
                            i += 1;
                            if self.dialect.blank_line_is_record {
                                self.field_line = self.line - 1;
                                self.end_field();
                                if self.emit(on_record)? == Flow::Stop {
                                    return Ok(i);
                                }
                            }
                            continue;
                        }
                        if b == b'\r' {
                            self.state = State::CrAtRecordStart;
                            i += 1;
                            continue;
                        }
                    }
                    self.field_line = self.line;
                    if b == b'"' {
                        self.field_quoted = true;
                        self.state = State::Quoted;
                        i += 1;
                        continue;
                    }
                    self.state = State::Unquoted;
                    // Handled as the first byte of an unquoted field below.
                    continue;
                }
                State::Unquoted => {
                    if b == delim[0] {
                        match prefix_match(&input[i..], &delim, eof) {
                            Match::Yes => {
                                self.end_field();
                                self.state = State::FieldStart;
                                i += delim.len();
                                continue;
                            }
                            Match::NeedMore => return Ok(i),
                            Match::No => {}
                        }
                    }
                    match b {
                        b'\n' => {
                            self.line += 1;
                            i += 1;
                            self.end_field();
                            if self.emit(on_record)? == Flow::Stop {
                                return Ok(i);
                            }
                        }
                        b'\r' => {
                            self.state = State::CrUnquoted;
                            i += 1;
                        }
                        b'"' if self.dialect.strict_quotes => {
                            return Err(ParseOrHandler::Parse(
                                self.syntax_error("bare \" in non-quoted-field"),
                            ));
                        }
                        _ => {
                            // Copy the run of ordinary bytes at once.
                            let run = input[i..]
                                .iter()
                                .position(|&c| {
                                    c == delim[0] || c == b'\n' || c == b'\r' || c == b'"'
                                })
                                .unwrap_or(input.len() - i)
                                .max(1);
                            self.data.extend_from_slice(&input[i..i + run]);
                            i += run;
                        }
                    }
                }
                State::CrUnquoted | State::CrAfterQuoted => {
                    if b == b'\n' {
                        self.line += 1;
                        i += 1;
                        self.end_field();
                        if self.emit(on_record)? == Flow::Stop {
                            return Ok(i);
                        }
                    } else if self.state == State::CrUnquoted {
                        self.data.push(b'\r');
                        self.state = State::Unquoted;
                    } else {
                        // `"…"\rx`: Go's reader treats the `\r` like any other byte after a
                        // closing quote.
                        if self.dialect.strict_quotes {
                            return Err(ParseOrHandler::Parse(
                                self.syntax_error("extraneous or missing \" in quoted-field"),
                            ));
                        }
                        self.data.extend_from_slice(b"\"\r");
                        self.state = State::Quoted;
                    }
                }
                State::CrAtRecordStart => {
                    if b == b'\n' {
                        self.line += 1;
                        i += 1;
                        self.state = State::RecordStart;
                        if self.dialect.blank_line_is_record {
                            self.field_line = self.line - 1;
                            self.end_field();
                            if self.emit(on_record)? == Flow::Stop {
                                return Ok(i);
                            }
                        }
                    } else {
                        self.field_line = self.line;
                        self.data.push(b'\r');
                        self.state = State::Unquoted;
                    }
                }
                State::Quoted => {
                    let run = input[i..]
                        .iter()
                        .position(|&c| c == b'"' || c == b'\n')
                        .unwrap_or(input.len() - i);
                    self.data.extend_from_slice(&input[i..i + run]);
                    i += run;
                    if i < input.len() {
                        if input[i] == b'\n' {
                            self.line += 1;
                            self.data.push(b'\n');
                        } else {
                            self.state = State::QuoteInQuoted;
                        }
                        i += 1;
                    }
                }
                State::QuoteInQuoted => {
                    if b == b'"' {
                        self.data.push(b'"');
                        self.state = State::Quoted;
                        i += 1;
                        continue;
                    }
                    if b == delim[0] {
                        match prefix_match(&input[i..], &delim, eof) {
                            Match::Yes => {
                                self.end_field();
                                self.state = State::FieldStart;
                                i += delim.len();
                                continue;
                            }
                            Match::NeedMore => return Ok(i),
                            Match::No => {}
                        }
                    }
                    match b {
                        b'\n' => {
                            self.line += 1;
                            i += 1;
                            self.end_field();
                            if self.emit(on_record)? == Flow::Stop {
                                return Ok(i);
                            }
                        }
                        b'\r' => {
                            self.state = State::CrAfterQuoted;
                            i += 1;
                        }
                        _ if self.dialect.strict_quotes => {
                            return Err(ParseOrHandler::Parse(
                                self.syntax_error("extraneous or missing \" in quoted-field"),
                            ));
                        }
                        _ => {
                            // A lone quote inside a quoted field is data (Go's LazyQuotes).
                            self.data.push(b'"');
                            self.state = State::Quoted;
                        }
                    }
                }
                State::Comment => match input[i..].iter().position(|&c| c == b'\n') {
                    Some(at) => {
                        i += at + 1;
                        self.line += 1;
                        self.state = State::RecordStart;
                    }
                    None => i = input.len(),
                },
            }
        }
        Ok(i)
    }

    fn end_field(&mut self) {
        self.fields.push(Field {
            end: self.data.len(),
            quoted: self.field_quoted,
            line: self.field_line,
        });
        self.field_quoted = false;
    }

    fn emit<E>(
        &mut self,
        on_record: &mut impl FnMut(Record<'_>) -> Result<Flow, E>,
    ) -> Result<Flow, ParseOrHandler<E>> {
        let record = Record { data: &self.data, fields: &self.fields, line: self.record_line };
        let flow = on_record(record).map_err(ParseOrHandler::Handler)?;
        self.data.clear();
        self.fields.clear();
        self.state = State::RecordStart;
        if flow == Flow::Stop {
            self.stopped = true;
        }
        Ok(flow)
    }

    fn syntax_error(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            message,
            record_line: self.record_line,
            line: self.line,
            field: self.fields.len() + 1,
        }
    }
}

/// A parse error, or the record handler's own.
#[derive(Debug)]
pub(crate) enum ParseOrHandler<E> {
    Parse(SyntaxError),
    Handler(E),
}

enum Match {
    Yes,
    No,
    /// `input` is a proper prefix of the pattern and more input may follow.
    NeedMore,
}

fn prefix_match(input: &[u8], pattern: &[u8], eof: bool) -> Match {
    if input.starts_with(pattern) {
        Match::Yes
    } else if !eof && input.len() < pattern.len() && pattern.starts_with(input) {
        Match::NeedMore
    } else {
        Match::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (u64, Vec<(String, bool, u64)>);

    fn parse(input: &str, dialect: Dialect, chunk: usize) -> Result<Vec<Row>, SyntaxError> {
        let mut out = Vec::new();
        let mut parser = Parser::new(dialect);
        let mut handler = |r: Record<'_>| -> Result<Flow, ()> {
            let fields = (0..r.len())
                .map(|i| {
                    let (bytes, f) = r.field(i);
                    (String::from_utf8(bytes.to_vec()).unwrap(), f.quoted, f.line)
                })
                .collect();
            out.push((r.line, fields));
            Ok(Flow::Continue)
        };
        let unwrap = |e: ParseOrHandler<()>| match e {
            ParseOrHandler::Parse(e) => e,
            ParseOrHandler::Handler(()) => unreachable!(),
        };
        for piece in input.as_bytes().chunks(chunk) {
            parser.feed(piece, &mut handler).map_err(unwrap)?;
        }
        parser.finish(&mut handler).map_err(unwrap)?;
        Ok(out)
    }

    fn dialect(delimiter: &str) -> Dialect {
        Dialect {
            delimiter: delimiter.as_bytes().to_vec(),
            comment: Some(b"#".to_vec()),
            strict_quotes: false,
            blank_line_is_record: false,
        }
    }

    fn f(s: &str, quoted: bool, line: u64) -> (String, bool, u64) {
        (s.to_owned(), quoted, line)
    }

    #[test]
    fn records_fields_quotes_and_lines() {
        let rows: Vec<(&str, &str, Vec<Row>)> = vec![
            (
                "plain",
                "a,b\nc,d\n",
                vec![
                    (1, vec![f("a", false, 1), f("b", false, 1)]),
                    (2, vec![f("c", false, 2), f("d", false, 2)]),
                ],
            ),
            ("no final newline", "a,b", vec![(1, vec![f("a", false, 1), f("b", false, 1)])]),
            (
                "crlf",
                "a,b\r\nc,\r\n",
                vec![
                    (1, vec![f("a", false, 1), f("b", false, 1)]),
                    (2, vec![f("c", false, 2), f("", false, 2)]),
                ],
            ),
            (
                "quoted multi-line keeps crlf",
                "\"x\r\ny\",\"\"\"q\"\"\"\nz,\"\"\n",
                vec![
                    (1, vec![f("x\r\ny", true, 1), f("\"q\"", true, 2)]),
                    (3, vec![f("z", false, 3), f("", true, 3)]),
                ],
            ),
            (
                "comments and blank lines",
                "# c\n\na,b\n#x,y\n\r\nc,d",
                vec![
                    (3, vec![f("a", false, 3), f("b", false, 3)]),
                    (6, vec![f("c", false, 6), f("d", false, 6)]),
                ],
            ),
            (
                "lazy quotes",
                "a\"b,\"c\"d\"\n",
                vec![(1, vec![f("a\"b", false, 1), f("c\"d", true, 1)])],
            ),
            ("lone cr is data", "a\rb,c\n", vec![(1, vec![f("a\rb", false, 1), f("c", false, 1)])]),
            ("unicode", "é,ü\n", vec![(1, vec![f("é", false, 1), f("ü", false, 1)])]),
            ("unterminated quote is lazily accepted", "\"ab", vec![(1, vec![f("ab", true, 1)])]),
        ];
        for (name, input, want) in rows {
            for chunk in [1, 2, 3, 1000] {
                assert_eq!(
                    parse(input, dialect(","), chunk).unwrap(),
                    want,
                    "{name}, chunk {chunk}"
                );
            }
        }
    }

    #[test]
    fn multibyte_delimiter_split_across_chunks() {
        let want = vec![(1, vec![f("a", false, 1), f("b", true, 1), f("c€", false, 1)])];
        for chunk in [1, 2, 3, 64] {
            assert_eq!(parse("a→\"b\"→c€\n", dialect("→"), chunk).unwrap(), want, "{chunk}");
        }
    }

    #[test]
    fn blank_line_is_a_record_for_one_column() {
        let mut d = dialect(",");
        d.blank_line_is_record = true;
        let want = vec![
            (1, vec![f("a", false, 1)]),
            (2, vec![f("", false, 2)]),
            (3, vec![f("", false, 3)]),
            (4, vec![f("", true, 4)]),
        ];
        for chunk in [1, 100] {
            assert_eq!(parse("a\n\n\r\n\"\"\n", d.clone(), chunk).unwrap(), want);
        }
    }

    #[test]
    fn strict_quotes_errors() {
        let mut d = dialect(",");
        d.strict_quotes = true;
        let rows = [
            ("a\"b,c\n", "bare \" in non-quoted-field", 1, 1),
            ("x\n\"a\"b,c\n", "extraneous or missing \" in quoted-field", 2, 1),
            ("x,\"a\n\nb", "extraneous or missing \" in quoted-field", 1, 2),
        ];
        for (input, message, record_line, field) in rows {
            let err = parse(input, d.clone(), 1000).unwrap_err();
            assert_eq!((err.message, err.record_line, err.field), (message, record_line, field));
        }
        assert!(parse("\"a\"\"b\",c\n", d, 1).is_ok());
    }
}
