//! Building a [`NetTable`] from GeoIP databases, the gdnsd way: walk every database once at
//! load time, classify each network into a result id, overlay CIDR overrides, and merge
//! neighbours with the same id. The per-query work is then one binary search, and the prefix
//! length found is the fitted ECS scope.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::cidr::{self, GapFill, Item, Merger};
use super::db::{Fields, GeoDb, GeoSources};
use super::error::GeoError;
use super::location::Location;
use super::mmdb::TreeWalk;
use super::table::{Blocks, NetTable, Slot, V4Alias, alias_partition, normalize_net};

/// Networks per message from a walking thread: the channel's cost per network stays small
/// and the messages in flight stay a few hundred KiB.
const BATCH: usize = 4096;

/// How many networks ahead the builder warms the slot it will look a record up in: a City
/// database's map is larger than the caches, and the misses then overlap instead of coming
/// one after another.
const AHEAD: usize = 8;

/// A run of one database's networks.
struct Batch {
    items: Vec<Result<Item, GeoError>>,
    /// The walk's last batch.
    done: bool,
}

/// One database's networks of one family, walked on a thread of its own while the caller
/// gap-fills, sweeps, decodes, classifies and merges. Each network's payload is its
/// record's data-section offset (`None`: no data).
struct Walker<'a> {
    batches: std::sync::mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<Result<Item, GeoError>>,
    done: bool,
    /// The ids the caller looks records up in, when this is the only database.
    ids: Option<&'a RefCell<Ids>>,
}

impl<'a> Walker<'a> {
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'a>,
        db: &'a GeoDb,
        v6: bool,
        ids: Option<&'a RefCell<Ids>>,
    ) -> Self {
        let (tx, batches) = std::sync::mpsc::sync_channel(4);
        scope.spawn(move || walk_to(db, v6, &tx));
        Self {
            batches,
            current: Vec::new().into_iter(),
            done: false,
            ids,
        }
    }
}

/// Sends the walk's networks in batches until it ends, fails or the builder stops.
fn walk_to(db: &GeoDb, v6: bool, tx: &std::sync::mpsc::SyncSender<Batch>) {
    let networks = match walk(db, v6) {
        Ok(networks) => networks,
        Err(e) => {
            let _ = tx.send(Batch {
                items: vec![Err(e)],
                done: true,
            });
            return;
        }
    };
    let mut items = Vec::with_capacity(BATCH);
    for network in networks {
        let item = network
            .map(|n| (n.start, n.len, n.record.map(|o| o as usize)))
            .map_err(|e| GeoError::new(db.path(), format!("walking the tree: {e}")));
        let failed = item.is_err();
        items.push(item);
        if items.len() >= BATCH || failed {
            let items = std::mem::replace(&mut items, Vec::with_capacity(BATCH));
            // The builder stopped (an error elsewhere): so does the walk.
            if tx
                .send(Batch {
                    items,
                    done: failed,
                })
                .is_err()
                || failed
            {
                return;
            }
        }
    }
    let _ = tx.send(Batch { items, done: true });
}

impl Iterator for Walker<'_> {
    type Item = Result<Item, GeoError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(ids) = self.ids
                && let Some(Ok((_, _, Some(offset)))) = self.current.as_slice().get(AHEAD)
            {
                ids.borrow().by_offset.prefetch(*offset as u32);
            }
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let Ok(batch) = self.batches.recv() else {
                // Never silently short: the gap fill would answer the rest as unknown.
                self.done = true;
                return Some(Err(GeoError::new(
                    "<table build>",
                    "a database walk stopped before its end",
                )));
            };
            self.current = batch.items.into_iter();
            self.done = batch.done;
        }
    }
}

/// Ids by the records a network has (one data offset per database).
#[derive(Default)]
struct Ids {
    /// With one database, by its record's offset: one probe of a flat map per network,
    /// where a hash map of boxed keys misses the CPU cache more than once.
    by_offset: super::offsets::OffsetMap,
    /// The record met last and its id: neighbouring networks often share a record (in real
    /// data more than in the synthetic file).
    last: std::cell::Cell<Option<(usize, u32)>>,
    by_records: HashMap<Box<[Option<usize>]>, u32>,
}

impl Ids {
    fn get(&self, records: &[Option<usize>]) -> Option<u32> {
        match records {
            [Some(offset)] => match self.last.get() {
                Some((last, id)) if last == *offset => Some(id),
                _ => {
                    let id = self.by_offset.get(*offset as u32)?;
                    self.last.set(Some((*offset, id)));
                    Some(id)
                }
            },
            _ => self.by_records.get(records).copied(),
        }
    }

