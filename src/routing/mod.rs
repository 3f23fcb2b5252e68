//! Answers for dynamic names: policies as functions of (client, health view) → records,
//! TTL and ECS scope. No I/O, no locks, no allocation per query.
//!
//! A policy orders the datacenters of a name's pool for one client; the first healthy
//! ones (as many as `datacenters` says) answer, each with all, the first N, or a weighted
//! pick of its healthy endpoints. Client-dependent policies (geo, nearest, latency) are
//! precomputed at load time into network tables (client network → datacenter order), so a
//! query costs one longest-prefix lookup and the table's network is the ECS scope.

pub mod build;
mod memo;
mod router;
mod sets;
mod write;

pub use memo::replayed_on_this_thread;
pub use router::Router;
use std::net::IpAddr;
use std::ops::Range;

use crate::dns::{Sink, rtype};
use crate::geo::{GeoRecipe, NetTable};
use crate::health::quorum::QuorumRule;
use crate::health::{CheckSpec, HealthView};
use crate::stats::Counter;
use crate::zone::DynamicOutcome;

/// Most datacenters one answer may draw from.
pub const MAX_DATACENTERS: usize = 8;
/// Most records in one dynamic answer.
pub const MAX_RECORDS: usize = 32;
/// Sticky hashing looks at this much of an IPv4 client address...
pub const STICKY_PREFIX_V4: u8 = 24;
/// ...and this much of an IPv6 one: a resolver keeps its answer, caches stay warm.
pub const STICKY_PREFIX_V6: u8 = 56;

#[derive(Debug, Clone)]
pub struct Datacenter {
    pub name: String,
    /// `zone/name`: how overrides and the API name it.
    pub key: String,
    pub coords: Option<(f64, f64)>,
}

/// One answer target: an address of each family and/or a CNAME target.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    /// `zone/pool/id`: how overrides and the API name it.
    pub key: String,
    /// Index into `Routing::checks`; no check: always up.
    pub check: Option<u32>,
    pub group: u32,
    pub weight: u32,
    pub a: Option<[u8; 4]>,
    pub aaaa: Option<[u8; 16]>,
    /// Wire form.
    pub cname: Option<Box<[u8]>>,
}

impl Endpoint {
    fn rdata(&self, qtype: u16) -> Option<&[u8]> {
        match qtype {
            rtype::A => self.a.as_ref().map(|a| &a[..]),
            rtype::AAAA => self.aaaa.as_ref().map(|a| &a[..]),
            rtype::CNAME => self.cname.as_deref(),
            _ => None,
        }
    }
}

/// The endpoints of one pool in one datacenter: the unit that is up or down as a whole.
#[derive(Debug, Clone)]
pub struct Group {
    pub pool: u32,
    pub datacenter: u32,
    pub endpoints: Range<u32>,
    /// Share of endpoints that must be up for the group to be up (health checks use it).
    pub up_share: f64,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    /// Groups of this pool, in configuration order (the default order).
    pub groups: Range<u32>,
    /// How the votes of a cluster's instances decide its endpoints' health.
    pub votes: QuorumRule,
}

