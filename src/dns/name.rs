//! Domain names in uncompressed wire form (length-prefixed labels ending in the root label).
//!
//! The query path works on byte slices in this form: lowercased copies are the lookup keys,
//! so no `Name` values are built per query.

use std::mem::MaybeUninit;

use hickory_proto::rr::Name;

/// Longest name in wire form (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// Most labels a name can have, root included.
pub const MAX_LABELS: usize = 128;

/// Wire form of `name`, lowercased (the key form used by the zone tables).
pub fn wire_lower(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// A name as written in a zone file (`@`, relative to `origin`, or absolute): octets as
/// written, case kept, `\X` and `\DDD` escapes decoded (not IDNA: zone files are octets).
pub fn from_text(text: &str, origin: &Name) -> Result<Name, String> {
    if text == "@" {
        return Ok(origin.clone());
    }
    let bad = |why: &str| format!("invalid domain name {text:?}: {why}");
    let bytes = text.as_bytes();
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => match bytes.get(i + 1..i + 4) {
                Some(d) if d.iter().all(u8::is_ascii_digit) => {
                    let v = d.iter().fold(0u32, |v, b| v * 10 + u32::from(b - b'0'));
                    label.push(u8::try_from(v).map_err(|_| bad("escape above \\255"))?);
                    i += 4;
                    continue;
                }
                _ => {
                    label.push(
                        *bytes
                            .get(i + 1)
                            .ok_or_else(|| bad("ends with a backslash"))?,
                    );
                    i += 2;
                    continue;
                }
            },
            b'.' if text == "." => absolute = true,
            b'.' => {
                if label.is_empty() {
                    return Err(bad("empty label"));
                }
                labels.push(std::mem::take(&mut label));
                absolute = i + 1 == bytes.len();
            }
            b => label.push(b),
        }
        i += 1;
    }
    if !label.is_empty() {
        labels.push(label);
    }
    if let Some(long) = labels.iter().find(|l| l.len() > 63) {
        return Err(bad(&format!(
            "a label of {} octets (at most 63)",
            long.len()
        )));
    }
    let mut name =
        Name::from_labels(labels.iter().map(Vec::as_slice)).map_err(|e| bad(&e.to_string()))?;
    if !absolute {
        name = name
            .append_domain(origin)
            .map_err(|e| bad(&e.to_string()))?;
    }
    name.set_fqdn(true);
    if wire(&name).len() > 255 {
        return Err(format!("domain name {text:?} is longer than 255 octets"));
    }
    Ok(name)
}

/// [`from_text`] then [`wire_lower`] for the plain case, straight into `out`: a zone file's
/// owner names, a million of them in a big zone, without a `Name` or an allocation each.
/// `origin` is in lowercase wire form. `None` for anything else (an escape, an empty or
/// over-long label, a name over 255 octets): the caller takes the general way, which also
/// words the error.
pub fn owner_to_wire_lower(
    text: &str,
    origin: &[u8],
    out: &mut [u8; MAX_NAME_LEN],
) -> Option<usize> {
    if text == "@" {
        out.get_mut(..origin.len())?.copy_from_slice(origin);
        return Some(origin.len());
    }
    let bytes = text.as_bytes();
    if bytes.contains(&b'\\') {
        return None;
    }
    // out[label_start] is the length byte of the label being written.
    let (mut label_start, mut len, mut label_len) = (0usize, 1usize, 0u8);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if label_len == 0 {
                return None;
            }
            *out.get_mut(label_start)? = label_len;
            if i + 1 == bytes.len() {
                // Absolute: the root ends it.
                *out.get_mut(len)? = 0;
                return Some(len + 1);
            }
            (label_start, len, label_len) = (len, len + 1, 0);
        } else {
            if label_len == 63 {
                return None;
            }
            *out.get_mut(len)? = b.to_ascii_lowercase();
            len += 1;
            label_len += 1;
        }
    }
    if label_len == 0 {
        return None;
    }
    *out.get_mut(label_start)? = label_len;
    out.get_mut(len..len + origin.len())?
        .copy_from_slice(origin);
    Some(len + origin.len())
}

