//! The two parts of a MaxMind DB a table build reads for every network, read directly: the
//! search tree, walked in address order, and the data section, where a record's configured
//! fields are found by path.
//!
//! The `maxminddb` crate opens the file (metadata, layout checks) and answers single
//! lookups. Its network iterator and serde decoder were about a third of a City-sized table
//! build: a result with its network and a decoder per network, a deserializer per field. A
//! walk needs neither; it needs (start, length, data offset), and five typed fields per
//! distinct record. Everything here is bounds-checked: a malformed file is an error with a
//! reason, never a panic, and every loop ends with the bytes it reads.

use super::location::Segment;

/// The marker the format puts before a database file's metadata.
const METADATA_MARKER: &[u8] = b"\xab\xcd\xefMaxMind.com";
/// Zero bytes between the search tree and the data section.
const DATA_SEPARATOR: usize = 16;

/// A malformed byte: what was wrong, and at which offset (of the tree or data section).
/// Small and `Copy`, so the reads that can fail stay in registers; it becomes text at the
/// edge.
#[derive(Debug, Clone, Copy)]
struct Bad {
    what: &'static str,
    at: usize,
}

impl From<Bad> for String {
    fn from(bad: Bad) -> String {
        format!("{} at {}", bad.what, bad.at)
    }
}

/// Where the data section of `file` lies, for the metadata's node count and record size.
pub(crate) fn data_section(
    file: &[u8],
    node_count: u32,
    record_bits: u16,
) -> Result<std::ops::Range<usize>, String> {
    if !matches!(record_bits, 24 | 28 | 32) {
        return Err(format!("record size {record_bits}"));
    }
    let marker = file
        .windows(METADATA_MARKER.len())
        .rposition(|w| w == METADATA_MARKER)
        .ok_or("no metadata marker")?;
    let tree_len = (node_count as usize)
        .checked_mul(usize::from(record_bits) / 4)
        .ok_or("search tree size overflows")?;
    let start = tree_len
        .checked_add(DATA_SEPARATOR)
        .ok_or("search tree size overflows")?;
    if start > marker {
        return Err("the search tree runs into the metadata".into());
    }
    Ok(start..marker)
}

/// The search tree and data section of a database file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout<'a> {
    tree: &'a [u8],
    node_count: usize,
    /// 24, 28 or 32.
    record_bits: u16,
    data: &'a [u8],
    ip_version: u16,
}

/// One network of a walk. `record` is the data-section offset of its record, `None` when
/// the tree says it has no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TreeNet {
    pub(crate) start: u128,
    pub(crate) len: u8,
    pub(crate) record: Option<u32>,
}

impl<'a> Layout<'a> {
    /// Finds the tree and the data section of `file` for the metadata's node count and
    /// record size (the server keeps the data section found at open: [`Layout::with_data`]).
    #[cfg(test)]
    pub(crate) fn new(
        file: &'a [u8],
        node_count: u32,
        record_bits: u16,
        ip_version: u16,
    ) -> Result<Self, String> {
        let data = data_section(file, node_count, record_bits)?;
        Ok(Self::with_data(
            file,
            data,
            node_count,
            record_bits,
            ip_version,
        ))
    }

    /// The same, for a data section already found by [`data_section`] (which also checked
    /// the record size and that the range lies in `file`).
    pub(crate) fn with_data(
        file: &'a [u8],
        data: std::ops::Range<usize>,
        node_count: u32,
        record_bits: u16,
        ip_version: u16,
    ) -> Self {
        let tree_end = data.start.saturating_sub(DATA_SEPARATOR);
        Self {
            tree: file.get(..tree_end).unwrap_or_default(),
            node_count: node_count as usize,
            record_bits,
            data: file.get(data).unwrap_or_default(),
            ip_version,
        }
    }