#[derive(Debug, Clone)]
pub enum Policy {
    /// geo, nearest, latency: a network table of order ids.
    Table { table: u32, kind: TableKind },
    /// A fixed order of groups.
    Failover { order: u32 },
    /// Weighted choice among the pool's groups (rendezvous hashing, so that a datacenter
    /// going down moves only its own clients). Sticky: hashed by client subnet.
    Weighted { sticky: bool, weights: Box<[u32]> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    Geo,
    Nearest,
    Latency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    /// Every healthy endpoint of the chosen datacenter(s).
    All,
    /// The first N healthy endpoints, in configuration order.
    First(u16),
    /// One endpoint per datacenter, weighted (sticky when the policy is).
    Weighted,
}

#[derive(Debug, Clone)]
pub enum AllDown {
    /// Answer as if everything were up (Route 53 and gdnsd do this).
    FailOpen,
    /// Answer NODATA.
    NoData,
    /// Answer these records instead (A, AAAA and/or a CNAME), from the config.
    Fallback {
        a: Vec<[u8; 4]>,
        aaaa: Vec<[u8; 16]>,
        cname: Option<Box<[u8]>>,
    },
}

#[derive(Debug)]
pub struct DynamicName {
    /// Wire form, lowercase.
    pub owner: Box<[u8]>,
    pub ttl: u32,
    /// TTL while the first choice is down, so clients come back sooner once it recovers.
    pub degraded_ttl: Option<u32>,
    pub pool: u32,
    pub policy: Policy,
    pub select: Select,
    /// How many datacenters contribute to one answer.
    pub datacenters: u8,
    pub all_down: AllDown,
    pub ignore_ecs: bool,
    /// Answers given, by the pool's group that answered first (index relative to the
    /// pool's groups); the last slot counts answers with every candidate down.
    /// Shared across reloads by (name, datacenter), so the totals run on.
    pub answers: Box<[std::sync::Arc<crate::stats::Counter>]>,
    /// Record types this name serves (some of A, AAAA, CNAME).
    pub serves_a: bool,
    pub serves_aaaa: bool,
    pub serves_cname: bool,
    /// In a signed zone: an NSEC for this name listing no type (RRSIG and NSEC only), signed
    /// at load, for a NODATA of a type it serves (every candidate down with `all_down =
    /// "nodata"`, or no endpoint of that type): its chain NSEC lists the type.
    pub empty_nsec: Option<EmptyNsec>,
}

/// The RDATA of a name's empty NSEC, its TTL and signatures.
#[derive(Debug, Clone)]
pub struct EmptyNsec {
    pub rdata: Box<[u8]>,
    pub ttl: u32,
    pub sigs: Vec<Box<[u8]>>,
}

impl DynamicName {
    /// Its answers are drawn at random (weights without stickiness): the next query may get
    /// another one.
    pub fn draws_at_random(&self) -> bool {
        match (&self.policy, self.select) {
            (Policy::Weighted { sticky, .. }, _) => !sticky,
            (_, Select::Weighted) => true,
            _ => false,
        }
    }
}

/// Everything dynamic in one snapshot.
#[derive(Debug, Default)]
pub struct Routing {
    pub datacenters: Vec<Datacenter>,
    pub pools: Vec<Pool>,
    pub groups: Vec<Group>,
    pub endpoints: Vec<Endpoint>,
    pub names: Vec<DynamicName>,
    /// Shared with the next snapshot when a reload keeps them (see `table_recipes`).
    pub tables: Vec<std::sync::Arc<NetTable<u32>>>,
    /// What each table was built from (databases by path, size and time; the map, overrides
    /// and orders), when it can be told: a reload finding the same recipe keeps the table.
    pub table_recipes: Vec<Option<String>>,
    /// Datacenter orders as group indices; tables and failover policies point here.
    pub orders: Vec<Box<[u32]>>,
    /// Distinct health checks; endpoints point here.
    pub checks: Vec<CheckSpec>,
    /// How to reopen the GeoIP databases (for `explain`); the query path only reads `tables`.
    pub geo: Option<GeoRecipe>,
}

/// Who is asking: the packet's source, and the ECS subnet when one came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub source: IpAddr,
    /// ECS address and source prefix length.
    pub subnet: Option<(IpAddr, u8)>,
    /// Random bits for this query's random picks (the caller draws them: the routing
    /// room has no random source of its own, so a decision is a function of its inputs).
    pub entropy: u64,
}

/// The datacenters chosen for one answer, and what the answer depends on.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    groups: [u32; MAX_DATACENTERS],
    len: usize,
    /// ECS scope: the prefix over which this decision is the same.
    pub scope: u8,
    /// No candidate was up: the answer follows `all_down`.
    pub all_down: bool,
    /// The ordered candidates (before health), for `explain`.
    candidates: [u32; MAX_DATACENTERS],
    candidates_len: usize,
}

impl Decision {
    pub fn groups(&self) -> &[u32] {
        &self.groups[..self.len]
    }
    pub fn candidates(&self) -> &[u32] {
        &self.candidates[..self.candidates_len]
    }
}

