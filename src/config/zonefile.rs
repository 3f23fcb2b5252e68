//! RFC 1035 §5 master files: `$ORIGIN`, `$TTL`, `$INCLUDE`, relative names, parentheses,
//! quoted strings, escapes, comments, and RFC 3597 unknown-type syntax.
//!
//! `dns::rdata` turns each type's RDATA into wire form; this module does the tokenizing itself so that every error carries its file and line, and
//! so that loading goes on after an error and reports all of them at once.

use std::fmt;
use std::iter::Peekable;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use crate::dns::name::{self, MAX_NAME_LEN, wire_lower};
use crate::dns::rdata::{self, Word};
use crate::dns::rtype;
use crate::zone::ZoneBuilder;

/// Deepest `$INCLUDE` nesting accepted (also stops include cycles).
const MAX_INCLUDE_DEPTH: usize = 16;
/// Largest zone or included file read (a 1M-record zone is about 40 MB).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// A zone file, opened to be read as it is parsed: only a regular file (`$INCLUDE /dev/zero`
/// or a FIFO would never end) and at most `MAX_FILE_BYTES`. Also its size.
fn open_zone_file(path: &Path) -> std::io::Result<(FileChars<std::fs::File>, u64)> {
    use std::io::{Error, ErrorKind};
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a device, FIFO or directory)",
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big());
    }
    Ok((FileChars::new(file), meta.len()))
}

fn too_big() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
    )
}

/// Bytes read from a zone file at a time.
const READ_BLOCK: usize = 64 * 1024;

/// The characters of a file, decoded as UTF-8 while it is read: a big zone's text is never
/// held whole (28 MB for a million records, on top of the zone being built). A read error,
/// invalid UTF-8 or passing `MAX_FILE_BYTES` ends the characters and is kept in `error`.
struct FileChars<R> {
    reader: R,
    buf: Box<[u8]>,
    /// `buf[pos..end]` is read and not yet decoded.
    pos: usize,
    end: usize,
    read: u64,
    error: Option<std::io::Error>,
}

impl<R: std::io::Read> FileChars<R> {
    fn new(reader: R) -> Self {
        Self {
            reader,
            buf: vec![0; READ_BLOCK].into_boxed_slice(),
            pos: 0,
            end: 0,
            read: 0,
            error: None,
        }
    }

    /// Reads more after the bytes not yet decoded (moved to the front); false at the end
    /// of the file or on an error.
    #[inline(never)]
    fn fill(&mut self) -> bool {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        loop {
            let Some(room) = self.buf.get_mut(self.end..) else {
                return false;
            };
            match self.reader.read(room) {
                Ok(0) => return false,
                Ok(n) => {
                    self.end += n;
                    self.read += n as u64;
                    if self.read > MAX_FILE_BYTES {
                        self.error = Some(too_big());
                        return false;
                    }
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error = Some(e);
                    return false;
                }
            }
        }
    }

    fn invalid_utf8(&mut self) -> Option<char> {
        self.error = Some(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ));
        self.pos = self.end;
        None
    }
}

impl<R: std::io::Read> Iterator for FileChars<R> {
    type Item = char;

    #[inline]
    fn next(&mut self) -> Option<char> {
        if self.error.is_some() {
            return None;
        }
        if self.pos == self.end && !self.fill() {
            return None;
        }
        let first = *self.buf.get(self.pos)?;
        if first < 0x80 {
            self.pos += 1;
            return Some(char::from(first));
        }
        let width = match first {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return self.invalid_utf8(),
        };
        while self.end - self.pos < width {
            if !self.fill() {
                // The file ends inside a character, or could not be read further.
                return match self.error {
                    Some(_) => None,
                    None => self.invalid_utf8(),
                };
            }
        }
        let Some(c) = self
            .buf
            .get(self.pos..self.pos + width)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.chars().next())
        else {
            return self.invalid_utf8();
        };
        self.pos += width;
        Some(c)
    }
}

/// A problem in a file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

/// One token as written (quotes and escapes kept), so that RDATA parsers see the original.
#[derive(Debug, Clone)]
struct Token {
    text: String,
    quoted: bool,
}

/// One logical entry: a directive or a record, possibly spanning lines in parentheses.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    /// The entry began with white space: the owner is the previous one.
    blank_owner: bool,
    tokens: Vec<Token>,
}

