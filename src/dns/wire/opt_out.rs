//! The OPT record of a response (RFC 6891: NSID, ECS, COOKIE) and the writer's end, which
//! writes it with the counts. A child module of `write`, so that it reaches the writer.

use super::super::super::edns_option::{COOKIE as OPT_COOKIE, ECS as OPT_ECS, NSID as OPT_NSID};
use super::super::super::{HEADER_LEN, rtype};
use super::super::ClientSubnet;
use super::Writer;

/// What goes into the OPT record of a response.
#[derive(Debug, Clone, Copy, Default)]
pub struct OptOut<'a> {
    pub udp_size: u16,
    pub extended_rcode: u8,
    pub dnssec_ok: bool,
    pub nsid: Option<&'a [u8]>,
    /// The query's ECS option, echoed with `ecs_scope` as its scope. Borrowed: a copy of it
    /// for every query with EDNS cost ~20 instructions even when it was absent.
    pub ecs: Option<&'a ClientSubnet>,
    pub ecs_scope: u8,
    /// The client cookie echoed and our server cookie (RFC 7873, RFC 9018).
    pub cookie: Option<[u8; 24]>,
}

impl OptOut<'_> {
    pub(super) fn wire_len(&self) -> usize {
        let mut n = 11;
        if self.cookie.is_some() {
            n += 4 + 24;
        }
        if let Some(id) = self.nsid {
            n += 4 + id.len();
        }
        if let Some(ecs) = self.ecs {
            n += 8 + (ecs.source_prefix as usize).div_ceil(8);
        }
        n
    }

    /// No option goes in: the record is its 11 fixed bytes.
    #[inline(always)]
    fn is_bare(&self) -> bool {
        self.nsid.is_none() && self.ecs.is_none() && self.cookie.is_none()
    }

    /// The record's fixed part (root owner, type, size, extended rcode, version 0, DO, the
    /// options' length `rdlen`), built in registers.
    #[inline(always)]
    fn fixed(&self, rdlen: u16) -> [u8; 11] {
        let [t0, t1] = rtype::OPT.to_be_bytes();
        let [s0, s1] = self.udp_size.to_be_bytes();
        let [r0, r1] = rdlen.to_be_bytes();
        let dnssec = if self.dnssec_ok { 0x80 } else { 0 };
        [0, t0, t1, s0, s1, self.extended_rcode, 0, dnssec, 0, r0, r1]
    }
}

impl Writer<'_> {
    /// Writes the counts, TC and the OPT record; returns the message length.
    /// Takes the writer by reference: moving it (about 170 bytes) into the call cost a
    /// `memcpy` per query. Nothing is written after it. The usual end (no TC; no OPT, one
    /// without options, or one with ECS alone) is inlined: as a call it cost ~50–70
    /// instructions more, most of them saving and restoring registers.
    #[inline(always)]
    pub fn finish(&mut self, opt: Option<&OptOut<'_>>) -> usize {
        let arcount = match opt {
            _ if self.truncated => return self.finish_general(opt),
            None => self.counts[2],
            Some(o) if o.is_bare() => match self.buf.get_mut(self.len..self.len + 11) {
                Some(to) => {
                    to.copy_from_slice(&o.fixed(0));
                    self.len += 11;
                    self.counts[2] + 1
                }
                // Room was reserved by reserve_opt; only a buffer too small for it (never
                // one of ours) goes without.
                None => self.counts[2],
            },
            // An ECS option alone (a geo answer to a resolver that sends ECS): the record
            // and the option's 24-byte block in two moves.
            Some(
                o @ OptOut {
                    nsid: None,
                    cookie: None,
                    ecs: Some(ecs),
                    ..
                },
            ) => {
                let (option, n) = ecs_option(ecs, o.ecs_scope);
                let Some(to) = self.buf.get_mut(self.len..self.len + 11 + option.len()) else {
                    return self.finish_general(opt);
                };
                to[..11].copy_from_slice(&o.fixed(8 + n as u16));
                to[11..].copy_from_slice(&option);
                self.len += 11 + 8 + n;
                self.counts[2] + 1
            }
            Some(_) => return self.finish_general(opt),
        };
        self.write_counts(arcount);
        self.len
    }

    /// [`Writer::finish`] with TC, NSID or COOKIE, or with too little room.
    #[inline(never)]
    fn finish_general(&mut self, opt: Option<&OptOut<'_>>) -> usize {
        if self.truncated {
            self.buf[2] |= 0x02;
        }
        let mut arcount = self.counts[2];
        if let Some(opt) = opt {
            // As in `finish`: dropped only when the buffer itself is too small.
            if self.len + opt.wire_len() <= self.buf.len() {
                self.write_opt(opt);
                arcount += 1;
            }
        }
        self.write_counts(arcount);
        self.len
    }

    /// The three counts at once: one bounds check, not three.
    #[inline(always)]
    fn write_counts(&mut self, arcount: u16) {
        let [a0, a1] = self.counts[0].to_be_bytes();
        let [n0, n1] = self.counts[1].to_be_bytes();
        let [r0, r1] = arcount.to_be_bytes();
        if let Some(counts) = self.buf.get_mut(6..HEADER_LEN) {
            counts.copy_from_slice(&[a0, a1, n0, n1, r0, r1]);
        }
    }

    fn write_opt(&mut self, opt: &OptOut<'_>) {
        // Built in registers and stored with one copy per part: fewer bounds checks.
        let fixed = opt.fixed((opt.wire_len() - 11) as u16);
        let mut p = self.len;
        let b = &mut *self.buf;
        b[p..p + 11].copy_from_slice(&fixed);
        p += 11;
        if let Some(id) = opt.nsid {
            b[p..p + 2].copy_from_slice(&OPT_NSID.to_be_bytes());
            b[p + 2..p + 4].copy_from_slice(&(id.len() as u16).to_be_bytes());
            b[p + 4..p + 4 + id.len()].copy_from_slice(id);
            p += 4 + id.len();
        }
        if let Some(ecs) = opt.ecs {
            let (option, n) = ecs_option(ecs, opt.ecs_scope);
            // All 24 bytes when they fit (two moves; what lies past the option is written
            // over next or lies past the message), not a `memcpy` call of 8 + n.
            match b.get_mut(p..p + option.len()) {
                Some(room) => room.copy_from_slice(&option),
                None => b[p..p + 8 + n].copy_from_slice(&option[..8 + n]),
            }
            p += 8 + n;
        }
        if let Some(cookie) = &opt.cookie {
            b[p..p + 2].copy_from_slice(&OPT_COOKIE.to_be_bytes());
            b[p + 2..p + 4].copy_from_slice(&24u16.to_be_bytes());
            b[p + 4..p + 28].copy_from_slice(cookie);
            p += 28;
        }
        self.len = p;
    }
}

