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
use super::mmdb::{TreeNet, TreeWalk};
use super::table::{Blocks, NetTable, Slot, V4Alias, alias_partition, normalize_net};

/// Distinct records of one database seen during a walk, decoded once each.
#[derive(Default)]
struct RecordCache {
    /// Record index by data-section offset.
    by_offset: super::offsets::OffsetMap,
    /// Records decoded so far (the next one's index).
    decoded: u32,
    /// Decoded records not yet handed to the table builder, in index order.
    fresh: Vec<Location>,
}

/// Networks per message from a walking thread: the channel's cost per network stays small
/// and the messages in flight stay a few hundred KiB.
const BATCH: usize = 4096;

/// A run of one database's networks, with the records first seen in it.
struct Batch {
    items: Vec<Result<Item, GeoError>>,
    locations: Vec<Location>,
    /// The walk's last batch.
    done: bool,
}

/// One database's networks of one family, walked (and their records decoded) on a thread of
/// its own while the caller gap-fills, sweeps, classifies and merges: the two halves of a
/// table build take about the same time, so a large database loads in a little over half.
/// Records arrive in `locations` before the networks that use them.
struct Walker<'a> {
    batches: std::sync::mpsc::Receiver<Batch>,
    current: std::vec::IntoIter<Result<Item, GeoError>>,
    locations: &'a RefCell<Vec<Location>>,
    done: bool,
}

impl<'a> Walker<'a> {
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, 'a>,
        db: &'a GeoDb,
        v6: bool,
        fields: Fields,
        records: &'a std::sync::Mutex<RecordCache>,
        locations: &'a RefCell<Vec<Location>>,
    ) -> Self {
        let (tx, batches) = std::sync::mpsc::sync_channel(4);
        scope.spawn(move || {
            // Held for the whole walk: the other family's walk of this database starts
            // after it and goes on with the same record indices.
            let mut kept = records.lock().unwrap_or_else(|e| e.into_inner());
            let cache = RefCell::new(std::mem::take(&mut *kept));
            walk_to(db, v6, fields, &cache, &tx);
            *kept = cache.into_inner();
        });
        Self {
            batches,
            current: Vec::new().into_iter(),
            locations,
            done: false,
        }
    }
}

/// Sends the walk's networks in batches until it ends, fails or the builder stops.
fn walk_to(
    db: &GeoDb,
    v6: bool,
    fields: Fields,
    cache: &RefCell<RecordCache>,
    tx: &std::sync::mpsc::SyncSender<Batch>,
) {
    let networks = match walk(db, v6) {
        Ok(networks) => networks,
        Err(e) => {
            let _ = tx.send(Batch {
                items: vec![Err(e)],
                locations: Vec::new(),
                done: true,
            });
            return;
        }
    };
    let mut items = Vec::with_capacity(BATCH);
    let mut raw = Vec::with_capacity(BATCH);
    let mut last = None;
    let mut networks = networks.peekable();
    while networks.peek().is_some() {
        raw.clear();
        raw.extend(networks.by_ref().take(BATCH));
        resolve(
            &raw,
            db,
            (v6, fields),
            &mut cache.borrow_mut(),
            &mut last,
            &mut items,
        );
        let failed = items.last().is_some_and(Result::is_err);
        if items.len() >= BATCH || failed {
            let locations = std::mem::take(&mut cache.borrow_mut().fresh);
            let items = std::mem::replace(&mut items, Vec::with_capacity(BATCH));
            // The builder stopped (an error elsewhere): so does the walk.
            let batch = Batch {
                items,
                locations,
                done: failed,
            };
            if tx.send(batch).is_err() || failed {
                return;
            }
        }
    }
    let locations = std::mem::take(&mut cache.borrow_mut().fresh);
    let _ = tx.send(Batch {
        items,
        locations,
        done: true,
    });
}

impl Iterator for Walker<'_> {
    type Item = Result<Item, GeoError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
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
            self.locations.borrow_mut().extend(batch.locations);
            self.current = batch.items.into_iter();
            self.done = batch.done;
        }
    }
}

/// Ids per distinct combination of records (one record index per database).
#[derive(Default)]
struct Ids {
    by_records: HashMap<Box<[Option<usize>]>, u32>,
    /// The same for one database, by its record index: one array read per network, where
    /// a hash map of a City database's ~240,000 records misses the CPU cache on every probe.
    by_record: Vec<u32>,
}