/// Splits master-file text into entries and hands each to `each` as soon as it is complete
/// (a big zone is never held as tokens whole). Errors carry the line where they were found.
fn tokenize(
    text: impl Iterator<Item = char>,
    errors: &mut Vec<(usize, String)>,
    mut each: impl FnMut(&Entry),
) {
    let mut line = 1usize;
    let mut depth = 0usize;
    let mut paren_line = 0usize;
    // The entry being read, reused: after each entry its tokens' strings go to `spare`, so
    // a million records do not make a million sets of strings.
    let mut cur = Entry {
        line: 0,
        blank_owner: false,
        tokens: Vec::new(),
    };
    let mut open = false;
    let mut spare: Vec<String> = Vec::new();
    let mut at_line_start = true;
    let mut chars = text.peekable();

    let mut flush = |cur: &mut Entry, open: &mut bool, spare: &mut Vec<String>| {
        if *open && !cur.tokens.is_empty() {
            each(cur);
        }
        *open = false;
        spare.extend(cur.tokens.drain(..).map(|t| t.text));
    };
    let begin = |cur: &mut Entry, open: &mut bool, line: usize, blank_owner: bool| {
        if !*open {
            *open = true;
            cur.line = line;
            cur.blank_owner = blank_owner;
        }
    };

    while let Some(c) = chars.next() {
        let line_start = at_line_start;
        at_line_start = false;
        match c {
            '\n' => {
                line += 1;
                at_line_start = true;
                if depth == 0 {
                    flush(&mut cur, &mut open, &mut spare);
                }
            }
            ';' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        at_line_start = true;
                        if depth == 0 {
                            flush(&mut cur, &mut open, &mut spare);
                        }
                        break;
                    }
                }
            }
            ' ' | '\t' | '\r' => {
                if line_start && depth == 0 {
                    begin(&mut cur, &mut open, line, true);
                }
            }
            '(' => {
                if depth == 0 {
                    paren_line = line;
                }
                depth += 1;
                begin(&mut cur, &mut open, line, line_start);
            }
            ')' => {
                if depth == 0 {
                    errors.push((line, "unbalanced ')'".into()));
                } else {
                    depth -= 1;
                }
            }
            _ => {
                begin(&mut cur, &mut open, line, false);
                let mut text = spare.pop().unwrap_or_default();
                text.clear();
                let quoted = c == '"';
                text.push(c);
                if quoted {
                    let start_line = line;
                    if !read_quoted(&mut chars, &mut text, &mut line) {
                        errors.push((start_line, "unterminated quoted string".into()));
                    }
                } else {
                    read_word(c, &mut chars, &mut text, &mut line);
                }
                cur.tokens.push(Token { text, quoted });
            }
        }
    }
    if depth > 0 {
        errors.push((paren_line, "'(' is never closed".into()));
    }
    flush(&mut cur, &mut open, &mut spare);
}

/// Reads a quoted string after its opening quote into `text`, escapes kept; `false` when
/// the text ends before the closing quote.
fn read_quoted(
    chars: &mut Peekable<impl Iterator<Item = char>>,
    text: &mut String,
    line: &mut usize,
) -> bool {
    while let Some(c) = chars.next() {
        text.push(c);
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '\n' {
                        *line += 1;
                    }
                    text.push(n);
                }
            }
            '\n' => *line += 1,
            '"' => return true,
            _ => {}
        }
    }
    false
}

/// Reads the rest of a bare word that began with `first` into `text`: escapes kept, and a
/// quoted part inside it (`key="value"`, RFC 9460 SvcParams) is part of the word.
fn read_word(
    first: char,
    chars: &mut Peekable<impl Iterator<Item = char>>,
    text: &mut String,
    line: &mut usize,
) {
    if first == '\\'
        && let Some(n) = chars.next()
    {
        text.push(n);
    }
    while let Some(&n) = chars.peek() {
        if matches!(n, ' ' | '\t' | '\r' | '\n' | ';' | '(' | ')') {
            break;
        }
        chars.next();
        text.push(n);
        if n == '\\'
            && let Some(e) = chars.next()
        {
            text.push(e);
        } else if n == '"' {
            read_quoted(chars, text, line);
        }
    }
}

/// Parser state that carries across entries and into `$INCLUDE`d files.
struct State {
    origin: Name,
    /// `origin` in lowercase wire form, for owner names.
    origin_wire: Vec<u8>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    /// In lowercase wire form (the buffer is reused from record to record).
    last_owner: Option<Vec<u8>>,
}