    fn insert(&mut self, records: &[Option<usize>], id: u32) {
        match records {
            [Some(offset)] => {
                self.by_offset.insert(*offset as u32, id);
                self.last.set(Some((*offset, id)));
            }
            _ => {
                self.by_records.insert(records.into(), id);
            }
        }
    }
}

/// Decoded records of one database, by offset, for combinations with other databases'
/// records (with one database, each record is decoded once anyway: its id is kept).
#[derive(Default)]
struct Decoded(HashMap<u32, Location>);

impl Decoded {
    fn get(
        &mut self,
        db: &GeoDb,
        offset: u32,
        fields: Fields,
        keep: bool,
    ) -> Result<Location, super::db::FieldError> {
        if let Some(loc) = self.0.get(&offset) {
            return Ok(loc.clone());
        }
        let loc = db.decode_at(offset, fields)?;
        if keep {
            self.0.insert(offset, loc.clone());
        }
        Ok(loc)
    }
}

/// Streams one database's networks of one family in address order, with their records'
/// data offsets (see [`Layout::walk`]).
///
/// IPv6 is walked as the blocks around `::/96`, so the IPv4 subtree of an IPv6 database is
/// walked once (as IPv4), not twice. Aliased ranges (`::ffff:0:0/96`, 6to4, Teredo) yield
/// nothing; they become gaps, and the table answers them from the IPv4 side.
fn walk(db: &GeoDb, v6: bool) -> Result<TreeWalk<'_>, GeoError> {
    // An IPv4 database has no IPv6 networks: no IPv6 roots to walk.
    let roots = if !v6 || db.ip_version() == 4 {
        Vec::new()
    } else {
        cidr::outside(128, V4Alias::COMPAT.prefix, V4Alias::COMPAT.len)
    };
    db.layout()
        .walk(v6, roots)
        .map_err(|e| GeoError::new(db.path(), format!("walking the tree: {e}")))
}

/// A block of the sweep, `start/len` printed in its family.
fn network_text(start: u128, len: u8, v6: bool) -> String {
    if v6 {
        format!("{}/{}", Ipv6Addr::from(start), len)
    } else {
        format!("{}/{}", Ipv4Addr::from(start as u32), len)
    }
}