    /// The data section.
    #[cfg(test)]
    pub(crate) fn data(&self) -> Data<'a> {
        Data { bytes: self.data }
    }

    /// The left (`right == false`) or right child of an inner node.
    #[inline(always)]
    fn child(&self, node: usize, right: bool) -> Result<usize, Bad> {
        let bytes = usize::from(self.record_bits) / 4;
        let past = Bad {
            what: "node past the search tree",
            at: node,
        };
        let at = node.checked_mul(bytes).ok_or(past)?;
        let n = self
            .tree
            .get(at..at.checked_add(bytes).ok_or(past)?)
            .ok_or(past)?;
        let be = |b: &[u8]| b.iter().fold(0usize, |v, &x| v << 8 | usize::from(x));
        Ok(match (self.record_bits, right) {
            (24, false) => be(&n[0..3]),
            (24, true) => be(&n[3..6]),
            (28, false) => usize::from(n[3] >> 4) << 24 | be(&n[0..3]),
            (28, true) => usize::from(n[3] & 0x0f) << 24 | be(&n[4..7]),
            (_, false) => be(&n[0..4]),
            (_, true) => be(&n[4..8]),
        })
    }

    /// The node that IPv4 addresses start from and its depth: the root of an IPv4
    /// database, `::/96` of an IPv6 one (or the record above it, met at a smaller depth).
    fn ipv4_start(&self) -> Result<(usize, u8), String> {
        let mut node = 0;
        if self.ip_version == 6 {
            for depth in 0..96 {
                if node >= self.node_count {
                    return Ok((node, depth));
                }
                node = self.child(node, false)?;
            }
            return Ok((node, 96));
        }
        Ok((0, 0))
    }

    /// Walks the IPv4 space (32-bit addresses, from the IPv4 start node) or the given IPv6
    /// blocks (as `(start, len)`, in address order), yielding every network with and
    /// without data in address order. In the IPv6 walk, a link back to the IPv4 start node
    /// (how MaxMind's files alias `::ffff:0:0/96`, 6to4 and Teredo to IPv4) yields nothing.
    pub(crate) fn walk(&self, v6: bool, roots: Vec<(u128, u8)>) -> Result<TreeWalk<'a>, String> {
        let (v4_node, v4_depth) = self.ipv4_start()?;
        let alias = (self.ip_version == 6 && v4_depth == 96 && v4_node < self.node_count)
            .then_some(v4_node);
        let (width, roots) = if v6 { (128, roots) } else { (32, vec![(0, 0)]) };
        Ok(TreeWalk {
            layout: *self,
            width,
            start_node: if v6 { 0 } else { v4_node },
            alias: if v6 { alias } else { None },
            roots: roots.into_iter(),
            stack: Vec::with_capacity(usize::from(width) + 2),
        })
    }
}

/// The networks of a walk in address order; see [`Layout::walk`].
pub(crate) struct TreeWalk<'a> {
    layout: Layout<'a>,
    width: u8,
    start_node: usize,
    alias: Option<usize>,
    roots: std::vec::IntoIter<(u128, u8)>,
    /// (node, network start, depth), the next network on top.
    stack: Vec<(usize, u128, u8)>,
}

impl TreeWalk<'_> {
    /// Goes down from the start node to the block `(start, len)`. A record met on the way
    /// covers the whole block and is yielded as the block.
    fn descend(&self, start: u128, len: u8) -> Result<usize, String> {
        let mut node = self.start_node;
        for depth in 0..len.min(self.width) {
            if node >= self.layout.node_count {
                break;
            }
            let bit = start >> (self.width - 1 - depth) & 1 == 1;
            node = self.layout.child(node, bit)?;
        }
        Ok(node)
    }

    fn step(&mut self) -> Result<Option<TreeNet>, String> {
        loop {
            let Some((node, start, depth)) = self.stack.pop() else {
                let Some((start, len)) = self.roots.next() else {
                    return Ok(None);
                };
                let node = self.descend(start, len)?;
                self.stack.push((node, start, len));
                continue;
            };
            let count = self.layout.node_count;
            if node < count {
                if Some(node) == self.alias {
                    continue;
                }
                if depth >= self.width {
                    return Err("the search tree is deeper than the address".into());
                }
                let right_start = start | 1u128 << (self.width - 1 - depth);
                self.stack
                    .push((self.layout.child(node, true)?, right_start, depth + 1));
                self.stack
                    .push((self.layout.child(node, false)?, start, depth + 1));
                continue;
            }
            let record = if node == count {
                None
            } else {
                let offset = (node - count)
                    .checked_sub(DATA_SEPARATOR)
                    .filter(|&o| o < self.layout.data.len())
                    .ok_or_else(|| format!("record pointer {node} outside the data section"))?;
                // The data section ends before the metadata, which a u32 covers for any
                // file under 4 GiB; past that, say so.
                Some(u32::try_from(offset).map_err(|_| format!("record offset {offset}"))?)
            };
            return Ok(Some(TreeNet {
                start,
                len: depth,
                record,
            }));
        }
    }
}

impl Iterator for TreeWalk<'_> {
    type Item = Result<TreeNet, String>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(net) => net.map(Ok),
            Err(e) => {
                // One error ends the walk.
                self.stack.clear();
                self.roots = Vec::new().into_iter();
                Some(Err(e))
            }
        }
    }
}

/// The data section of a database.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Data<'a> {
    bytes: &'a [u8],
}

/// A value's kind by its type number in the format.
const POINTER: u8 = 1;
const STRING: u8 = 2;
const DOUBLE: u8 = 3;
const UINT16: u8 = 5;
const UINT32: u8 = 6;
const MAP: u8 = 7;
const INT32: u8 = 8;
const UINT64: u8 = 9;
const UINT128: u8 = 10;
const ARRAY: u8 = 11;
const BOOLEAN: u8 = 14;
const FLOAT: u8 = 15;