impl State {
    fn set_origin(&mut self, origin: Name) {
        self.origin_wire = wire_lower(&origin);
        self.origin = origin;
    }
}

/// Loads a zone's master file into `builder`. Returns every problem found; warnings are
/// returned separately and do not stop loading.
pub fn load_zone_file(
    path: &Path,
    origin: &Name,
    builder: &mut ZoneBuilder,
) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut state = State {
        origin: origin.clone(),
        origin_wire: wire_lower(origin),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
    };
    let mut stack = Vec::new();
    if let Err(e) = load_file(
        path,
        &mut state,
        builder,
        &mut errors,
        &mut warnings,
        &mut stack,
    ) {
        errors.push(Diagnostic {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read: {e}"),
        });
    }
    (errors, warnings)
}

fn load_file(
    path: &Path,
    state: &mut State,
    builder: &mut ZoneBuilder,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
    stack: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    let diag = |line: usize, message: String| Diagnostic {
        file: path.to_path_buf(),
        line,
        message,
    };
    // A file that cannot be read is reported by the caller: for an `$INCLUDE`, at the line
    // of the directive.
    let (mut chars, size) = open_zone_file(path)?;
    stack.push(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()));
    // About one owner name per 48 bytes of master file in a big zone.
    builder.reserve(usize::try_from(size / 48).unwrap_or(0));
    let mut lex_errors = Vec::new();
    let first_error = errors.len();
    tokenize(&mut chars, &mut lex_errors, |entry| {
        let result = match entry.tokens.first().map(|t| t.text.as_str()) {
            Some(d) if d.starts_with('$') && !entry.blank_owner => {
                directive(entry, path, state, builder, errors, warnings, stack)
            }
            _ => record(entry, state, builder),
        };
        if let Err(message) = result {
            errors.push(diag(entry.line, message));
        }
        for w in builder.take_warnings() {
            warnings.push(diag(entry.line, w));
        }
    });
    // The file's lexical errors first, as they come before its records' in reading.
    let lexical: Vec<Diagnostic> = lex_errors.into_iter().map(|(l, m)| diag(l, m)).collect();
    errors.splice(first_error..first_error, lexical);
    stack.pop();
    // Read as far as it could be: the records before a read error are not the zone.
    chars.error.map_or(Ok(()), Err)
}

fn directive(
    entry: &Entry,
    path: &Path,
    state: &mut State,
    builder: &mut ZoneBuilder,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
    stack: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let args = &entry.tokens[1..];
    match entry.tokens[0].text.to_ascii_uppercase().as_str() {
        "$ORIGIN" => {
            let [name] = args else {
                return Err("$ORIGIN takes exactly one domain name".into());
            };
            let origin = parse_name(&name.text, &state.origin)?;
            state.set_origin(origin);
            Ok(())
        }
        "$TTL" => {
            let [ttl] = args else {
                return Err("$TTL takes exactly one TTL".into());
            };
            let ttl = parse_ttl_value(&ttl.text)?;
            state.default_ttl = Some(ttl);
            Ok(())
        }
        "$INCLUDE" => {
            let (file, origin) = match args {
                [file] => (file, None),
                [file, origin] => (file, Some(origin)),
                _ => return Err("$INCLUDE takes a file name and an optional origin".into()),
            };
            let file_name = unquote(&file.text);
            let target = path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(&file_name);
            // The same file by another path (`./a.inc`, a symlink) is the same file.
            let key = std::fs::canonicalize(&target).unwrap_or_else(|_| target.clone());
            if stack.contains(&key) {
                return Err(format!(
                    "$INCLUDE {file_name}: include cycle ({} is already being read)",
                    target.display()
                ));
            }
            if stack.len() >= MAX_INCLUDE_DEPTH {
                return Err(format!(
                    "$INCLUDE {file_name}: includes nested deeper than {MAX_INCLUDE_DEPTH}"
                ));
            }
            // The included file starts with the given origin; ours is restored afterwards.
            let saved_origin = state.origin.clone();
            let saved_owner = state.last_owner.clone();
            if let Some(o) = origin {
                let origin = parse_name(&o.text, &state.origin)?;
                state.set_origin(origin);
            }
            let read = load_file(&target, state, builder, errors, warnings, stack);
            state.set_origin(saved_origin);
            state.last_owner = saved_owner;
            read.map_err(|e| {
                format!(
                    "$INCLUDE {file_name}: cannot read {}: {e}",
                    target.display()
                )
            })
        }
        other => Err(format!("unsupported directive {other}")),
    }
}

