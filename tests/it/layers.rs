//! The crate's layering, checked from the source text: the layer table in `src/lib.rs`
//! says which rooms sit in which layer; a room may use only rooms of lower layers. Also the
//! size rules (no file over 800 lines, no function over 120) and that docs/architecture.md
//! carries the same table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 800;
const MAX_FN_LINES: usize = 120;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The rows `//! | L<n> | room, room | what |` of src/lib.rs: room → layer number.
fn layer_table(lib: &str) -> BTreeMap<String, usize> {
    let mut table = BTreeMap::new();
    for line in lib.lines() {
        let Some(row) = line.strip_prefix("//! | L") else {
            continue;
        };
        let mut cells = row.split('|');
        let (Some(layer), Some(rooms)) = (cells.next(), cells.next()) else {
            continue;
        };
        let Ok(layer) = layer.trim().parse::<usize>() else {
            continue;
        };
        for room in rooms.split(',') {
            table.insert(room.trim().to_string(), layer);
        }
    }
    table
}

/// The table rows themselves, as written (for comparing with the docs).
fn table_rows(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_start_matches("//!").trim().strip_prefix("| L"))
        .map(|r| r.split('|').take(2).collect::<Vec<_>>().join("|"))
        .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The room a file belongs to: its first path component under src/ (`engine/plain.rs` →
/// `engine`, `cli.rs` → `cli`).
fn room_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap_or(path);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

/// Every room a line names through `crate::room` or `crate::{room::…, room2, …}`.
fn rooms_named(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        // `meridian_crate::` or `some_crate::` are not ours.
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(std::mem::take(&mut item)),
                    _ if depth == 0 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for it in items {
                let name: String = it
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// A `use crate::{` group may span lines: joins each such statement onto one line.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let code = line.trim();
        if code.starts_with("//") {
            continue;
        }
        if let Some((n, mut acc)) = pending.take() {
            acc.push_str(code);
            if code.contains(';') {
                out.push((n, acc));
            } else {
                pending = Some((n, acc));
            }
            continue;
        }
        if code.contains("crate::{") && !code.contains(';') && code.starts_with("use ")
            || code.starts_with("pub use ") && code.contains("crate::{") && !code.contains(';')
        {
            pending = Some((i + 1, code.to_string()));
            continue;
        }
        out.push((i + 1, code.to_string()));
    }
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rooms_use_only_lower_layers() {
    let table = layer_table(&read(&src().join("lib.rs")));
    assert!(
        table.len() >= 10,
        "src/lib.rs has no layer table: {table:?}"
    );
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let room = room_of(path);
        if room == "lib" || room == "main" {
            continue;
        }
        let Some(&layer) = table.get(&room) else {
            problems.push(format!(
                "{}: room {room:?} is not in the layer table of src/lib.rs",
                path.display()
            ));
            continue;
        };
        for (n, line) in logical_lines(&read(path)) {
            for used in rooms_named(&line) {
                if used == room || used == "self" || used == "super" {
                    continue;
                }
                edges.entry(room.clone()).or_default().insert(used.clone());
                match table.get(&used) {
                    Some(&l) if l < layer => {}
                    Some(&l) => problems.push(format!(
                        "{}:{n}: {room} (L{layer}) uses {used} (L{l}): only lower layers",
                        path.display()
                    )),
                    None => problems.push(format!(
                        "{}:{n}: uses crate::{used}, which is not in the layer table",
                        path.display()
                    )),
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The rule above makes a cycle impossible; say so explicitly, room by room.
    for start in edges.keys() {
        let mut stack: Vec<&str> = vec![start];
        let mut seen = BTreeSet::new();
        while let Some(r) = stack.pop() {
            for next in edges.get(r).into_iter().flatten() {
                assert_ne!(next, start, "a cycle through {start} and {r}");
                if seen.insert(next.as_str()) {
                    stack.push(next);
                }
            }
        }
    }
    // The check itself must see edges, or it would pass on anything.
    assert!(
        edges.get("engine").is_some_and(|e| e.contains("zone")),
        "the scan found no engine → zone edge: {edges:?}"
    );
}

#[test]
fn the_scan_sees_upward_uses() {
    let table: BTreeMap<String, usize> = [("dns", 0), ("engine", 3), ("net", 5)]
        .into_iter()
        .map(|(r, l)| (r.to_string(), l))
        .collect();
    let upward = |line: &str, layer: usize| {
        rooms_named(line)
            .iter()
            .any(|r| table.get(r).is_some_and(|&l| l >= layer))
    };
    assert!(upward("use crate::net::udp::serve;", 3));
    assert!(upward("use crate::{dns::rtype, net::{clock, udp}};", 3));
    assert!(upward("let x = crate::engine::answer(a);", 0));
    assert!(!upward("use crate::dns::name;", 3));
    assert!(!upward("use meridian_crate::net;", 3));
    let joined = logical_lines("use crate::{\n    dns::name,\n    net::udp,\n};\n");
    assert_eq!(joined.len(), 1);
    assert!(upward(&joined[0].1, 3));
}

#[test]
fn docs_carry_the_layer_table() {
    let lib = table_rows(&read(&src().join("lib.rs")));
    let docs_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let docs = table_rows(&read(&docs_path));
    assert!(!lib.is_empty());
    assert_eq!(
        lib, docs,
        "docs/architecture.md's layer table differs from src/lib.rs's"
    );
}

/// Lines of each `fn` body in a rustfmt-formatted file: from the signature to the closing
/// brace at the signature's indentation.
fn long_functions(text: &str) -> Vec<(usize, String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
        ]
        .iter()
        .chain(&["pub async fn ", "const fn ", "pub const fn ", "unsafe fn "])
        .any(|p| code.starts_with(p));
        if !is_fn || code.ends_with(';') {
            continue;
        }
        let close = format!("{}}}", " ".repeat(indent));
        if let Some(end) = lines[i..].iter().position(|l| *l == close)
            && end + 1 > MAX_FN_LINES
        {
            let name = code
                .split("fn ")
                .nth(1)
                .and_then(|rest| rest.split(['(', '<']).next())
                .unwrap_or(code)
                .to_string();
            out.push((i + 1, name, end + 1));
        }
    }
    out
}

#[test]
fn files_and_functions_stay_small() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut problems = Vec::new();
    for path in files {
        let text = read(&path);
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!(
                "{}: {n} lines (at most {MAX_FILE_LINES})",
                path.display()
            ));
        }
        for (line, name, len) in long_functions(&text) {
            problems.push(format!(
                "{}:{line}: {name} is {len} lines (at most {MAX_FN_LINES})",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_size_check_finds_a_long_function() {
    let body = "    x();\n".repeat(MAX_FN_LINES);
    let text = format!("fn short() {{\n}}\n\npub fn long() {{\n{body}}}\n");
    let found = long_functions(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].1, "long");
}
