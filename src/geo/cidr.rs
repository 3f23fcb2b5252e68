//! Integer CIDR arithmetic and the three streaming steps that turn databases into a table:
//! fill gaps (so each source is a complete partition of the address space), sweep several
//! partitions in step (their intersection, block by block), and merge sibling blocks that
//! got the same value (so a lookup reports the widest network with that answer).
//!
//! Addresses of both families are `u128` with a `width` of 32 or 128 bits, so one piece of
//! code serves IPv4 and IPv6.

use super::error::GeoError;

/// A CIDR block as (start, prefix length) and a payload index, `None` meaning "no data".
pub(crate) type Item = (u128, u8, Option<usize>);

/// Mask of the host bits of a `/len` block in a `width`-bit space.
pub(crate) fn host_mask(len: u8, width: u8) -> u128 {
    let host = u32::from(width.saturating_sub(len));
    if host >= 128 {
        u128::MAX
    } else {
        (1u128 << host) - 1
    }
}

/// Last address of a block.
pub(crate) fn block_last(start: u128, len: u8, width: u8) -> u128 {
    start | host_mask(len, width)
}

/// The highest address of the space.
pub(crate) fn space_max(width: u8) -> u128 {
    host_mask(0, width)
}

/// Does the block contain `addr`?
pub(crate) fn contains(start: u128, len: u8, width: u8, addr: u128) -> bool {
    addr & !host_mask(len, width) == start
}

/// Makes a partition source complete: between (and around) the blocks it yields, it yields
/// the widest aligned blocks with no data. It also rejects sources that are unordered,
/// overlapping or misaligned, which a corrupt database could produce.
pub(crate) struct GapFill<I> {
    inner: I,
    width: u8,
    /// Next address to cover; `None` once the whole space is covered (or after an error).
    cursor: Option<u128>,
    pending: Option<Item>,
    /// How many items came from the source itself (not gap fillers).
    pub(crate) yielded: usize,
    origin: std::path::PathBuf,
}

impl<I> GapFill<I> {
    pub(crate) fn new(inner: I, width: u8, origin: &std::path::Path) -> Self {
        Self {
            inner,
            width,
            cursor: Some(0),
            pending: None,
            yielded: 0,
            origin: origin.to_path_buf(),
        }
    }

    fn advance(&mut self, start: u128, len: u8) {
        let last = block_last(start, len, self.width);
        self.cursor = if last == space_max(self.width) {
            None
        } else {
            Some(last + 1)
        };
    }

    fn fail(&mut self, reason: String) -> Option<Result<Item, GeoError>> {
        self.cursor = None;
        Some(Err(GeoError::new(&self.origin, reason)))
    }
}

impl<I: Iterator<Item = Result<Item, GeoError>>> Iterator for GapFill<I> {
    type Item = Result<Item, GeoError>;

    fn next(&mut self) -> Option<Self::Item> {
        let cursor = self.cursor?;
        if self.pending.is_none() {
            match self.inner.next() {
                Some(Ok(item)) => self.pending = Some(item),
                Some(Err(e)) => {
                    self.cursor = None;
                    return Some(Err(e));
                }
                None => {}
            }
        }
        let next_start = match self.pending {
            Some((start, len, payload)) => {
                if len > self.width || start & host_mask(len, self.width) != 0 {
                    return self.fail(format!("misaligned network {start:#x}/{len}"));
                }
                if start < cursor {
                    return self.fail(format!(
                        "networks overlap or are out of order at {start:#x}/{len}"
                    ));
                }
                if start == cursor {
                    self.pending = None;
                    self.yielded += 1;
                    self.advance(start, len);
                    return Some(Ok((start, len, payload)));
                }
                Some(start)
            }
            None => None,
        };
        // A gap from `cursor` up to `next_start` (or the end of the space): the widest block
        // that starts at `cursor` (alignment) and does not reach past the gap.
        let align_bits = if cursor == 0 {
            u32::from(self.width)
        } else {
            cursor.trailing_zeros().min(u32::from(self.width))
        };
        let room_bits = match next_start {
            // next_start > cursor here, so the difference is at least 1.
            Some(next) => 127 - (next - cursor).leading_zeros(),
            None => u32::from(self.width),
        };
        let host_bits = align_bits.min(room_bits);
        let len = self.width - host_bits as u8;
        self.advance(cursor, len);
        Some(Ok((cursor, len, None)))
    }
}