fn unquote(s: &str) -> String {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
        .to_string()
}

fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    crate::dns::name::from_text(text, origin)
}

fn parse_ttl_value(text: &str) -> Result<u32, String> {
    let ttl = parse_ttl(text).map_err(|_| format!("invalid TTL {text:?}"))?;
    if ttl > i32::MAX as u32 {
        return Err(format!("TTL {text} is above 2^31-1 (RFC 2181 §8)"));
    }
    Ok(ttl)
}

/// The record type named by a token: a mnemonic or `TYPEnnn` (RFC 3597 §5).
fn parse_type(text: &str) -> Option<RecordType> {
    rtype::from_mnemonic(text).map(RecordType::from)
}

fn is_class(text: &str) -> bool {
    text.eq_ignore_ascii_case("IN")
        || text.eq_ignore_ascii_case("CH")
        || text.eq_ignore_ascii_case("HS")
        || text.eq_ignore_ascii_case("CS")
        || text.to_ascii_uppercase().starts_with("CLASS")
}

fn record(entry: &Entry, state: &mut State, builder: &mut ZoneBuilder) -> Result<(), String> {
    let mut tokens = entry.tokens.iter().peekable();
    let mut owner = [0u8; MAX_NAME_LEN];
    let owner_len = if entry.blank_owner {
        let last = state
            .last_owner
            .as_deref()
            .ok_or_else(|| "record has no owner name and none came before".to_string())?;
        owner
            .get_mut(..last.len())
            .ok_or("owner name too long")?
            .copy_from_slice(last);
        last.len()
    } else {
        let t = tokens.next().ok_or("empty record")?;
        let len = match name::owner_to_wire_lower(&t.text, &state.origin_wire, &mut owner) {
            Some(len) => len,
            None => {
                let wire = wire_lower(&parse_name(&t.text, &state.origin)?);
                owner
                    .get_mut(..wire.len())
                    .ok_or("owner name too long")?
                    .copy_from_slice(&wire);
                wire.len()
            }
        };
        let last = state.last_owner.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(&owner[..len]);
        len
    };
    let owner = &owner[..owner_len];

    // TTL and class come in either order before the type (RFC 1035 §5.1).
    let mut ttl = None;
    let mut rtype = None;
    for _ in 0..3 {
        let Some(t) = tokens.next() else {
            return Err("record has no type".into());
        };
        if t.text.starts_with(|c: char| c.is_ascii_digit()) && ttl.is_none() {
            ttl = Some(parse_ttl_value(&t.text)?);
        } else if is_class(&t.text) {
            if !t.text.eq_ignore_ascii_case("IN") {
                return Err(format!("class {} is not supported (only IN)", t.text));
            }
        } else {
            rtype = Some(
                parse_type(&t.text).ok_or_else(|| format!("unknown record type {:?}", t.text))?,
            );
            break;
        }
    }
    let rtype = rtype.ok_or("record has no type")?;
    let ttl = match ttl.or(state.default_ttl).or(state.last_ttl) {
        Some(t) => t,
        None => return Err("record has no TTL and no $TTL came before".into()),
    };
    state.last_ttl = Some(ttl);
    let rdata_tokens: Vec<&Token> = tokens.collect();
    let rdata = encode_rdata(rtype, &rdata_tokens, &state.origin)?;
    builder
        .add(owner, u16::from(rtype), ttl, &rdata)
        .map_err(|e| e.to_string())
}