/// Wire form of `name`, case kept (RDATA targets, synthesized names).
pub fn wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// ASCII-lowercases eight bytes at once: 0x20 is added to exactly the bytes 'A'..='Z'
/// (bytes with the high bit set are left alone, as `to_ascii_lowercase` does).
#[inline]
fn lower8(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    // Per byte, bit 7 is set when the low seven bits are >= 'A' (0x41) / > 'Z' (0x5a);
    // no carry crosses a byte because each sum stays below 0x100.
    let ge_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let gt_z = low + 0x2525_2525_2525_2525;
    let upper = ge_a & !gt_z & !x & HIGH;
    x | (upper >> 2)
}

/// Room for one wire-form name, left uninitialised: the query path lowercases its question
/// into one per query, and zeroing 255 bytes first cost ~16 instructions each time.
pub type NameBuf = [MaybeUninit<u8>; MAX_NAME_LEN];

/// An empty [`NameBuf`].
#[inline(always)]
pub const fn name_buf() -> NameBuf {
    [MaybeUninit::uninit(); MAX_NAME_LEN]
}

/// Copies `src` (at most [`MAX_NAME_LEN`] bytes are used) into `dst` lowercased, sixteen
/// bytes at a time where it can (eight on other targets than x86-64); returns the copy.
#[inline]
pub fn lower_into<'d>(src: &[u8], dst: &'d mut NameBuf) -> &'d [u8] {
    let len = src.len().min(MAX_NAME_LEN);
    let src = &src[..len];
    if len >= 16 {
        lower_long(src, &mut dst[..len]);
    } else if len >= 8 {
        // Two words, the second overlapping the first (lowercasing twice changes nothing).
        dst[..8].write_copy_of_slice(&lower8(word_at(src)).to_le_bytes());
        dst[len - 8..len].write_copy_of_slice(&lower8(word_at(&src[len - 8..])).to_le_bytes());
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            d.write(s.to_ascii_lowercase());
        }
    }
    // SAFETY: every byte of `dst[..len]` was written above: one by one when `len < 8`, by two
    // words when `len < 16`, else by whole blocks and the block that ends at `len` (see
    // `lower_long`).
    unsafe { dst[..len].assume_init_ref() }
}

/// [`lower_into`] of a name of 16 bytes or more: whole blocks of 16, then the block that
/// ends at the name's end (overlapping the one before). `dst` is as long as `src`.
#[inline(always)]
fn lower_long(src: &[u8], dst: &mut [MaybeUninit<u8>]) {
    let len = src.len().min(dst.len());
    for (d, s) in dst.chunks_exact_mut(16).zip(src.chunks_exact(16)) {
        d.write_copy_of_slice(&lower16(s));
    }
    if !len.is_multiple_of(16) {
        dst[len - 16..len].write_copy_of_slice(&lower16(&src[len - 16..len]));
    }
}

/// Sixteen bytes (the first sixteen of `s`, which has at least that many) ASCII-lowercased
/// with SSE2, which every x86-64 processor has: seven instructions where two words of
/// [`lower8`] take about twenty.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
fn lower16(s: &[u8]) -> [u8; 16] {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let mut block = [0u8; 16];
    block.copy_from_slice(&s[..16]);
    // SAFETY: SSE2 is enabled (the `cfg` above), so its intrinsics may run; `__m128i` and
    // `[u8; 16]` are both 16 plain bytes, any value valid in either.
    unsafe {
        let x = std::mem::transmute::<[u8; 16], __m128i>(block);
        // Signed compares: bytes of 0x80 and above are negative, never taken for 'A'..='Z'.
        let upper = _mm_and_si128(
            _mm_cmpgt_epi8(x, _mm_set1_epi8(0x40)),
            _mm_cmplt_epi8(x, _mm_set1_epi8(0x5b)),
        );
        let lower = _mm_or_si128(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
        std::mem::transmute::<__m128i, [u8; 16]>(lower)
    }
}

/// [`lower16`] on other targets: two words of [`lower8`].
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn lower16(s: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&lower8(word_at(s)).to_le_bytes());
    out[8..].copy_from_slice(&lower8(word_at(&s[8..])).to_le_bytes());
    out
}

