//! One RRset as the zone holds it, and the buffer of its records' RDATA.

use std::fmt;

/// One RRset: all records of one type at one owner, in wire form without compression.
#[derive(Debug, Clone, PartialEq)]
pub struct RRset {
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: RdataList,
    /// One TTL per record where they differ: only signatures (RRSIG), each of which has
    /// the TTL of the RRset it covers (RFC 4034 §3). None: every record has `ttl`. Boxed
    /// twice so that the usual case costs one word, not two (an RRset of 40 bytes, not 48).
    pub ttls: Option<Box<Box<[u32]>>>,
}

impl RRset {
    pub fn new(rtype: u16, ttl: u32, rdata: RdataList) -> Self {
        Self {
            rtype,
            ttl,
            rdata,
            ttls: None,
        }
    }

    /// The TTL of record `i`.
    pub fn ttl_of(&self, i: usize) -> u32 {
        self.ttls
            .as_ref()
            .and_then(|t| t.get(i))
            .copied()
            .unwrap_or(self.ttl)
    }
}

/// Bytes of records kept inside the list itself: an A or AAAA record, or a short name.
const INLINE: usize = 22;

/// The RDATA of an RRset's records in one buffer, each as a 2-byte length and its bytes.
/// Up to 22 bytes of it (an address, a short name) live inline, without an allocation: a
/// million-record zone is mostly such RRsets, and a `Vec<Box<[u8]>>` cost two allocations
/// (about 64 bytes of heap for an A record's 4 bytes).
#[derive(Clone)]
pub struct RdataList(Store);

#[derive(Clone)]
enum Store {
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    /// `buf.len()` is the capacity; `len` bytes of it are used, by `count` records.
    Heap {
        count: u16,
        len: u32,
        buf: Box<[u8]>,
    },
}

/// A record that an RRset cannot hold: its RDATA is longer than 65535 bytes, or the set
/// already has 65535 records (neither fits a DNS message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RdataTooLarge;

impl fmt::Display for RdataTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("record data longer than 65535 octets, or more than 65535 records in one RRset")
    }
}

impl Default for RdataList {
    fn default() -> Self {
        Self(Store::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }
}

impl RdataList {
    /// A list of one record.
    pub fn one(rdata: &[u8]) -> Result<Self, RdataTooLarge> {
        let mut list = Self::default();
        list.push(rdata)?;
        Ok(list)
    }

    /// The bytes in use: length-prefixed records.
    fn used(&self) -> &[u8] {
        match &self.0 {
            Store::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Store::Heap { len, buf, .. } => &buf[..*len as usize],
        }
    }

    fn used_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Store::Inline { len, bytes } => &mut bytes[..usize::from(*len)],
            Store::Heap { len, buf, .. } => &mut buf[..*len as usize],
        }
    }

    /// Appends one record's RDATA.
    pub fn push(&mut self, rdata: &[u8]) -> Result<(), RdataTooLarge> {
        let rd_len = u16::try_from(rdata.len()).map_err(|_| RdataTooLarge)?;
        if self.len() >= usize::from(u16::MAX) {
            return Err(RdataTooLarge);
        }
        let used = self.used().len();
        let need = used + 2 + rdata.len();
        if need <= INLINE
            && let Store::Inline { len, bytes } = &mut self.0
        {
            bytes[used..used + 2].copy_from_slice(&rd_len.to_be_bytes());
            bytes[used + 2..need].copy_from_slice(rdata);
            *len = need as u8;
            return Ok(());
        }
        let count = self.len() as u16 + 1;
        let need_u32 = u32::try_from(need).map_err(|_| RdataTooLarge)?;
        // Grows by doubling while a set is built; `shrink_to_fit` trims it when frozen.
        let mut buf = match std::mem::take(self).0 {
            Store::Heap { buf, .. } if buf.len() >= need => buf,
            old => {
                let capacity = if matches!(old, Store::Inline { .. }) {
                    need
                } else {
                    need.next_power_of_two()
                };
                let mut grown = vec![0u8; capacity].into_boxed_slice();
                let before = Self(old);
                grown[..used].copy_from_slice(before.used());
                grown
            }
        };
        buf[used..used + 2].copy_from_slice(&rd_len.to_be_bytes());
        buf[used + 2..need].copy_from_slice(rdata);
        self.0 = Store::Heap {
            count,
            len: need_u32,
            buf,
        };
        Ok(())
    }

    /// Frees the room left by growing.
    pub fn shrink_to_fit(&mut self) {
        if let Store::Heap { len, buf, .. } = &mut self.0
            && buf.len() > *len as usize
        {
            *buf = buf[..*len as usize].into();
        }
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        match &self.0 {
            Store::Heap { count, .. } => usize::from(*count),
            Store::Inline { .. } => self.iter().count(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.used().is_empty()
    }

    /// Each record's RDATA, in the order added.
    pub fn iter(&self) -> RdataIter<'_> {
        RdataIter { rest: self.used() }
    }

    /// The record starting `offset` bytes into the list, and where the next one starts:
    /// walking a big set record by record without counting from the start each time.
    pub fn record_at(&self, offset: usize) -> Option<(&[u8], usize)> {
        let mut rest = RdataIter {
            rest: self.used().get(offset..)?,
        };
        let record = rest.next()?;
        Some((record, offset + 2 + record.len()))
    }

    pub fn first(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    /// The first record's RDATA, to change in place (its length stays).
    pub fn first_mut(&mut self) -> Option<&mut [u8]> {
        let used = self.used_mut();
        let len = usize::from(u16::from_be_bytes([*used.first()?, *used.get(1)?]));
        used.get_mut(2..2 + len)
    }

    pub fn contains(&self, rdata: &[u8]) -> bool {
        self.iter().any(|r| r == rdata)
    }
}

impl fmt::Debug for RdataList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for RdataList {
    fn eq(&self, other: &Self) -> bool {
        self.used() == other.used()
    }
}

impl Eq for RdataList {}

/// The records of an [`RdataList`], in order.
#[derive(Clone)]
pub struct RdataIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let len = usize::from(u16::from_be_bytes([
            *self.rest.first()?,
            *self.rest.get(1)?,
        ]));
        let record = self.rest.get(2..2 + len)?;
        self.rest = &self.rest[2 + len..];
        Some(record)
    }
}