/// RDATA in uncompressed wire form.
fn encode_rdata(rtype: RecordType, tokens: &[&Token], origin: &Name) -> Result<Vec<u8>, String> {
    let code = u16::from(rtype);
    let words: Vec<Word> = tokens
        .iter()
        .map(|t| Word {
            text: &t.text,
            quoted: t.quoted,
        })
        .collect();
    rdata::encode(code, &words, origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> (Vec<Entry>, Vec<(usize, String)>) {
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        tokenize(text.chars(), &mut errors, |e| entries.push(e.clone()));
        (entries, errors)
    }

    #[test]
    fn parentheses_span_lines_and_keep_the_first_line() {
        let (entries, errors) = toks("@ IN SOA ns hm (\n 1 ; serial\n 2 3 4 5 )\nwww A 1.2.3.4\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].line, 1);
        assert_eq!(entries[0].tokens.len(), 10);
        assert_eq!(entries[1].line, 4);
    }

    #[test]
    fn blank_owner_and_quotes() {
        let (entries, errors) = toks("  TXT \"a ; b\" c\\ d\n");
        assert!(errors.is_empty());
        assert!(entries[0].blank_owner);
        assert_eq!(entries[0].tokens[1].text, "\"a ; b\"");
        assert_eq!(entries[0].tokens[2].text, "c\\ d");
    }

    #[test]
    fn reports_unclosed_paren_and_quote_lines() {
        let (_, errors) = toks("a A (\n1.2.3.4\n");
        assert_eq!(errors, vec![(1, "'(' is never closed".to_string())]);
        let (_, errors) = toks("\n\na TXT \"open\n");
        assert_eq!(errors[0].0, 3);
    }

    #[test]
    fn quoted_value_inside_a_token() {
        let (entries, errors) = toks("svc HTTPS 1 . alpn=\"h2,h3\" port=443\n");
        assert!(errors.is_empty());
        assert_eq!(entries[0].tokens[4].text, "alpn=\"h2,h3\"");
        let refs: Vec<&Token> = entries[0].tokens[2..].iter().collect();
        let rd = encode_rdata(RecordType::HTTPS, &refs, &Name::root());
        assert_eq!(
            rd,
            Ok(b"\x00\x01\x00\x00\x01\x00\x06\x02h2\x02h3\x00\x03\x00\x02\x01\xbb".to_vec())
        );
    }

    #[test]
    fn generic_and_ds_rdata() {
        let t = |s: &str| Token {
            text: s.into(),
            quoted: false,
        };
        let v = [t("\\#"), t("3"), t("0a0B"), t("0c")];
        let refs: Vec<&Token> = v.iter().collect();
        assert_eq!(
            encode_rdata(RecordType::Unknown(65280), &refs, &Name::root()),
            Ok(vec![10, 11, 12])
        );
        let v = [t("\\#"), t("4"), t("0a0b")];
        let refs: Vec<&Token> = v.iter().collect();
        assert!(encode_rdata(RecordType::Unknown(65280), &refs, &Name::root()).is_err());
        let v = [t("60485"), t("5"), t("1"), t("2BB1"), t("83AF")];
        let refs: Vec<&Token> = v.iter().collect();
        assert_eq!(
            encode_rdata(RecordType::DS, &refs, &Name::root()),
            Ok(vec![0xec, 0x45, 5, 1, 0x2b, 0xb1, 0x83, 0xaf])
        );
    }

    #[test]
    fn character_strings_decode_escapes() {
        let (entries, errors) = toks("t TXT \"a\\059b\\\"c;\" d\\ e \"\" \\200\n");
        assert!(errors.is_empty());
        let refs: Vec<&Token> = entries[0].tokens[2..].iter().collect();
        assert_eq!(
            encode_rdata(RecordType::TXT, &refs, &Name::root()),
            Ok(b"\x06a;b\"c;\x03d e\x00\x01\xc8".to_vec())
        );
        let v = [Token {
            text: "\\256".into(),
            quoted: false,
        }];
        assert!(encode_rdata(RecordType::TXT, &[&v[0]], &Name::root()).is_err());
    }

    /// Hands out its bytes a few at a time, as a slow file or pipe may.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(self.0.len()).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn file_characters_decode_across_reads_and_stop_at_bad_utf8() {
        let text: String = (0..40_000)
            .map(|i| ["a", "é", "€", "𝄞", "\n"][i % 5])
            .collect();
        for step in [1, 3, 7, READ_BLOCK] {
            let mut chars = FileChars::new(Trickle(text.as_bytes(), step));
            let decoded: String = chars.by_ref().collect();
            assert!(chars.error.is_none(), "step {step}: {:?}", chars.error);
            assert_eq!(decoded, text, "step {step}");
        }
        for bad in [&b"ab\xffcd"[..], b"ab\xc3", b"ab\xe2\x82x", b"\xed\xa0\x80"] {
            let mut chars = FileChars::new(Trickle(bad, 2));
            let decoded: String = chars.by_ref().collect();
            assert!(chars.error.is_some(), "{bad:?} accepted as {decoded:?}");
            assert!(decoded.len() <= 2, "{bad:?}: {decoded:?}");
        }
    }
}