/// Walks all `sources` once, classifies every network with `classify`, lets `overrides`
/// (most specific wins; for the same network the later entry wins) take precedence over the
/// databases, and merges neighbours with the same id. Addresses no database knows get
/// `classify(&Location::default())`.
///
/// `classify` sees each distinct combination of records once; it should depend on the
/// location's `fields` (the others are not decoded), not on `prefix_len` (which is 0 here).
///
/// IPv4 lives in the IPv4 table; `::/96`, `::ffff:0:0/96`, and 6to4/Teredo when a database
/// aliases them to its IPv4 data, are answered from it.
pub fn build_table(
    sources: &GeoSources,
    overrides: &[(IpNet, u32)],
    fields: Fields,
    mut classify: impl FnMut(&Location) -> u32,
) -> Result<NetTable<u32>, GeoError> {
    let dbs = sources.dbs();
    let unknown = classify(&Location::default());

    let mut aliases = vec![V4Alias::COMPAT, V4Alias::MAPPED];
    for extra in [V4Alias::SIX_TO_FOUR, V4Alias::TEREDO] {
        if dbs.iter().any(|db| db.aliases(extra)) {
            aliases.push(extra);
        }
    }

    let mut over4 = Vec::new();
    let mut over6 = Vec::new();
    for (i, (net, _)) in overrides.iter().enumerate() {
        match normalize_net(*net) {
            IpNet::V4(n) => over4.push((u128::from(u32::from(n.network())), n.prefix_len(), i)),
            IpNet::V6(n) => over6.push((u128::from(n.network()), n.prefix_len(), i)),
        }
    }

    let ids = RefCell::new(Ids::default());
    let mut decoded: Vec<Decoded> = dbs.iter().map(|_| Decoded::default()).collect();
    let mut db_networks = 0;

    std::thread::scope(|scope| {
        let mut family =
            |v6: bool, emit: &mut dyn FnMut(u128, u8, Slot<u32>)| -> Result<usize, GeoError> {
                let width = if v6 { 128 } else { 32 };
                let mut walks = Vec::with_capacity(dbs.len());
                let one_db = (dbs.len() == 1).then_some(&ids);
                for db in dbs {
                    let walker = Walker::spawn(scope, db, v6, one_db);
                    walks.push(GapFill::new(walker, width, db.path()));
                }
                let alias_parts = if v6 {
                    alias_partition(&aliases)
                } else {
                    Vec::new()
                };
                let override_parts =
                    cidr::partition(width, if v6 { over6.clone() } else { over4.clone() });
                let mut alias_iter = alias_parts.into_iter().map(Ok);
                let mut override_iter = override_parts.into_iter().map(Ok);

                let mut sources: Vec<&mut dyn Iterator<Item = Result<Item, GeoError>>> = Vec::new();
                for w in walks.iter_mut() {
                    sources.push(w);
                }
                let n_dbs = sources.len();
                sources.push(&mut override_iter);
                if v6 {
                    sources.push(&mut alias_iter);
                }

                let mut merger = Merger::new(width);
                cidr::sweep(width, &mut sources, |start, len, payloads| {
                    let (records, rest) = payloads.split_at(n_dbs);
                    let alias = rest.get(1).copied().flatten();
                    let over = rest.first().copied().flatten();
                    let slot = if alias.is_some() {
                        Slot::Alias
                    } else if let Some(i) = over {
                        Slot::Value(overrides.get(i).map_or(unknown, |o| o.1))
                    } else if records.iter().all(Option::is_none) {
                        Slot::Value(unknown)
                    } else if let Some(id) = ids.borrow().get(records) {
                        Slot::Value(id)
                    } else {
                        let keep = n_dbs > 1;
                        let mut loc: Option<Location> = None;
                        for ((db, decoded), record) in dbs.iter().zip(&mut decoded).zip(records) {
                            let part = match record {
                                None => Location::default(),
                                Some(offset) => decoded
                                    .get(db, *offset as u32, fields, keep)
                                    .map_err(|e| e.at(db.path(), &network_text(start, len, v6)))?,
                            };
                            match loc.as_mut() {
                                None => loc = Some(part),
                                Some(l) => l.merge_from(&part),
                            }
                        }
                        let id = classify(&loc.unwrap_or_default());
                        ids.borrow_mut().insert(records, id);
                        Slot::Value(id)
                    };
                    merger.push(start, len, slot, &mut |s, l, v| emit(s, l, v));
                    Ok(())
                })?;
                drop(sources);
                db_networks += walks.iter().map(|w| w.yielded).sum::<usize>();
                Ok(merger.finish(&mut |s, l, v| emit(s, l, v)))
            };
        let (mut b4, mut b6) = (Blocks::new(), Blocks::new());
        let pushed = family(false, &mut |s, l, v| b4.add(s, l, v))?;
        b4.pushed = pushed;
        let pushed = family(true, &mut |s, l, v| b6.add(s, l, v))?;
        b6.pushed = pushed;
        Ok(NetTable::from_merged(b4, b6, aliases, unknown, db_networks))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::writer::{CityRow, city_mmdb};
    use crate::geo::{GeoFieldPaths, check_table};

    /// 1024 consecutive /24s in 100.64.0.0/14, each with its own ASN (so the database keeps
    /// them apart), countries alternating every 4 networks: a country map must come out as
    /// 256 /22s, an ASN map must keep all 1024.
    #[test]
    fn merging_counts() {
        let rows: Vec<CityRow> = (0u32..1024)
            .map(|i| {
                let net = Ipv4Addr::from(0x6440_0000 + (i << 8));
                let country = if (i / 4) % 2 == 0 { "US" } else { "GB" };
                CityRow::new(IpNet::new(net.into(), 24).unwrap())
                    .country(country)
                    .asn(64_512 + i)
            })
            .collect();
        let bytes = city_mmdb("Test-Merge", &rows).unwrap();
        let db = GeoDb::from_bytes("merge.mmdb", bytes, &GeoFieldPaths::default()).unwrap();
        let sources = GeoSources::from(db);

        let by_country = build_table(&sources, &[], Fields::ALL, |l| match l.country {
            Some(c) if c.as_str() == "US" => 1,
            Some(_) => 2,
            None => 0,
        })
        .unwrap();
        check_table(&by_country).unwrap();
        let s = by_country.stats();
        println!(
            "country map: {} networks read, IPv4 {} blocks -> {} after merge, IPv6 {} -> {}",
            s.db_networks, s.v4_blocks, s.v4_entries, s.v6_blocks, s.v6_entries
        );
        assert_eq!(s.v4_blocks - s.v4_entries, 1024 - 256);
        assert_eq!(by_country.lookup("100.64.1.1".parse().unwrap()), (&1, 22));
        assert_eq!(by_country.lookup("100.64.4.1".parse().unwrap()), (&2, 22));

        let by_asn = build_table(&sources, &[], Fields::ALL, |l| l.asn.unwrap_or(0)).unwrap();
        let a = by_asn.stats();
        println!(
            "ASN map: IPv4 {} blocks -> {} after merge",
            a.v4_blocks, a.v4_entries
        );
        assert_eq!(a.v4_blocks, a.v4_entries);
        assert_eq!(by_asn.lookup("100.64.1.1".parse().unwrap()), (&64_513, 24));
    }
}