/// A complete partition of the space from a list of (start, len, payload) prefixes that may
/// nest: each address gets the payload of the most specific prefix covering it (later
/// duplicates win), `None` where no prefix covers it. Prefixes must be aligned.
pub(crate) fn partition(width: u8, mut nets: Vec<(u128, u8, usize)>) -> Vec<Item> {
    // Stable: for equal prefixes the later entry stays later and so wins.
    nets.sort_by_key(|&(start, len, _)| (start, len));
    let mut out = Vec::new();
    partition_rec(width, 0, 0, None, &nets, &mut out);
    out
}

/// The widest aligned blocks covering the `width`-bit space outside the block
/// `start/len`, in address order.
pub(crate) fn outside(width: u8, start: u128, len: u8) -> Vec<(u128, u8)> {
    partition(width, vec![(start, len, 0)])
        .into_iter()
        .filter(|(_, _, inside)| inside.is_none())
        .map(|(start, len, _)| (start, len))
        .collect()
}

fn partition_rec(
    width: u8,
    start: u128,
    len: u8,
    inherited: Option<usize>,
    nets: &[(u128, u8, usize)],
    out: &mut Vec<Item>,
) {
    // Sorted by (start, len), so prefixes equal to this block come first.
    let mut current = inherited;
    let mut i = 0;
    while i < nets.len() && nets[i].1 == len {
        current = Some(nets[i].2);
        i += 1;
    }
    let rest = &nets[i..];
    if rest.is_empty() || len >= width {
        out.push((start, len, current));
        return;
    }
    let half = start | (1u128 << (width - len - 1));
    let split = rest.partition_point(|n| n.0 < half);
    partition_rec(width, start, len + 1, current, &rest[..split], out);
    partition_rec(width, half, len + 1, current, &rest[split..], out);
}

/// Walks several complete partitions in step and calls `emit` once per block of their
/// intersection (the narrowest block among the sources at each point) with each source's
/// payload for that block. Blocks come in address order and cover the whole space.
pub(crate) fn sweep(
    width: u8,
    sources: &mut [&mut dyn Iterator<Item = Result<Item, GeoError>>],
    mut emit: impl FnMut(u128, u8, &[Option<usize>]) -> Result<(), GeoError>,
) -> Result<(), GeoError> {
    fn pull(source: &mut dyn Iterator<Item = Result<Item, GeoError>>) -> Result<Item, GeoError> {
        source.next().unwrap_or_else(|| {
            Err(GeoError::new(
                "<table build>",
                "a partition source ended before covering the address space",
            ))
        })
    }
    if sources.is_empty() {
        return emit(0, 0, &[]);
    }
    let mut current = Vec::with_capacity(sources.len());
    for source in sources.iter_mut() {
        current.push(pull(&mut **source)?);
    }
    let mut payloads = vec![None; sources.len()];
    let mut cursor = 0u128;
    loop {
        // All current blocks contain `cursor`, so they nest; the narrowest starts at it.
        let mut len = 0;
        for (slot, &(start, block_len, payload)) in payloads.iter_mut().zip(&current) {
            if !contains(start, block_len, width, cursor) {
                return Err(GeoError::new(
                    "<table build>",
                    format!("partition sources disagree at {cursor:#x}"),
                ));
            }
            len = len.max(block_len);
            *slot = payload;
        }
        emit(cursor, len, &payloads)?;
        let mut last = block_last(cursor, len, width);
        if last == space_max(width) {
            return Ok(());
        }
        // The first source (a database) is usually the narrowest: while its blocks end
        // inside the others' current blocks, only it moves, and each of its blocks is the
        // next block of the sweep. One bound check per block instead of the loop over all.
        let bound = current[1..]
            .iter()
            .map(|&(start, block_len, _)| block_last(start, block_len, width))
            .min()
            .unwrap_or(u128::MAX);
        while last < bound && block_last(current[0].0, current[0].1, width) == last {
            let (start, block_len, payload) = pull(&mut *sources[0])?;
            let next_last = block_last(start, block_len, width);
            if start != last + 1 || next_last > bound {
                // Aligned blocks that follow each other cannot get here; a disordered
                // source can, and the general step reports it.
                current[0] = (start, block_len, payload);
                break;
            }
            payloads[0] = payload;
            emit(start, block_len, &payloads)?;
            if next_last == space_max(width) {
                return Ok(());
            }
            current[0] = (start, block_len, payload);
            last = next_last;
        }
        for (i, source) in sources.iter_mut().enumerate() {
            let (start, block_len, _) = current[i];
            if block_last(start, block_len, width) == last {
                current[i] = pull(&mut **source)?;
            }
        }
        cursor = last + 1;
    }
}