/// A value's control bytes: its type, its size (for a pointer, the target) and where its
/// payload starts (for a pointer, the position after it).
struct Header {
    kind: u8,
    size: usize,
    payload: usize,
}

/// A scalar a field path ends at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(&'a str),
    Float(f64),
    Uint(u128),
    Int(i32),
    /// Any other type, by its type number.
    Other(u8),
}

impl<'a> Data<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    #[inline(always)]
    fn byte(&self, at: usize) -> Result<usize, Bad> {
        self.bytes.get(at).map(|&b| usize::from(b)).ok_or(Bad {
            what: "value past the data section",
            at,
        })
    }

    #[inline(always)]
    fn slice(&self, at: usize, len: usize) -> Result<&'a [u8], Bad> {
        at.checked_add(len)
            .and_then(|end| self.bytes.get(at..end))
            .ok_or(Bad {
                what: "value past the data section",
                at,
            })
    }

    #[inline(always)]
    fn header(&self, at: usize) -> Result<Header, Bad> {
        let control = self.byte(at)?;
        let mut next = at + 1;
        let mut kind = (control >> 5) as u8;
        if kind == POINTER {
            let extra = (control >> 3) & 3;
            let bytes = self.slice(next, extra + 1)?;
            let tail = bytes.iter().fold(0usize, |v, &b| v << 8 | usize::from(b));
            let target = match extra {
                0 => (control & 7) << 8 | tail,
                1 => ((control & 7) << 16 | tail) + 2048,
                2 => ((control & 7) << 24 | tail) + 526_336,
                _ => tail,
            };
            return Ok(Header {
                kind,
                size: target,
                payload: next + extra + 1,
            });
        }
        if kind == 0 {
            kind = 7u8.saturating_add(self.byte(next)? as u8);
            next += 1;
            if kind <= MAP {
                return Err(Bad {
                    what: "extended type below 8",
                    at,
                });
            }
        }
        let short = control & 0x1f;
        let (size, extra) = match short {
            29 => (29 + self.byte(next)?, 1),
            30 => {
                let b = self.slice(next, 2)?;
                (285 + (usize::from(b[0]) << 8 | usize::from(b[1])), 2)
            }
            31 => {
                let b = self.slice(next, 3)?;
                let v = usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
                (65_821 + v, 3)
            }
            _ => (short, 0),
        };
        Ok(Header {
            kind,
            size,
            payload: next + extra,
        })
    }

    /// The header of the value at `at`, a pointer followed to its target. Pointers to
    /// pointers are not in the format; they are refused rather than followed.
    #[inline(always)]
    fn resolved(&self, at: usize) -> Result<Header, Bad> {
        let header = self.header(at)?;
        if header.kind != POINTER {
            return Ok(header);
        }
        let target = self.header(header.size)?;
        if target.kind == POINTER {
            return Err(Bad {
                what: "pointer to a pointer",
                at,
            });
        }
        Ok(target)
    }

    /// The position after `count` values starting at `at`, nested values included.
    fn skip(&self, mut at: usize, count: usize) -> Result<usize, Bad> {
        // Iterative, so a deep nest cannot exhaust the stack; every step reads at least one
        // byte further, so the loop ends with the data section.
        let mut pending = count as u64;
        while pending > 0 {
            let h = self.header(at)?;
            at = match h.kind {
                POINTER | BOOLEAN => h.payload,
                MAP => {
                    pending += 2 * h.size as u64;
                    h.payload
                }
                ARRAY => {
                    pending += h.size as u64;
                    h.payload
                }
                _ => {
                    self.slice(h.payload, h.size)?;
                    h.payload + h.size
                }
            };
            pending -= 1;
        }
        Ok(at)
    }

    /// The scalar at `path` below the record at `offset`: `None` when a key is missing or
    /// an index is past the end; an error when a segment meets the wrong kind of container
    /// or the bytes are malformed.
    pub(crate) fn find(&self, offset: u32, path: &[Segment]) -> Result<Option<Scalar<'a>>, String> {
        let mut at = offset as usize;
        for segment in path {
            let h = self.resolved(at)?;
            match segment {
                Segment::Key(key) => {
                    if h.kind != MAP {
                        return Err(format!(
                            "expected a map for key {key:?}, got type {}",
                            h.kind
                        ));
                    }
                    at = h.payload;
                    let mut found = false;
                    for _ in 0..h.size {
                        let k = self.resolved(at)?;
                        if k.kind != STRING {
                            return Err(format!("map key of type {}", k.kind));
                        }
                        let name = self.slice(k.payload, k.size)?;
                        at = self.skip(at, 1)?;
                        if name == key.as_bytes() {
                            found = true;
                            break;
                        }
                        at = self.skip(at, 1)?;
                    }
                    if !found {
                        return Ok(None);
                    }
                }
                Segment::Index(i) => {
                    if h.kind != ARRAY {
                        return Err(format!(
                            "expected an array for index {i}, got type {}",
                            h.kind
                        ));
                    }
                    if *i >= h.size {
                        return Ok(None);
                    }
                    at = self.skip(h.payload, *i)?;
                }
            }
        }
        self.scalar(at).map(Some)
    }

    fn scalar(&self, at: usize) -> Result<Scalar<'a>, String> {
        let h = self.resolved(at)?;
        let uint = |max: usize| -> Result<u128, String> {
            if h.size > max {
                return Err(format!("integer of {} bytes for type {}", h.size, h.kind));
            }
            let b = self.slice(h.payload, h.size)?;
            Ok(b.iter().fold(0u128, |v, &x| v << 8 | u128::from(x)))
        };
        Ok(match h.kind {
            STRING => {
                let b = self.slice(h.payload, h.size)?;
                Scalar::Str(std::str::from_utf8(b).map_err(|e| format!("string: {e}"))?)
            }
            DOUBLE | FLOAT => {
                let b = self.slice(h.payload, h.size)?;
                match (h.kind, b) {
                    (DOUBLE, &[a, b, c, d, e, f, g, h]) => {
                        Scalar::Float(f64::from_be_bytes([a, b, c, d, e, f, g, h]))
                    }
                    (FLOAT, &[a, b, c, d]) => {
                        Scalar::Float(f32::from_be_bytes([a, b, c, d]).into())
                    }
                    _ => return Err(format!("float of {} bytes", h.size)),
                }
            }
            UINT16 => Scalar::Uint(uint(2)?),
            UINT32 => Scalar::Uint(uint(4)?),
            UINT64 => Scalar::Uint(uint(8)?),
            UINT128 => Scalar::Uint(uint(16)?),
            // Fewer than four bytes are a positive number; four are the two's complement.
            INT32 => Scalar::Int(uint(4)? as u32 as i32),
            other => Scalar::Other(other),
        })
    }
}