/// One step of SplitMix64: a well-mixed 64-bit value from any input. Random picks mix the
/// query's entropy with the group or endpoint index; sticky picks mix the client's network.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in (0, 1] from 64 random bits.
fn unit(bits: u64) -> f64 {
    ((bits >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// The client address truncated to `prefix` bits, as a number (IPv4 in the low 32 bits).
fn truncated(addr: IpAddr, prefix: u8) -> u128 {
    match addr {
        IpAddr::V4(a) => {
            let v = u32::from(a);
            let p = prefix.min(32);
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u128::from(v & mask)
        }
        IpAddr::V6(a) => {
            let v = u128::from(a);
            let p = prefix.min(128);
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            v & mask
        }
    }
}

impl Routing {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The ECS address and prefix a name locates its client by, if any.
    fn ecs_of(name: &DynamicName, client: &Client) -> Option<(IpAddr, u8)> {
        client
            .subnet
            .filter(|&(_, prefix)| !name.ignore_ecs && prefix > 0)
    }

    /// Where a client (its packet's source, its usable ECS address) stands in the table of
    /// dynamic name `index`: the order its network maps to and over which prefix. `None`
    /// unless the name is table-driven. Both the per-thread kept answers and the answer
    /// cache key table-driven answers by this order, so they locate alike through here.
    #[inline]
    pub fn order_of(&self, index: u32, source: IpAddr, ecs: Option<IpAddr>) -> Option<Located> {
        let name = self.names.get(index as usize)?;
        let Policy::Table { table, .. } = name.policy else {
            return None;
        };
        let (addr, from_ecs) = match ecs {
            Some(a) if !name.ignore_ecs => (a, true),
            _ => (source, false),
        };
        let (order, scope) = self.tables.get(table as usize)?.lookup(addr);
        Some(Located {
            order: *order,
            scope,
            addr,
            from_ecs,
        })
    }

    /// The address a name locates its client by, and how many bits of it are known.
    fn locate(name: &DynamicName, client: &Client) -> (IpAddr, u8) {
        Self::ecs_of(name, client).unwrap_or((
            client.source,
            if client.source.is_ipv4() { 32 } else { 128 },
        ))
    }

    fn group_has(&self, g: u32, qtype: u16, health: &HealthView, open: bool) -> bool {
        let Some(group) = self.groups.get(g as usize) else {
            return false;
        };
        if !open && !health.group_up(g as usize) {
            return false;
        }
        group.endpoints.clone().any(|e| {
            (open || health.endpoint_up(e as usize))
                && self
                    .endpoints
                    .get(e as usize)
                    .is_some_and(|ep| ep.rdata(qtype).is_some())
        })
    }

    /// Orders the candidates for `client` and picks the first healthy ones.
    pub fn decide(
        &self,
        name: &DynamicName,
        client: &Client,
        qtype: u16,
        health: &HealthView,
    ) -> Decision {
        let (addr, known) = Self::locate(name, client);
        let mut d = Decision {
            groups: [0; MAX_DATACENTERS],
            len: 0,
            scope: 0,
            all_down: false,
            candidates: [0; MAX_DATACENTERS],
            candidates_len: 0,
        };
        let want = (name.datacenters.max(1) as usize).min(MAX_DATACENTERS);
        let serve_type = if name.serves_cname {
            rtype::CNAME
        } else {
            qtype
        };

        match &name.policy {
            Policy::Table { table, .. } => {
                let (order, prefix) = match self.tables.get(*table as usize) {
                    Some(t) => {
                        let (id, prefix) = t.lookup(addr);
                        (self.orders.get(*id as usize), prefix)
                    }
                    None => (None, 0),
                };
                d.scope = prefix;
                self.fill(
                    &mut d,
                    order.map(|o| &o[..]).unwrap_or(&[]),
                    serve_type,
                    health,
                    want,
                );
            }
            Policy::Failover { order } => {
                let order = self
                    .orders
                    .get(*order as usize)
                    .map(|o| &o[..])
                    .unwrap_or(&[]);
                self.fill(&mut d, order, serve_type, health, want);
            }
            Policy::Weighted { sticky, weights } => {
                let Some(pool) = self.pools.get(name.pool as usize) else {
                    return d;
                };
                let key = if *sticky {
                    let prefix = if addr.is_ipv4() {
                        STICKY_PREFIX_V4
                    } else {
                        STICKY_PREFIX_V6
                    };
                    d.scope = prefix;
                    Some(truncated(addr, prefix.min(known)))
                } else {
                    None
                };
                // Rendezvous: each group scores weight / -ln(u); highest scores first.
                let mut scored: [(f64, u32); MAX_DATACENTERS] = [(0.0, 0); MAX_DATACENTERS];
                let mut n = 0;
                for (i, g) in pool.groups.clone().enumerate() {
                    if n == MAX_DATACENTERS {
                        break;
                    }
                    let w = weights.get(i).copied().unwrap_or(1);
                    if w == 0 {
                        continue;
                    }
                    let bits = match key {
                        Some(k) => splitmix(splitmix(k as u64 ^ (k >> 64) as u64) ^ g as u64),
                        None => splitmix(client.entropy ^ g as u64),
                    };
                    scored[n] = (f64::from(w) / -unit(bits).ln().min(-f64::MIN_POSITIVE), g);
                    n += 1;
                }
                scored[..n].sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
                let mut order = [0u32; MAX_DATACENTERS];
                for (slot, (_, g)) in order.iter_mut().zip(&scored[..n]) {
                    *slot = *g;
                }
                self.fill(&mut d, &order[..n], serve_type, health, want);
            }
        }
        d
    }

    fn fill(&self, d: &mut Decision, order: &[u32], qtype: u16, health: &HealthView, want: usize) {
        d.candidates_len = order.len().min(MAX_DATACENTERS);
        d.candidates[..d.candidates_len].copy_from_slice(&order[..d.candidates_len]);
        for &g in order {
            if d.len == want {
                return;
            }
            if self.group_has(g, qtype, health, false) {
                d.groups[d.len] = g;
                d.len += 1;
            }
        }
        if d.len == 0 {
            d.all_down = true;
        }
    }

    /// Picks endpoints inside the chosen groups. `open` treats every endpoint as up.
    fn pick(
        &self,
        name: &DynamicName,
        d: &Decision,
        qtype: u16,
        how: Pick<'_>,
        out: &mut [u32; MAX_RECORDS],
    ) -> usize {
        let Pick {
            client_key,
            entropy,
            health,
            open,
        } = how;
        let mut n = 0;
        let groups: &[u32] = if open && d.len == 0 {
            &d.candidates[..d.candidates_len]
        } else {
            d.groups()
        };
        let want_groups = (name.datacenters.max(1) as usize).min(MAX_DATACENTERS);
        let mut used_groups = 0;
        for &g in groups {
            if used_groups == want_groups || n == MAX_RECORDS {
                break;
            }
            let Some(group) = self.groups.get(g as usize) else {
                continue;
            };
            let usable = |e: &u32| {
                (open || health.endpoint_up(*e as usize))
                    && self
                        .endpoints
                        .get(*e as usize)
                        .is_some_and(|ep| ep.rdata(qtype).is_some())
            };
            let before = n;
            match name.select {
                Select::All | Select::First(_) => {
                    let limit = match name.select {
                        Select::First(k) => k as usize,
                        _ => usize::MAX,
                    };
                    for e in group.endpoints.clone().filter(usable).take(limit) {
                        if n == MAX_RECORDS {
                            break;
                        }
                        out[n] = e;
                        n += 1;
                    }
                }
                Select::Weighted => {
                    let mut best = None;
                    let mut best_score = f64::NEG_INFINITY;
                    for e in group.endpoints.clone().filter(usable) {
                        let w = self.endpoints[e as usize].weight;
                        if w == 0 {
                            continue;
                        }
                        let bits = match client_key {
                            Some(k) => {
                                splitmix(splitmix(k as u64 ^ (k >> 64) as u64) ^ (e as u64) << 20)
                            }
                            None => splitmix(entropy ^ (e as u64) << 20),
                        };
                        let score = f64::from(w) / -unit(bits).ln().min(-f64::MIN_POSITIVE);
                        if score > best_score {
                            best_score = score;
                            best = Some(e);
                        }
                    }
                    if let Some(e) = best {
                        out[n] = e;
                        n += 1;
                    }
                }
            }
            if n > before {
                used_groups += 1;
            }
        }
        n
    }

    /// Writes the answer of dynamic name `index` for `client`; returns the outcome and the
    /// ECS scope of the decision. `counted`: count it per name and datacenter.
    #[allow(clippy::too_many_arguments)]
    pub fn answer<S: Sink>(
        &self,
        index: u32,
        owner: &[u8],
        qtype: u16,
        client: &Client,
        health: &HealthView,
        counted: bool,
        sink: &mut S,
    ) -> (DynamicOutcome<'_>, Basis<'_>) {
        let Some(name) = self.names.get(index as usize) else {
            return (DynamicOutcome::NoData, Basis::fixed());
        };
        let serve_type = if name.serves_cname {
            rtype::CNAME
        } else {
            match qtype {
                rtype::A if name.serves_a => rtype::A,
                rtype::AAAA if name.serves_aaaa => rtype::AAAA,
                _ => return (DynamicOutcome::NoData, Basis::fixed()),
            }
        };
        let d = self.decide(name, client, serve_type, health);
        let (addr, known) = Self::locate(name, client);
        let counter = match (d.groups().first(), self.pools.get(name.pool as usize)) {
            (Some(&g), Some(p)) => g.checked_sub(p.groups.start).map(|i| i as usize),
            _ => None,
        };
        let answers = name
            .answers
            .get(counter.unwrap_or(name.answers.len().saturating_sub(1)));
        if counted && let Some(c) = answers {
            c.inc();
        }
        let basis = Basis {
            scope: d.scope,
            addr,
            from_ecs: Self::ecs_of(name, client).is_some(),
            random: name.draws_at_random(),
            counter: answers.map(|c| &**c),
            decided: None,
        };
        let client_key = match &name.policy {
            Policy::Weighted { sticky: true, .. } => {
                let p = if addr.is_ipv4() {
                    STICKY_PREFIX_V4
                } else {
                    STICKY_PREFIX_V6
                };
                Some(truncated(addr, p.min(known)))
            }
            _ => None,
        };
        let mut chosen = [0u32; MAX_RECORDS];
        let how = Pick {
            client_key,
            entropy: client.entropy,
            health,
            // All down and failing open: answer as if every endpoint were up.
            open: d.all_down,
        };
        let n = match &name.all_down {
            _ if !d.all_down => self.pick(name, &d, serve_type, how, &mut chosen),
            AllDown::FailOpen => self.pick(name, &d, serve_type, how, &mut chosen),
            AllDown::NoData => return (DynamicOutcome::NoData, basis),
            AllDown::Fallback { a, aaaa, cname } => {
                let fallback = write::Fallback {
                    a,
                    aaaa,
                    cname: cname.as_deref(),
                };
                return (
                    Self::fallback(index, name, owner, qtype, fallback, health, sink),
                    basis,
                );
            }
        };
        if n == 0 {
            return (DynamicOutcome::NoData, basis);
        }
        // The first choice is the first candidate with records of this type at all: a
        // datacenter without IPv6 endpoints is not down for AAAA clients.
        let degraded = || {
            let first_choice = d
                .candidates()
                .iter()
                .copied()
                .find(|&g| self.group_has(g, serve_type, health, true));
            d.all_down || d.groups().first().copied() != first_choice
        };
        let ttl = match name.degraded_ttl {
            Some(t) if degraded() => t,
            _ => name.ttl,
        };
        if serve_type == rtype::CNAME {
            // A CNAME RRset has exactly one record: the first pick.
            let Some(target) = self.endpoints[chosen[0] as usize].cname.as_deref() else {
                return (DynamicOutcome::NoData, basis);
            };
            let one = std::iter::once(target);
            Self::write_signed(index, rtype::CNAME, ttl, owner, one, health, sink);
            if qtype == rtype::CNAME {
                return (DynamicOutcome::Answered, basis);
            }
            return (DynamicOutcome::Cname(target), basis);
        }
        let rdatas = chosen[..n]
            .iter()
            .filter_map(|&e| self.endpoints[e as usize].rdata(serve_type));
        Self::write_signed(index, serve_type, ttl, owner, rdatas, health, sink);
        (DynamicOutcome::Answered, basis)
    }
}

/// What one dynamic answer depended on: per-thread answer caches keep it only when it is
/// the same for every client address inside `addr`/`scope`.
#[derive(Debug, Clone, Copy)]
pub struct Basis<'a> {
    /// ECS scope of the decision: the prefix over which it is the same.
    pub scope: u8,
    /// The address the client was located by (ECS or source).
    pub addr: IpAddr,
    /// `addr` is the ECS address.
    pub from_ecs: bool,
    /// Drawn at random: another query may get another answer.
    pub random: bool,
    /// The per-name, per-datacenter counter it counted in.
    pub counter: Option<&'a Counter>,
    /// Set when the answer is the same for every client whose network maps to the same
    /// order of the name's table (for one snapshot and health view): what decided it.
    pub decided: Option<Decided>,
}

/// A table-driven answer's inputs beside the snapshot and the health view: the dynamic name
/// and the order (in [`Routing::orders`]) the client's network maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub name: u32,
    pub order: u32,
}

/// Where a client stands in a table-driven name's table ([`Routing::order_of`]).
#[derive(Debug, Clone, Copy)]
pub struct Located {
    pub order: u32,
    /// The prefix of `addr` over which the table maps to `order`.
    pub scope: u8,
    pub addr: IpAddr,
    /// `addr` is the ECS address (else the packet's source).
    pub from_ecs: bool,
}

impl Basis<'_> {
    /// An answer that depends on nothing about the client.
    fn fixed() -> Self {
        Self {
            scope: 0,
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            from_ecs: false,
            random: false,
            counter: None,
            decided: None,
        }
    }
}