/// [`lower_into`], and the [`name_hash`] of the name (the same in any case): the CNAME chain
/// lowercases each target it follows and looks it up by this hash.
#[inline]
pub fn lower_hash_into<'d>(src: &[u8], dst: &'d mut NameBuf) -> (&'d [u8], u64) {
    let lower = lower_into(src, dst);
    (lower, name_hash(lower))
}

/// The hash by which the zone tables and the answer cache find a wire name, blind to case:
/// its eight-byte words (overlapping where the length is not a multiple of eight), each with
/// every byte's 0x20 bit set (what tells an ASCII letter's case) and folded in with a
/// multiply. A name in any case hashes as its lowercase form does, so the query path hashes
/// its question as it came, without a lowercase copy; names that differ elsewhere in that
/// bit collide, and every table compares what it finds. Names up to 32 bytes (nearly every
/// question, and the suffixes the lookup walks) take a fixed number of words, no loop: two
/// that overlap up to 16 bytes, four up to 32. Written here rather than taken from
/// `rustc-hash` for the case bit and the fixed words.
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    let len = name.len();
    if len < 8 {
        return hash_short(name);
    }
    let word = |at: usize| word_at(&name[at..]) | CASE_BITS;
    let mut h = len as u64;
    if len <= 16 {
        h = hash_mix(hash_mix(h, word(0)), word(len - 8));
    } else if len <= 32 {
        h = hash_mix(hash_mix(h, word(0)), word(8));
        h = hash_mix(hash_mix(h, word(len - 16)), word(len - 8));
    } else {
        for s in name.chunks_exact(8) {
            h = hash_mix(h, word_at(s) | CASE_BITS);
        }
        if !len.is_multiple_of(8) {
            h = hash_mix(h, word(len - 8));
        }
    }
    hash_finish(h)
}

/// The bit that tells an ASCII letter's case, in every byte of a word.
const CASE_BITS: u64 = 0x2020_2020_2020_2020;

/// Whether two names are the same bytes, compared eight at a time: the zone tables compare
/// each probe with the name they hold, and for names this short a call to `memcmp` costs
/// more than the comparison.
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 8 {
        return short_word(a) == short_word(b);
    }
    a.chunks_exact(8)
        .zip(b.chunks_exact(8))
        .all(|(x, y)| word_at(x) == word_at(y))
        && word_at(&a[len - 8..]) == word_at(&b[len - 8..])
}

/// The bytes of a name shorter than eight bytes as one word, zero-padded.
#[inline(always)]
fn short_word(name: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = name.len().min(8);
    w[..n].copy_from_slice(&name[..n]);
    u64::from_le_bytes(w)
}

/// The first eight bytes of `bytes` (which has at least eight) as a little-endian word.
#[inline(always)]
fn word_at(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(w)
}

/// [`name_hash`] of a name shorter than eight bytes: its bytes as one word.
#[inline]
fn hash_short(name: &[u8]) -> u64 {
    hash_finish(hash_mix(name.len() as u64, short_word(name) | CASE_BITS))
}

const HASH_K: u64 = 0x9E37_79B9_7F4A_7C15;

/// One word into the hash; the rotation brings the product's well-mixed high bits down,
/// so the next multiply spreads them over the whole word again.
#[inline]
fn hash_mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(HASH_K).rotate_left(29)
}

/// Low bits and the top seven (hashbrown's bucket index and tag) both from the whole word.
#[inline]
fn hash_finish(h: u64) -> u64 {
    let v = h.wrapping_mul(HASH_K);
    v ^ (v >> 29) ^ (v >> 47)
}