/// The ECS option echoed (RFC 7871 §7.2.1) with `scope`, in a block of 24 bytes of which
/// the first 8 + n (the returned n: the address bytes of the source prefix) are the option.
#[inline(always)]
fn ecs_option(ecs: &ClientSubnet, scope: u8) -> ([u8; 24], usize) {
    let n = (ecs.source_prefix as usize).div_ceil(8).min(16);
    let [c0, c1] = OPT_ECS.to_be_bytes();
    let [l0, l1] = ((4 + n) as u16).to_be_bytes();
    let [f0, f1] = ecs.family.to_be_bytes();
    let mut option = [0u8; 24];
    option[..8].copy_from_slice(&[c0, c1, l0, l1, f0, f1, ecs.source_prefix, scope]);
    option[8..].copy_from_slice(&ecs.addr);
    (option, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inlined end writes what the general one writes, byte for byte: with and without
    /// an OPT record, DO, an extended rcode, an ECS option of each length, TC, a buffer with
    /// no room for the record, and one with room for the ECS option but not its 24 bytes.
    #[test]
    fn the_usual_end_writes_what_the_general_end_writes() {
        let question = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01";
        let subnets: Vec<ClientSubnet> = [(1, 0), (1, 24), (1, 32), (2, 56), (2, 128)]
            .into_iter()
            .map(|(family, source_prefix)| ClientSubnet {
                family,
                source_prefix,
                addr: std::array::from_fn(|i| {
                    if i * 8 < usize::from(source_prefix) {
                        7 + i as u8
                    } else {
                        0
                    }
                }),
            })
            .collect();
        let mut opts = vec![
            None,
            Some(OptOut {
                udp_size: 1232,
                ..OptOut::default()
            }),
            Some(OptOut {
                udp_size: 4096,
                extended_rcode: 1,
                dnssec_ok: true,
                ..OptOut::default()
            }),
        ];
        opts.extend(subnets.iter().map(|ecs| {
            Some(OptOut {
                udp_size: 1232,
                ecs: Some(ecs),
                ecs_scope: 20,
                ..OptOut::default()
            })
        }));
        let end = 12 + question.len();
        for opt in &opts {
            let fitting = end + opt.map_or(0, |o| o.wire_len());
            for (size, truncated) in [
                (512, false),
                (512, true),
                (end + 5, false),
                (fitting, false),
            ] {
                let write = |general: bool| {
                    let mut buf = vec![0xAAu8; size];
                    let mut w = Writer::new(&mut buf, 9, 0, true, question, size);
                    w.counts = [1, 2, 3];
                    w.truncated = truncated;
                    let len = if general {
                        w.finish_general(opt.as_ref())
                    } else {
                        w.finish(opt.as_ref())
                    };
                    buf.truncate(len);
                    buf
                };
                let (usual, general) = (write(false), write(true));
                assert_eq!(usual, general, "{opt:?} in {size} bytes, TC {truncated}");
                let with_opt = opt.is_some() && size >= fitting;
                assert_eq!(usual.len(), if with_opt { fitting } else { end });
                assert_eq!(usual[11], 3 + u8::from(with_opt), "ARCOUNT");
            }
        }
    }
}