impl Ids {
    fn get(&self, records: &[Option<usize>]) -> Option<u32> {
        match records {
            [Some(r)] => self.by_record.get(*r).copied().filter(|&id| id != u32::MAX),
            _ => self.by_records.get(records).copied(),
        }
    }

    fn insert(&mut self, records: &[Option<usize>], id: u32) {
        match records {
            [Some(r)] => {
                if self.by_record.len() <= *r {
                    self.by_record.resize(r + 1, u32::MAX);
                }
                self.by_record[*r] = id;
            }
            _ => {
                self.by_records.insert(records.into(), id);
            }
        }
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
        let compat = V4Alias::COMPAT;
        cidr::partition(128, vec![(compat.prefix, compat.len, 0)])
            .into_iter()
            .filter(|(_, _, inside)| inside.is_none())
            .map(|(start, len, _)| (start, len))
            .collect()
    };
    db.layout()?
        .walk(v6, roots)
        .map_err(|e| GeoError::new(db.path(), format!("walking the tree: {e}")))
}

/// A network of a walk as the table builder sees it, `start/len` printed in its family.
fn network_text(net: &TreeNet, v6: bool) -> String {
    if v6 {
        format!("{}/{}", Ipv6Addr::from(net.start), net.len)
    } else {
        format!("{}/{}", Ipv4Addr::from(net.start as u32), net.len)
    }
}

/// Adds the networks of `raw` to `items` with their record indices, decoding each record
/// the first time it is seen (into `cache`). The records' slots are prefetched a few
/// networks ahead: a City database's map is larger than the caches, and its misses then
/// overlap instead of coming one after another.
fn resolve(
    raw: &[Result<TreeNet, String>],
    db: &GeoDb,
    (v6, fields): (bool, Fields),
    cache: &mut RecordCache,
    last: &mut Option<(u32, usize)>,
    items: &mut Vec<Result<Item, GeoError>>,
) {
    const AHEAD: usize = 8;
    for (i, network) in raw.iter().enumerate() {
        if let Some(Ok(TreeNet {
            record: Some(o), ..
        })) = raw.get(i + AHEAD)
        {
            cache.by_offset.prefetch(*o);
        }
        let network = match network {
            Ok(n) => n,
            Err(e) => {
                items.push(Err(GeoError::new(
                    db.path(),
                    format!("walking the tree: {e}"),
                )));
                return;
            }
        };
        let record = match network.record {
            None => None,
            // Neighbouring networks often share a record.
            Some(offset) if last.is_some_and(|(o, _)| o == offset) => last.map(|(_, i)| i),
            Some(offset) => {
                let i = match cache.by_offset.get(offset) {
                    Some(i) => i as usize,
                    None => match db.decode_at(offset, fields) {
                        Ok(loc) => {
                            let i = cache.decoded;
                            cache.decoded += 1;
                            cache.fresh.push(loc);
                            cache.by_offset.insert(offset, i);
                            i as usize
                        }
                        Err(e) => {
                            items.push(Err(e.at(db.path(), &network_text(network, v6))));
                            return;
                        }
                    },
                };
                *last = Some((offset, i));
                Some(i)
            }
        };
        items.push(Ok((network.start, network.len, record)));
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

    let records: Vec<std::sync::Mutex<RecordCache>> =
        dbs.iter().map(|_| Default::default()).collect();
    let locations: Vec<RefCell<Vec<Location>>> = dbs.iter().map(|_| RefCell::default()).collect();
    let mut ids = Ids::default();
    let mut db_networks = 0;

    std::thread::scope(|scope| {
        let mut family =
            |v6: bool, emit: &mut dyn FnMut(u128, u8, Slot<u32>)| -> Result<usize, GeoError> {
                let width = if v6 { 128 } else { 32 };
                let mut walks = Vec::with_capacity(dbs.len());
                for ((db, records), locations) in dbs.iter().zip(&records).zip(&locations) {
                    let walker = Walker::spawn(scope, db, v6, fields, records, locations);
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
                    } else if let Some(id) = ids.get(records) {
                        Slot::Value(id)
                    } else {
                        let mut loc: Option<Location> = None;
                        for (known, record) in locations.iter().zip(records) {
                            let known = known.borrow();
                            let part = record
                                .and_then(|r| known.get(r))
                                .cloned()
                                .unwrap_or_default();
                            match loc.as_mut() {
                                None => loc = Some(part),
                                Some(l) => l.merge_from(&part),
                            }
                        }
                        let id = classify(&loc.unwrap_or_default());
                        ids.insert(records, id);
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