/// Whether a stored lowercase name and a name as a query spelled it are the same name: the
/// same bytes (a question asked in lowercase, nearly always) settle it inline; else
/// [`eq_fold`], out of line so that the probes that call this stay small.
#[inline(always)]
pub fn same_name_as_asked(stored: &[u8], asked: &[u8]) -> bool {
    same_bytes(stored, asked) || eq_fold_out_of_line(stored, asked)
}

#[inline(never)]
fn eq_fold_out_of_line(a: &[u8], b: &[u8]) -> bool {
    eq_fold(a, b)
}

/// ASCII case-insensitive equality (RFC 4343), sixteen or eight bytes at a time, each block
/// folded to lower case (the last overlapping the one before): no call, no per-byte loop.
#[inline]
pub fn eq_fold(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    // Sixteen bytes at a time (SSE2 on x86-64): a question in a random case (0x20) is
    // compared with the one kept whole, and two words of `lower8` each cost twice as much.
    // Blocks that are the same bytes (nearly always: the zone tables and the answer cache
    // compare lowercase names with questions, mostly asked in lowercase) skip the fold.
    if len >= 16 {
        let block = |x: &[u8], y: &[u8]| {
            (word_at(x) == word_at(y) && word_at(&x[8..]) == word_at(&y[8..]))
                || lower16(x) == lower16(y)
        };
        return a
            .chunks_exact(16)
            .zip(b.chunks_exact(16))
            .all(|(x, y)| block(x, y))
            && block(&a[len - 16..], &b[len - 16..]);
    }
    // Words that are the same bytes (nearly always: both sides spelled alike) skip the fold.
    let same = |x: u64, y: u64| x == y || lower8(x) == lower8(y);
    if len < 8 {
        return same(short_word(a), short_word(b));
    }
    same(word_at(a), word_at(b)) && same(word_at(&a[len - 8..]), word_at(&b[len - 8..]))
}

/// Offsets of each label start in a valid wire name, the root label included.
/// Returns how many were written into `offsets`.
pub fn label_offsets(wire: &[u8], offsets: &mut [u8; MAX_LABELS]) -> usize {
    let mut n = 0;
    let mut pos = 0usize;
    while pos < wire.len() && n < MAX_LABELS {
        offsets[n] = pos as u8;
        n += 1;
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        pos += len + 1;
    }
    n
}

/// Canonical DNS name order (RFC 4034 §6.1): labels compared from the right, each as
/// lowercase octets, fewer labels first. No allocation (the NSEC lookup of a query uses it).
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    let (mut oa, mut ob) = ([0u8; MAX_LABELS], [0u8; MAX_LABELS]);
    // Without the root label.
    let na = label_offsets(a, &mut oa).saturating_sub(1);
    let nb = label_offsets(b, &mut ob).saturating_sub(1);
    fn label(w: &[u8], off: u8) -> &[u8] {
        let start = usize::from(off) + 1;
        let len = usize::from(w.get(usize::from(off)).copied().unwrap_or(0));
        w.get(start..start + len).unwrap_or_default()
    }
    for i in 1..=na.min(nb) {
        let (x, y) = (label(a, oa[na - i]), label(b, ob[nb - i]));
        let ord = x
            .iter()
            .map(u8::to_ascii_lowercase)
            .cmp(y.iter().map(u8::to_ascii_lowercase));
        if ord.is_ne() {
            return ord;
        }
    }
    na.cmp(&nb)
}

/// Longest [`canonical_key`] of a valid name.
pub const CANONICAL_KEY_MAX: usize = 2 * MAX_NAME_LEN + MAX_LABELS;