impl<'a> Scalar<'a> {
    /// The value as a string; other types are an error.
    pub(crate) fn into_str(self) -> Result<&'a str, String> {
        match self {
            Scalar::Str(s) => Ok(s),
            other => Err(format!("expected a string, got {}", other.kind())),
        }
    }

    /// The value as a number, from a float or an integer.
    pub(crate) fn into_f64(self) -> Result<f64, String> {
        match self {
            Scalar::Float(v) => Ok(v),
            Scalar::Uint(v) => Ok(v as f64),
            Scalar::Int(v) => Ok(v.into()),
            other => Err(format!("expected a number, got {}", other.kind())),
        }
    }

    /// The value as a u32, from an integer in range.
    pub(crate) fn into_u32(self) -> Result<u32, String> {
        let out_of_range = |v: &dyn std::fmt::Display| format!("{v} does not fit a u32");
        match self {
            Scalar::Uint(v) => u32::try_from(v).map_err(|_| out_of_range(&v)),
            Scalar::Int(v) => u32::try_from(v).map_err(|_| out_of_range(&v)),
            other => Err(format!("expected an integer, got {}", other.kind())),
        }
    }

    fn kind(&self) -> String {
        match self {
            Scalar::Str(_) => "a string".into(),
            Scalar::Float(_) => "a float".into(),
            Scalar::Uint(_) | Scalar::Int(_) => "an integer".into(),
            Scalar::Other(t) => format!("type {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node's two records in each record size, with every bit of both set somewhere:
    /// 28-bit records keep their top nibbles in the middle byte, left's in its high half.
    #[test]
    fn node_records_in_each_size() {
        fn node(bytes: &[u8], bits: u16) -> Layout<'_> {
            Layout {
                tree: bytes,
                node_count: 1,
                record_bits: bits,
                data: &[],
                ip_version: 4,
            }
        }
        let n24 = [0x12, 0x34, 0x56, 0xab, 0xcd, 0xef];
        let n28 = [0x12, 0x34, 0x56, 0xab, 0x78, 0x9a, 0xbc];
        let n32 = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
        for (bytes, bits, left, right) in [
            (&n24[..], 24, 0x12_3456, 0xab_cdef),
            (&n28[..], 28, 0xa12_3456, 0xb78_9abc),
            (&n32[..], 32, 0x1234_5678, 0x9abc_def0),
        ] {
            let layout = node(bytes, bits);
            assert_eq!(layout.child(0, false).unwrap(), left, "{bits}");
            assert_eq!(layout.child(0, true).unwrap(), right, "{bits}");
            // Past the tree: an error, not a panic.
            assert!(layout.child(1, false).is_err());
        }
    }
}