impl<'a> IntoIterator for &'a RdataList {
    type Item = &'a [u8];
    type IntoIter = RdataIter<'a>;

    fn into_iter(self) -> RdataIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of heap a list holds (0 when inline).
    fn heap_bytes(list: &RdataList) -> usize {
        match &list.0 {
            Store::Inline { .. } => 0,
            Store::Heap { buf, .. } => buf.len(),
        }
    }

    #[test]
    fn a_list_is_no_bigger_than_three_words() {
        assert!(std::mem::size_of::<RdataList>() <= 24);
        assert!(std::mem::size_of::<RRset>() <= 40);
    }

    #[test]
    fn records_come_back_in_order_inline_and_on_the_heap() {
        let mut list = RdataList::default();
        assert!(list.is_empty());
        assert_eq!(list.first(), None);
        let records: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; usize::from(i % 7)]).collect();
        for (n, rd) in records.iter().enumerate() {
            list.push(rd).expect("fits");
            assert_eq!(list.len(), n + 1);
            let back: Vec<&[u8]> = list.iter().collect();
            let want: Vec<&[u8]> = records[..=n].iter().map(|r| &r[..]).collect();
            assert_eq!(back, want);
        }
        let before = list.clone();
        list.shrink_to_fit();
        assert_eq!(list, before);
        assert_eq!(
            heap_bytes(&list),
            records.iter().map(|r| r.len() + 2).sum::<usize>()
        );
        assert_eq!(list.iter().nth(3), Some(&records[3][..]));
        assert!(list.contains(&records[9]));
        assert!(!list.contains(&[99]));
    }

    #[test]
    fn an_address_and_an_ipv6_address_stay_inline() {
        let a = RdataList::one(&[192, 0, 2, 1]).expect("fits");
        assert_eq!(heap_bytes(&a), 0);
        let aaaa = RdataList::one(&[0x20; 16]).expect("fits");
        assert_eq!(heap_bytes(&aaaa), 0);
        assert_eq!(aaaa.first(), Some(&[0x20; 16][..]));
        let mut two = a.clone();
        two.push(&[192, 0, 2, 2]).expect("fits");
        assert_eq!(heap_bytes(&two), 0);
        assert_eq!(two.len(), 2);
    }

    #[test]
    fn the_first_record_changes_in_place() {
        let mut list = RdataList::one(&[1, 2, 3]).expect("fits");
        list.push(&[4; 30]).expect("fits");
        if let Some(first) = list.first_mut() {
            first[0] = 9;
        }
        assert_eq!(list.first(), Some(&[9, 2, 3][..]));
        assert_eq!(list.iter().nth(1), Some(&[4; 30][..]));
    }

    #[test]
    fn too_long_rdata_is_refused() {
        let mut list = RdataList::default();
        assert_eq!(list.push(&vec![0; 65536]), Err(RdataTooLarge));
        assert!(list.is_empty());
        assert_eq!(list.push(&vec![7; 65535]), Ok(()));
        assert_eq!(list.first().map(<[u8]>::len), Some(65535));
    }
}