/// Merges blocks pushed in address order (a complete partition) into the widest aligned
/// supernets whose blocks all have the same value; this is what makes the prefix length a
/// lookup reports a fitted ECS scope.
///
/// Blocks are handed to `emit`, in address order, as soon as they can no longer merge: a
/// block that is the right half of its parent never merges again, and then neither does
/// anything pushed before it. So the stack holds at most a chain of left halves (one per
/// prefix length), not the whole table.
pub(crate) struct Merger<V> {
    width: u8,
    stack: Vec<(u128, u8, V)>,
    /// Blocks pushed before merging.
    pushed: usize,
}

impl<V: PartialEq> Merger<V> {
    pub(crate) fn new(width: u8) -> Self {
        Self {
            width,
            stack: Vec::new(),
            pushed: 0,
        }
    }

    fn sibling_bit(&self, len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            1u128 << (self.width - len)
        }
    }

    pub(crate) fn push(
        &mut self,
        start: u128,
        len: u8,
        value: V,
        emit: &mut impl FnMut(u128, u8, V),
    ) {
        self.pushed += 1;
        let (mut start, mut len) = (start, len);
        while let Some((top_start, top_len, top_value)) = self.stack.last() {
            let sibling_bit = self.sibling_bit(len);
            let is_right_sibling = len > 0
                && *top_len == len
                && *top_value == value
                && top_start & sibling_bit == 0
                && start == top_start | sibling_bit;
            if !is_right_sibling {
                break;
            }
            start = *top_start;
            len -= 1;
            self.stack.pop();
        }
        let done = len == 0 || start & self.sibling_bit(len) != 0;
        self.stack.push((start, len, value));
        if done {
            for (s, l, v) in self.stack.drain(..) {
                emit(s, l, v);
            }
        }
    }

    /// Hands over what is left; returns how many blocks were pushed (before merging).
    pub(crate) fn finish(mut self, emit: &mut impl FnMut(u128, u8, V)) -> usize {
        for (s, l, v) in self.stack.drain(..) {
            emit(s, l, v);
        }
        self.pushed
    }
}