/// How endpoints are picked: by hash of the client (sticky) or at random, and whether
/// health counts (`open`: all down, answer as if all were up).
#[derive(Clone, Copy)]
struct Pick<'h> {
    client_key: Option<u128>,
    /// The query's random bits (see [`Client::entropy`]).
    entropy: u64,
    health: &'h HealthView,
    open: bool,
}

impl Routing {
    /// The key (`zone/datacenter`) of a group's datacenter ("" for an unknown group).
    pub fn datacenter_key(&self, group: &Group) -> &str {
        self.datacenters
            .get(group.datacenter as usize)
            .map_or("", |d| d.key.as_str())
    }

    /// The name of a group's pool ("" for an unknown group).
    pub fn pool_name(&self, group: &Group) -> &str {
        self.pools
            .get(group.pool as usize)
            .map_or("", |p| p.name.as_str())
    }

    /// The check of `name`'s pool that takes longest to notice a failure (none: no
    /// endpoint is checked): with the TTL, it bounds how long a dead site keeps clients.
    pub fn worst_check(&self, name: &DynamicName) -> Option<&CheckSpec> {
        self.pools
            .get(name.pool as usize)
            .into_iter()
            .flat_map(|p| p.groups.clone())
            .filter_map(|g| self.groups.get(g as usize))
            .flat_map(|g| g.endpoints.clone())
            .filter_map(|e| self.endpoints.get(e as usize))
            .filter_map(|e| e.check.and_then(|c| self.checks.get(c as usize)))
            .max_by_key(|c| c.timing.detection_bound())
    }

    /// The interval of the fastest check (1 s when nothing is checked): a fleet's
    /// fallback time and lease time derive from it.
    pub fn fastest_interval(&self) -> std::time::Duration {
        self.checks
            .iter()
            .map(|c| c.timing.interval)
            .min()
            .unwrap_or(std::time::Duration::from_secs(1))
    }

    /// The datacenter each slot of `name.answers` counts, in order ("all-down" last).
    pub fn answer_slots<'r>(&'r self, name: &DynamicName) -> impl Iterator<Item = &'r str> {
        let groups = self
            .pools
            .get(name.pool as usize)
            .map(|p| p.groups.clone())
            .unwrap_or(0..0);
        (0..name.answers.len()).map(move |i| {
            groups
                .clone()
                .nth(i)
                .and_then(|g| self.groups.get(g as usize))
                .and_then(|g| self.datacenters.get(g.datacenter as usize))
                .map_or("all-down", |d| d.name.as_str())
        })
    }
}