/// A byte string whose plain order is the canonical order of names (RFC 4034 §6.1): the
/// labels from the right, each lowercased, its bytes 0 and 1 escaped as 1,0 and 1,1, ended by
/// 0. Written into `out`; returns its length. Comparing keys is one `memcmp` where
/// [`canonical_cmp`] walks labels.
pub fn canonical_key(name: &[u8], out: &mut [u8; CANONICAL_KEY_MAX]) -> usize {
    let mut offsets = [0u8; MAX_LABELS];
    let n = label_offsets(name, &mut offsets).saturating_sub(1);
    let mut len = 0;
    for &off in offsets[..n].iter().rev() {
        let start = usize::from(off) + 1;
        let end = start + usize::from(name.get(usize::from(off)).copied().unwrap_or(0));
        for &b in name.get(start..end).unwrap_or_default() {
            let b = b.to_ascii_lowercase();
            if b <= 1 {
                out[len] = 1;
                len += 1;
            }
            out[len] = b;
            len += 1;
        }
        out[len] = 0;
        len += 1;
    }
    len
}

/// Number of labels excluding the root.
pub fn label_count(wire: &[u8]) -> usize {
    let mut offsets = [0u8; MAX_LABELS];
    label_offsets(wire, &mut offsets).saturating_sub(1)
}

/// True when `name` equals `zone` or lies below it (both lowercase wire form).
pub fn is_subdomain(name: &[u8], zone: &[u8]) -> bool {
    if zone.len() > name.len() {
        return false;
    }
    let start = name.len() - zone.len();
    if &name[start..] != zone {
        return false;
    }
    // The suffix must begin on a label boundary.
    let mut pos = 0usize;
    while pos < start {
        pos += name[pos] as usize + 1;
    }
    pos == start
}

/// The parent of a wire name (one label removed); `None` for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    let len = *wire.first()? as usize;
    if len == 0 { None } else { wire.get(len + 1..) }
}

/// Position after an uncompressed name starting at `pos` (a question's name, or a name in
/// RDATA stored by the zone tables); `None` when it is cut short, compressed, or longer than
/// [`MAX_NAME_LEN`].
#[inline]
pub fn end_uncompressed(buf: &[u8], mut pos: usize) -> Option<usize> {
    let start = pos;
    loop {
        let len = *buf.get(pos)? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        // Compression pointers and extended label types: not in this form.
        if len > 63 {
            return None;
        }
        pos += len + 1;
    }
    // The length once, at the end: every label moves on by at least two bytes, and the
    // buffer's end stops the loop.
    if pos > buf.len() || pos - start > MAX_NAME_LEN {
        return None;
    }
    Some(pos)
}

/// Position after a possibly compressed name at `pos` in a message (the name itself is not
/// followed through its pointer).
pub fn end_compressed(buf: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *buf.get(pos)? as usize;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += len + 1,
            0xC0..=0xFF => {
                buf.get(pos + 1)?;
                return Some(pos + 2);
            }
            _ => return None,
        }
    }
}

/// The name at `pos` in `msg` with compression pointers followed, lowercased, and the
/// position after it in the record (allocates: TSIG and other rare paths only).
pub fn read_lower(msg: &[u8], mut pos: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut end = None;
    let mut hops = 0;
    loop {
        let l = *msg.get(pos)? as usize;
        if l >= 0xC0 {
            hops += 1;
            if hops > 32 {
                return None;
            }
            end.get_or_insert(pos + 2);
            pos = ((l & 0x3F) << 8) | *msg.get(pos + 1)? as usize;
            continue;
        }
        if l > 63 {
            return None;
        }
        out.push(l as u8);
        if l == 0 {
            break;
        }
        out.extend(
            msg.get(pos + 1..pos + 1 + l)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        if out.len() > MAX_NAME_LEN {
            return None;
        }
        pos += l + 1;
    }
    Some((out, end.unwrap_or(pos + 1)))
}

/// Presentation form of a wire name, for logs and errors (not the query path).
pub fn to_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0usize;
    while let Some(&len) = wire.get(pos) {
        if len == 0 {
            break;
        }
        let Some(label) = wire.get(pos + 1..pos + 1 + len as usize) else {
            break;
        };
        for &b in label {
            match b {
                b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(b as char);
                }
                0x21..=0x7e => out.push(b as char),
                _ => out.push_str(&format!("\\{b:03}")),
            }
        }
        out.push('.');
        pos += len as usize + 1;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

#[cfg(test)]
#[path = "name_tests.rs"]
mod tests;