/// The widest prefix length `len` such that the `/len` block around `addr` contains none of
/// `holes` (given `addr` itself is in none of them): used to report a scope for an address
/// whose neighbourhood contains regions answered differently.
pub(crate) fn widest_outside(addr: u128, width: u8, holes: &[(u128, u8)]) -> u8 {
    let mut len = 0u8;
    for &(start, hole_len) in holes {
        let common = ((addr ^ start) << (128 - u32::from(width))).leading_zeros();
        let common = u8::try_from(common.min(u32::from(width))).unwrap_or(width);
        // The block at `l` contains the hole iff l <= min(common, hole_len).
        len = len.max(common.min(hole_len).saturating_add(1).min(width));
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(items: Vec<Item>) -> impl Iterator<Item = Result<Item, GeoError>> {
        items.into_iter().map(Ok)
    }

    #[test]
    fn gap_fill_covers_the_space_with_widest_blocks() {
        // One /24 at 10.0.0.0 in the IPv4 space.
        let net = (0x0a00_0000u128, 24u8, Some(7));
        let got: Vec<Item> = GapFill::new(ok(vec![net]), 32, "t".as_ref())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got[0], (0, 5, None)); // 0.0.0.0/5
        assert_eq!(got[1], (0x0800_0000, 7, None)); // 8.0.0.0/7
        assert!(got.contains(&net));
        // Complete and ordered.
        let mut next = 0u128;
        for &(start, len, _) in &got {
            assert_eq!(start, next);
            next = block_last(start, len, 32) + 1;
        }
        assert_eq!(next, 1 << 32);
    }

    #[test]
    fn gap_fill_rejects_overlap() {
        let items = vec![(0x0a00_0000, 8, Some(0)), (0x0a00_0000, 24, Some(1))];
        let res: Result<Vec<Item>, _> = GapFill::new(ok(items), 32, "bad.mmdb".as_ref()).collect();
        let err = res.unwrap_err();
        assert!(err.reason.contains("overlap"), "{err}");
        assert_eq!(err.path, std::path::PathBuf::from("bad.mmdb"));
    }

    #[test]
    fn partition_most_specific_wins() {
        // 10/8 -> 0, 10.1/16 -> 1, in 4-bit toy space: 8/1 -> 0, 12/2 -> 1 (width 4).
        let parts = partition(4, vec![(8, 1, 0), (12, 2, 1)]);
        assert_eq!(parts, vec![(0, 1, None), (8, 2, Some(0)), (12, 2, Some(1))]);
        // Later duplicate wins.
        let parts = partition(4, vec![(0, 0, 0), (0, 0, 1)]);
        assert_eq!(parts, vec![(0, 0, Some(1))]);
    }

    #[test]
    fn sweep_intersects_partitions() {
        let mut a = ok(vec![(0, 1, Some(0)), (8, 1, Some(1))]);
        let mut b = ok(vec![(0, 2, None), (4, 2, Some(5)), (8, 1, Some(6))]);
        let mut seen = Vec::new();
        sweep(4, &mut [&mut a, &mut b], |s, l, p| {
            seen.push((s, l, p.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, 2, vec![Some(0), None]),
                (4, 2, vec![Some(0), Some(5)]),
                (8, 1, vec![Some(1), Some(6)]),
            ]
        );
    }

    /// Random partitions of an 8-bit space, one to three at a time (the first often the
    /// narrowest, as a database is, sometimes not): the sweep's blocks follow each other,
    /// cover the space, and each is the widest block on which every source's payload is
    /// the one it has at each of its addresses.
    #[test]
    fn sweep_agrees_with_every_address() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for trial in 0..300 {
            let sources = 1 + trial % 3;
            let parts: Vec<Vec<Item>> = (0..sources)
                .map(|k| {
                    let count = if k == 0 { 12 } else { next(4) as usize };
                    let nets = (0..count)
                        .map(|i| {
                            let len = if k == 0 {
                                2 + next(7) as u8
                            } else {
                                next(6) as u8
                            };
                            let start = u128::from(next(256) as u8) & !host_mask(len, 8);
                            (start, len, k * 100 + i)
                        })
                        .collect();
                    partition(8, nets)
                })
                .collect();
            let at = |part: &[Item], addr: u128| {
                let block = part.iter().find(|&&(s, l, _)| contains(s, l, 8, addr));
                *block.expect("a partition covers every address")
            };
            let mut iters: Vec<_> = parts.iter().map(|p| ok(p.clone())).collect();
            let mut refs: Vec<&mut dyn Iterator<Item = Result<Item, GeoError>>> = Vec::new();
            for it in iters.iter_mut() {
                refs.push(it);
            }
            let mut cursor = 0u128;
            sweep(8, &mut refs, |start, len, payloads| {
                assert_eq!(start, cursor, "trial {trial}");
                let narrowest = parts.iter().map(|p| at(p, start).1).max().unwrap_or(0);
                assert_eq!(len, narrowest, "trial {trial}: the widest common block");
                for addr in start..=block_last(start, len, 8) {
                    let want: Vec<_> = parts.iter().map(|p| at(p, addr).2).collect();
                    assert_eq!(payloads, &want[..], "trial {trial} at {addr}");
                }
                cursor = block_last(start, len, 8) + 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(cursor, 256, "trial {trial}: the sweep covers the space");
        }
    }

    #[test]
    fn merger_merges_siblings_only() {
        let mut m = Merger::new(4);
        let mut out = Vec::new();
        for (s, l, v) in [
            (0, 2, 'a'),
            (4, 3, 'a'),
            (6, 3, 'a'),
            (8, 2, 'b'),
            (12, 2, 'a'),
        ] {
            m.push(s, l, v, &mut |s, l, v| out.push((s, l, v)));
            assert!(m.stack.len() <= 4, "only a chain of left halves waits");
        }
        assert_eq!(m.finish(&mut |s, l, v| out.push((s, l, v))), 5);
        assert_eq!(out, vec![(0, 1, 'a'), (8, 2, 'b'), (12, 2, 'a')]);
    }

    #[test]
    fn widest_outside_avoids_holes() {
        // 8-bit toy space, hole at 0/4: address 0x80 can use /1, address 0x10 needs /4.
        assert_eq!(widest_outside(0x80, 8, &[(0, 4)]), 1);
        assert_eq!(widest_outside(0x10, 8, &[(0, 4)]), 4);
        assert_eq!(widest_outside(0x10, 8, &[]), 0);
    }
}
